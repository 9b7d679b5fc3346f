import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { blockFingerprint, CHUNK_BLOCK, chunkEnds, DEFAULT_CHUNKS, writeChunkedXz, type ChunkParams } from '../../../src/image/xzchunks.ts';

const SMALL: ChunkParams = { minBlocks: 8, maskBits: 4, maxBlocks: 64 };

/** Text-like blocks (compressible, all different) from a seeded generator. */
function textBlocks(count: number, seed: number): Buffer {
  const words = ['consul', 'nomad', 'raft', 'gossip', 'node', 'server', 'data', 'etc', 'usr', 'lib', 'bin', 'pi'];
  let x = seed >>> 0;
  const next = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
  const out = Buffer.alloc(count * CHUNK_BLOCK);
  let off = 0;
  while (off < out.length) {
    const w = `${words[next() % words.length]}${next() % 1000} `;
    off += out.write(w, off);
  }
  return out;
}

function chunkHashes(data: Buffer, params: ChunkParams): string[] {
  const { ends } = chunkEnds(data, params);
  let start = 0;
  return ends.map((end) => {
    const h = createHash('sha256').update(data.subarray(start, end)).digest('hex');
    start = end;
    return h;
  });
}

test('zero blocks never end a chunk: a hole is cut only at the maximum size', () => {
  const zeros = Buffer.alloc(200 * CHUNK_BLOCK);
  assert.equal(blockFingerprint(zeros, 0), 0);
  const { ends, open } = chunkEnds(zeros, SMALL);
  assert.deepEqual(ends, [64, 128, 192].map((b) => b * CHUNK_BLOCK));
  assert.equal(open, 8);
  const text = textBlocks(2000, 1);
  const sizes = chunkHashes(text, SMALL).length;
  assert.ok(sizes > 2000 / 64 && sizes < 2000 / 8, `content decides most chunk ends (${sizes} chunks)`);
  assert.ok(DEFAULT_CHUNKS.minBlocks * CHUNK_BLOCK >= 512 * 1024, 'default chunks are large enough for xz to compress well');
});

test('chunk ends follow the content: blocks inserted early leave later chunks the same', () => {
  const a = textBlocks(3000, 7);
  const b = Buffer.concat([a.subarray(0, 500 * CHUNK_BLOCK), textBlocks(3, 99), a.subarray(500 * CHUNK_BLOCK)]);
  const before = new Set(chunkHashes(a, SMALL));
  const after = chunkHashes(b, SMALL);
  const same = after.filter((h) => before.has(h)).length;
  assert.ok(same >= after.length - 3, `${same} of ${after.length} chunks unchanged after an insertion`);
});

test('the chunked xz is one valid .xz file, and a rebuild copies the chunks that did not change', async () => {
  const work = await mkdtemp(join(tmpdir(), 'piinit-xz-'));
  try {
    const raw = join(work, 'disk.img');
    const xz = `${raw}.xz`;
    const indexDir = join(work, 'cache');
    // Text, a hole, more text: like a disk image with free space between partitions.
    const first = Buffer.concat([textBlocks(1500, 3), Buffer.alloc(300 * CHUNK_BLOCK), textBlocks(1000, 4)]);
    await writeFile(raw, first);
    const r1 = await writeChunkedXz(raw, xz, { indexDir, params: SMALL });
    await r1.commit();
    assert.equal(r1.reused, 0);
    assert.ok(r1.chunks > 20, `${r1.chunks} chunks`);
    assert.deepEqual(Buffer.from((await execa('xz', ['-dc', xz], { encoding: 'buffer' })).stdout), first);
    const list = (await execa('xz', ['--robot', '--list', xz])).stdout.split('\n').find((l) => l.startsWith('totals\t'))!.split('\t');
    assert.equal(Number(list[4]), first.length, 'xz --list sees the whole image across the streams');
    assert.ok(Number(list[3]) < first.length / 2, 'compressed');

    // A config edit: one block changed and two inserted near the start; the size stays.
    const edited = Buffer.concat([first.subarray(0, 100 * CHUNK_BLOCK), textBlocks(2, 42), first.subarray(100 * CHUNK_BLOCK, first.length - 2 * CHUNK_BLOCK)]);
    edited.write('changed', 40 * CHUNK_BLOCK);
    await writeFile(raw, edited);
    const r2 = await writeChunkedXz(raw, xz, { indexDir, params: SMALL });
    await r2.commit();
    assert.ok(r2.reused >= r2.chunks - 4, `${r2.reused} of ${r2.chunks} chunks copied`);
    assert.deepEqual(Buffer.from((await execa('xz', ['-dc', xz], { encoding: 'buffer' })).stdout), edited);
    // bmaptool (Python's lzma) reads the concatenated streams as one image too.
    const copied = join(work, 'copied.img');
    await execa('bmaptool', ['copy', '--nobmap', xz, copied]);
    assert.deepEqual(await readFile(copied), edited);
    await rm(copied);

    // An .xz changed behind our back is never a source of chunks.
    const tampered = await readFile(xz);
    tampered[tampered.length - 20]! ^= 1;
    await writeFile(xz, tampered);
    const r3 = await writeChunkedXz(raw, xz, { indexDir, params: SMALL });
    await r3.commit();
    assert.equal(r3.reused, 0);
    assert.deepEqual(Buffer.from((await execa('xz', ['-dc', xz], { encoding: 'buffer' })).stdout), edited);

    // Without an index directory every chunk is compressed, and nothing is left behind.
    const r4 = await writeChunkedXz(raw, xz, { params: SMALL });
    await r4.commit();
    assert.equal(r4.reused, 0);
    assert.deepEqual((await readdir(work)).sort(), ['cache', 'disk.img', 'disk.img.xz']);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test('a failed write leaves neither a partial .xz nor a temporary file', async () => {
  const work = await mkdtemp(join(tmpdir(), 'piinit-xz-'));
  try {
    const notAFile = join(work, 'disk.img');
    await mkdir(notAFile);
    await assert.rejects(writeChunkedXz(notAFile, join(work, 'disk.img.xz'), { indexDir: join(work, 'cache') }), /EISDIR/);
    assert.deepEqual(await readdir(work), ['disk.img']);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});
