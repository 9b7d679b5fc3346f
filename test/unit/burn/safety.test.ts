// The decisions that keep piinit from writing to the wrong disk, on lsblk outputs of real
// kinds of machines (test/fixtures/lsblk).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  assessAll,
  assessTarget,
  identityChange,
  parseMountinfo,
  parseSwaps,
  type SystemSnapshot,
  type Verdict,
} from '../../../src/burn/safety.ts';

function fixture(name: string): SystemSnapshot {
  const j = JSON.parse(readFileSync(join('test/fixtures/lsblk', name), 'utf8')) as {
    lsblk: SystemSnapshot['lsblk'];
    mountinfo: string;
    swaps: string;
    mmcTypes?: Record<string, string>;
  };
  return { lsblk: j.lsblk, mounts: parseMountinfo(j.mountinfo), swaps: parseSwaps(j.swaps), mmcTypes: j.mmcTypes };
}

const GiB = 1024 ** 3;
const image = { imageSize: 2 * GiB };

function refused(v: Verdict, pattern: RegExp): void {
  assert.equal(v.ok, false, `${v.path} should be refused`);
  assert.ok(
    v.reasons.some((r) => pattern.test(r)),
    `${v.path}: no reason matches ${pattern}: ${JSON.stringify(v.reasons)}`,
  );
}

test('parseMountinfo reads maj:min, mount point (unescaped) and source', () => {
  const m = parseMountinfo(
    '26 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n' +
      '90 26 8:49 / /media/user/MY\\040STICK rw,nosuid shared:5 - exfat /dev/sdd1 rw\n',
  );
  assert.deepEqual(m, [
    { majMin: '254:0', mountPoint: '/', source: '/dev/vda' },
    { majMin: '8:49', mountPoint: '/media/user/MY STICK', source: '/dev/sdd1' },
  ]);
});

test('a device whose number is not the one lsblk saw (another disk took its name in between) is refused', () => {
  const snap = fixture('laptop-nvme-luks-lvm-usb-reader.json');
  assert.equal(assessTarget('/dev/sdb', snap, image, '8:16').ok, true);
  refused(assessTarget('/dev/sdb', snap, image, '8:64'), /changed while it was being checked \(device 8:16, now 8:64\)/);
});

test('laptop: the USB reader with a card is the one candidate', () => {
  const snap = fixture('laptop-nvme-luks-lvm-usb-reader.json');
  const v = assessTarget('/dev/sdb', snap, image);
  assert.deepEqual(v.reasons, []);
  assert.equal(v.ok, true);
  assert.equal(v.device?.model, 'Generic- SD/MMC');
  assert.equal(v.device?.size, 31_914_983_424);
  assert.deepEqual(
    v.device?.partitions.map((p) => [p.path, p.fstype, p.label]),
    [
      ['/dev/sdb1', 'vfat', 'bootfs'],
      ['/dev/sdb2', 'ext4', 'rootfs'],
    ],
  );
  assert.deepEqual(
    assessAll(snap, image).filter((x) => x.ok).map((x) => x.path),
    ['/dev/sdb'],
  );
});

