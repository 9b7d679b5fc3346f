// piinit image as an ordinary user: the build runs again in a user namespace with the
// user's subordinate IDs (src/image/rootless.ts), where nothing is privileged on the host.
// The image must hold the same file system contents as the root build of the same inputs
// (contentHash), device nodes included (debugfs writes them: devnodes.ts), and its files
// belong to the user: the amd64 server image through the CLI, which then boots, and the
// arm64 Pi image with its base built under qemu-user in the namespace (equal contents stand
// in for booting that one: boot.test.ts boots the root build). `--format oci` gives the
// root build's layer. The user, piinit-rootless, is made by scripts/setup-test-host.sh.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadCluster } from '../../../src/cluster/load.ts';
import { ensureSecretsFile } from '../../../src/cluster/secrets.ts';
import { DEV_NODES } from '../../../src/image/devnodes.ts';
import { BOOT_MARKER } from '../../../src/image/system.ts';
import { rootlessCommand } from '../../../src/image/rootless.ts';
import { testCacheDir } from '../../helpers/debian-root.ts';
import { HOST_COMPONENTS_YAML, seedHostAmd64 } from '../../integration/deb/seed-cache.ts';
import { startVm } from './vm.ts';

const USER = 'piinit-rootless';
/** The test cache's bases and downloaded .debs (shared with the other image tests). */
const SHARED = process.env.PIINIT_IMAGE_TEST_CACHE ?? join(testCacheDir(), 'images');

/** The shared cache's downloaded Debian packages, which the boot tests fill: copied to save
 *  the downloads, and missing when this file runs alone (the build then downloads them). */
