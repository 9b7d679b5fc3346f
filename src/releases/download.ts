// Getting bytes from an http(s) URL or a local path (directory mirrors), with resumable,
// verified downloads into a temp file that is renamed into place only once verified.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rename, rm, stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Agent, type Dispatcher, interceptors, request } from 'undici';
import { environmentError } from '../errors.ts';
import { mtimeOf, waitForPidLock } from '../pid-lock.ts';
import { NotFoundError, UnavailableError, VerificationError } from './errors.ts';

export interface ProgressEvent {
  /** A short name for the file, e.g. "consul_1.8.7_linux_amd64.zip". */
  file: string;
  /** 'waiting': another piinit (or task) is downloading this file into the same cache. */
  phase: 'waiting' | 'start' | 'progress' | 'done';
  /** Bytes of the file present so far (including a resumed part). */
  received: number;
  /** Total size when known. */
  total: number | null;
  /** While waiting: the PID of the download's holder (null when not yet written). */
  holder?: number | null;
}
export type OnProgress = (ev: ProgressEvent) => void;

let shared: Dispatcher | undefined;
function dispatcher(): Dispatcher {
  shared ??= new Agent({ connect: { timeout: 15_000 }, headersTimeout: 30_000, bodyTimeout: 60_000 }).compose(
    interceptors.redirect({ maxRedirections: 5 }),
  );
  return shared;
}

export function isHttp(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

/** base + relative parts, for URLs and local directories alike. */
export function joinLocation(base: string, ...parts: string[]): string {
  return [base.replace(/\/+$/, ''), ...parts.map((p) => p.replace(/^\/+/, ''))].join('/');
}

function localPath(location: string): string {
  return location.startsWith('file:') ? fileURLToPath(location) : location;
}

function unreachable(url: string, err: unknown): UnavailableError {
  const e = err as { code?: string; cause?: { code?: string }; message?: string };
  const code = e.code ?? e.cause?.code ?? e.message ?? String(err);
  let host = url;
  try {
    host = new URL(url).host;
  } catch {}
  return new UnavailableError(`${host} is unreachable (${code}) while getting ${url}`);
}

/** A small file (index, checksum list, signature) fully into memory. */
export async function fetchBytes(location: string, maxBytes = 128 * 1024 * 1024): Promise<Buffer> {
  if (!isHttp(location)) {
    try {
      return await readFile(localPath(location));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(location);
      throw new UnavailableError(`cannot read ${location}: ${(err as Error).message}`);
    }
  }
  let res: Dispatcher.ResponseData;
  try {
    res = await request(location, { dispatcher: dispatcher() });
  } catch (err) {
    throw unreachable(location, err);
  }
  if (res.statusCode === 404 || res.statusCode === 410) {
    await res.body.dump();
    throw new NotFoundError(location);
  }
  if (res.statusCode < 200 || res.statusCode >= 300) {
    await res.body.dump();
    throw new UnavailableError(`HTTP ${res.statusCode} from ${location}`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res.body) {
      n += (c as Buffer).length;
      if (n > maxBytes) throw new UnavailableError(`${location} is larger than ${maxBytes} bytes`);
      chunks.push(c as Buffer);
    }
  } catch (err) {
    if (err instanceof UnavailableError) throw err;
    throw unreachable(location, err);
  }
  return Buffer.concat(chunks);
}

async function hashOf(path: string): Promise<Hash> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h;
}

