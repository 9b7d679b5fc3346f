// Writes one image to one or more cards at once and verifies every card by reading it back.
//
// Order of work on each card:
//  1. Zero the first MiB (old partition table, GPT header and entries, boot loaders in the
//     gap before the first partition) and the last MiB (backup GPT, RAID/ZFS labels at the
//     end) and sync: from here on the card is clearly blank, not half an old system.
//  2. Write the mapped ranges in order, in chunks that end at multiples of 4 MiB, syncing
//     every 16 MiB so progress counts bytes on the card, not in the page cache. The first
//     4 KiB (the MBR/partition table) are held back.
//  3. Sync, then write the first 4 KiB and sync: an interrupted burn leaves a card that does
//     not boot.
//  4. Flush the device's page cache (BLKFLSBUF) and read back every written chunk through the
//     same exclusive handle, comparing SHA-256 per block map range (and a CRC-32 per chunk, to
//     say where a range went wrong, down to the byte for raw images); the zeroed areas must
//     read as zeros. A card that fails gets its first sector zeroed too.
// Unmapped blocks elsewhere are left as they were: the file systems in the image do not read
// them (the same promise bmaptool makes), and the area past the image is outside every partition.
// The image is read once; each chunk goes to all cards in parallel.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import type { BlockMap } from '../image/bmap.ts';
import { deviceIdentity, flushDeviceCache, rereadPartitions } from './devices.ts';
import { identityChange, type DeviceIdentity } from './safety.ts';
import type { Chunk, ImageSource } from './source.ts';

const MiB = 1024 * 1024;
export const HEAD_BYTES = 4096;
export const WIPE_BYTES = MiB;

export interface BurnTarget {
  path: string;
  kind: 'block' | 'file';
  /** Size in bytes of a block device (from lsblk); files grow to the image size. */
  size?: number;
  /** The block device as it was checked: after opening it, the burn goes on only if it is
   *  still that device (a card swapped at the prompt for a disk that took its name is not). */
  identity?: DeviceIdentity;
}

export type Phase = 'preparing' | 'writing' | 'verifying' | 'verified' | 'written' | 'failed' | 'interrupted';

export interface CardProgress {
  path: string;
  phase: Phase;
  /** Bytes written and synced (writing) or read back (verifying). */
  done: number;
  /** What `done` runs up to; null before the first card is opened. */
  total: number | null;
}

export interface Mismatch {
  /** Byte offset on the card of the first difference found (or of the chunk, when the exact byte is unknown). */
  offset: number;
  length: number;
  detail: string;
}

export interface CardReport {
  path: string;
  status: 'verified' | 'written' | 'failed' | 'interrupted';
  imageSize: number;
  mappedBytes: number;
  /** Every byte sent to the card, zeroing included. */
  bytesWritten: number;
  writeSeconds: number;
  verifySeconds: number;
  mismatches: Mismatch[];
  error?: string;
}

export interface BurnOptions {
  source: ImageSource;
  targets: BurnTarget[];
  signal?: AbortSignal;
  onProgress?: (p: CardProgress) => void;
  /** Read back and compare (default true). */
  verify?: boolean;
  hooks?: {
    /** Runs after a card is written and flushed, before it is read back (tests change the card here). */
    beforeVerify?: (path: string) => Promise<void>;
    /** Runs after each periodic sync during writing (tests interrupt a burn here). */
    afterSync?: (path: string, done: number) => Promise<void>;
  };
  chunkSize?: number;
  syncEvery?: number;
}

/** A chunk as written: its CRC-32 finds which chunk a bad range went wrong in (the SHA-256 per range is the check). */
interface Segment {
  offset: number;
  length: number;
  crc32: number;
}

class InterruptedError extends Error {}
class NotCheckedDevice extends Error {}

class Card {
  fh: Awaited<ReturnType<typeof open>> | null = null;
  size = 0;
  bytesWritten = 0;
  synced = 0;
  sinceSync = 0;
  error: string | null = null;
  syncing: Promise<void> | null = null;
  headWritten = false;
  writeStart = 0;
  writeSeconds = 0;
  verifySeconds = 0;
  verifyTotal = 0;
  mismatches: Mismatch[] = [];
  status: CardReport['status'] | null = null;

  constructor(
    readonly target: BurnTarget,
    private readonly syncEvery: number,
    private readonly progress: (c: Card, phase: Phase, done: number) => void,
    private readonly afterSync?: (path: string, done: number) => Promise<void>,
  ) {}

  get path(): string {
    return this.target.path;
  }

