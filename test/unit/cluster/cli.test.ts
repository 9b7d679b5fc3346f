// `piinit init` and `piinit validate` end to end, as a user runs them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { editLine, tempCluster, VALID } from './valid-cluster.ts';

const BIN = resolve('bin/piinit.js');

function piinit(args: string[], cwd = process.cwd(), opts: { umask000?: boolean } = {}) {
  const r = opts.umask000
    ? spawnSync('sh', ['-c', 'umask 000 && exec "$0" "$@"', process.execPath, BIN, ...args], { cwd, encoding: 'utf8' })
    : spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8' });
  // No user error ever shows a stack trace.
  assert.doesNotMatch(r.stderr, /^\s+at /m, r.stderr);
  assert.doesNotMatch(r.stderr, /internal error/);
  return r;
}

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'piinit-cli-'));
  dirs.push(d);
  return d;
}

test('validate: a valid file prints the summary and exits 0', async () => {
  const t = await tempCluster(VALID, { tls: true });
  dirs.push(t.dir);
  const r = piinit(['validate', 'cluster.yaml'], t.dir);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^cluster +lab \(datacenter home, Consul domain consul\)$/m);
  assert.match(r.stdout, /^ {2}core3 +server +pi3 +arm64 +dc:a6:32:00:00:03 +192\.168\.1\.13$/m);
  assert.match(r.stdout, /^ {2}worker1 +client +pi-zero +armel +b8:27:eb:00:00:05 +dhcp$/m);
  assert.match(r.stdout, /^ {2}consul +1\.8\.7 +debian bullseye \(package consul\)$/m);
  assert.match(r.stdout, /^ {2}prometheus +2\.24\.1 +debian bullseye \(package prometheus\)$/m);
  assert.match(r.stdout, /^ {2}node_exporter +1\.5\.0 +github$/m);
  assert.match(r.stdout, /^valid: 3 servers, 1 monitor, 1 client$/m);
  const secrets = await readFile(t.secrets, 'utf8');
  const key = /consul_gossip_key: (\S+)/.exec(secrets)![1]!;
  assert.ok(!r.stdout.includes(key), 'secrets are never printed');
});

test('validate: errors exit 1 with every diagnostic and no stack trace', async () => {
  const t = await tempCluster(editLine(24, '    address: 192.168.2.5', editLine(8, '  adressing: dhcp')));
  dirs.push(t.dir);
  const r = piinit(['validate'], t.dir);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.equal(
    r.stderr,
    'piinit: invalid cluster (2 errors):\n' +
      'cluster.yaml:8:3: error: network.adressing: unknown field "adressing" (did you mean "addressing"?)\n' +
      'cluster.yaml:24:14: error: nodes[2].address: 192.168.2.5 is outside the network 192.168.1.0/24\n',
  );
});

test('validate --json: the cluster without secrets, or the diagnostics', async () => {
  const withWifi = `${VALID}wifi:\n  ssid: Net\n  country: GB\n`;
  const t = await tempCluster(withWifi, {
    secrets: { wifiPassphrase: 'a passphrase' },
    tls: true,
  });
  dirs.push(t.dir);
  const ok = piinit(['validate', t.cluster, '--json']);
  assert.equal(ok.status, 0, ok.stderr);
  const j = JSON.parse(ok.stdout);
  assert.equal(j.ok, true);
  assert.equal(j.cluster.nodes.length, 5);
  assert.deepEqual(j.cluster.wifi, { ssid: 'Net', country: 'GB' });
  assert.equal(j.cluster.secrets, undefined);
  assert.doesNotMatch(ok.stdout, /passphrase|gossip|psk/i);

  await writeFile(t.cluster, editLine(13, '    mac: nope', withWifi));
  const bad = piinit(['validate', t.cluster, '--json']);
  assert.equal(bad.status, 1);
  const jb = JSON.parse(bad.stdout);
  assert.equal(jb.ok, false);
  assert.deepEqual(jb.diagnostics, [
    {
      file: t.cluster,
      line: 13,
      column: 10,
      path: 'nodes[0].mac',
      severity: 'error',
      message: '"nope" is not a MAC address (expected six hex bytes like dc:a6:32:12:34:56)',
    },
  ]);

  // A file that cannot be read at all: still JSON on stdout, the message on stderr.
  const missing = piinit(['validate', join(t.dir, 'no-such.yaml'), '--json']);
  assert.equal(missing.status, 1);
  const message = `cluster file ${join(t.dir, 'no-such.yaml')} not found (create one with: piinit init)`;
  assert.deepEqual(JSON.parse(missing.stdout), { ok: false, diagnostics: [], error: message });
  assert.equal(missing.stderr, `piinit: ${message}\n`);
});

