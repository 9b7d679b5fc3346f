// Disk assembly with the real tools (sfdisk, mkfs.fat, mcopy, mke2fs -d, filefrag), on small
// trees: partition table, labels, file contents and owners inside the partitions, the block
// map and checksum outputs, and that the same inputs give a byte-identical image.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chown, link, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { assembleDisk, treeBytes } from '../../../src/image/disk.ts';
import { sha256File, writeOutputs } from '../../../src/image/outputs.ts';
import { clampMtimes, treeHash } from '../../../src/image/treehash.ts';

const EPOCH = 1704067200;
let work: string;
let dirs: { root: string; boot: string; data: string };

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'piinit-disk-'));
  dirs = { root: join(work, 'root'), boot: join(work, 'boot'), data: join(work, 'data') };
  await mkdir(join(dirs.root, 'etc'), { recursive: true });
  await mkdir(join(dirs.root, 'data'), { recursive: true });
  await writeFile(join(dirs.root, 'etc/hello'), 'hello from root\n');
  await symlink('hello', join(dirs.root, 'etc/hello-link'));
  await mkdir(join(dirs.boot, 'EFI/BOOT'), { recursive: true });
  await writeFile(join(dirs.boot, 'EFI/BOOT/BOOTX64.EFI'), Buffer.alloc(4096, 7));
  await writeFile(join(dirs.boot, 'cmdline.txt'), 'root=LABEL=piroot ro\n');
  await mkdir(join(dirs.data, 'opt/consul'), { recursive: true });
  await writeFile(join(dirs.data, 'opt/consul/seed'), 'data\n');
  await chown(join(dirs.data, 'opt/consul'), 123, 456);
  await clampMtimes(work, EPOCH);
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

async function partition(image: string, index: number, out: string): Promise<void> {
  const { stdout } = await execa('sfdisk', ['--json', image]);
  const p = (JSON.parse(stdout) as { partitiontable: { partitions: { start: number; size: number }[] } }).partitiontable.partitions[index]!;
  await execa('dd', [`if=${image}`, `of=${out}`, 'bs=512', `skip=${p.start}`, `count=${p.size}`, 'status=none']);
}

test('assembles boot, root and data partitions from directories without loop mounts', async () => {
  const image = join(work, 'a.img');
  const layout = await assembleDisk({ image, dirs, bootType: 'ef', seed: 'test-amd64-server', sourceDateEpoch: EPOCH });
  const { stdout } = await execa('sfdisk', ['--json', image]);
  const parts = (JSON.parse(stdout) as { partitiontable: { partitions: { start: number; type: string }[] } }).partitiontable.partitions;
  assert.deepEqual(parts.map((p) => p.type), ['ef', '83', '83']);
  assert.equal(parts[2]!.start * 512, layout.data.startMiB * 1024 * 1024);

  const { stdout: dir } = await execa('mdir', ['-b', '-i', `${image}@@${layout.boot.startMiB * 1024 * 1024}`, '::/EFI/BOOT'], { env: { MTOOLS_SKIP_CHECK: '1' } });
  assert.match(dir, /BOOTX64\.EFI/);

  const root = join(work, 'root.ext4');
  await partition(image, 1, root);
  assert.equal((await execa('e2label', [root])).stdout.trim(), 'piroot');
  assert.equal((await execa('debugfs', ['-R', 'cat /etc/hello', root])).stdout, 'hello from root');
  assert.match((await execa('debugfs', ['-R', 'stat /etc/hello-link', root])).stdout, /Fast link dest: "hello"/);
  await execa('e2fsck', ['-fn', root]);

  const data = join(work, 'data.ext4');
  await partition(image, 2, data);
  assert.equal((await execa('e2label', [data])).stdout.trim(), 'pidata');
  assert.match((await execa('debugfs', ['-R', 'stat /opt/consul', data])).stdout, /User:\s+123\s+Group:\s+456/);
});

