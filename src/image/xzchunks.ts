// The xz copy of an image, written as one independent xz stream per content-defined chunk.
// The .xz format allows concatenated streams (xz -dc, xz --list, piinit burn and bmaptool
// read them as one file), and independent streams let a rebuild copy the compressed bytes
// of every chunk it already has in the previous .xz instead of compressing it again. After
// a config-only change most of the image is the same base, so most chunks are copied.
//
// Chunk ends are chosen by the content of 4 KiB blocks, not by offset: when a grown file
// shifts the rest of a file system by a few blocks, the chunk ends shift with it and the
// chunks after the change are still found.
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { closeSync, fchmodSync, openSync, readSync, writeSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export const CHUNK_BLOCK = 4096;

export interface ChunkParams {
  /** No chunk ends before this many blocks… */
  minBlocks: number;
  /** …then a block whose fingerprint has these low bits all set ends one (mean 2^maskBits blocks more)… */
  maskBits: number;
  /** …and none grows past this many blocks. */
  maxBlocks: number;
}

/** 512 KiB minimum, about 2.5 MiB mean, 8 MiB at most: an edit recompresses a few MiB; the
 *  price is an xz copy a few per cent larger than one xz -T0 stream (see docs/images.md). */
export const DEFAULT_CHUNKS: ChunkParams = { minBlocks: 128, maskBits: 9, maxBlocks: 2048 };

/** xz -1: its 1 MiB dictionary already spans most of a chunk, so the larger ones of -2/-3
 *  (2 and 4 MiB) find little more. On the arm64 server image: -1 23 s, 141.7 MiB; -3 36 s,
 *  138.6 MiB (2 cores, 2026-11-28). */
export const DEFAULT_XZ_PRESET = 1;

/**
 * A cheap fingerprint of one block: 16 words sampled across it, mixed. An all-zero block
 * gives 0, which never ends a chunk, so runs of zeros (holes) stay in long chunks. Pure.
 * `words` is the same bytes as 32-bit words (little-endian) when they are aligned: reading
 * through it is several times faster than readUInt32LE over a whole image.
 */
export function blockFingerprint(buf: Buffer, off: number, words?: Uint32Array): number {
  let h = 0;
  for (let i = off + 60; i < off + CHUNK_BLOCK; i += 256) {
    h = Math.imul(h ^ (words ? words[i >>> 2]! : buf.readUInt32LE(i)), 0x9e3779b1);
    h ^= h >>> 15;
  }
  return h >>> 0;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Where chunks end in data, as offsets one past each chunk's last byte (the last one is
 * data.length). `carried` blocks of the open chunk came before data (streaming). Pure.
 */
export function chunkEnds(data: Buffer, params: ChunkParams, carried = 0): { ends: number[]; open: number } {
  const mask = (1 << params.maskBits) - 1;
  const words = LITTLE_ENDIAN && data.byteOffset % 4 === 0 ? new Uint32Array(data.buffer, data.byteOffset, data.length >>> 2) : undefined;
  const ends: number[] = [];
  let inChunk = carried;
  for (let off = 0; off + CHUNK_BLOCK <= data.length; off += CHUNK_BLOCK) {
    inChunk += 1;
    const fp = inChunk >= params.minBlocks ? blockFingerprint(data, off, words) : 0;
    if (inChunk >= params.maxBlocks || (fp !== 0 && (fp & mask) === mask)) {
      ends.push(off + CHUNK_BLOCK);
      inChunk = 0;
    }
  }
  return { ends, open: inChunk };
}

export interface ChunkRange {
  start: number;
  end: number;
  sha256: string;
}

/**
 * The image's chunks in order with their hashes, in one pass of synchronous reads into one
 * buffer: a pass over 1.5 GB takes a third of the time it takes with a fresh buffer per
 * async read, and the next step needs every hash before it can decide anything.
 */
export function chunkRanges(path: string, params: ChunkParams): ChunkRange[] {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(16 * 1024 * 1024);
    const ranges: ChunkRange[] = [];
    let pos = 0;
    let chunkStart = 0;
    let hash = createHash('sha256');
    let carried = 0;
    for (;;) {
      let n = 0;
      while (n < buf.length) {
        const got = readSync(fd, buf, n, buf.length - n, pos + n);
        if (got === 0) break;
        n += got;
      }
      if (n === 0) break;
      const data = buf.subarray(0, n);
      const { ends, open: openBlocks } = chunkEnds(data, params, carried);
      let from = 0;
      for (const end of ends) {
        hash.update(data.subarray(from, end));
        ranges.push({ start: chunkStart, end: pos + end, sha256: hash.digest('hex') });
        chunkStart = pos + end;
        hash = createHash('sha256');
        from = end;
      }
      hash.update(data.subarray(from));
      carried = openBlocks;
      pos += n;
      if (n < buf.length) break;
    }
    if (pos > chunkStart) ranges.push({ start: chunkStart, end: pos, sha256: hash.digest('hex') });
    return ranges;
  } finally {
    closeSync(fd);
  }
}