test('validate --secrets: another secrets file; a missing cluster file is a plain error', async () => {
  const t = await tempCluster(VALID);
  dirs.push(t.dir);
  const r = piinit(['validate', t.cluster, '--secrets', join(t.dir, 'other.yaml')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /other\.yaml:1:1: error: secrets file not found/);
  const m = piinit(['validate', join(t.dir, 'nope.yaml')]);
  assert.equal(m.status, 1);
  assert.match(m.stderr, /^piinit: cluster file .*nope\.yaml not found \(create one with: piinit init\)$/m);
});

test('init writes a valid commented cluster, 0600 secrets (even with umask 000) and a .gitignore line', async () => {
  const dir = join(await tempDir(), 'home');
  const r = piinit(['init', dir, '--clients', '2'], process.cwd(), { umask000: true });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /wrote .*cluster\.yaml/);
  assert.match(r.stdout, /wrote .*cluster\.secrets\.yaml/);
  assert.match(r.stdout, /next steps:/);
  const secrets = await readFile(join(dir, 'cluster.secrets.yaml'), 'utf8');
  assert.ok(!r.stdout.includes(/consul_gossip_key: (\S+)/.exec(secrets)![1]!), 'secrets are never printed');
  assert.equal((await stat(join(dir, 'cluster.secrets.yaml'))).mode & 0o777, 0o600);
  assert.equal((await stat(join(dir, 'cluster.yaml'))).mode & 0o777, 0o644);
  assert.equal(await readFile(join(dir, '.gitignore'), 'utf8'), '/cluster.secrets.yaml\n');
  const yaml = await readFile(join(dir, 'cluster.yaml'), 'utf8');
  assert.match(yaml, /^# /);
  assert.match(yaml, /raft_multiplier: 3/);
  const v = piinit(['validate', join(dir, 'cluster.yaml')]);
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, /^valid: 3 servers, 1 monitor, 2 clients$/m);
});

test('init never overwrites without --force, and checks both files before writing either', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, 'cluster.yaml'), 'mine\n');
  await writeFile(join(dir, '.gitignore'), 'node_modules/');
  const r = piinit(['init', dir]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cluster\.yaml already exists; nothing written \(use --force to replace\)/);
  assert.equal(await readFile(join(dir, 'cluster.yaml'), 'utf8'), 'mine\n');
  await assert.rejects(stat(join(dir, 'cluster.secrets.yaml')), /ENOENT/);

  const f = piinit(['init', dir, '--force', '--clients', '0']);
  assert.equal(f.status, 0, f.stderr);
  assert.notEqual(await readFile(join(dir, 'cluster.yaml'), 'utf8'), 'mine\n');
  assert.equal(await readFile(join(dir, '.gitignore'), 'utf8'), 'node_modules/\n/cluster.secrets.yaml\n');
  const before = await readFile(join(dir, 'cluster.secrets.yaml'), 'utf8');
  const again = piinit(['init', dir]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /cluster\.yaml and .*cluster\.secrets\.yaml already exist/);
  assert.equal(await readFile(join(dir, 'cluster.secrets.yaml'), 'utf8'), before);
  // --force again: new secrets, .gitignore not duplicated.
  assert.equal(piinit(['init', dir, '--force']).status, 0);
  assert.notEqual(await readFile(join(dir, 'cluster.secrets.yaml'), 'utf8'), before);
  assert.equal(await readFile(join(dir, '.gitignore'), 'utf8'), 'node_modules/\n/cluster.secrets.yaml\n');
});

