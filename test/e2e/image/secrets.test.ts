// The finished disk image leaks no secret: a TLS + ACL cluster's real server packages
// (Consul 1.8.7, Prometheus 2.24.1 and node_exporter are this host's binaries seeded into a
// release cache; /usr/bin/true stands in for Nomad, which has no reachable release here)
// built into the amd64 server image by `piinit image`, whose outputs are checked; then the image's root
// and data file systems are copied out with owners and modes (debugfs rdump, no mounts) and
// scanned: no secret of the cluster may be readable by another user. The same tree then
// shows that the CA store the build makes on the host is the one the image's own tools make.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadCluster } from '../../../src/cluster/load.ts';
import { ensureSecretsFile } from '../../../src/cluster/secrets.ts';
import { caStoreScript, caStubScript } from '../../../src/image/base.ts';
import { roleDebs } from '../../../src/image/debs.ts';
import { formatFindings, scanDirectory } from '../../../src/security/scan.ts';
import { testCacheDir } from '../../helpers/debian-root.ts';
import { HOST_COMPONENTS_YAML, seedHostAmd64 } from '../../integration/deb/seed-cache.ts';

const CLUSTER_YAML = `name: scantest
datacenter: scantest
domain: consul
network:
  cidr: 10.232.0.0/24
  gateway: 10.232.0.1
  dns: [10.232.0.1]
  addressing: dhcp
nodes:
  - { name: core1, role: server, board: amd64, mac: "52:54:00:e8:00:11", address: 10.232.0.11 }
  - { name: core2, role: server, board: amd64, mac: "52:54:00:e8:00:12", address: 10.232.0.12 }
  - { name: core3, role: server, board: amd64, mac: "52:54:00:e8:00:13", address: 10.232.0.13 }
  - { name: monitor, role: monitor, board: amd64, mac: "52:54:00:e8:00:20", address: 10.232.0.20 }
${HOST_COMPONENTS_YAML}
ssh:
  authorized_keys: []
security:
  tls: true
  acl: true
`;

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'piinit-imgscan-'));
});
after(() => rm(work, { recursive: true, force: true }));

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe' }).toString();
const piinit = (args: string[]) =>
  spawnSync(process.execPath, ['bin/piinit.js', ...args], { encoding: 'utf8', timeout: 40 * 60_000, maxBuffer: 1 << 26 });