function readRange(fd: number, start: number, length: number, what: string): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let n = 0; n < length; ) {
    const got = readSync(fd, b, n, length - n, start + n);
    if (got === 0) throw new Error(`${what} is shorter than expected`);
    n += got;
  }
  return b;
}

function xzCompress(data: Buffer, preset: number): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('xz', ['-z', '-c', `-${preset}`, '-T1'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolvePromise(Buffer.concat(out)) : reject(new Error(`xz exited with ${code}: ${err.trim()}`)),
    );
    child.stdin.on('error', () => undefined); // a failed xz reports through 'close'
    child.stdin.end(data);
  });
}

/** Runs at most n of the given tasks at once. */
function slots(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let free = n;
  const waiting: Array<() => void> = [];
  return async (task) => {
    if (free === 0) await new Promise<void>((r) => waiting.push(r));
    else free -= 1;
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free += 1;
    }
  };
}

interface ChunkRecord {
  sha256: string;
  /** Where the chunk's xz stream is in the .xz file. */
  offset: number;
  length: number;
}

/**
 * What the last build left: its chunks, and the .xz it wrote as stat saw it right after the
 * rename. Any write to that file since changes its ctime (which no one can set back), so
 * an unchanged stat means the streams are still where the index says.
 */
interface XzIndex {
  version: 2;
  preset: number;
  params: ChunkParams;
  xz: FileStamp;
  chunks: ChunkRecord[];
}

interface FileStamp {
  dev: number;
  ino: number;
  size: number;
  mtimeNs: string;
  ctimeNs: string;
}

async function stamp(path: string): Promise<FileStamp> {
  const st = await stat(path, { bigint: true });
  return { dev: Number(st.dev), ino: Number(st.ino), size: Number(st.size), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs) };
}

export interface XzResult {
  xzBytes: number;
  chunks: number;
  /** Chunks copied from the previous .xz. */
  reused: number;
}

export interface XzOptions {
  /** Where chunk indexes of earlier builds are kept (a cache directory); none: compress every chunk. */
  indexDir?: string;
  preset?: number;
  params?: ChunkParams;
  /** xz processes at once. */
  jobs?: number;
  /** Mode of the .xz (default 0644); an image's copy holds what the image holds. */
  mode?: number;
}

/** An .xz written beside its final name, not yet in place. */
export interface PreparedXz extends XzResult {
  /** Renames it into place and records its chunks for the next build. */
  commit(): Promise<void>;
  /** Removes it (after commit: nothing to do). */
  discard(): Promise<void>;
}

function indexPath(indexDir: string, xzPath: string): string {
  return join(indexDir, `${createHash('sha256').update(resolve(xzPath)).digest('hex').slice(0, 24)}.json`);
}

/** The previous build's chunks, when its .xz is still exactly what that build wrote. */
async function previousChunks(xzPath: string, idxPath: string, preset: number, params: ChunkParams): Promise<Map<string, ChunkRecord>> {
  const none = new Map<string, ChunkRecord>();
  let index: XzIndex;
  try {
    index = JSON.parse(await readFile(idxPath, 'utf8')) as XzIndex;
    if (index.version !== 2 || index.preset !== preset || JSON.stringify(index.params) !== JSON.stringify(params)) return none;
    if (JSON.stringify(await stamp(xzPath)) !== JSON.stringify(index.xz)) return none;
  } catch {
    return none;
  }
  return new Map(index.chunks.map((c) => [c.sha256, c]));
}