test('init with a .gitignore that is a directory: refused by name with nothing written', async () => {
  const dir = await tempDir();
  await mkdir(join(dir, '.gitignore'));
  const r = piinit(['init', dir]);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `piinit: ${join(dir, '.gitignore')} is a directory, not a file; nothing written\n`);
  assert.deepEqual(await readdir(dir), ['.gitignore']);
});

test('init: a dangling symlink is an existing file: refused with nothing written; --force writes through it', async () => {
  const root = await tempDir();
  const a = join(root, 'a');
  await mkdir(a);
  await symlink('elsewhere.yaml', join(a, 'cluster.yaml'));
  const r = piinit(['init', a]);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `piinit: ${join(a, 'cluster.yaml')} already exists; nothing written (use --force to replace)\n`);
  assert.deepEqual(await readdir(a), ['cluster.yaml']);

  // The secrets kept elsewhere, not made yet: cluster.yaml is not written either.
  const b = join(root, 'b');
  await mkdir(b);
  await mkdir(join(root, 'vault'));
  await symlink('../vault/b.secrets.yaml', join(b, 'cluster.secrets.yaml'));
  const s = piinit(['init', b]);
  assert.equal(s.status, 1);
  assert.equal(s.stderr, `piinit: ${join(b, 'cluster.secrets.yaml')} already exists; nothing written (use --force to replace)\n`);
  assert.deepEqual(await readdir(b), ['cluster.secrets.yaml']);

  const f = piinit(['init', b, '--force']);
  assert.equal(f.status, 0, f.stderr);
  assert.ok((await lstat(join(b, 'cluster.secrets.yaml'))).isSymbolicLink());
  assert.equal((await stat(join(root, 'vault', 'b.secrets.yaml'))).mode & 0o777, 0o600);
  assert.equal(piinit(['validate', join(b, 'cluster.yaml')]).status, 0);
  assert.equal(piinit(['init', a, '--force']).status, 0);
  assert.ok((await lstat(join(a, 'cluster.yaml'))).isSymbolicLink());
  assert.match(await readFile(join(a, 'elsewhere.yaml'), 'utf8'), /^# /);

  // --force through a link into a folder that is not there: said first, nothing written.
  const d = join(root, 'd');
  await mkdir(d);
  await symlink('../no-such-vault/d.secrets.yaml', join(d, 'cluster.secrets.yaml'));
  const g = piinit(['init', d, '--force']);
  assert.equal(g.status, 1);
  assert.equal(g.stderr, `piinit: ${join(d, 'cluster.secrets.yaml')} is a link to ${join(root, 'no-such-vault', 'd.secrets.yaml')}, whose folder does not exist; nothing written\n`);
  assert.deepEqual(await readdir(d), ['cluster.secrets.yaml']);
});

test('init, even with --force, refuses a target that is a directory by name, with nothing written', async () => {
  const root = await tempDir();
  const c = join(root, 'c');
  await mkdir(join(c, 'cluster.secrets.yaml'), { recursive: true });
  await writeFile(join(c, 'cluster.yaml'), 'mine\n');
  for (const args of [[c], [c, '--force']]) {
    const r = piinit(['init', ...args]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `piinit: ${join(c, 'cluster.secrets.yaml')} is a directory, not a file; nothing written\n`);
  }
  assert.equal(await readFile(join(c, 'cluster.yaml'), 'utf8'), 'mine\n');
  assert.deepEqual((await readdir(c)).sort(), ['cluster.secrets.yaml', 'cluster.yaml']);

  // cluster.yaml a directory, or a symlink to one.
  const d = join(root, 'd');
  await mkdir(join(d, 'cluster.yaml'), { recursive: true });
  const r = piinit(['init', d, '--force']);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `piinit: ${join(d, 'cluster.yaml')} is a directory, not a file; nothing written\n`);
  const e = join(root, 'e');
  await mkdir(e);
  await symlink('../d', join(e, 'cluster.yaml'));
  const l = piinit(['init', e, '--force']);
  assert.equal(l.status, 1);
  assert.equal(l.stderr, `piinit: ${join(e, 'cluster.yaml')} is a directory, not a file; nothing written\n`);
  assert.deepEqual(await readdir(e), ['cluster.yaml']);
});

