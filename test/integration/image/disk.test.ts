// Disk assembly with the real tools (sfdisk, mkfs.fat, mcopy, mke2fs -d, filefrag), on small
// trees: partition table, labels, file contents and owners inside the partitions, the block
// map and checksum outputs, and that the same inputs give a byte-identical image.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { assembleDisk } from '../../../src/image/disk.ts';
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

  // Without --no-xz's copy, the last build's .xz (of another image) does not stay beside it.
  const noXz = await writeOutputs(b, img, { name: 'one', packages: [] }, { xz: false });
  assert.equal(noXz.files.xz, null);
  assert.equal(existsSync(`${img}.xz`), false);
  await execa('sha256sum', ['-c', noXz.files.sha256], { cwd: work });
});
