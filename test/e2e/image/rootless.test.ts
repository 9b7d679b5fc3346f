// piinit image as an ordinary user: the build runs again in a user namespace with the
// user's subordinate IDs (src/image/rootless.ts), where nothing is privileged on the host.
// The image must hold the same file system contents as the root build of the same inputs
// (contentHash), device nodes included (debugfs writes them: devnodes.ts), and its files
// belong to the user: the amd64 server image through the CLI, and the arm64 Pi image with
// its base built under qemu-user in the namespace. The user, piinit-rootless, is made by
// scripts/setup-test-host.sh. Only root-built images are booted (boot.test.ts): equal
// contents stand in for booting these.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadCluster } from '../../../src/cluster/load.ts';
import { ensureSecretsFile } from '../../../src/cluster/secrets.ts';
import { DEV_NODES } from '../../../src/image/devnodes.ts';
import { rootlessCommand } from '../../../src/image/rootless.ts';
import { testCacheDir } from '../../helpers/debian-root.ts';
import { HOST_COMPONENTS_YAML, seedHostAmd64 } from '../../integration/deb/seed-cache.ts';

const USER = 'piinit-rootless';
const CLUSTER_YAML = `name: rootless
datacenter: rootless
domain: consul
network:
  cidr: 10.233.0.0/24
  gateway: 10.233.0.1
  dns: [10.233.0.1]
  addressing: dhcp
nodes:
  - { name: core1, role: server, board: amd64, mac: "52:54:00:e9:00:11", address: 10.233.0.11 }
  - { name: core2, role: server, board: amd64, mac: "52:54:00:e9:00:12", address: 10.233.0.12 }
  - { name: core3, role: server, board: amd64, mac: "52:54:00:e9:00:13", address: 10.233.0.13 }
  - { name: monitor, role: monitor, board: amd64, mac: "52:54:00:e9:00:20", address: 10.233.0.20 }
${HOST_COMPONENTS_YAML}
ssh:
  authorized_keys: []
`;

let work: string;
let app: string;
let uid: number;
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe' }).toString();
const ENV = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', SOURCE_DATE_EPOCH: '1704067200' };

before(async () => {
  assert.equal(process.getuid?.(), 0, 'this test runs piinit as another user (CI runs as root)');
  const id = spawnSync('id', ['-u', USER], { encoding: 'utf8' });
  assert.equal(id.status, 0, `no user ${USER}: scripts/setup-test-host.sh makes it`);
  uid = Number(id.stdout.trim());
  work = await mkdtemp('/tmp/piinit-rootless-');
  await chmod(work, 0o755);
  // piinit as the user runs from a copy it can read (the checkout may be under a private home).
  app = join(work, 'app');
  for (const p of ['bin', 'src', 'test', 'node_modules', 'package.json', 'tsconfig.json']) await cp(p, join(app, p), { recursive: true, verbatimSymlinks: true });
});
after(() => rm(work, { recursive: true, force: true }));

/** piinit as the user, from the copy; HOME is a directory of the user's. */
function asUser(args: string[], home: string) {
  return spawnSync('runuser', ['-m', '-u', USER, '--', process.execPath, join(app, 'bin/piinit.js'), ...args], {
    cwd: home,
    encoding: 'utf8',
    env: { ...ENV, HOME: home },
    timeout: 40 * 60_000,
    maxBuffer: 1 << 26,
  });
}

const chownTree = (path: string, owner: number) => sh('chown', ['-R', `${owner}:${owner}`, path]);

test('without subordinate IDs, piinit image as an ordinary user says what it needs', async () => {
  const r = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, join(app, 'bin/piinit.js'), 'image', 'cluster.yaml'], { cwd: '/', encoding: 'utf8', env: ENV });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /piinit image needs root, or for a rootless build 65536 subordinate user and group IDs for nobody in \/etc\/subuid and \/etc\/subgid: install the uidmap package .*usermod --add-subuids/);
  assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/);
});