export async function sha256File(path: string): Promise<string> {
  return (await hashOf(path)).digest('hex');
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

export interface DownloadOptions {
  /** Lower-case hex. A mismatch discards the download and throws VerificationError. */
  expectedSha256?: string;
  expectedSize?: number;
  label: string;
  onProgress?: OnProgress;
}

export interface DownloadResult {
  sha256: string;
  size: number;
  /** Bytes that actually came over the network in this call. */
  transferred: number;
}

const MAX_ATTEMPTS = 6;

/**
 * Downloads `location` to `dest`. The bytes go to `dest + ".part"` first; an interrupted
 * transfer (dropped connection, killed process) continues from there with an HTTP Range
 * request. `dest` appears only complete and, when a checksum is given, verified.
 * One download of a part at a time: another run (or task) sharing the cache waits its turn.
 */
export async function downloadFile(location: string, dest: string, opts: DownloadOptions): Promise<DownloadResult> {
  const part = `${dest}.part`;
  const release = await lockPart(part, (holder) =>
    opts.onProgress?.({ file: opts.label, phase: 'waiting', received: 0, total: null, holder }),
  );
  try {
    const resumed = (await sizeOf(part)) > 0;
    try {
      return await downloadOnce(location, dest, part, opts);
    } catch (err) {
      // A part left by an earlier run can be the start of a file that has changed upstream
      // since (a re-uploaded asset, an updated mirror): its check fails on the old bytes, and
      // the part is gone by now. From the start the download can pass.
      if (!(err instanceof VerificationError) || !resumed) throw err;
      return await downloadOnce(location, dest, part, opts);
    }
  } finally {
    await release();
  }
}

/** A lock holder that has written neither its part nor its lock for this long is gone. The
 *  part is written as bytes arrive, and a transfer stalled for 60 s is broken off. */
const LOCK_IDLE_MS = 3 * 60_000;

/**
 * Takes `<part>.lock` (O_EXCL, holding our PID), waiting while another process, or another
 * task of this one, holds it: two writers of one part would interleave their bytes, and a
 * hash taken over the stream would then vouch for a file that holds other bytes. A lock
 * whose holder has exited, or is idle, is taken over. `onWait` hears once that we wait.
 */
export function lockPart(part: string, onWait?: (holder: number | null) => void): Promise<() => Promise<void>> {
  return waitForPidLock(`${part}.lock`, 0o644, {
    writingMs: LOCK_IDLE_MS,
    ...(onWait ? { onWait } : {}),
    takeOver: async (holder) => Date.now() - Math.max(holder.mtimeMs, await mtimeOf(part)) > LOCK_IDLE_MS,
  });
}

async function downloadOnce(location: string, dest: string, part: string, opts: DownloadOptions): Promise<DownloadResult> {
  let transferred = 0;
  // The hash is computed as the bytes arrive; after a failed attempt it is rebuilt from the
  // part on disk (the bytes that really got written), so it always describes the file.
  let hash: Hash | null = null;
  const emit = (phase: ProgressEvent['phase'], received: number, total: number | null) =>
    opts.onProgress?.({ file: opts.label, phase, received, total });

  if (!isHttp(location)) {
    try {
      hash = createHash('sha256');
      const h = hash;
      const tap = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          h.update(chunk);
          transferred += chunk.length;
          cb(null, chunk);
        },
      });
      await pipeline(createReadStream(localPath(location)), tap, createWriteStream(part));
    } catch (err) {
      await rm(part, { force: true });
      if (environmentError(err) && (err as NodeJS.ErrnoException).path === part) throw err; // writing: a full disk
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(location);
      throw new UnavailableError(`cannot read ${location}: ${(err as Error).message}`);
    }
  } else {
    let lastErr: unknown;
    let done = false;
    for (let attempt = 0; attempt < MAX_ATTEMPTS && !done; attempt++) {
      if (attempt > 0) await sleep(Math.min(2000, 200 * attempt));
      let have = await sizeOf(part);
      if (opts.expectedSize !== undefined && have > opts.expectedSize) {
        await rm(part, { force: true });
        have = 0;
      }
      if (opts.expectedSize !== undefined && have === opts.expectedSize && have > 0) break;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(location, {
          dispatcher: dispatcher(),
          headers: have > 0 ? { range: `bytes=${have}-` } : {},
        });
      } catch (err) {
        lastErr = unreachable(location, err);
        // Nothing came back at all: a host that cannot be reached will not be reachable on a retry either.
        if (attempt === 0 || have === 0) throw lastErr;
        continue;
      }
      if (res.statusCode === 404 || res.statusCode === 410) {
        await res.body.dump();
        throw new NotFoundError(location);
      }
      if (res.statusCode === 416) {
        // Our part is not a prefix the server recognises: start over.
        await res.body.dump();
        await rm(part, { force: true });
        continue;
      }
      if (res.statusCode !== 200 && res.statusCode !== 206) {
        await res.body.dump();
        throw new UnavailableError(`HTTP ${res.statusCode} from ${location}`);
      }
      let append = false;
      if (res.statusCode === 206) {
        const m = /bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
        append = m !== null && Number(m[1]) === have;
        if (!append) {
          await res.body.dump();
          await rm(part, { force: true });
          continue;
        }
      } else {
        have = 0; // the server ignored the Range header: it sends the whole file
      }
      hash = append ? await hashOf(part) : createHash('sha256');
      const h = hash;
      const len = Number(res.headers['content-length']);
      const total = Number.isFinite(len) ? have + len : (opts.expectedSize ?? null);
      let received = have;
      emit('start', received, total);
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          received += chunk.length;
          transferred += chunk.length;
          h.update(chunk);
          emit('progress', received, total);
          cb(null, chunk);
        },
      });
      try {
        await pipeline(res.body, counter, createWriteStream(part, { flags: append ? 'a' : 'w' }));
        done = true;
      } catch (err) {
        hash = null;
        // The disk, not the network (a full disk): no retry helps, and the CLI names it.
        if (environmentError(err)) throw err;
        const e = err as { code?: string; message?: string };
        lastErr = new UnavailableError(
          `the connection broke while downloading ${location} (${e.code ?? e.message ?? String(err)}); ` +
            'the part received so far is kept and the next run continues from it',
        );
      }
    }
    if (!done && !(opts.expectedSize !== undefined && (await sizeOf(part)) === opts.expectedSize)) {
      throw lastErr instanceof Error ? lastErr : new UnavailableError(`could not download ${location}`);
    }
  }

  const size = await sizeOf(part);
  const sha256 = hash ? hash.digest('hex') : await sha256File(part);
  if (opts.expectedSize !== undefined && size !== opts.expectedSize) {
    await rm(part, { force: true });
    throw new VerificationError(
      `${opts.label}: got ${size} bytes from ${location}, expected ${opts.expectedSize}; the download was discarded`,
    );
  }
  if (opts.expectedSha256 !== undefined && sha256 !== opts.expectedSha256.toLowerCase()) {
    await rm(part, { force: true });
    throw new VerificationError(
      `${opts.label}: SHA-256 mismatch for ${location}: expected ${opts.expectedSha256}, got ${sha256}; the download was discarded`,
    );
  }
  await rename(part, dest);
  emit('done', size, size);
  return { sha256, size, transferred };
}