/**
 * Writes the .xz of the raw image beside xzPath, copying the streams of unchanged chunks from
 * the xz already at xzPath when its index says it can. commit() renames it into place, so
 * the caller can do that together with its other outputs.
 */
export async function writeChunkedXz(raw: string, xzPath: string, opts: XzOptions): Promise<PreparedXz> {
  const preset = opts.preset ?? DEFAULT_XZ_PRESET;
  const params = opts.params ?? DEFAULT_CHUNKS;
  const jobs = opts.jobs ?? 2;
  const idxPath = opts.indexDir ? indexPath(opts.indexDir, xzPath) : null;
  const previous = idxPath ? await previousChunks(xzPath, idxPath, preset, params) : new Map<string, ChunkRecord>();
  const old = previous.size > 0 ? openSync(xzPath, 'r') : null;
  const rawFd = openSync(raw, 'r');
  const tmp = `${xzPath}.tmp`;
  const mode = opts.mode ?? 0o644;
  const out = openSync(tmp, 'w+', mode);
  fchmodSync(out, mode); // a leftover tmp keeps its mode through open
  const records: ChunkRecord[] = [];
  const writtenBySha = new Map<string, ChunkRecord>();
  let written = 0;
  let reused = 0;
  try {
    // Compressions run up to `jobs` at a time; a queue a few chunks deep keeps every xz busy
    // while a large chunk holds the head. Streams are written in chunk order.
    const queue: Array<{ sha256: string; stream: Buffer | Promise<Buffer> }> = [];
    // A chunk seen before in this image (runs of zeros, mostly) is compressed once: while
    // its stream is on the way it is shared, once written it is read back from the new file.
    const compressing = new Map<string, Promise<Buffer>>();
    const limit = slots(jobs);
    const flush = async () => {
      const head = queue.shift()!;
      const stream = await head.stream;
      writeSync(out, stream, 0, stream.length, written);
      const rec = { sha256: head.sha256, offset: written, length: stream.length };
      records.push(rec);
      if (!writtenBySha.has(rec.sha256)) writtenBySha.set(rec.sha256, rec);
      compressing.delete(rec.sha256); // from now on read back from the new file
      written += stream.length;
    };
    for (const range of chunkRanges(raw, params)) {
      const prev = previous.get(range.sha256);
      const earlier = writtenBySha.get(range.sha256);
      let stream: Buffer | Promise<Buffer>;
      if (prev) {
        reused += 1;
        stream = readRange(old!, prev.offset, prev.length, xzPath);
      } else if (earlier) {
        stream = readRange(out, earlier.offset, earlier.length, tmp);
      } else {
        let pending = compressing.get(range.sha256);
        if (!pending) {
          const chunk = readRange(rawFd, range.start, range.end - range.start, raw);
          pending = limit(() => xzCompress(chunk, preset));
          pending.catch(() => undefined); // awaited in flush; avoids an unhandled rejection meanwhile
          compressing.set(range.sha256, pending);
        }
        stream = pending;
      }
      queue.push({ sha256: range.sha256, stream });
      while (queue.length > jobs * 4 || (queue.length > 0 && queue[0]!.stream instanceof Buffer)) await flush();
    }
    while (queue.length > 0) await flush();
    closeSync(out);
  } catch (err) {
    try {
      closeSync(out);
    } catch {
      // already closed
    }
    await rm(tmp, { force: true });
    throw err;
  } finally {
    closeSync(rawFd);
    if (old !== null) closeSync(old);
  }
  const commit = async () => {
    await rename(tmp, xzPath);
    if (idxPath) {
      const index: XzIndex = { version: 2, preset, params, xz: await stamp(xzPath), chunks: records };
      await mkdir(opts.indexDir!, { recursive: true });
      await writeFile(`${idxPath}.tmp`, JSON.stringify(index));
      await rename(`${idxPath}.tmp`, idxPath);
    }
  };
  return { xzBytes: written, chunks: records.length, reused, commit, discard: () => rm(tmp, { force: true }) };
}
