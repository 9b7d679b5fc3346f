import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unmappedParts, wipeAreas } from '../../../src/burn/burn.ts';
import type { BlockMap } from '../../../src/image/bmap.ts';

const MiB = 1024 * 1024;

test('wipeAreas: the first and the last MiB of the card, never inside the image, 4 KiB aligned', () => {
  assert.deepEqual(wipeAreas(64 * MiB, 40 * MiB), [
    [0, MiB],
    [63 * MiB, 64 * MiB],
  ]);
  // a card as big as the image: the end is the image's own
  assert.deepEqual(wipeAreas(40 * MiB, 40 * MiB), [[0, MiB]]);
  // the last MiB overlaps the image: only the part past the image
  assert.deepEqual(wipeAreas(40 * MiB + 8192, 40 * MiB), [
    [0, MiB],
    [40 * MiB, 40 * MiB + 8192],
  ]);
  // an odd card size: the tail starts on a 4 KiB boundary
  assert.deepEqual(wipeAreas(64 * MiB + 512, 10 * MiB)[1], [63 * MiB, 64 * MiB + 512]);
  assert.deepEqual(wipeAreas(100_000, 50_000), [[0, 100_000]]);
});

test('unmappedParts: the wiped bytes no block map range covers (they must read back as zeros)', () => {
  const map: BlockMap = {
    imageSize: 40 * MiB,
    blockSize: 4096,
    blocksCount: 10240,
    mappedBlocksCount: 0,
    ranges: [
      { first: 0, last: 0, sha256: '' },
      { first: 16, last: 31, sha256: '' },
      { first: 255, last: 300, sha256: '' },
      { first: 10000, last: 10239, sha256: '' },
    ],
  };
  assert.deepEqual(
    unmappedParts(
      [
        [0, MiB],
        [63 * MiB, 64 * MiB],
      ],
      map,
    ),
    [
      [4096, 16 * 4096],
      [32 * 4096, 255 * 4096],
      [63 * MiB, 64 * MiB],
    ],
  );
});
