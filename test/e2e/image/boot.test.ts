// Boots the images piinit builds, under software emulation (no KVM here): the amd64 image
// from its own EFI partition in qemu-system-x86_64, the arm64 Pi image on `-M virt`, the
// armhf Pi 2 image on qemu-system-arm's `-M virt` and the armel Pi Zero/1 image on `-M raspi0`
// (a Pi Zero) with the kernel, initrd, command line (and for raspi0 the device tree) from
// its FAT partition. Each must reach multi-user with a read-only root and the data partition
// mounted and grown; a hard power-off (kill -9) must leave the next boot clean with the data
// and the machine identity intact.
//
// The base root file systems are cached in $PIINIT_IMAGE_TEST_CACHE, by default the test
// cache's images/ (shared with the Docker test and kept between runs).
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { refreshOnce, SUITE, type RefreshBase } from '../../../src/image/base.ts';
import { buildImage, imageSources, type ImageResult } from '../../../src/image/build.ts';
import { BOOT_MARKER } from '../../../src/image/system.ts';
import { hostMirrors, resolveMirrors } from '../../../src/image/mirror.ts';
import { buildProbeDeb, PROBE_MARKER } from './fixture-deb.ts';
import { extractBootFile, listBootFiles, startVm, type Vm, type VmOptions } from './vm.ts';
import { budget } from '../../helpers/budget.ts';
import { testCacheDir } from '../../helpers/debian-root.ts';

let work: string;
let cache: string;
const vms: Vm[] = [];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'piinit-boot-'));
  cache = process.env.PIINIT_IMAGE_TEST_CACHE ?? join(testCacheDir(), 'images');
  await mkdir(cache, { recursive: true });
});

after(async () => {
  for (const vm of vms) await vm.kill();
  await rm(work, { recursive: true, force: true });
});

// Whole lines only: the console arrives in chunks, and a line cut in two must not match.
const MARKER_RE = new RegExp(`${BOOT_MARKER} ([^\n]*)\n`);
const PROBE_RE = new RegExp(`${PROBE_MARKER} ([^\n]*)\n`);

function fields(line: string): Record<string, string> {
  return Object.fromEntries(line.trim().split(/\s+/).map((kv) => kv.split('=', 2) as [string, string]));
}

async function build(
  board: 'amd64' | 'pi4' | 'pi2' | 'pi-zero',
  arch: string,
  o: { out?: string; refreshBase?: RefreshBase; sources?: string[]; signal?: AbortSignal; onStep?: (step: string) => void } = {},
): Promise<ImageResult> {
  const deb = await buildProbeDeb(work, arch);
  const { out = `out-${board}`, refreshBase = false, sources, signal, onStep } = o;
  return buildImage({ cluster: 'boottest', board, role: 'server', debs: [deb] }, { cacheDir: cache, outDir: join(work, out), xz: false, refreshBase, sources, signal, onStep });
}

// The host's apt state, which building a base must leave alone: mmdebstrap's clean-up runs
// `apt-get update` (no sources) and `apt-get clean`, and once acted on the host's apt
// instead of the new root's, because a hook had deleted its APT_CONFIG file.
const HOST_LISTS = '/var/lib/apt/lists';
const HOST_SENTINEL = '/var/cache/apt/archives/piinit-test-sentinel_0_all.deb';
const hostLists = async () => (await readdir(HOST_LISTS)).filter((n) => !['lock', 'partial', 'auxfiles'].includes(n)).sort();

/** What a Pi's firmware reads first. qemu is handed the kernel and initrd directly and would
 *  not notice a config.txt that names files the FAT partition does not have. */
async function checkPiConfig(raw: string, arch: 'arm64' | 'armhf' | 'armel'): Promise<void> {
  const files = await listBootFiles(raw);
  const dir = await mkdtemp(join(work, 'config-'));
  await extractBootFile(raw, 'config.txt', join(dir, 'config.txt'));
  const cfg = await readFile(join(dir, 'config.txt'), 'utf8');
  const kernel = /^kernel=(\S+)\s*$/m.exec(cfg)?.[1];
  const initramfs = /^initramfs (\S+)/m.exec(cfg)?.[1];
  assert.ok(kernel && files.includes(kernel), `config.txt names kernel ${kernel}, the FAT partition has ${files.join(' ')}`);
  assert.ok(initramfs && files.includes(initramfs), `config.txt names initramfs ${initramfs}, the FAT partition has ${files.join(' ')}`);
  assert.match(cfg, /^enable_uart=1\s*$/m, 'the serial console the cmdline names');
  assert.equal(/^arm_64bit=1\s*$/m.test(cfg), arch === 'arm64', `arm_64bit in:\n${cfg}`);
}