test('laptop: the NVMe system disk is refused through LUKS and LVM holders, also as not removable', () => {
  const snap = fixture('laptop-nvme-luks-lvm-usb-reader.json');
  const v = assessTarget('/dev/nvme0n1', snap, image);
  refused(v, /holds the running system: \/ is mounted from it \(\/dev\/mapper\/vg0-root, lvm/);
  refused(v, /in use as swap \(\/dev\/mapper\/vg0-swap/);
  refused(v, /is held by crypt \/dev\/mapper\/luks-3f2a/);
  refused(v, /mounted file system \(\/dev\/nvme0n1p1\) at \/boot\/efi/);
  refused(v, /not removable and not on a USB or SD bus \(transport nvme\)/);
});

test('laptop: a partition, an empty reader slot, a mounted stick and a dm volume are refused', () => {
  const snap = fixture('laptop-nvme-luks-lvm-usb-reader.json');
  refused(assessTarget('/dev/sdb1', snap, image), /is a partition of \/dev\/sdb: give the whole device \/dev\/sdb/);
  refused(assessTarget('/dev/sdc', snap, image), /no medium/);
  refused(assessTarget('/dev/sdd', snap, image), /mounted file system \(\/dev\/sdd1\) at \/media\/user\/STICK: unmount it first/);
  refused(assessTarget('/dev/mapper/vg0-root', snap, image), /lvm device/);
  refused(assessTarget('/dev/sdz', snap, image), /not a block device known to lsblk/);
});

test('a target smaller than the image is refused with both sizes', () => {
  const snap = fixture('laptop-nvme-luks-lvm-usb-reader.json');
  const v = assessTarget('/dev/sdb', snap, { imageSize: 64 * GiB });
  refused(v, /too small: 29\.7 GiB \(31914983424 bytes\) for an image of 64\.0 GiB/);
  assert.equal(v.reasons.length, 1);
});

test('built-in SD slot (mmcblk, not removable) is a candidate; eMMC and its boot areas are not', () => {
  const snap = fixture('laptop-mmc-slot-emmc-sata.json');
  assert.equal(assessTarget('/dev/mmcblk0', snap, image).ok, true);
  refused(assessTarget('/dev/mmcblk1', snap, image), /soldered-on eMMC/);
  refused(assessTarget('/dev/mmcblk1boot0', snap, image), /boot or RPMB area/);
  // Where sysfs does not say SD, an mmc disk could be the eMMC: refused, not guessed.
  const unknown = { ...snap, mmcTypes: {} };
  refused(assessTarget('/dev/mmcblk0', unknown, image), /cannot be told from a soldered-on eMMC chip \(\/sys\/block\/mmcblk0\/device\/type is unreadable, not SD\)/);
  const sda = assessTarget('/dev/sda', snap, image);
  refused(sda, /holds the running system/); // btrfs: found by source, maj:min is anonymous
  refused(sda, /transport sata/);
  assert.deepEqual(
    assessAll(snap, image).filter((x) => x.ok).map((x) => x.path),
    ['/dev/mmcblk0'],
  );
});

test('workstation: a RAID member is refused because the array on it is mounted; an automounted card too', () => {
  const snap = fixture('workstation-nvme-lvm-md-raid.json');
  refused(assessTarget('/dev/sdb', snap, image), /mounted file system \(\/dev\/md0, raid1 on this device\) at \/srv/);
  refused(assessTarget('/dev/sdb', snap, image), /is held by raid1 \/dev\/md0: deactivate it first/);
  refused(assessTarget('/dev/nvme0n1', snap, image), /holds the running system/);
  const card = assessTarget('/dev/sdc', snap, image);
  refused(card, /\(\/dev\/sdc1\) at \/media\/me\/bootfs: unmount it first/);
  assert.equal(card.reasons.length, 1);
  assert.deepEqual(assessAll(snap, image).filter((x) => x.ok), []);
});

test('Raspberry Pi: its own SD card (/ as /dev/root) is refused, the USB reader is the candidate', () => {
  const snap = fixture('raspberry-pi-sd-root-usb-reader.json');
  refused(assessTarget('/dev/mmcblk0', snap, image), /holds the running system/);
  refused(assessTarget('/dev/mmcblk0', snap, image), /\/boot\/firmware/);
  refused(assessTarget('/dev/zram0', snap, image), /in use as swap/);
  assert.equal(assessTarget('/dev/sda', snap, image).ok, true);
});

test('this VM (recorded here): the virtio system disk is refused', () => {
  const snap = fixture('virtio-vm.json');
  const v = assessTarget('/dev/vda', snap, image);
  refused(v, /holds the running system/);
  refused(v, /transport unknown/);
  refused(assessTarget('/dev/zram0', snap, image), /no medium/);
  assert.deepEqual(assessAll(snap, image).filter((x) => x.ok), []);
});

test('loop devices are cards only with the explicit allow option, and still get every other check', () => {
  const loop = {
    name: 'loop3',
    kname: 'loop3',
    path: '/dev/loop3',
    type: 'loop',
    'maj:min': '7:3',
    size: 4 * GiB,
    rm: false,
    hotplug: false,
    ro: false,
    tran: null,
    mountpoints: [null],
  };
  const snap: SystemSnapshot = { lsblk: { blockdevices: [loop] }, mounts: [], swaps: [] };
  refused(assessTarget('/dev/loop3', snap, image), /loop device/);
  assert.equal(assessTarget('/dev/loop3', snap, { ...image, allowLoop: true }).ok, true);
  const mounted: SystemSnapshot = {
    ...snap,
    mounts: parseMountinfo('46 26 7:3 / /tmp/x rw,relatime - ext4 /dev/loop3 rw\n'),
  };
  refused(assessTarget('/dev/loop3', mounted, { ...image, allowLoop: true }), /mounted file system at \/tmp\/x/);
  refused(assessTarget('/dev/loop3', snap, { imageSize: 8 * GiB, allowLoop: true }), /too small/);
});

test('a card with an active LVM volume group on it is refused even when nothing is mounted', () => {
  const lv = { name: 'vgcard-data', kname: 'dm-5', path: '/dev/mapper/vgcard-data', type: 'lvm', 'maj:min': '254:5', size: GiB, mountpoints: [null] };
  const card = {
    name: 'sde',
    path: '/dev/sde',
    type: 'disk',
    'maj:min': '8:64',
    size: 16 * GiB,
    rm: true,
    tran: 'usb',
    children: [{ name: 'sde1', path: '/dev/sde1', type: 'part', 'maj:min': '8:65', size: 16 * GiB, fstype: 'LVM2_member', children: [lv] }],
  };
  const v = assessTarget('/dev/sde', { lsblk: { blockdevices: [card] }, mounts: [], swaps: [] }, image);
  assert.deepEqual(v.reasons, ['is held by lvm /dev/mapper/vgcard-data: deactivate it first (vgchange -an, cryptsetup close, mdadm --stop)']);
});

test('identityChange: the device written must be the device checked', () => {
  const checked = { rdev: '8:16', diskseq: '42', sectors: '62333952' };
  assert.equal(identityChange(checked, { ...checked }), null);
  assert.match(identityChange(checked, { ...checked, diskseq: '47' }) ?? '', /another disk or card took its name \(disk sequence number 42 when checked, 47 now\)/);
  assert.match(identityChange(checked, { ...checked, rdev: '8:32' }) ?? '', /device number was 8:16 when checked, 8:32 now/);
  // Before Linux 5.15 there is no disk sequence number: the size still tells most swaps.
  const old = { ...checked, diskseq: null };
  assert.match(identityChange(old, { ...old, sectors: '1953525168' }) ?? '', /size changed/);
});