test('piinit image as an ordinary user (user namespace): the same file system contents as the root build, /dev nodes too; the files are the user\'s', { timeout: 60 * 60_000 }, async () => {
  const home = join(work, 'home');
  await mkdir(home);
  const clusterPath = join(home, 'cluster.yaml');
  await writeFile(clusterPath, CLUSTER_YAML);
  await ensureSecretsFile(clusterPath);
  const { cluster } = await loadCluster(clusterPath);
  const releases = join(work, 'releases');
  await seedHostAmd64(releases, cluster.components);
  const debDir = join(home, 'debs');
  const piinit = (args: string[]) => spawnSync(process.execPath, ['bin/piinit.js', ...args], { encoding: 'utf8', env: ENV, timeout: 40 * 60_000, maxBuffer: 1 << 26 });
  const packages = piinit(['packages', clusterPath, '--arch', 'amd64', '--cache', releases, '--out', debDir, '--compression', 'gzip']);
  assert.equal(packages.status, 0, packages.stderr);

  // As root, with the test cache's bases (through a symlink, as the secrets test does).
  const rootCache = join(work, 'root-cache');
  await mkdir(rootCache);
  const shared = process.env.PIINIT_IMAGE_TEST_CACHE ?? join(testCacheDir(), 'images');
  await mkdir(shared, { recursive: true });
  await symlink(shared, join(rootCache, 'images'));
  const imageArgs = (cache: string, out: string) => ['image', clusterPath, '--board', 'amd64', '--role', 'server', '--debs', debDir, '--cache', cache, '--out', out, '--no-xz', '--json'];
  const asRoot = piinit(imageArgs(rootCache, join(work, 'root-out')));
  assert.equal(asRoot.status, 0, asRoot.stderr);

  // As the user, with a cache of its own: the base is built in the user namespace. Only
  // the downloaded .debs are copied in, to spare the mirror.
  const userCache = join(home, 'cache');
  await mkdir(join(userCache, 'images', 'debs'), { recursive: true });
  await cp(join(shared, 'debs', 'amd64'), join(userCache, 'images', 'debs', 'amd64'), { recursive: true });
  chownTree(home, uid);
  const userOut = join(home, 'out');
  const asU = asUser(imageArgs(userCache, userOut), home);
  assert.equal(asU.status, 0, asU.stderr);

  type Result = { name: string; contentHash: string; baseKey: string; baseCached: boolean; files: { raw: string; bmap: string; sha256: string; manifest: string } };
  const [r] = JSON.parse(asRoot.stdout) as Result[];
  const [u] = JSON.parse(asU.stdout) as Result[];
  assert.ok(r && u);
  assert.equal(u.baseKey, r.baseKey, 'the same base inputs');
  assert.equal(u.baseCached, false, 'the user built its base (in the user namespace)');
  assert.equal(u.contentHash, r.contentHash, 'the same root, boot and data file system contents');
  const manifest = (p: string) => (JSON.parse(readFileSync(p, 'utf8')) as { packages: unknown[] }).packages;
  assert.deepEqual(manifest(u.files.manifest), manifest(r.files.manifest));

  // Everything the user's build wrote is the user's (the base's tree aside: the image's
  // owners, mapped to the user's subordinate IDs).
  for (const f of [u.files.raw, u.files.bmap, u.files.sha256, u.files.manifest]) assert.equal(statSync(f).uid, uid, f);
  for (const f of await readdir(join(userCache, 'images', 'base'))) {
    if (f.endsWith('.tar')) assert.equal(statSync(join(userCache, 'images', 'base', f)).uid, uid, f);
  }

  // The root file systems' device nodes, as ext4 holds them: the same in both images (type,
  // mode, owner, mtime and device number: what contentHash covers; mke2fs -d copies atime
  // and ctime from the build tree, which says when it was unpacked), and the user's file
  // system checks clean.
  const rootPart = (img: string) => {
    const pt = JSON.parse(sh('sfdisk', ['--json', img])) as { partitiontable: { partitions: { start: number }[] } };
    return `${img}?offset=${pt.partitiontable.partitions[1]!.start * 512}`;
  };
  const devStats = (img: string) =>
    DEV_NODES.map((d) =>
      sh('debugfs', ['-R', `stat /dev/${d.name}`, rootPart(img)])
        .split('\n')
        .filter((l) => /^(Inode:|User:|Device major| mtime:)/.test(l))
        .map((l) => l.replace(/^Inode: \d+\s+/, '').replace(/Flags: .*/, ''))
        .join('\n'),
    );
  const mine = devStats(u.files.raw);
  assert.deepEqual(mine, devStats(r.files.raw));
  assert.match(mine[DEV_NODES.findIndex((d) => d.name === 'null')]!, /Type: character special\s+Mode:\s+0666[\s\S]*User:\s+0\s+Group:\s+0[\s\S]*Device major\/minor number: 01:03/);
  sh('e2fsck', ['-fn', rootPart(u.files.raw)]);
});

test('arm64 (qemu-user in the user namespace): the Pi image built rootless has the contents of the root build', { timeout: 60 * 60_000 }, async () => {
  // The library build, as the CLI's re-run does it (the amd64 test above goes through the
  // CLI): buildImage as root of a user namespace of the user's, with the boot tests' probe
  // package, against the same build as root with the test cache's base.
  const dir = join(work, 'arm64');
  await mkdir(dir);
  const script = join(app, 'rootless-arm64.mts');
  await writeFile(
    script,
    `import { buildImage } from './src/image/build.ts';
import { buildProbeDeb } from './test/e2e/image/fixture-deb.ts';
const [dir, cacheDir] = process.argv.slice(2);
const deb = await buildProbeDeb(dir, 'arm64');
const r = await buildImage({ cluster: 'rootless', board: 'pi4', role: 'server', debs: [deb] }, { cacheDir, outDir: dir + '/out', xz: false });
console.log(JSON.stringify({ contentHash: r.contentHash, baseKey: r.baseKey, baseCached: r.baseCached, raw: r.files.raw }));
`,
  );
  const shared = process.env.PIINIT_IMAGE_TEST_CACHE ?? join(testCacheDir(), 'images');
  const userCache = join(dir, 'cache');
  await mkdir(join(userCache, 'debs'), { recursive: true });
  await cp(join(shared, 'debs', 'arm64'), join(userCache, 'debs', 'arm64'), { recursive: true });
  chownTree(dir, uid);
  const run = (args: string[]) => spawnSync(args[0]!, args.slice(1), { cwd: app, encoding: 'utf8', env: { ...ENV, HOME: dir }, timeout: 40 * 60_000, maxBuffer: 1 << 26 });
  const tsx = [process.execPath, '--import', 'tsx', script];
  const asU = run(['runuser', '-m', '-u', USER, '--', ...rootlessCommand([...tsx, dir, userCache])]);
  assert.equal(asU.status, 0, asU.stderr);
  await mkdir(join(work, 'arm64-root'));
  const asRoot = run([...tsx, join(work, 'arm64-root'), shared]);
  assert.equal(asRoot.status, 0, asRoot.stderr);
  const u = JSON.parse(asU.stdout) as { contentHash: string; baseKey: string; baseCached: boolean; raw: string };
  const r = JSON.parse(asRoot.stdout) as typeof u;
  assert.equal(u.baseKey, r.baseKey);
  assert.equal(u.baseCached, false, 'the base was built in the user namespace, arm64 under qemu-user');
  assert.equal(u.contentHash, r.contentHash, 'the same root, boot and data file system contents');
  assert.equal(statSync(u.raw).uid, uid);
});