async function manifestNames(r: ImageResult): Promise<string[]> {
  return (JSON.parse(await readFile(r.files.manifest, 'utf8')) as { packages: { name: string }[] }).packages.map((p) => p.name);
}

/** Boots the image and waits for its probe's and boot marker's lines, each wait bounded by
 *  timeoutMs and by what is left of the test's budget (`within`). */
async function bootOnce(arch: VmOptions['arch'], image: string, timeoutMs: number, within: (ms: number) => number): Promise<{ vm: Vm; report: Record<string, string>; probe: Record<string, string> }> {
  const vmDir = await mkdtemp(join(work, 'vm-'));
  const vm = await startVm({ arch, image, workDir: vmDir });
  vms.push(vm);
  const probe = fields((await vm.waitFor(PROBE_RE, within(timeoutMs)))[1]!);
  const report = fields((await vm.waitFor(MARKER_RE, within(timeoutMs)))[1]!);
  return { vm, report, probe };
}

async function bootTwiceWithPowerCut(arch: VmOptions['arch'], raw: string, timeoutMs: number, within: (ms: number) => number) {
  // A card bigger than the image: the first boot grows the data partition into the space.
  // qemu's Pi takes only SD cards whose size is a power of two.
  const image = join(work, `${arch}-disk.img`);
  await copyFile(raw, image);
  const rawSize = (await stat(raw)).size;
  const card = rawSize + 512 * 1024 * 1024;
  await truncate(image, arch === 'armel' ? 2 ** Math.ceil(Math.log2(card)) : card);

  const first = await bootOnce(arch, image, timeoutMs, within);
  assert.equal(first.report['ro-root'], 'yes', first.vm.tail());
  assert.equal(first.report.data, 'yes', first.vm.tail());
  assert.ok(Number(first.report['data-bytes']) > 400 * 1024 * 1024, `data partition not grown: ${first.report['data-bytes']}`);
  assert.equal(first.probe.seed, 'seeded', 'the package content under /opt/consul reached the data partition');
  assert.equal(first.probe['root-write'], 'ro');
  assert.equal(first.probe['data-write'], 'yes');
  // Hard power-off right after a write to the data partition.
  await first.vm.kill();

  const second = await bootOnce(arch, image, timeoutMs, within);
  assert.equal(second.report.data, 'yes', second.vm.tail());
  assert.equal(second.report['ro-root'], 'yes');
  assert.equal(second.probe.seed, 'seeded');
  assert.equal(second.probe.boots, '1', 'the write from the first boot survived the power cut');
  assert.equal(second.report['machine-id'], first.report['machine-id'], 'machine identity persists on the data partition');
  assert.doesNotMatch(second.vm.console, /Failed to mount|emergency mode|FAILED.*(data|opt-consul)/i);
  await second.vm.kill();
}

// Each build, then two boots; a slow run fails in its slowest wait, with the console (budget.ts).
const AMD64_TIMEOUT = 45 * 60_000;
const PI_TIMEOUT = 60 * 60_000;

test('amd64 image boots from its EFI partition, read-only root, data partition grown and persistent', { timeout: AMD64_TIMEOUT }, async () => {
  const within = budget(AMD64_TIMEOUT);
  // A fresh base (mmdebstrap runs even when one is cached) with the host's apt state watched.
  const listsBefore = await hostLists();
  await writeFile(HOST_SENTINEL, '');
  const refresh = refreshOnce(); // as the CLI's --refresh-base, which the second build shares
  let r: ImageResult;
  try {
    r = await build('amd64', 'amd64', { refreshBase: refresh });
    assert.equal(r.baseCached, false);
    assert.deepEqual(await hostLists(), listsBefore, "the host's apt lists are as they were");
    await stat(HOST_SENTINEL); // still in the host's package cache (apt-get clean would remove it)
  } finally {
    await rm(HOST_SENTINEL, { force: true });
  }
  assert.ok(r.sizes.usedBytes < r.sizes.rawBytes);
  // The same inputs again: the base comes from the cache (already refreshed in this run) and
  // the file systems' contents (paths, modes, owners, mtimes, bytes) are identical.
  const again = await build('amd64', 'amd64', { out: 'out-amd64-again', refreshBase: refresh });
  assert.equal(again.baseCached, true);
  assert.equal(again.baseKey, r.baseKey);
  assert.equal(again.contentHash, r.contentHash);
  // Stopped after its disk is assembled (Ctrl-C): the last build's outputs stay as they were,
  // the image beside its checksum, and no partial image is left.
  const againDir = join(work, 'out-amd64-again');
  const { ino } = await stat(again.files.raw);
  const stop = new AbortController();
  const onStep = (s: string) => s === 'disk' && stop.abort();
  await assert.rejects(build('amd64', 'amd64', { out: 'out-amd64-again', signal: stop.signal, onStep }), /interrupted before outputs/);
  assert.equal((await stat(again.files.raw)).ino, ino, 'the last image is not replaced');
  execFileSync('sha256sum', ['-c', again.files.sha256], { cwd: againDir });
  assert.deepEqual((await readdir(againDir)).filter((f) => /partial|tmp/.test(f)), []);
  await rm(againDir, { recursive: true, force: true });
  await bootTwiceWithPowerCut('amd64', r.files.raw, 10 * 60_000, within);
});