test('init "" is refused, not taken for a directory', async () => {
  const cwd = await tempDir();
  const r = piinit(['init', ''], cwd);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'piinit: init needs a directory name (. for this one)\n');
  assert.deepEqual(await readdir(cwd), []);
});

test('init --secrets-only creates only the missing secrets file', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, 'cluster.yaml'), VALID);
  const r = piinit(['init', dir, '--secrets-only']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(await readFile(join(dir, 'cluster.yaml'), 'utf8'), VALID);
  assert.equal(piinit(['validate', join(dir, 'cluster.yaml')]).status, 0);
  assert.equal(piinit(['init', dir, '--secrets-only']).status, 1);
});

test('init --secrets-only: a secrets_file in a folder not made yet gets the folder (owner-only)', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, 'cluster.yaml'), `secrets_file: private/s.yaml\n${VALID}`);
  const r = piinit(['init', dir, '--secrets-only']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal((await stat(join(dir, 'private'))).mode & 0o777, 0o700);
  assert.equal((await stat(join(dir, 'private', 's.yaml'))).mode & 0o777, 0o600);
  assert.equal(piinit(['validate', join(dir, 'cluster.yaml')]).status, 0);
});

test('init: a cluster file that does not parse, or a DIR that is a file, is a plain error', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, 'cluster.yaml'), editLine(3, 'domain: *dom'));
  const r = piinit(['init', dir, '--secrets-only']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /fix .*cluster\.yaml first:\n.*cluster\.yaml:3:9: error: Unresolved alias/);
  const file = join(dir, 'cluster.yaml');
  const f = piinit(['init', file]);
  assert.equal(f.status, 1);
  assert.match(f.stderr, /cluster\.yaml is a file, not a directory/);
});

test('init --clients 999 writes a file its own validate accepts (distinct MACs)', async () => {
  const dir = await tempDir();
  assert.equal(piinit(['init', dir, '--clients', '999']).status, 0);
  const r = piinit(['validate', join(dir, 'cluster.yaml')]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /999 clients/);
});

test('validate names what secrets check would: certificates that no longer name a server', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-validate-certs-'));
  dirs.push(dir);
  assert.equal(piinit(['init', join(dir, 'c')]).status, 0);
  const file = join(dir, 'c', 'cluster.yaml');
  const fresh = piinit(['validate', file]);
  assert.equal(fresh.status, 0, fresh.stderr);
  assert.doesNotMatch(fresh.stdout, /^secrets/m);

  await writeFile(file, (await readFile(file, 'utf8')).replace('address: 192.168.1.11\n', 'address: 192.168.1.111\n'));
  const moved = piinit(['validate', file]);
  // The usual state after init and editing the addresses: listed, with its remedy, but the
  // cluster file is valid and the build would not fail on it.
  assert.equal(moved.status, 0, moved.stderr);
  assert.match(moved.stdout, /^ {2}problem: Consul server certificate: does not name 192\.168\.1\.111 \(servers changed\? run: piinit secrets renew-certs\)$/m);
  assert.match(moved.stdout, /^valid: 3 servers, 1 monitor, 1 client$/m);
  const j = piinit(['validate', file, '--json']);
  assert.equal(j.status, 0);
  const json = JSON.parse(j.stdout);
  assert.equal(json.ok, true);
  assert.equal(json.cluster.name, 'homelab');
  assert.deepEqual(json.secrets.map((i: { what: string }) => i.what), ['Consul server certificate', 'Nomad server certificate']);
  assert.equal(piinit(['secrets', 'check', file]).status, 1, 'secrets check is the one that fails on it');
  assert.equal(piinit(['secrets', 'renew-certs', file]).status, 0);
  assert.doesNotMatch(piinit(['validate', file]).stdout, /problem:/);
});