test('the same inputs give a byte-identical image; outputs carry a block map, checksum and manifest', async () => {
  const a = join(work, 'one.img');
  const b = join(work, 'two.img');
  await assembleDisk({ image: a, dirs, bootType: '0c', seed: 'same', sourceDateEpoch: EPOCH });
  await assembleDisk({ image: b, dirs, bootType: '0c', seed: 'same', sourceDateEpoch: EPOCH });
  assert.equal(await sha256File(a), await sha256File(b));
  assert.equal(await treeHash(dirs.root), await treeHash(dirs.root));

  // a and b stand for two builds' partial images, put in place under one name.
  const img = join(work, 'final.img');
  const out = await writeOutputs(a, img, { name: 'one', packages: [] }, { xz: true });
  assert.equal(out.files.raw, img);
  assert.equal(existsSync(a), false, 'the partial image is renamed into place');
  assert.ok(out.sizes.usedBytes > 0 && out.sizes.usedBytes < out.sizes.rawBytes, 'sparse image: only data ranges mapped');
  assert.match(await readFile(out.files.bmap, 'utf8'), /<bmap version="2\.0">/);
  assert.equal(await readFile(out.files.sha256, 'utf8'), `${out.sha256}  final.img\n`);
  await execa('sha256sum', ['-c', out.files.sha256], { cwd: work });
  const manifest = JSON.parse(await readFile(out.files.manifest, 'utf8')) as { sha256: string; image: string; sizes: { xzBytes: number } };
  assert.equal(manifest.sha256, out.sha256);
  assert.equal(manifest.image, 'final.img');
  assert.ok(manifest.sizes.xzBytes > 0);
  await execa('xz', ['-t', out.files.xz!]);
  // The image and its copy hold what the cluster's nodes hold (keys, tokens): owner-only.
  for (const f of [img, out.files.xz!]) assert.equal((await stat(f)).mode & 0o777, 0o600, f);

  // A build that fails while making its outputs (here: no image) leaves the last set whole.
  const before = await readFile(out.files.sha256, 'utf8');
  await assert.rejects(writeOutputs(join(work, 'missing.img.partial'), img, { name: 'one', packages: [] }, { xz: true }));
  assert.equal(await readFile(out.files.sha256, 'utf8'), before);
  await execa('sha256sum', ['-c', out.files.sha256], { cwd: work });
  await execa('xz', ['-t', out.files.xz!]);
  assert.deepEqual((await readdir(work)).filter((f) => f.startsWith('final.img') && /tmp|partial/.test(f)), [], 'nothing half-made left');
  // Nor one that fails writing its small files (a full disk; here a directory in the way):
  // the new image and copy are not put beside the old checksum and block map.
  const other = join(work, 'other.img');
  await assembleDisk({ image: other, dirs, bootType: '0c', seed: 'other', sourceDateEpoch: EPOCH });
  await mkdir(`${img}.sha256.tmp`);
  await assert.rejects(writeOutputs(other, img, { name: 'one', packages: [] }, { xz: true }), /EISDIR/);
  await rm(`${img}.sha256.tmp`, { recursive: true });
  assert.equal(await readFile(out.files.sha256, 'utf8'), before);
  await execa('sha256sum', ['-c', out.files.sha256], { cwd: work });
  assert.equal(await readFile(out.files.manifest, 'utf8').then((m) => (JSON.parse(m) as { sha256: string }).sha256), out.sha256);
  assert.equal((await execa('sh', ['-c', 'xz -dc "$0" | sha256sum', out.files.xz!])).stdout.split(' ')[0], out.sha256, 'the old copy');
  assert.deepEqual((await readdir(work)).filter((f) => f.startsWith('final.img') && /tmp|partial/.test(f)), [], 'nothing half-made left');

  // Without --no-xz's copy, the last build's .xz (of another image) does not stay beside it.
  const noXz = await writeOutputs(b, img, { name: 'one', packages: [] }, { xz: false });
  assert.equal(noXz.files.xz, null);
  assert.equal(existsSync(`${img}.xz`), false);
  await execa('sha256sum', ['-c', noXz.files.sha256], { cwd: work });
});

