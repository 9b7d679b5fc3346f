import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BOARD_INFO, BOARDS } from '../../../src/cluster/boards.ts';
import { baseKey, baseSpec, essentialHook, mmdebstrapArgs, refreshOnce, shellWord } from '../../../src/image/base.ts';
import { DEFAULT_SOURCE_DATE_EPOCH, imageEpoch } from '../../../src/image/build.ts';
import { derivedUuid, planDisk, sfdiskScript } from '../../../src/image/disk.ts';
import { UserError } from '../../../src/errors.ts';
import { pickMirrors, resolveMirrors, sourcesLines } from '../../../src/image/mirror.ts';
import { parsePackageList } from '../../../src/image/outputs.ts';
import { fstab, kernelCmdline, optionalPackages, PERSISTENT_PATHS, sshHostKeyTree, systemTree } from '../../../src/image/system.ts';
import { IMAGE_TARGETS, imageKindOf, imageName } from '../../../src/image/targets.ts';

const SOURCES = ['deb http://mirror.example/debian bookworm main non-free-firmware'];

test('every board an image boots has an image kind of its own arch; Pi 3/4 share one; the Pi 5 has none', () => {
  for (const b of BOARDS.filter((b) => !BOARD_INFO[b].noImage)) assert.ok(IMAGE_TARGETS[imageKindOf(b)].boards.includes(b));
  assert.equal(imageKindOf('pi3'), imageKindOf('pi4'));
  assert.throws(() => imageKindOf('pi5'), /no image kind for board pi5/);
  for (const t of Object.values(IMAGE_TARGETS)) for (const b of t.boards) assert.equal(BOARD_INFO[b].noImage, undefined, b);
  assert.equal(imageKindOf('pi-zero'), 'rpi-armel');
  assert.equal(imageKindOf('amd64'), 'amd64');
  assert.equal(imageName('homelab', 'rpi-arm64', 'server'), 'homelab-rpi-arm64-server');
});

test('base cache key changes with each input and not otherwise', () => {
  const a = baseSpec('rpi-arm64', SOURCES, [], 1704067200);
  assert.equal(baseKey(a), baseKey(baseSpec('rpi-arm64', SOURCES, [], 1704067200)));
  assert.notEqual(baseKey(a), baseKey(baseSpec('rpi-arm64', SOURCES, ['openssh-server'], 1704067200)));
  assert.notEqual(baseKey(a), baseKey(baseSpec('amd64', SOURCES, [], 1704067200)));
  assert.notEqual(baseKey(a), baseKey(baseSpec('rpi-arm64', [...SOURCES, 'deb http://x/ bookworm-updates main'], [], 1704067200)));
  assert.notEqual(baseKey(a), baseKey(baseSpec('rpi-arm64', SOURCES, [], 1704067201)));
  // Package order does not matter.
  assert.deepEqual(baseSpec('amd64', SOURCES, ['b', 'a'], 1).packages, baseSpec('amd64', SOURCES, ['a', 'b'], 1).packages);
});

test("mmdebstrap's hooks keep a cache path with spaces or quotes one word: its shellwords and sh agree", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "piinit cache 'x' "));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const script = join(dir, 'hook.sh');
  await writeFile(script, '#!/bin/sh\necho "ran with $1"\n', { mode: 0o755 });
  const args = mmdebstrapArgs(baseSpec('amd64', SOURCES, [], 1), { debCache: dir, ess: script, cust: script, native: null, out: join(dir, 'base.tar') });
  // sync-in's arguments: split by Text::ParseWords::shellwords, as mmdebstrap does.
  const syncIn = args.find((a) => a.startsWith('--setup-hook=sync-in '))!.slice('--setup-hook='.length);
  const words = execFileSync('perl', ['-MText::ParseWords', '-e', 'print join("\\0", shellwords($ARGV[0]))', syncIn], { encoding: 'utf8' });
  assert.deepEqual(words.split('\0'), ['sync-in', dir, '/var/cache/apt/archives/']);
  // A script hook: run by sh -c with the root as $1.
  const ess = args.find((a) => a.startsWith('--essential-hook='))!.slice('--essential-hook='.length);
  assert.equal(execFileSync('sh', ['-c', ess, 'sh', '/root dir'], { encoding: 'utf8' }), 'ran with /root dir\n');
  assert.equal(shellWord('/plain/path'), '/plain/path');
});