test('validate fails on a missing CA or missing tokens (the secrets need generating); warnings alone keep exit 0', async () => {
  const t = await tempCluster(VALID);
  dirs.push(t.dir);
  await writeFile(t.secrets, (await readFile(t.secrets, 'utf8')).replace(/^tokens:\n( .*\n)*/m, ''), { mode: 0o600 });
  const r = piinit(['validate', t.cluster]);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /^ {2}problem: ACL tokens: missing: .* \(run: piinit secrets generate\)$/m);
  assert.match(r.stdout, /^ {2}problem: TLS: no cluster CA \(run: piinit secrets generate\)$/m);
  assert.equal(r.stderr, `piinit: ${t.cluster} is valid, but the secrets in ${t.secrets} are not: run piinit secrets generate\n`);
  const j = piinit(['validate', t.cluster, '--json']);
  assert.equal(j.status, 1);
  const json = JSON.parse(j.stdout);
  assert.equal(json.ok, false);
  assert.deepEqual(json.secrets.map((i: { what: string; severity: string }) => `${i.what} ${i.severity}`), ['ACL tokens error', 'TLS error']);

  // With TLS and ACLs off, the same gaps are warnings: valid.
  await writeFile(t.cluster, `${VALID}security:\n  tls: false\n  acl: false\n`);
  const off = piinit(['validate', t.cluster]);
  assert.equal(off.status, 0, off.stderr);
  assert.match(off.stdout, /^ {2}warning: TLS: no cluster CA/m);
  assert.match(off.stdout, /^valid: 3 servers, 1 monitor, 1 client$/m);
  const offJson = JSON.parse(piinit(['validate', t.cluster, '--json']).stdout);
  assert.equal(offJson.ok, true);
  assert.equal(offJson.secrets.length, 2);
});

test('validate never prints the password of a mirror URL (summary, JSON, diagnostics)', async () => {
  // A lone user name is often a token: hidden too.
  const withMirror = VALID.replace(
    '  nomad: { version: 1.6.5 }',
    '  nomad: { version: 1.6.5, source: mirror, mirror: "https://admin:hunter2@mirror.example/hc" }',
  ).replace('  prometheus: { version: 2.24.1, source: debian, suite: bullseye }', '  prometheus: { version: 2.24.1, source: mirror, mirror: "https://ghp_token@mirror.example/p" }');
  const t = await tempCluster(withMirror, { tls: true });
  dirs.push(t.dir);
  const r = piinit(['validate', t.cluster]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^ {2}nomad +1\.6\.5 +mirror https:\/\/admin:\*\*\*@mirror\.example\/hc$/m);
  assert.match(r.stdout, /^ {2}prometheus +2\.24\.1 +mirror https:\/\/\*\*\*@mirror\.example\/p$/m);
  const j = piinit(['validate', t.cluster, '--json']);
  assert.equal(JSON.parse(j.stdout).cluster.components.nomad.mirror, 'https://admin:***@mirror.example/hc');

  // Diagnostics that quote a URL.
  await writeFile(t.cluster, withMirror.replace('https://admin:hunter2@', 'ftp://admin:hunter2@'));
  const bad = piinit(['validate', t.cluster]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /"ftp:\/\/admin:\*\*\*@mirror\.example\/hc" is neither a directory nor an http\(s\) URL/);
  const badJson = piinit(['validate', t.cluster, '--json']);
  assert.match(badJson.stdout, /ftp:\/\/admin:\*\*\*@mirror/);
  // Any other command that stops on the same cluster file: its error and its --json too.
  const render = piinit(['render', t.cluster]);
  const renderJson = piinit(['render', t.cluster, '--json']);
  assert.equal(render.status, 1);
  assert.match(render.stderr, /ftp:\/\/admin:\*\*\*@mirror/);
  assert.equal(JSON.parse(renderJson.stdout).ok, false);
  for (const out of [r.stdout, j.stdout, bad.stdout, bad.stderr, badJson.stdout, render.stderr, renderJson.stdout]) assert.doesNotMatch(out, /hunter2|ghp_token/);
});