  async open(imageSize: number): Promise<void> {
    if (this.target.kind === 'block') {
      // O_EXCL on a block device: the kernel refuses while anything has it mounted or claimed.
      this.fh = await open(this.path, constants.O_RDWR | constants.O_EXCL);
      this.size = this.target.size ?? imageSize;
      if (this.target.identity) {
        const changed = identityChange(this.target.identity, await deviceIdentity((await this.fh.stat({ bigint: true })).rdev));
        if (changed) {
          await this.close();
          throw new NotCheckedDevice(`${this.path} is not the device that was checked: ${changed}. Nothing was written to it`);
        }
      }
    } else {
      this.fh = await open(this.path, constants.O_RDWR | constants.O_CREAT, 0o644);
      const st = await this.fh.stat();
      if (st.size < imageSize) await this.fh.truncate(imageSize);
      this.size = Math.max(st.size, imageSize);
    }
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (this.error || !this.fh) return;
    try {
      for (let done = 0; done < data.length; ) {
        const { bytesWritten } = await this.fh.write(data, done, data.length - done, offset + done);
        done += bytesWritten;
      }
      this.bytesWritten += data.length;
      this.sinceSync += data.length;
      if (this.sinceSync >= this.syncEvery) {
        // Sync in the background while the next chunks are written; wait only when the
        // previous sync is still running, so at most two sync intervals are unsynced.
        if (this.syncing) await this.syncing;
        this.syncing = this.syncTo(this.bytesWritten).finally(() => {
          this.syncing = null;
        });
      }
    } catch (err) {
      this.error = `write failed at byte ${offset}: ${(err as Error).message}`;
    }
  }

  private async syncTo(target: number): Promise<void> {
    const fh = this.fh;
    if (!fh) return;
    this.sinceSync = this.bytesWritten - target;
    try {
      await fh.datasync();
    } catch (err) {
      this.error ??= `sync failed: ${(err as Error).message}`;
      return;
    }
    this.synced = Math.max(this.synced, target);
    this.progress(this, 'writing', this.synced);
    await this.afterSync?.(this.path, this.synced);
  }

  /** Waits for a background sync, then syncs everything written so far. */
  async sync(): Promise<void> {
    if (this.syncing) await this.syncing;
    await this.syncTo(this.bytesWritten);
  }

  /** Leaves the first sector zero, synced: the card will not boot a half-written system.
   *  False when that failed (the card may be gone). */
  async makeUnbootable(): Promise<boolean> {
    await this.syncing?.catch(() => undefined);
    try {
      this.fh ??= await open(this.path, constants.O_RDWR);
      await this.fh.write(Buffer.alloc(HEAD_BYTES), 0, HEAD_BYTES, 0);
      await this.fh.datasync();
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.syncing?.catch(() => undefined);
    const fh = this.fh;
    this.fh = null;
    await fh?.close().catch(() => undefined);
  }
}

/** Areas zeroed before writing: the first and the last MiB of the card (clipped), 4 KiB aligned. */
export function wipeAreas(cardSize: number, imageSize: number): Array<[number, number]> {
  const head: [number, number] = [0, Math.min(WIPE_BYTES, cardSize)];
  const tailStart = Math.max(Math.floor((cardSize - WIPE_BYTES) / HEAD_BYTES) * HEAD_BYTES, imageSize, head[1]);
  return tailStart < cardSize ? [head, [tailStart, cardSize]] : [head];
}

/** Byte intervals of `areas` that no mapped range covers: they must read back as zeros. */
export function unmappedParts(areas: Array<[number, number]>, map: BlockMap): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [s, e] of areas) {
    let pos = s;
    for (const r of map.ranges) {
      const rs = r.first * map.blockSize;
      const re = Math.min((r.last + 1) * map.blockSize, map.imageSize);
      if (re <= pos) continue;
      if (rs >= e) break;
      if (rs > pos) out.push([pos, Math.min(rs, e)]);
      pos = Math.max(pos, re);
      if (pos >= e) break;
    }
    if (pos < e) out.push([pos, e]);
  }
  return out;
}