test('`piinit packages` + `piinit image --json`: the server image and its outputs; no secret is readable by other users in it', { timeout: 60 * 60_000 }, async () => {
  const clusterPath = join(work, 'cluster.yaml');
  await writeFile(clusterPath, CLUSTER_YAML);
  await ensureSecretsFile(clusterPath);
  const { cluster } = await loadCluster(clusterPath);
  assert.ok(cluster.secrets.tls && cluster.secrets.tokens.consulBootstrap, 'secrets with the cluster CA and the ACL tokens');

  // Built as a user builds it: `piinit packages`, then `piinit image` (its --json report),
  // with the release cache seeded from this host's binaries and, through a symlink, the
  // test cache's bases under --cache's images/.
  const releases = join(work, 'releases');
  await seedHostAmd64(releases, cluster.components);
  const debDir = join(work, 'debs');
  const packages = piinit(['packages', clusterPath, '--arch', 'amd64', '--cache', releases, '--out', debDir, '--compression', 'gzip']);
  assert.equal(packages.status, 0, packages.stderr);
  const debs = await roleDebs(debDir, cluster.name, 'server', 'amd64');
  const cache = process.env.PIINIT_IMAGE_TEST_CACHE ?? join(testCacheDir(), 'images');
  await mkdir(cache, { recursive: true });
  await mkdir(join(work, 'cache'));
  await symlink(cache, join(work, 'cache', 'images'));
  const out = join(work, 'images');
  const cli = piinit(['image', clusterPath, '--board', 'amd64', '--role', 'server', '--debs', debDir, '--cache', join(work, 'cache'), '--out', out, '--no-xz', '--json']);
  assert.equal(cli.status, 0, cli.stderr);
  const results = JSON.parse(cli.stdout) as { name: string; kind: string; role: string; nodes: string[]; files: { raw: string; xz?: string; bmap: string; sha256: string; manifest: string }; sha256: string; baseKey: string; baseBuiltAt: string | null }[];
  assert.equal(results.length, 1, 'one image: the amd64 server');
  const image = results[0]!;
  assert.deepEqual([image.name, image.kind, image.role], ['scantest-amd64-server', 'amd64', 'server']);
  assert.deepEqual(image.nodes, ['core1', 'core2', 'core3'], 'the nodes whose cards take this image');
  const base = statSync(join(cache, 'base', `bookworm-amd64-${image.baseKey}.tar`));
  assert.equal(image.baseBuiltAt, base.birthtime.toISOString(), "when the base was built: its tarball's birth time");
  assert.ok(base.mtimeMs > base.birthtimeMs, 'not its mtime, which says when it was last used');
  assert.deepEqual(
    (await readdir(out)).sort(),
    ['scantest-amd64-server.img', 'scantest-amd64-server.img.bmap', 'scantest-amd64-server.img.sha256', 'scantest-amd64-server.manifest.json'],
    '--no-xz: no .xz; the other outputs all there',
  );
  assert.match(readFileSync(image.files.sha256, 'utf8'), new RegExp(`^${image.sha256}  scantest-amd64-server\\.img\\n$`));
  execFileSync('sha256sum', ['--check', '--strict', basename(image.files.sha256)], { cwd: out, stdio: 'pipe' });
  const manifest = JSON.parse(readFileSync(image.files.manifest, 'utf8')) as { packages: { name: string }[]; sources: string[] };
  for (const name of ['piinit-scantest-server', 'piinit-consul', 'linux-image-amd64']) assert.ok(manifest.packages.some((p) => p.name === name), name);
  // Built from the host apt's Debian archives, security updates included (no --mirror given).
  assert.deepEqual(
    manifest.sources.map((l) => l.replace(/^deb \S+ /, '')),
    ['bookworm main non-free-firmware', 'bookworm-updates main non-free-firmware', 'bookworm-security main non-free-firmware'],
  );
  assert.doesNotMatch(cli.stderr, /without Debian security updates/);

  const pt = JSON.parse(sh('sfdisk', ['--json', image.files.raw])) as { partitiontable: { partitions: Array<{ start: number; size: number }> } };
  // The root file system, with the data partition's contents where they are mounted.
  const tree = join(work, 'tree');
  for (const [index, under] of [[1, ''], [2, 'data']] as const) {
    const p = pt.partitiontable.partitions[index]!;
    const part = join(work, `part${index}.ext4`);
    sh('dd', [`if=${image.files.raw}`, `of=${part}`, 'bs=512', `skip=${p.start}`, `count=${p.size}`, 'conv=sparse', 'status=none']);
    await mkdir(join(tree, under), { recursive: true });
    // rdump keeps owners and modes.
    sh('debugfs', ['-R', `rdump / ${join(tree, under)}`, part]);
    await rm(part);
  }
  const findings = await scanDirectory(tree, cluster.secrets, { accounts: 'tree', where: 'server image' });
  assert.equal(formatFindings(findings), '', formatFindings(findings));
  // The scan looked where the secrets are: the gossip key, the TLS key and the ACL env file.
  const found = sh('find', [join(tree, 'etc'), '-name', 'encrypt.json', '-o', '-name', 'server-key.pem', '-o', '-name', '*acl*.env']);
  assert.match(found, /encrypt\.json/);
  assert.match(found, /\.pem/);
  assert.match(found, /acl.*\.env/);
  // Nor does the image carry the build's package downloads or apt's caches (262 MB on arm64 once).
  assert.equal(sh('find', [join(tree, 'var/cache/apt'), '-name', '*.deb', '-o', '-name', '*.bin']), '');
  // Nor manual pages or translations (about 50 MB); the copyright files stay, the config
  // layer's packages' too, and dpkg keeps the rule for packages installed later.
  assert.equal(sh('find', [join(tree, 'usr/share/man'), join(tree, 'usr/share/locale'), '-type', 'f', '!', '-name', 'locale.alias']), '');
  assert.equal(sh('find', [join(tree, 'usr/share/doc'), '-mindepth', '2', '-type', 'f', '!', '-name', 'copyright', '!', '-name', 'changelog.Debian.*']), '');
  assert.ok(existsSync(join(tree, 'usr/share/doc/systemd/copyright')));
  for (const deb of debs) assert.ok(existsSync(join(tree, 'usr/share/doc', basename(deb).split('_')[0]!, 'copyright')), deb);
  assert.match(readFileSync(join(tree, 'etc/dpkg/dpkg.cfg.d/piinit-nodoc'), 'utf8'), /^path-exclude=\/usr\/share\/man\/\*$/m);

  // The CA store (the build runs the image's update-ca-certificates on the host, base.ts) is
  // what that command makes inside the image, and the package is as dpkg installed it.
  const chroot = (args: string[]) => sh('chroot', [tree, ...args]);
  const caChanged = () => chroot(['dpkg', '--verify', 'ca-certificates']).split('\n').filter((l) => l && !/ \/usr\/share\/(doc|man)\//.test(l));
  assert.deepEqual(caChanged(), [], 'ca-certificates: files as packaged (but the documentation)');
  assert.equal(chroot(['dpkg-divert', '--list', '*ca-certificates*']), '', 'no diversion left');
  const certs = join(tree, 'etc/ssl/certs');
  const store = () => ({
    entries: sh('find', [certs, '-mindepth', '1', '-printf', '%P %y %l %m\n']).split('\n').sort(),
    bundle: readFileSync(join(certs, 'ca-certificates.crt'), 'utf8'),
  });
  const built = store();
  assert.ok(built.entries.includes('ISRG_Root_X1.pem l /usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt 777'), 'links name the image\'s paths');
  assert.ok(built.entries.filter((e) => / l [0-9A-Za-z_.=-]+\.pem 777$/.test(e)).length > 100, 'openssl hash links');
  assert.ok((built.bundle.match(/BEGIN CERTIFICATE/g) ?? []).length > 100, 'the bundle');
  assert.match(chroot(['openssl', 'verify', '-CApath', '/etc/ssl/certs', '/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt']), /: OK$/m);
  chroot(['update-ca-certificates', '--fresh']);
  assert.deepEqual(store(), built, 'the image\'s own update-ca-certificates --fresh makes the same store');

  // Where the host cannot make the store (another package's hook in update.d, or no openssl
  // on the host), the build's scripts run the image's own command inside it: the same store,
  // with the hooks run. The store is emptied and the stub put in first, as the build has them.
  const stub = join(work, 'ca-stub.sh');
  const storeScript = join(work, 'ca-store.sh');
  await writeFile(stub, caStubScript());
  await writeFile(storeScript, caStoreScript());
  const hostPath = join(work, 'bin-without-openssl');
  await mkdir(hostPath);
  for (const tool of ['rm', 'chroot', 'mv', 'ls', 'readlink', 'ln']) await symlink(sh('sh', ['-c', `command -v ${tool}`]).trim(), join(hostPath, tool));
  const hook = join(tree, 'etc/ca-certificates/update.d/piinit-test');
  const hookRan = join(tree, 'run/piinit-test-hook-ran');
  for (const { why, withHook, path } of [
    { why: 'a hook in update.d', withHook: true, path: process.env.PATH },
    { why: 'no openssl on the host', withHook: false, path: hostPath },
  ]) {
    await rm(hookRan, { force: true });
    await rm(hook, { force: true });
    if (withHook) {
      await mkdir(join(tree, 'etc/ca-certificates/update.d'), { recursive: true });
      await writeFile(hook, '#!/bin/sh\ntouch /run/piinit-test-hook-ran\n', { mode: 0o755 });
    }
    sh('find', [certs, '-mindepth', '1', '-delete']);
    sh('/bin/sh', [stub, tree]);
    assert.equal(readFileSync(join(tree, 'usr/sbin/update-ca-certificates'), 'utf8'), '#!/bin/sh\nexit 0\n', 'the stub is in');
    execFileSync('/bin/sh', [storeScript, tree], { stdio: 'pipe', env: { ...process.env, PATH: path } });
    assert.equal(existsSync(hookRan), withHook, `${why}: the hook ran inside the image`);
    await rm(hook, { force: true });
    assert.deepEqual(store(), built, `${why}: the image's command made the same store`);
    assert.equal(chroot(['dpkg-divert', '--list', '*ca-certificates*']), '', `${why}: no diversion left`);
    assert.deepEqual(caChanged(), [], `${why}: files as packaged`);
  }
});