test('partitions are sized by what the tree holds, not by what it takes on the build host', async () => {
  const tree = join(work, 'sizing');
  await mkdir(join(tree, 'many'), { recursive: true });
  const MiB = 1024 * 1024;
  await writeFile(join(tree, 'one-byte'), 'x'); // a block
  await writeFile(join(tree, 'five-k'), Buffer.alloc(5 * 1024, 1)); // two blocks
  await link(join(tree, 'five-k'), join(tree, 'five-k-again')); // the same blocks
  await writeFile(join(tree, 'empty'), ''); // none
  await symlink('five-k', join(tree, 'short-link')); // in its inode
  await symlink('l'.repeat(80), join(tree, 'long-link')); // a block
  // Stored in no blocks here (du: 0), as a compressing file system (ZFS with lz4) stores
  // zeros; the image's ext4 gets 8 MiB of content, so they count.
  await writeFile(join(tree, 'stored-small'), '');
  await truncate(join(tree, 'stored-small'), 8 * MiB);
  assert.equal(Number((await execa('du', ['-s', '-B1', join(tree, 'stored-small')])).stdout.split(/\s/)[0]), 0, 'du sees nothing');
  // 400 names of 20 bytes: 400 * (8 + 20) bytes of entries, three blocks of directory.
  for (let i = 0; i < 400; i++) await writeFile(join(tree, 'many', `file-${String(i).padStart(15, '0')}`), '');
  const dirBlocks = 4096 /* tree */ + 3 * 4096; /* many */
  const fileBlocks = 4096 + 2 * 4096 + 4096 + 8 * MiB;
  assert.equal(await treeBytes(tree), dirBlocks + fileBlocks);
});

test('the boot partition has the same bytes whatever order its files were made in', async () => {
  // tmpfs lists a directory's names newest first (ext4 by a hash seeded per file system):
  // two copies of one boot tree made in opposite orders, as two machines might unpack it.
  const trees = join(work, 'boot-trees');
  await mkdir(trees);
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'piinit-boot-order', trees]);
  try {
    const names = ['bootcode.bin', 'config.txt', 'start4.elf', 'overlays/disable-bt.dtbo', 'overlays/miniuart-bt.dtbo', 'overlays/README'];
    const made = async (name: string, order: string[]) => {
      const boot = join(trees, name);
      for (const n of order) {
        await mkdir(join(boot, n, '..'), { recursive: true });
        await writeFile(join(boot, n), `${n}\n`);
      }
      await clampMtimes(boot, EPOCH);
      return boot;
    };
    const forward = await made('forward', names);
    const backward = await made('backward', [...names].reverse());
    const listed = async (d: string) => (await execa('ls', ['-U', join(d, 'overlays')])).stdout; // directory order (Node sorts)
    assert.notEqual(await listed(forward), await listed(backward), 'the trees list their files in other orders');
    const a = join(work, 'forward.img');
    const b = join(work, 'backward.img');
    await assembleDisk({ image: a, dirs: { ...dirs, boot: forward }, bootType: '0c', seed: 'order', sourceDateEpoch: EPOCH });
    await assembleDisk({ image: b, dirs: { ...dirs, boot: backward }, bootType: '0c', seed: 'order', sourceDateEpoch: EPOCH });
    assert.equal(await sha256File(a), await sha256File(b));
    const { stdout } = await execa('mdir', ['-b', '-i', `${a}@@${1024 * 1024}`, '::/overlays'], { env: { MTOOLS_SKIP_CHECK: '1' } });
    assert.deepEqual(stdout.trim().split('\n'), ['::/overlays/README', '::/overlays/disable-bt.dtbo', '::/overlays/miniuart-bt.dtbo']);
  } finally {
    await execa('umount', [trees]);
  }
});

test('the boot partition has the same bytes whatever time zone the build host is in', async (t) => {
  const zone = process.env.TZ;
  t.after(() => {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  });
  const images: string[] = [];
  for (const tz of ['UTC', 'Asia/Tokyo']) {
    process.env.TZ = tz; // what the tools run with, unless piinit sets it
    const image = join(work, `tz-${tz.replace('/', '-')}.img`);
    await assembleDisk({ image, dirs, bootType: '0c', seed: 'tz', sourceDateEpoch: EPOCH });
    images.push(await sha256File(image));
  }
  assert.equal(images[0], images[1]);
});
