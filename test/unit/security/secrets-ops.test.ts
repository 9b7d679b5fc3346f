import assert from 'node:assert/strict';
import { Command } from '@commander-js/extra-typings';
import { lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink } from 'node:fs/promises';
import { writeFileAtomic } from '../../../src/cluster/atomic-write.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { init } from '../../../src/cli/init.ts';
import { register } from '../../../src/cli/secrets.ts';
import { generateSecrets } from '../../../src/cluster/secrets.ts';
import { certificateInfo, isIssuedBy } from '../../../src/security/pki.ts';
import { scanText } from '../../../src/security/scan.ts';
import { checkSecrets, fillMissingSecrets, fillSecretFileGaps, renewCertificates, rotateGossipKeys } from '../../../src/security/secrets-ops.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';

const DAY = 86_400_000;

test('check: all OK when fresh; warns in the last third; errors on expiry and on servers the certificate does not name', () => {
  const c = fixtureCluster({ security: { tls: true, acl: true } });
  const issued = new Date('2026-01-01T00:00:00Z');
  c.secrets = generateSecrets(c);
  c.secrets.tls = fillMissingSecrets({ ...c, secrets: { ...c.secrets, tls: undefined } }, issued).secrets.tls;
  const sev = (now: Date) => Object.fromEntries(checkSecrets(c, now).map((i) => [i.what, i.severity]));
  assert.ok(Object.values(sev(new Date(issued.getTime() + DAY))).every((s) => s === 'ok'));
  assert.equal(sev(new Date(issued.getTime() + 600 * DAY))['Consul server certificate'], 'warn');
  assert.equal(sev(new Date(issued.getTime() + 800 * DAY))['Consul server certificate'], 'error');
  const moved = { ...c, nodes: c.nodes.map((n) => (n.name === 'core3' ? { ...n, address: '192.168.50.99' } : n)) };
  const item = checkSecrets(moved, new Date(issued.getTime() + DAY)).find((i) => i.what === 'Consul server certificate')!;
  assert.equal(item.severity, 'error');
  assert.match(item.detail, /192\.168\.50\.99/);
  // renew-certs fixes it and keeps the CA.
  const renewed = renewCertificates(moved, new Date(issued.getTime() + DAY));
  assert.equal(renewed.tls!.ca, c.secrets.tls!.ca);
  assert.ok(certificateInfo(renewed.tls!.consulServer.cert).names.includes('192.168.50.99'));
  assert.ok(isIssuedBy(renewed.tls!.nomadServer.cert, c.secrets.tls!.ca.cert));
});

test('generate fills only what is missing; rotate-gossip replaces only the chosen key', () => {
  const c = fixtureCluster();
  const before = structuredClone(c.secrets);
  const { secrets, added } = fillMissingSecrets(c);
  assert.equal(secrets.consulGossipKey, before.consulGossipKey);
  assert.ok(added.includes('tokens.consul_agent') && secrets.tls);
  assert.deepEqual(fillMissingSecrets({ ...c, secrets }).added, []);
  const r = rotateGossipKeys(secrets, 'consul');
  assert.notEqual(r.consulGossipKey, secrets.consulGossipKey);
  assert.equal(r.nomadGossipKey, secrets.nomadGossipKey);
  assert.equal(Buffer.from(r.consulGossipKey, 'base64').length, 32);
});

test('the piinit secrets commands keep the file 0600 and never print a secret', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-secrets-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // In-process (a child per command costs seconds of TypeScript compilation on 2 cores).
  let output = '';
  const capture = async (fn: () => Promise<unknown>) => {
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string | Uint8Array) => ((output += String(chunk)), true)) as typeof process.stdout.write;
    try {
      await fn();
    } finally {
      process.stdout.write = write;
    }
  };
  const run = (...args: string[]) =>
    capture(async () => {
      const program = new Command().exitOverride();
      register(program);
      await program.parseAsync(['node', 'piinit', ...args]);
    });
  await capture(() => init(dir, { force: false, clients: 1, secretsOnly: false }));
  const file = join(dir, 'cluster.secrets.yaml');
  const original = await readFile(file, 'utf8');
  for (const args of [['secrets', 'check'], ['secrets', 'check', '--json'], ['secrets', 'renew-certs'], ['secrets', 'rotate-gossip'], ['secrets']]) {
    await run(...args, join(dir, 'cluster.yaml'));
    assert.equal((await stat(file)).mode & 0o777, 0o600, args.join(' '));
  }
  const { loadCluster } = await import('../../../src/cluster/load.ts');
  const { cluster } = await loadCluster(join(dir, 'cluster.yaml'));
  // Neither the secrets of before nor those of after appear in anything printed.
  const { parse } = await import('yaml');
  const old = parse(original) as { consul_gossip_key: string };
  assert.notEqual(old.consul_gossip_key, cluster.secrets.consulGossipKey);
  assert.ok(!output.includes(old.consul_gossip_key));
  assert.deepEqual(scanText(output, cluster.secrets, 'piinit secrets output'), []);
  assert.match(output, /valid until/);
  process.exitCode = undefined; // `secrets check` sets it, as the CLI does
});

