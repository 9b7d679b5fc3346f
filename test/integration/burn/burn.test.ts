// The burner on real block devices: loop devices made here stand in for cards.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, writeFileSync, writeSync, fsyncSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { burn, HEAD_BYTES, WIPE_BYTES, type CardProgress } from '../../../src/burn/burn.ts';
import { openSource } from '../../../src/burn/source.ts';
import { createBlockMap, renderBmapXml, type BlockMap } from '../../../src/image/bmap.ts';
import { buildTestImage, card, defer, detachLoop, makeCardFile, setup } from './helpers.ts';

const MiB = 1024 * 1024;

function readAt(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** The card holds the image's mapped ranges, zeros in the wiped areas' gaps, and old contents elsewhere. */
function assertCardMatches(cardFile: string, img: string, map: BlockMap, cardSize: number): void {
  const image = readFileSync(img);
  const cardBytes = readFileSync(cardFile);
  for (const r of map.ranges) {
    const s = r.first * map.blockSize;
    const e = Math.min((r.last + 1) * map.blockSize, map.imageSize);
    assert.ok(cardBytes.subarray(s, e).equals(image.subarray(s, e)), `range ${r.first}-${r.last} differs`);
  }
  const mapped = (off: number) => map.ranges.some((r) => off >= r.first * map.blockSize && off < (r.last + 1) * map.blockSize);
  for (let off = 0; off < WIPE_BYTES; off += map.blockSize) {
    if (!mapped(off)) assert.ok(cardBytes.subarray(off, off + map.blockSize).every((b) => b === 0), `block at ${off} not zeroed`);
  }
  const tail = Math.max(cardSize - WIPE_BYTES, map.imageSize);
  assert.ok(cardBytes.subarray(tail).every((b) => b === 0), 'the last MiB past the image (old backup GPT) is zeroed');
  const untouched = map.ranges.length > 1 ? (map.ranges[1]!.first - 1) * map.blockSize : -1;
  if (untouched >= WIPE_BYTES && !mapped(untouched)) {
    assert.equal(cardBytes[untouched], 0xa5, 'unmapped blocks are not written (sparse)');
  }
}

test('a raw image with its .bmap is written sparsely, first sector last, and verified', async (t) => {
  const dir = setup(t, 'piinit-burn-');
  const img = buildTestImage(dir, { sizeMiB: 64, dataMiB: 4 });
  const map = await createBlockMap(img);
  writeFileSync(`${img}.bmap`, renderBmapXml(map));
  const { dev, file } = card(t, dir, 'card', 80);
  const source = await openSource(img);
  assert.equal(source.mapOrigin, 'bmap-file');
  const events: CardProgress[] = [];
  const [report] = await burn({
    source,
    targets: [{ path: dev, kind: 'block', size: 80 * MiB }],
    onProgress: (p) => events.push(p),
    syncEvery: MiB,
  });
  assert.equal(report?.status, 'verified', report?.error);
  assert.deepEqual(report?.mismatches, []);
  const mapped = map.ranges.reduce((n, r) => n + (r.last - r.first + 1) * map.blockSize, 0);
  assert.equal(report?.mappedBytes, mapped);
  assert.ok(report!.bytesWritten <= mapped + 2 * WIPE_BYTES, `wrote ${report!.bytesWritten} for ${mapped} mapped`);
  assertCardMatches(file, img, map, 80 * MiB);
  // honest progress: writing events come after syncs, and grow monotonically up to the total
  const writing = events.filter((e) => e.phase === 'writing');
  assert.ok(writing.length >= 3);
  for (let i = 1; i < writing.length; i++) assert.ok(writing[i]!.done >= writing[i - 1]!.done);
  assert.ok(events.some((e) => e.phase === 'verifying'));
  assert.equal(events.at(-1)?.phase, 'verified');
});

test('a change on the card between writing and read-back is reported with its byte offset', async (t) => {
  const dir = setup(t, 'piinit-burn-');
  const img = buildTestImage(dir, { sizeMiB: 48, dataMiB: 2 });
  const { dev, file } = card(t, dir, 'card', 48);
  const map = await createBlockMap(img);
  const victim = map.ranges[map.ranges.length - 1]!;
  const offset = victim.first * map.blockSize + 123;
  const [report] = await burn({
    source: await openSource(img),
    targets: [{ path: dev, kind: 'block', size: 48 * MiB }],
    hooks: {
      // Change the backing file behind the loop device's cache: only a read that really goes
      // to the device (after BLKFLSBUF) can see this.
      beforeVerify: async () => {
        const fd = openSync(file, 'r+');
        const old = readAt(file, offset, 1)[0]!;
        writeSync(fd, Buffer.from([old ^ 0xff]), 0, 1, offset);
        fsyncSync(fd);
        closeSync(fd);
      },
    },
  });
  assert.equal(report?.status, 'failed');
  assert.equal(report?.mismatches[0]?.offset, offset);
  assert.match(report?.error ?? '', new RegExp(`first at byte ${offset}; its first sector is now zero, so it will not boot`));
  assert.ok(readAt(file, 0, HEAD_BYTES).every((b) => b === 0), 'a card that does not hold the image does not boot');
});

test('an interrupted burn stops, leaves the first sector zero and says the card is incomplete', async (t) => {
  const dir = setup(t, 'piinit-burn-');
  const img = buildTestImage(dir, { sizeMiB: 64, dataMiB: 8 });
  const { dev, file } = card(t, dir, 'card', 64);
  const controller = new AbortController();
  const [report] = await burn({
    source: await openSource(img),
    targets: [{ path: dev, kind: 'block', size: 64 * MiB }],
    signal: controller.signal,
    syncEvery: MiB,
    hooks: {
      afterSync: async (_path, done) => {
        if (done >= 4 * MiB) controller.abort();
      },
    },
  });
  assert.equal(report?.status, 'interrupted');
  assert.ok(report!.bytesWritten < report!.mappedBytes, 'stopped before the end');
  assert.ok(readAt(img, 510, 2).equals(Buffer.from([0x55, 0xaa])), 'the image has an MBR');
  assert.ok(readAt(file, 0, HEAD_BYTES).every((b) => b === 0), 'sector 0 of the card is zero');
});

test('an xz image is streamed through xz -dc, with its .bmap and without one', async (t) => {
  const dir = setup(t, 'piinit-burn-');
  const img = buildTestImage(dir, { sizeMiB: 24, dataMiB: 1 });
  const map = await createBlockMap(img);
  execFileSync('xz', ['-T1', '-0', '-k', img]);
  const xz = `${img}.xz`;
  const a = card(t, dir, 'card-a', 24);
  const b = card(t, dir, 'card-b', 32);

  writeFileSync(`${img}.bmap`, renderBmapXml(map));
  const withMap = await openSource(xz);
  assert.equal(withMap.compressed, true);
  assert.equal(withMap.mapOrigin, 'bmap-file');
  const [ra] = await burn({ source: withMap, targets: [{ path: a.dev, kind: 'block', size: 24 * MiB }] });
  assert.equal(ra?.status, 'verified', ra?.error);
  assertCardMatches(a.file, img, map, 24 * MiB);

  const streamed = await openSource(xz, { bmap: null });
  assert.equal(streamed.mapOrigin, 'streamed');
  const [rb] = await burn({ source: streamed, targets: [{ path: b.dev, kind: 'block', size: 32 * MiB }] });
  assert.equal(rb?.status, 'verified', rb?.error);
  // Without a map every block is written, zeros too: the card held other bytes (0xa5)
  // before, and none of them may show through the image's free FAT entries or empty space.
  const image = readFileSync(img);
  assert.ok(readFileSync(b.file).subarray(0, image.length).equals(image), 'the card holds the whole image');
  assert.equal(rb!.mappedBytes, image.length);
  assert.ok(rb!.bytesWritten <= image.length + 2 * WIPE_BYTES);
});

test('an image that no longer matches its block map fails every card and leaves it unbootable', async (t) => {
  const dir = setup(t, 'piinit-burn-');
  const img = buildTestImage(dir, { sizeMiB: 40, dataMiB: 1 });
  const map = await createBlockMap(img);
  writeFileSync(`${img}.bmap`, renderBmapXml(map));
  const fd = openSync(img, 'r+');
  const last = map.ranges[map.ranges.length - 1]!;
  writeSync(fd, Buffer.from('tampered'), 0, 8, last.first * map.blockSize);
  closeSync(fd);
  const { dev, file } = card(t, dir, 'card', 40);
  const [report] = await burn({ source: await openSource(img), targets: [{ path: dev, kind: 'block', size: 40 * MiB }] });
  assert.equal(report?.status, 'failed');
  assert.match(report?.error ?? '', /does not match its block map/);
  assert.ok(readAt(file, 0, HEAD_BYTES).every((b) => b === 0));
});

test('a card that fails does not stop the others', async (t) => {
  const dir = setup(t, 'piinit-burn-');
  const img = buildTestImage(dir, { sizeMiB: 32, dataMiB: 1 });
  const good = card(t, dir, 'good', 32);
  const roFile = join(dir, 'readonly');
  makeCardFile(roFile, 32);
  const ro = execFileSync('losetup', ['-r', '-f', '--show', roFile], { encoding: 'utf8' }).trim();
  defer(t, () => detachLoop(ro));
  const reports = await burn({
    source: await openSource(img),
    targets: [
      { path: ro, kind: 'block', size: 32 * MiB },
      { path: good.dev, kind: 'block', size: 32 * MiB },
    ],
  });
  assert.equal(reports[0]?.status, 'failed');
  assert.match(reports[0]?.error ?? '', /write failed at byte \d+/); // a read-only loop device opens, then refuses writes
  assert.equal(reports[1]?.status, 'verified', reports[1]?.error);
  assert.equal(readAt(roFile, 0, 1)[0], 0xa5);
});
