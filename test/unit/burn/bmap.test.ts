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

test('createBlockMap maps every block where the allocation is unknown (tmpfs)', async (t) => {
  if (!existsSync('/dev/shm')) assert.fail('/dev/shm (tmpfs) is needed for this test');
  const dir = mkdtempSync('/dev/shm/piinit-bmap-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const data = Buffer.alloc(4096, 3);
  // Written zeros cannot be told from holes here; both reach the card.
  const p = sparseFile(dir, 64 * 4096 + 10, [
    [4096 * 5, data],
    [4096 * 6, Buffer.alloc(4096)],
    [64 * 4096 + 2, Buffer.from([1])],
  ]);
  const map = await createBlockMap(p);
  assert.deepEqual(map.ranges.map((r) => [r.first, r.last]), [[0, 64]]);
  assert.equal(map.blocksCount, 65);
  assert.equal(map.mappedBlocksCount, 65);
  const whole = Buffer.alloc(64 * 4096 + 10);
  data.copy(whole, 4096 * 5);
  whole[64 * 4096 + 2] = 1;
  assert.equal(map.ranges[0]!.sha256, sha(whole));
});