test("SOURCE_DATE_EPOCH for images: unset gives the fixed default; not whole seconds, or before FAT's 1980, is refused", () => {
  assert.equal(imageEpoch({}), DEFAULT_SOURCE_DATE_EPOCH);
  assert.equal(imageEpoch({ SOURCE_DATE_EPOCH: '' }), DEFAULT_SOURCE_DATE_EPOCH);
  assert.equal(imageEpoch({ SOURCE_DATE_EPOCH: '1735689600' }), 1735689600);
  for (const bad of ['0', '1.5', 'yesterday', '315532799']) {
    assert.throws(() => imageEpoch({ SOURCE_DATE_EPOCH: bad }), (e: Error) => e instanceof UserError && e.message.includes(`got "${bad}"`), bad);
  }
});

test('--refresh-base over several images: each base key is built again once, every refresher on its own', () => {
  const refresh = refreshOnce();
  assert.deepEqual(['k1', 'k2', 'k1', 'k2', 'k1'].map(refresh), [true, true, false, false, false]);
  assert.equal(refreshOnce()('k1'), true, 'another run refreshes again');
});

test('the initramfs hook asks for MODULES=list with the board modules', () => {
  const hook = essentialHook(baseSpec('rpi-arm64', SOURCES, [], 1));
  assert.match(hook, /MODULES=list/);
  assert.match(hook, /sdhci_iproc/);
  assert.match(hook, /virtio_blk/);
});

test("mirrors: the host apt's Debian archives by Release label, never a built-in host, nor another vendor's repository", () => {
  // apt-get indextargets --format '$(REPO_URI) $(LABEL)', in sources order: third-party
  // repositories for the same codename come first here, as they may on a user's machine.
  const out = [
    'https://apt.releases.hashicorp.com/ Hashicorp',
    'https://download.docker.com/linux/debian/ Docker CE',
    'http://deb.example/debian/ Debian Backports',
    'http://deb.example/debian/ Debian',
    'http://deb.example/debian/ Debian',
    'http://sec.example/debian-security/ Debian-Security',
    'http://deb.example/debian-debug/ Debian debug',
  ].join('\n');
  const host = pickMirrors(out);
  assert.deepEqual(host, { main: 'http://deb.example/debian', security: 'http://sec.example/debian-security' });
  const m = resolveMirrors(host);
  assert.deepEqual(m, host);
  assert.deepEqual(sourcesLines(m, 'bookworm', ['main', 'non-free-firmware']), [
    'deb http://deb.example/debian bookworm main non-free-firmware',
    'deb http://deb.example/debian bookworm-updates main non-free-firmware',
    'deb http://sec.example/debian-security bookworm-security main non-free-firmware',
  ]);
  // An Ubuntu host, or one whose lists were never downloaded: no Debian archive.
  assert.deepEqual(pickMirrors('http://archive.ubuntu.com/ubuntu/ Ubuntu\n'), { main: null, security: null });
  assert.throws(() => resolveMirrors({ main: null, security: null }), /no Debian archive.*--mirror/);
});

test('mirrors: --mirror and --security-mirror override the host; none drops security only when asked', () => {
  const host = { main: 'http://deb.example/debian', security: 'http://sec.example/debian-security' };
  assert.deepEqual(resolveMirrors(host, { mirror: 'http://local/debian/' }), { main: 'http://local/debian', security: host.security });
  assert.deepEqual(resolveMirrors({ main: null, security: null }, { mirror: 'file:///srv/debian', securityMirror: 'https://local/sec' }), {
    main: 'file:///srv/debian',
    security: 'https://local/sec',
  });
  assert.deepEqual(resolveMirrors(host, { securityMirror: 'none' }), { main: host.main, security: null });
  // No security archive on the host: an error that names both ways out, never a silent build without it.
  assert.throws(() => resolveMirrors({ main: host.main, security: null }), /no Debian security archive.*--security-mirror none/);
  assert.throws(() => resolveMirrors(host, { mirror: 'deb.debian.org/debian' }), /--mirror "deb\.debian\.org\/debian": expected an http/);
  assert.throws(() => resolveMirrors(host, { securityMirror: 'ftp://x/y' }), /--security-mirror "ftp:\/\/x\/y"/);
});

test('fstab: read-only root by label, data partition grown, state paths bound from /data', () => {
  const f = fstab(true);
  assert.match(f, /^LABEL=piroot \/ ext4 ro,/m);
  assert.match(f, /^LABEL=pidata \/data ext4 rw,noatime/m);
  for (const p of ['/opt/consul', '/opt/nomad', '/var/lib/prometheus', '/var/log']) {
    assert.ok((PERSISTENT_PATHS as readonly string[]).includes(p));
    assert.match(f, new RegExp(`^/data${p} ${p} none bind`, 'm'));
  }
});