test('a secrets file that is a symlink: rotate-gossip writes its target and keeps the link', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-secrets-link-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const quiet = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  let before = '';
  try {
    await init(join(dir, 'c'), { force: false, clients: 1, secretsOnly: false });
    await mkdir(join(dir, 'vault'), { mode: 0o700 });
    const target = join(dir, 'vault', 'homelab.secrets.yaml');
    await rename(join(dir, 'c', 'cluster.secrets.yaml'), target);
    await symlink(target, join(dir, 'c', 'cluster.secrets.yaml'));
    before = await readFile(target, 'utf8');
    const program = new Command().exitOverride();
    register(program);
    await program.parseAsync(['node', 'piinit', 'secrets', 'rotate-gossip', join(dir, 'c', 'cluster.yaml')]);
  } finally {
    process.stdout.write = quiet;
  }
  assert.ok((await lstat(join(dir, 'c', 'cluster.secrets.yaml'))).isSymbolicLink(), 'still a link');
  const after = await readFile(join(dir, 'vault', 'homelab.secrets.yaml'), 'utf8');
  const gossip = (text: string) => /^consul_gossip_key: (.+)$/m.exec(text)?.[1];
  assert.ok(gossip(before) && gossip(after));
  assert.notEqual(gossip(after), gossip(before), 'the target has the new key');
  assert.equal((await stat(join(dir, 'vault', 'homelab.secrets.yaml'))).mode & 0o777, 0o600);
  assert.deepEqual((await readdir(join(dir, 'c'))).filter((n) => n.endsWith('.tmp')), []);
});

test('writeFileAtomic names the file asked for when it cannot write beside it, not its temp name', async () => {
  await assert.rejects(writeFileAtomic('/nonexistent-piinit-dir/cluster.secrets.yaml', 'x', { overwrite: true }), { code: 'ENOENT', path: '/nonexistent-piinit-dir/cluster.secrets.yaml' });
});

test('writeFileAtomic names the file asked for when the rename fails (a directory there), and leaves no temp file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-atomic-rename-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'cluster.secrets.yaml'));
  await assert.rejects(writeFileAtomic(join(dir, 'cluster.secrets.yaml'), 'x', { overwrite: true }), { code: 'EISDIR', path: join(dir, 'cluster.secrets.yaml') });
  assert.deepEqual(await readdir(dir), ['cluster.secrets.yaml']);
});

test('writeFileAtomic through a relative symlink whose target does not exist yet: the target is made, the link stays', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-atomic-link-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'vault'));
  await mkdir(join(dir, 'c'));
  await symlink('../vault/secrets.yaml', join(dir, 'c', 'cluster.secrets.yaml'));
  await writeFileAtomic(join(dir, 'c', 'cluster.secrets.yaml'), 'new', { overwrite: true, mode: 0o600 });
  assert.ok((await lstat(join(dir, 'c', 'cluster.secrets.yaml'))).isSymbolicLink());
  assert.equal(await readFile(join(dir, 'vault', 'secrets.yaml'), 'utf8'), 'new');
  await symlink('loop', join(dir, 'loop'));
  await assert.rejects(writeFileAtomic(join(dir, 'loop'), 'x', { overwrite: true }), /too many levels of symbolic links/);
});