const seedDebs = (arch: string, to: string) =>
  cp(join(SHARED, 'debs', arch), to, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
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
// With umask 002, as many distributions give users (their own group): the image must not
// take its modes from it.
function asUser(args: string[], home: string) {
  return spawnSync('runuser', ['-m', '-u', USER, '--', 'sh', '-c', 'umask 002 && exec "$0" "$@"', process.execPath, join(app, 'bin/piinit.js'), ...args], {
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

/** What the amd64 tests share, made once: the cluster and its .debs in a home of the user's,
 *  and two caches with the cluster's releases: root's, whose bases are the test cache's
 *  (through a symlink, as the secrets test does), and the user's, whose bases it builds
 *  itself (only the downloaded Debian .debs are copied in, to spare the mirror). */
interface Amd64Inputs { home: string; clusterPath: string; debDir: string; rootCache: string; userCache: string }
let amd64: Promise<Amd64Inputs> | undefined;
function amd64Inputs(): Promise<Amd64Inputs> {
  amd64 ??= (async () => {
    const home = join(work, 'home');
    await mkdir(home);
    const clusterPath = join(home, 'cluster.yaml');
    await writeFile(clusterPath, CLUSTER_YAML);
    await ensureSecretsFile(clusterPath);
    const { cluster } = await loadCluster(clusterPath);
    const rootCache = join(work, 'root-cache');
    const userCache = join(home, 'cache');
    for (const c of [rootCache, userCache]) await seedHostAmd64(c, cluster.components);
    const debDir = join(home, 'debs');
    const packages = asRoot(['packages', clusterPath, '--arch', 'amd64', '--cache', rootCache, '--out', debDir, '--compression', 'gzip']);
    assert.equal(packages.status, 0, packages.stderr);
    await mkdir(SHARED, { recursive: true });
    await symlink(SHARED, join(rootCache, 'images'));
    await mkdir(join(userCache, 'images', 'debs'), { recursive: true });
    await seedDebs('amd64', join(userCache, 'images', 'debs', 'amd64'));
    chownTree(home, uid);
    return { home, clusterPath, debDir, rootCache, userCache };
  })();
  return amd64;
}

const asRoot = (args: string[]) => spawnSync(process.execPath, ['bin/piinit.js', ...args], { encoding: 'utf8', env: ENV, timeout: 40 * 60_000, maxBuffer: 1 << 26 });

const MARKER_RE = new RegExp(`${BOOT_MARKER} ([^\n]*)\n`);
const fields = (line: string) => Object.fromEntries(line.trim().split(/\s+/).map((kv) => kv.split('=', 2) as [string, string]));

test('piinit image as an ordinary user (user namespace): the same file system contents as the root build, /dev nodes too; the files are the user\'s; it boots', { timeout: 60 * 60_000 }, async () => {
  const { home, clusterPath, debDir, rootCache, userCache } = await amd64Inputs();
  const imageArgs = (cache: string, out: string) => ['image', clusterPath, '--board', 'amd64', '--role', 'server', '--debs', debDir, '--cache', cache, '--out', out, '--no-xz', '--json'];
  // --refresh-base: root's cached base may predate the user's by Debian updates (a new
  // kernel, say), which would differ in the contents for that reason alone.
  const byRoot = asRoot([...imageArgs(rootCache, join(work, 'root-out')), '--refresh-base']);
  assert.equal(byRoot.status, 0, byRoot.stderr);
  const userOut = join(home, 'out');
  const byUser = asUser(imageArgs(userCache, userOut), home);
  assert.equal(byUser.status, 0, byUser.stderr);

  type Result = { name: string; contentHash: string; baseKey: string; baseCached: boolean; files: { raw: string; bmap: string; sha256: string; manifest: string } };
  const [r] = JSON.parse(byRoot.stdout) as Result[];
  const [u] = JSON.parse(byUser.stdout) as Result[];
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

  // And it boots (no network): the disk as the user's build assembled it, nodes and all, on a
  // card bigger than the image, read-only root, data partition grown.
  const vmDir = join(work, 'vm');
  await mkdir(vmDir);
  const disk = join(vmDir, 'disk.img');
  sh('cp', ['--sparse=always', u.files.raw, disk]);
  await truncate(disk, statSync(disk).size + 512 * 1024 * 1024);
  const vm = await startVm({ arch: 'amd64', image: disk, workDir: vmDir, cpuModel: 'max' });
  try {
    const report = fields((await vm.waitFor(MARKER_RE, 10 * 60_000))[1]!);
    assert.equal(report['ro-root'], 'yes', vm.tail());
    assert.equal(report.data, 'yes', vm.tail());
    assert.ok(Number(report['data-bytes']) > 400 * 1024 * 1024, `data partition not grown: ${report['data-bytes']}`);
    assert.doesNotMatch(vm.console, /Failed to mount|emergency mode/i);
  } finally {
    await vm.kill();
  }
});

test('piinit image --format oci as an ordinary user: the same layer and image as the root build, no device nodes in it', { timeout: 40 * 60_000 }, async () => {
  const { home, clusterPath, rootCache, userCache } = await amd64Inputs();
  const ociArgs = (cache: string, out: string) => ['image', clusterPath, '--format', 'oci', '--role', 'server', '--cache', cache, '--out', out, '--json'];
  const byUser = asUser(ociArgs(userCache, join(home, 'oci')), home);
  assert.equal(byUser.status, 0, byUser.stderr);
  const byRoot = asRoot([...ociArgs(rootCache, join(work, 'root-oci')), '--refresh-base']); // as in the test above
  assert.equal(byRoot.status, 0, byRoot.stderr);
  type Oci = { images: { tag: string; archive: string; imageId: string; layerDigest: string }[] };
  const [r] = (JSON.parse(byRoot.stdout) as Oci).images;
  const [u] = (JSON.parse(byUser.stdout) as Oci).images;
  assert.ok(r && u);
  assert.equal(u.layerDigest, r.layerDigest, 'the same layer, byte for byte');
  assert.equal(u.imageId, r.imageId);
  assert.equal(u.tag, r.tag);
  assert.equal(statSync(u.archive).uid, uid);
  const layer = execFileSync('tar', ['-xOf', u.archive, `blobs/sha256/${u.layerDigest}`], { maxBuffer: 1 << 30 });
  const listing = execFileSync('tar', ['-tv'], { input: layer, maxBuffer: 1 << 28 }).toString().split('\n');
  assert.ok(listing.some((l) => / \.\/dev\/$/.test(l)), 'the layer has /dev');
  assert.deepEqual(listing.filter((l) => /^[cb]/.test(l)), [], 'no device nodes in the layer');
});

/** Processes of the user or of its subordinate IDs (pid and command line), from /proc. */
async function userProcesses(): Promise<string[]> {
  const ranges = readFileSync('/etc/subuid', 'utf8').split('\n').map((l) => l.split(':')).filter((f) => f[0] === USER || f[0] === String(uid)).map((f) => [Number(f[1]), Number(f[1]) + Number(f[2])] as const);
  const ours = (id: number) => id === uid || ranges.some(([from, to]) => id >= from && id < to);
  const out: string[] = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const status = await readFile(`/proc/${d}/status`, 'utf8').catch(() => '');
    if (!ours(Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]))) continue;
    out.push(`${d} ${(await readFile(`/proc/${d}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ')}`);
  }
  return out;
}

test('Ctrl-C in a rootless build: the interruption reported, nothing of the build left running or behind', { timeout: 20 * 60_000 }, async () => {
  const { home, clusterPath, debDir } = await amd64Inputs();
  const cache = join(home, 'cache-interrupt'); // a base of its own, so that one is being built
  await mkdir(join(cache, 'images', 'debs'), { recursive: true });
  await seedDebs('amd64', join(cache, 'images', 'debs', 'amd64'));
  chownTree(cache, uid);
  // setpriv, not runuser: runuser's parent answers SIGINT by sending its child SIGTERM. Like
  // a shell, the test starts piinit in a process group of its own and signals the group.
  const child = spawn('setpriv', ['--reuid', USER, '--regid', USER, '--init-groups', '--', process.execPath, join(app, 'bin/piinit.js'), 'image', clusterPath, '--board', 'amd64', '--role', 'server', '--debs', debDir, '--cache', cache, '--out', join(home, 'out-interrupt'), '--no-xz'], {
    cwd: home,
    env: { ...ENV, HOME: home },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    // Bounded: 600 polls of 200 ms for mmdebstrap, run in the user namespace as the user.
    let building = false;
    for (let i = 0; i < 600 && !building; i++) {
      building = (await userProcesses()).some((p) => / \/usr\/bin\/mmdebstrap /.test(p));
      if (!building) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(building, `mmdebstrap never ran:\n${stderr}`);
    process.kill(-child.pid!, 'SIGINT');
    assert.equal(await exited, 130, stderr);
  } finally {
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
  }
  assert.match(stderr, /piinit: SIGINT: stopping after the current step/);
  assert.match(stderr, /rootless-amd64-server: interrupted during base; the build's work directory was removed/);
  assert.deepEqual(await userProcesses(), [], 'nothing of the build is still running');
  assert.deepEqual(await readdir(join(cache, 'images', 'base')).catch(() => []), [], 'no partial base, no build directory');
  assert.deepEqual(await readdir(join(cache, 'images', 'work')).catch(() => []), [], 'no work directory');
});

test('in the user namespace, the cache\'s work names carry host PIDs: a killed build\'s work is swept, a running one\'s kept', async () => {
  const dir = join(work, 'orphans');
  await mkdir(dir);
  const dead = spawnSync('true').pid!; // exited and reaped by now
  const running = `.build-${process.pid}-running`; // this test: alive, outside the namespace
  for (const n of [`.build-${dead}-killed`, running]) await mkdir(join(dir, n));
  chownTree(dir, uid);
  const script = join(app, 'rootless-orphans.mts');
  await writeFile(
    script,
    `import { readFileSync } from 'node:fs';
import { buildDirPrefix, removeOrphans } from './src/image/orphans.ts';
const removed = await removeOrphans(process.argv[2]);
const nspid = /^NSpid:\\s+(.*)$/m.exec(readFileSync('/proc/self/status', 'utf8'))[1].split(/\\s+/).map(Number);
console.log(JSON.stringify({ pid: process.pid, nspid, prefix: buildDirPrefix(), removed }));
`,
  );
  const r = spawnSync('runuser', ['-m', '-u', USER, '--', ...rootlessCommand([process.execPath, '--import', 'tsx', script, dir])], { cwd: app, encoding: 'utf8', env: { ...ENV, HOME: dir } });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { pid: number; nspid: number[]; prefix: string; removed: string[] };
  assert.equal(out.pid, 1, 'PID 1 of its own PID namespace');
  assert.deepEqual(out.nspid.slice(1), [1]);
  assert.equal(out.prefix, `.build-${out.nspid[0]}-`, 'a build directory would carry the host PID');
  assert.deepEqual(out.removed, [`.build-${dead}-killed`]);
  assert.deepEqual(await readdir(dir), [running]);
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
const [dir, cacheDir, refresh] = process.argv.slice(2);
const deb = await buildProbeDeb(dir, 'arm64');
const r = await buildImage({ cluster: 'rootless', board: 'pi4', role: 'server', debs: [deb] }, { cacheDir, outDir: dir + '/out', xz: false, refreshBase: refresh === 'refresh' });
console.log(JSON.stringify({ contentHash: r.contentHash, baseKey: r.baseKey, baseCached: r.baseCached, raw: r.files.raw }));
`,
  );
  const userCache = join(dir, 'cache');
  await mkdir(join(userCache, 'debs'), { recursive: true });
  await seedDebs('arm64', join(userCache, 'debs', 'arm64'));
  chownTree(dir, uid);
  const run = (args: string[]) => spawnSync(args[0]!, args.slice(1), { cwd: app, encoding: 'utf8', env: { ...ENV, HOME: dir }, timeout: 40 * 60_000, maxBuffer: 1 << 26 });
  const tsx = [process.execPath, '--import', 'tsx', script];
  const byUser = run(['runuser', '-m', '-u', USER, '--', ...rootlessCommand([...tsx, dir, userCache])]);
  assert.equal(byUser.status, 0, byUser.stderr);
  await mkdir(join(work, 'arm64-root'));
  const byRoot = run([...tsx, join(work, 'arm64-root'), SHARED, 'refresh']); // the amd64 test's --refresh-base
  assert.equal(byRoot.status, 0, byRoot.stderr);
  const u = JSON.parse(byUser.stdout) as { contentHash: string; baseKey: string; baseCached: boolean; raw: string };
  const r = JSON.parse(byRoot.stdout) as typeof u;
  assert.equal(u.baseKey, r.baseKey);
  assert.equal(u.baseCached, false, 'the base was built in the user namespace, arm64 under qemu-user');
  assert.equal(u.contentHash, r.contentHash, 'the same root, boot and data file system contents');
  assert.equal(statSync(u.raw).uid, uid);
});

