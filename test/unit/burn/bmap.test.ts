import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, openSync, closeSync, writeSync, rmSync, truncateSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  createBlockMap,
  extentsToBlockRanges,
  parseBmapXml,
  renderBmapXml,
  ZeroSkippingMapper,
  type BlockMap,
} from '../../../src/image/bmap.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function sparseFile(dir: string, size: number, writes: Array<[number, Buffer]>): string {
  const p = join(dir, 'img');
  closeSync(openSync(p, 'w'));
  truncateSync(p, size);
  const fd = openSync(p, 'r+');
  for (const [off, b] of writes) writeSync(fd, b, 0, b.length, off);
  closeSync(fd);
  return p;
}

test('extentsToBlockRanges rounds out to blocks, merges neighbours and clips to the image', () => {
  assert.deepEqual(
    extentsToBlockRanges(
      [
        [8192, 12288],
        [0, 100],
        [12288, 20000],
        [40960, 1 << 30],
      ],
      4096,
        12,
    ),
    [
      [0, 0],
      [2, 4],
      [10, 11],
    ],
  );
});

test('renderBmapXml and parseBmapXml round-trip, and a damaged file is refused', () => {
  const map: BlockMap = {
    imageSize: 10 * 4096 + 100,
    blockSize: 4096,
    blocksCount: 11,
    mappedBlocksCount: 4,
    ranges: [
      { first: 0, last: 2, sha256: 'a'.repeat(64) },
      { first: 10, last: 10, sha256: 'b'.repeat(64) },
    ],
  };
  const xml = renderBmapXml(map);
  assert.match(xml, /<Range chksum="b{64}"> 10 <\/Range>/);
  assert.match(xml, /<Range chksum="a{64}"> 0-2 <\/Range>/);
  assert.deepEqual(parseBmapXml(xml), map);
  assert.throws(() => parseBmapXml(xml.replace('> 0-2 <', '> 0-3 <')), /checksum mismatch/);
  assert.throws(() => parseBmapXml(xml.replace('version="2.0"', 'version="1.4"')), /not supported/);
});

test('ZeroSkippingMapper maps non-zero blocks of a stream fed in odd-sized pieces', () => {
  const bs = 512;
  const img = Buffer.alloc(bs * 10 + 7);
  img.fill(1, 0, 10); // block 0
  img.fill(2, bs * 3, bs * 5); // blocks 3-4
  img[bs * 10 + 3] = 9; // the short last block
  const m = new ZeroSkippingMapper(bs);
  const written = Buffer.alloc(img.length);
  for (let i = 0; i < img.length; i += 333) {
    for (const p of m.push(img.subarray(i, i + 333))) p.data.copy(written, p.offset);
  }
  const { map, tail } = m.finish();
  if (tail) tail.data.copy(written, tail.offset);
  assert.deepEqual(written, img);
  assert.equal(map.imageSize, img.length);
  assert.equal(map.blocksCount, 11);
  assert.deepEqual(
    map.ranges.map((r) => [r.first, r.last, r.sha256]),
    [
      [0, 0, sha(img.subarray(0, bs))],
      [3, 4, sha(img.subarray(bs * 3, bs * 5))],
      [10, 10, sha(img.subarray(bs * 10))],
    ],
  );
  assert.equal(map.mappedBlocksCount, 4);
});

test('createBlockMap follows the allocation of a sparse file (and zero blocks that were written)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'piinit-bmap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const data = Buffer.alloc(8192, 7);
  const zeros = Buffer.alloc(4096);
  const p = sparseFile(dir, 1 << 20, [
    [0, data],
    [409600, zeros], // written zeros are allocated: mapped, as bmaptool does
    [(1 << 20) - 4096, data.subarray(0, 4096)],
  ]);
  const map = await createBlockMap(p);
  assert.equal(map.imageSize, 1 << 20);
  assert.equal(map.blocksCount, 256);
  assert.deepEqual(
    map.ranges.map((r) => [r.first, r.last]),
    [
      [0, 1],
      [100, 100],
      [255, 255],
    ],
  );
  assert.equal(map.ranges[0]!.sha256, sha(data));
  assert.equal(map.ranges[1]!.sha256, sha(zeros));
  assert.equal(map.mappedBlocksCount, 4);
});

test('createBlockMap falls back to skipping zero blocks where the allocation is unknown (tmpfs)', async (t) => {
  if (!existsSync('/dev/shm')) assert.fail('/dev/shm (tmpfs) is needed for this test');
  const dir = mkdtempSync('/dev/shm/piinit-bmap-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const data = Buffer.alloc(4096, 3);
  const p = sparseFile(dir, 64 * 4096 + 10, [
    [4096 * 5, data],
    [4096 * 6, Buffer.alloc(4096)], // zeros: unmapped in this mode
    [64 * 4096 + 2, Buffer.from([1])],
  ]);
  const map = await createBlockMap(p);
  assert.deepEqual(
    map.ranges.map((r) => [r.first, r.last]),
    [
      [5, 5],
      [64, 64],
    ],
  );
  assert.equal(map.blocksCount, 65);
});