test('kernel command line: root by label, ro, role extras appended once', () => {
  const c = kernelCmdline(['console=ttyAMA0,115200'], ['cgroup_enable=memory', 'cgroup_memory=1', 'cgroup_enable=memory']);
  assert.match(c, /root=LABEL=piroot/);
  assert.match(c, /(^| )ro( |$)/);
  assert.doesNotMatch(c, /(^| )rw( |$)/);
  assert.equal(c.split(' ').filter((a) => a === 'cgroup_enable=memory').length, 1);
});

test('the machine ID is bound from /data only after systemd-machine-id-commit has looked', () => {
  const u = systemTree({ bootMountable: true }).get('/etc/systemd/system/piinit-machine-id.service');
  const after = String(u && 'content' in u ? u.content : '').split('\n').filter((l) => l.startsWith('After=')).join(' ');
  assert.match(after, /\bsystemd-machine-id-commit\.service\b/);
  assert.match(after, /\blocal-fs\.target\b/);
});

test('journald is volatile; no SSH unless keys are given', () => {
  const t = systemTree({ bootMountable: true });
  const j = t.get('/etc/systemd/journald.conf.d/50-piinit.conf');
  assert.ok(j && 'content' in j && /Storage=volatile/.test(String(j.content)));
  assert.equal(sshHostKeyTree(false).size, 0);
  assert.deepEqual(optionalPackages({ ssh: false, wifi: false, raspi: true }), []);
  assert.ok(optionalPackages({ ssh: true, wifi: false, raspi: true }).includes('openssh-server'));
  const conf = sshHostKeyTree(true).get('/etc/ssh/sshd_config.d/50-piinit-hostkeys.conf');
  assert.ok(conf && 'content' in conf && /HostKey \/var\/lib\/piinit\/ssh\//.test(String(conf.content)));
  // Debian's ssh.service runs `sshd -t` first, which fails before the host key exists: the
  // drop-in empties ExecStartPre, makes the key, then checks.
  const dropIn = sshHostKeyTree(true).get('/etc/systemd/system/ssh.service.d/50-piinit-hostkeys.conf');
  const pre = String(dropIn && 'content' in dropIn ? dropIn.content : '').split('\n').filter((l) => l.startsWith('ExecStartPre='));
  assert.equal(pre.length, 3);
  assert.equal(pre[0], 'ExecStartPre=');
  assert.match(pre[1]!, /ssh-keygen .*-t ed25519 -f \/var\/lib\/piinit\/ssh\/ssh_host_ed25519_key/);
  assert.equal(pre[2], 'ExecStartPre=/usr/sbin/sshd -t');
});

test('disk plan: boot, root, data in order, MiB aligned, sfdisk script', () => {
  const l = planDisk(900 * 1024 * 1024, 60 * 1024 * 1024);
  assert.equal(l.boot.startMiB, 1);
  assert.equal(l.root.startMiB, l.boot.startMiB + l.boot.sizeMiB);
  assert.equal(l.data.startMiB, l.root.startMiB + l.root.sizeMiB);
  assert.ok(l.root.sizeMiB * 1024 * 1024 > 900 * 1024 * 1024);
  const s = sfdiskScript(l, 'deadbeef', 'ef');
  assert.match(s, /label: dos/);
  assert.match(s, /label-id: 0xdeadbeef/);
  assert.match(s, /start=2048, size=\d+, type=ef, bootable/);
  assert.equal(s.split('\n').filter((x) => x.startsWith('start=')).length, 3);
  // The data partition ships at its usual size unless what the role seeds there needs more.
  assert.equal(l.data.sizeMiB, 128);
  assert.equal(planDisk(900 * 1024 * 1024, 0, 10 * 1024 * 1024).data.sizeMiB, 128);
  assert.ok(planDisk(900 * 1024 * 1024, 0, 300 * 1024 * 1024).data.sizeMiB * 1024 * 1024 > 300 * 1024 * 1024 * 1.15);
});

test('derived UUIDs are stable, distinct per seed, RFC 4122 shaped', () => {
  assert.equal(derivedUuid('a'), derivedUuid('a'));
  assert.notEqual(derivedUuid('a'), derivedUuid('b'));
  assert.match(derivedUuid('a'), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test('package manifest parsing sorts and fills the source name', () => {
  const p = parsePackageList('zlib1g\t1:1.2.13\tarm64\tzlib\nbash\t5.2.15-2\tarm64\t\n');
  assert.deepEqual(p, [
    { name: 'bash', version: '5.2.15-2', arch: 'arm64', source: 'bash' },
    { name: 'zlib1g', version: '1:1.2.13', arch: 'arm64', source: 'zlib' },
  ]);
});