export async function burn(opts: BurnOptions): Promise<CardReport[]> {
  const chunkSize = opts.chunkSize ?? 4 * MiB;
  const syncEvery = opts.syncEvery ?? 16 * MiB;
  const { source, signal } = opts;
  const imageSize = source.imageSize;
  const mapped = source.mappedBytes();
  const head = Buffer.alloc(Math.min(HEAD_BYTES, imageSize));
  const segments: Segment[] = [];
  let writeTotal: number | null = null;

  const progress = (c: Card, phase: Phase, done: number) =>
    opts.onProgress?.({ path: c.path, phase, done, total: phase === 'verifying' ? verifyTotal(c) : writeTotal });
  const cards = opts.targets.map((t) => new Card(t, syncEvery, progress, opts.hooks?.afterSync));
  const verifyTotal = (c: Card) => c.verifyTotal;
  const live = () => cards.filter((c) => !c.error);
  const aborted = () => signal?.aborted === true;

  let sourceError: string | null = null;
  let it: AsyncGenerator<Chunk> | null = null;
  try {
    // 1. open and wipe
    await Promise.all(
      cards.map(async (c) => {
        try {
          await c.open(imageSize);
          c.writeStart = performance.now();
          const wipe = wipeAreas(c.size, imageSize);
          if (writeTotal === null) {
            writeTotal = mapped + wipe.reduce((n, [s, e]) => n + e - s, 0);
          }
          opts.onProgress?.({ path: c.path, phase: 'preparing', done: 0, total: writeTotal });
          const zeros = Buffer.alloc(Math.min(chunkSize, WIPE_BYTES));
          for (const [s, e] of wipe) {
            for (let p = s; p < e; p += zeros.length) await c.write(p, zeros.subarray(0, Math.min(zeros.length, e - p)));
          }
          if (!c.error) await c.sync();
        } catch (err) {
          c.error = err instanceof NotCheckedDevice ? err.message : `cannot open ${c.path} for writing: ${(err as Error).message}`;
        }
      }),
    );

    // 2. the mapped data, once from the source to every card
    it = source.chunks(chunkSize, signal);
    let next = it.next();
    next.catch(() => undefined);
    for (;;) {
      if (aborted()) throw new InterruptedError();
      const r = await next;
      if (r.done) break;
      next = it.next();
      next.catch(() => undefined);
      let { offset, data } = r.value;
      if (offset < head.length) {
        const n = Math.min(head.length - offset, data.length);
        data.copy(head, offset, 0, n);
        offset += n;
        data = data.subarray(n);
      }
      if (data.length === 0) continue;
      segments.push({ offset, length: data.length, crc32: crc32(data) });
      if (live().length === 0) break;
      await Promise.all(live().map((c) => c.write(offset, data)));
    }
    if (aborted()) throw new InterruptedError();

    // 3. the first sector last, once the data it points at is on the card
    segments.unshift({ offset: 0, length: head.length, crc32: crc32(head) });
    await Promise.all(
      live().map(async (c) => {
        await c.sync();
        if (c.error) return;
        await c.write(0, head);
        if (!c.error) await c.sync(); // sync() records a failure in c.error, it does not throw
        if (c.error) {
          // The head may be on the card although it failed: it must not boot.
          await c.makeUnbootable();
          return;
        }
        c.headWritten = true;
        c.writeSeconds = (performance.now() - c.writeStart) / 1000;
      }),
    );
    if (aborted()) throw new InterruptedError(); // as promised on the signal: no card left bootable
  } catch (err) {
    if (err instanceof InterruptedError || aborted()) {
      await Promise.all(live().map((c) => c.makeUnbootable()));
      for (const c of live()) c.status = 'interrupted';
    } else {
      sourceError = (err as Error).message;
      await Promise.all(live().map((c) => c.makeUnbootable()));
      for (const c of live()) c.error = sourceError;
    }
  } finally {
    await it?.return(undefined).catch(() => undefined); // ends xz when we stopped early
  }

  // 4. flush and read back, through the handle that wrote: while piinit holds the card open
  // exclusively, udev cannot re-read its partition table and nothing can mount it.
  const needsVerify = opts.verify !== false && cards.some((c) => !c.error && !c.status);
  const map = needsVerify ? source.map() : null;
  await Promise.all(
    cards.map(async (c) => {
      if (c.error || c.status || opts.verify === false) {
        await c.close();
        if (c.error || c.status) return;
        c.status = 'written';
        if (c.target.kind === 'block') await rereadPartitions(c.path);
        return;
      }
      try {
        if (c.target.kind === 'block') await flushDeviceCache(c.path);
        if (aborted()) throw new InterruptedError();
        await opts.hooks?.beforeVerify?.(c.path);
        const started = performance.now();
        const zeroParts = unmappedParts(wipeAreas(c.size, imageSize), map!);
        c.verifyTotal = segments.reduce((n, s) => n + s.length, 0) + zeroParts.reduce((n, [s, e]) => n + e - s, 0);
        c.mismatches = await readBack(c.fh!, segments, zeroParts, map!, source, chunkSize, signal, (done) =>
          progress(c, 'verifying', done),
        );
        c.verifySeconds = (performance.now() - started) / 1000;
        c.status = c.mismatches.length ? 'failed' : 'verified';
        if (c.mismatches.length) {
          // A card that does not hold the image must not boot what it holds instead.
          const zeroed = await c.makeUnbootable();
          c.error =
            `verification failed: ${c.mismatches.length} mismatch(es), first at byte ${c.mismatches[0]!.offset}` +
            (zeroed ? '; its first sector is now zero, so it will not boot' : '');
        }
      } catch (err) {
        if (err instanceof InterruptedError || aborted()) {
          await c.makeUnbootable();
          c.status = 'interrupted';
        } else {
          c.error = `read-back failed: ${(err as Error).message}`;
          if (await c.makeUnbootable()) c.error += '; its first sector is now zero, so it will not boot';
        }
      } finally {
        await c.close();
      }
      if (c.status === 'verified' && c.target.kind === 'block') await rereadPartitions(c.path);
    }),
  );

  return cards.map((c) => {
    const status = c.status === 'interrupted' ? 'interrupted' : c.error ? 'failed' : (c.status ?? 'failed');
    opts.onProgress?.({ path: c.path, phase: status, done: c.bytesWritten, total: writeTotal }); // 'written': not read back
    return {
      path: c.path,
      status,
      imageSize,
      mappedBytes: source.mappedBytes(),
      bytesWritten: c.bytesWritten,
      writeSeconds: c.writeSeconds,
      verifySeconds: c.verifySeconds,
      mismatches: c.mismatches,
      ...(c.error ? { error: c.error } : {}),
    };
  });
}