test('validate: a disk, an endless device or a huge file as the cluster or secrets file is refused by name; a pipe is read', async () => {
  const dir = await tempDir();
  assert.equal(piinit(['init', dir]).status, 0);
  const zero = piinit(['validate', '/dev/zero']);
  assert.equal(zero.status, 1);
  assert.equal(zero.stderr, 'piinit: /dev/zero is too large to be a cluster file (over 1048576 bytes)\n');
  const disk = readdirSync('/dev').map((n) => join('/dev', n)).find((p) => statSync(p, { throwIfNoEntry: false })?.isBlockDevice());
  assert.ok(disk, 'a block device to pass by mistake (CI has loop devices)');
  assert.equal(piinit(['validate', disk]).stderr, `piinit: cluster file ${disk} is a disk, not a file\n`);
  // Secrets decrypted into a pipe (sops -d …): read like a file.
  const secrets = join(dir, 'cluster.secrets.yaml');
  const piped = spawnSync('bash', ['-c', 'exec "$0" "$1" validate "$2" --secrets <(cat "$3")', process.execPath, BIN, join(dir, 'cluster.yaml'), secrets], { encoding: 'utf8' });
  assert.equal(piped.status, 0, piped.stderr);
  assert.match(piped.stdout, /^valid: /m);
  const big = join(dir, 'big.yaml');
  await writeFile(big, `# ${'x'.repeat(2 * 1024 * 1024)}\n`);
  const b = piinit(['validate', big, '--json']);
  assert.equal(b.status, 1);
  const message = `${big} is too large to be a cluster file (${2 * 1024 * 1024 + 3} bytes)`;
  assert.deepEqual(JSON.parse(b.stdout), { ok: false, diagnostics: [], error: message });
  assert.equal(b.stderr, `piinit: ${message}\n`);

  const file = join(dir, 'cluster.yaml');
  await writeFile(file, `secrets_file: /dev/zero\n${await readFile(file, 'utf8')}`);
  const s = piinit(['validate', file]);
  assert.equal(s.status, 1);
  assert.equal(s.stderr, 'piinit: /dev/zero is too large to be a secrets file (over 1048576 bytes)\n');
  assert.equal(piinit(['validate', file, '--secrets', big]).stderr, `piinit: ${big} is too large to be a secrets file (${2 * 1024 * 1024 + 3} bytes)\n`);
});

test('validate: a private key or a binary file passed as the cluster file is described, never printed', async () => {
  const dir = await tempDir();
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await writeFile(join(dir, 'key.pem'), pem);
  const k = piinit(['validate', join(dir, 'key.pem')]);
  assert.equal(k.status, 1);
  assert.match(k.stderr, /key\.pem:1:1: error: expected a mapping \(key: value lines\), got a PEM block \(BEGIN PRIVATE KEY; not shown\)$/m);
  assert.ok(!k.stderr.includes(pem.split('\n')[1]!), 'the key body is never printed');
  const bin = Buffer.from([0x1f, 0x8b, 0x08, 0x00, ...Buffer.from('secret-ish bytes '.repeat(40)), 0x00, 0x07]);
  await writeFile(join(dir, 'blob.gz'), bin);
  const g = piinit(['validate', join(dir, 'blob.gz')]);
  assert.equal(g.status, 1);
  assert.match(g.stderr, /blob\.gz:1:1: error: expected a mapping \(key: value lines\), got a text of \d+ characters$/m);
  assert.doesNotMatch(g.stderr, /secret-ish/);
});