test('a mistyped secrets command is named as one, with the command meant, not taken for a cluster file', async () => {
  const run = async (...args: string[]) => {
    const program = new Command().exitOverride();
    register(program);
    await program.parseAsync(['node', 'piinit', 'secrets', ...args]);
  };
  await assert.rejects(run('renew'), { message: 'no such command: secrets renew (did you mean "secrets renew-certs"?); the secrets commands are generate, check, renew-certs, rotate-gossip' });
  await assert.rejects(run('chek', 'cluster.yaml'), { message: /^no such command: secrets chek \(did you mean "secrets check"\?\)/ });
  await assert.rejects(run('./cluster.yaml', 'extra'), { message: 'secrets generate takes one cluster file, not 2 arguments' });
  await assert.rejects(run('./no-such-cluster.yaml'), { message: /no-such-cluster\.yaml not found/ });
});

test('generate fills a missing gossip key and a missing certificate from the existing CA, and nothing else', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-secrets-gaps-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  let output = '';
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => ((output += String(chunk)), true)) as typeof process.stdout.write;
  const { parse, stringify } = await import('yaml');
  const { loadCluster } = await import('../../../src/cluster/load.ts');
  const file = join(dir, 'cluster.secrets.yaml');
  type Raw = { consul_gossip_key?: string; nomad_gossip_key: string; tls: Record<string, { cert: string; key: string } | undefined>; tokens: Record<string, string | undefined> };
  let before: Raw;
  try {
    await init(dir, { force: false, clients: 1, secretsOnly: false });
    before = parse(await readFile(file, 'utf8')) as Raw;
    const gappy = structuredClone(before);
    delete gappy.consul_gossip_key;
    delete gappy.tls.nomad_client;
    delete gappy.tokens.consul_dns;
    await writeFileAtomic(file, stringify(gappy), { overwrite: true, mode: 0o600 });
    await assert.rejects(loadCluster(join(dir, 'cluster.yaml')), (e: Error) => {
      assert.match(e.message, /cluster\.secrets\.yaml:\d+:\d+: error: consul_gossip_key: missing required field \(add it with: piinit secrets generate\)/);
      assert.match(e.message, /tls\.nomad_client: missing required field \(add it with: piinit secrets generate\)/);
      return true;
    });
    output = '';
    const program = new Command().exitOverride();
    register(program);
    await program.parseAsync(['node', 'piinit', 'secrets', 'generate', join(dir, 'cluster.yaml')]);
  } finally {
    process.stdout.write = write;
  }
  assert.equal(output, `${file}: added consul_gossip_key, tls.nomad_client (new certificate from the cluster CA), tokens.consul_dns\n`);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const { cluster } = await loadCluster(join(dir, 'cluster.yaml'));
  const s = cluster.secrets;
  assert.equal(s.nomadGossipKey, before.nomad_gossip_key, 'the key that was there stays');
  assert.notEqual(s.consulGossipKey, before.consul_gossip_key);
  assert.equal(Buffer.from(s.consulGossipKey, 'base64').length, 32);
  assert.deepEqual(s.tls!.ca, before.tls.ca);
  assert.deepEqual(s.tls!.consulServer, before.tls.consul_server);
  assert.notEqual(s.tls!.nomadClient.cert, before.tls.nomad_client!.cert);
  assert.ok(isIssuedBy(s.tls!.nomadClient.cert, s.tls!.ca.cert));
  assert.ok(certificateInfo(s.tls!.nomadClient.cert).names.includes('client.global.nomad'));
  assert.equal(s.tokens.consulAgent, before.tokens.consul_agent);
  assert.deepEqual(scanText(output, s, 'piinit secrets output'), []);
});

test('fillSecretFileGaps leaves a file with a damaged CA or no tls section to the loader and to fillMissingSecrets', () => {
  const names = { name: 'lab', nodes: [{ role: 'server', address: '192.168.1.11' }] };
  const key = generateSecrets().consulGossipKey;
  const noTls: Record<string, unknown> = { consul_gossip_key: key, nomad_gossip_key: null, tls: null };
  assert.deepEqual(fillSecretFileGaps(noTls, names), ['nomad_gossip_key']);
  assert.equal(noTls.consul_gossip_key, key);
  assert.ok(!('tls' in noTls), 'an empty tls: is made whole by fillMissingSecrets');
  const damaged = { consul_gossip_key: key, nomad_gossip_key: key, tls: { ca: { cert: 'not a certificate', key: 'x' } } };
  assert.deepEqual(fillSecretFileGaps(damaged, names), []);
  assert.deepEqual(Object.keys(damaged.tls), ['ca']);
});