/** Reads the card back: every data segment by SHA-256, every block map range, the zeroed areas. */
async function readBack(
  fh: FileHandle,
  segments: Segment[],
  zeroParts: Array<[number, number]>,
  map: BlockMap,
  source: ImageSource,
  chunkSize: number,
  signal: AbortSignal | undefined,
  onDone: (done: number) => void,
): Promise<Mismatch[]> {
  const mismatches: Mismatch[] = [];
  let done = 0;
  const read = async (offset: number, length: number): Promise<Buffer> => {
    const b = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(b, got, length - got, offset + got);
      if (bytesRead === 0) throw new Error(`the card ends at byte ${offset + got}`);
      got += bytesRead;
    }
    return b;
  };
  const ranges = map.ranges.map((r) => ({
    start: r.first * map.blockSize,
    end: Math.min((r.last + 1) * map.blockSize, map.imageSize),
    want: r.sha256,
    hash: createHash('sha256'),
  }));
  let ri = 0;
  const sorted = [...segments].sort((a, b) => a.offset - b.offset);
  for (const s of sorted) {
    if (signal?.aborted) throw new InterruptedError();
    const b = await read(s.offset, s.length);
    if (crc32(b) !== s.crc32) mismatches.push(await locate(source, s, b));
    // feed the bytes to the block map ranges they belong to
    const sEnd = s.offset + s.length;
    while (ri < ranges.length && ranges[ri]!.start < sEnd) {
      const r = ranges[ri]!;
      const from = Math.max(r.start, s.offset);
      const to = Math.min(r.end, sEnd);
      if (to > from) r.hash.update(b.subarray(from - s.offset, to - s.offset));
      if (r.end <= sEnd) {
        if (r.hash.digest('hex') !== r.want && !mismatches.some((m) => m.offset >= r.start && m.offset < r.end)) {
          mismatches.push({ offset: r.start, length: r.end - r.start, detail: `block map range ${r.start}-${r.end - 1}: SHA-256 differs` });
        }
        ri++;
      } else break;
    }
    done += s.length;
    onDone(done);
  }
  if (ri !== ranges.length) throw new Error(`read back ${ri} of the block map's ${ranges.length} ranges`);
  const zero = Buffer.alloc(chunkSize);
  for (const [s, e] of zeroParts) {
    for (let p = s; p < e; p += chunkSize) {
      const len = Math.min(chunkSize, e - p);
      const b = await read(p, len);
      if (!b.equals(zero.subarray(0, len))) {
        const i = b.findIndex((x) => x !== 0);
        mismatches.push({ offset: p + i, length: 1, detail: `byte ${p + i} should have been zeroed` });
        break;
      }
      done += len;
      onDone(done);
    }
  }
  return mismatches.sort((a, b) => a.offset - b.offset);
}

/** Finds the first differing byte of a chunk, when the image can be read at random. */
async function locate(source: ImageSource, s: Segment, got: Buffer): Promise<Mismatch> {
  if (source.readImage) {
    const want = await source.readImage(s.offset, s.length);
    for (let i = 0; i < s.length; i++) {
      if (want[i] !== got[i]) {
        return { offset: s.offset + i, length: s.length - i, detail: `byte ${s.offset + i} differs (chunk ${s.offset}+${s.length})` };
      }
    }
  }
  return { offset: s.offset, length: s.length, detail: `chunk at byte ${s.offset} (${s.length} bytes) differs` };
}