test('arm64 Pi image boots on qemu virt with the kernel, initrd and cmdline from its FAT partition', { timeout: PI_TIMEOUT }, async () => {
  const within = budget(PI_TIMEOUT);
  const r = await build('pi4', 'arm64');
  // merged /usr as debootstrap makes it, without the usrmerge converter and the perl it needs.
  const names = await manifestNames(r);
  assert.ok(names.includes('usr-is-merged') && names.includes('linux-image-arm64'), names.join(' '));
  for (const absent of ['usrmerge', 'perl']) assert.ok(!names.includes(absent), `${absent} is in the image`);
  // dpkg unpacked the packages through the host's dpkg-deb (base.ts nativeDebHook): every
  // file is as packaged (the host's dpkg checks the image's md5sums), and nothing of the
  // host's is left in the base.
  const tree = join(cache, 'base', `${SUITE}-rpi-arm64-${r.baseKey}.root`);
  const changed = execFileSync('dpkg', [`--root=${tree}`, '--verify'], { encoding: 'utf8', maxBuffer: 1 << 26 })
    .split('\n')
    .filter((l) => l && !/ \/usr\/share\/(doc|man|locale|info)\//.test(l));
  assert.deepEqual(changed, [], 'files differ from their packages');
  for (const left of ['tmp/piinit-native', 'usr/local/sbin/dpkg-deb', 'etc/apt/apt.conf.d/00piinit-dpkg-path']) {
    assert.equal(existsSync(join(tree, left)), false, `${left} is left in the base`);
  }
  await checkPiConfig(r.files.raw, 'arm64');
  await bootTwiceWithPowerCut('arm64', r.files.raw, 12 * 60_000, within);
});

test('armel Pi Zero/1 image boots on qemu raspi0 (a Pi Zero) with the kernel, initrd, device tree and cmdline from its FAT partition', { timeout: PI_TIMEOUT }, async () => {
  const within = budget(PI_TIMEOUT);
  const r = await build('pi-zero', 'armel');
  const names = await manifestNames(r);
  assert.ok(names.includes('linux-image-rpi') && names.includes('raspi-firmware'), names.join(' '));
  await checkPiConfig(r.files.raw, 'armel');
  await bootTwiceWithPowerCut('armel', r.files.raw, 15 * 60_000, within);
});

test('armhf Pi 2 image boots on qemu virt (Cortex-A15) with the kernel, initrd and cmdline from its FAT partition', { timeout: PI_TIMEOUT }, async () => {
  const within = budget(PI_TIMEOUT);
  // Without bookworm-security: this machine's Debian mirror serves a stale armhf index there
  // (its Packages.xz does not match the InRelease), which apt rightly refuses. The test is
  // about the board's image booting; a user's build takes the host's sources, security too
  // (here that takes `piinit image --security-mirror none`, which these sources are).
  const r = await build('pi2', 'armhf', { sources: imageSources(resolveMirrors(await hostMirrors(), { securityMirror: 'none' })) });
  const names = await manifestNames(r);
  assert.ok(names.includes('linux-image-armmp') && names.includes('raspi-firmware'), names.join(' '));
  await checkPiConfig(r.files.raw, 'armhf');
  const dtbs = (await listBootFiles(r.files.raw)).filter((f) => f.endsWith('.dtb'));
  assert.ok(dtbs.includes('bcm2836-rpi-2-b.dtb'), `the Pi 2's device tree is on the FAT partition: ${dtbs.join(' ')}`);
  await bootTwiceWithPowerCut('armhf', r.files.raw, 12 * 60_000, within);
});
