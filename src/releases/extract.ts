// Pulling named executables out of release archives: .zip (HashiCorp), .tar.gz (GitHub),
// .deb (ar container → data.tar.{xz,gz,zst}). Matched files are written to outDir and hashed
// on the way; a wanted program that is absent is an error, never an empty result.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Duplex, PassThrough, type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import yauzl from 'yauzl';
import { unpackError, VerificationError } from './errors.ts';
import { procPid } from '../pid-lock.ts';

export interface Extracted {
  path: string;
  sha256: string;
  size: number;
}

/** program name → does this archive path hold it? */
export type Wanted = Record<string, (archivePath: string) => boolean>;

/** Matches a program wherever it sits in an upstream archive (prometheus-2.24.1.linux-amd64/prometheus). */
export function byBasename(programs: string[]): Wanted {
  return Object.fromEntries(programs.map((p) => [p, (path: string) => posix.basename(path) === p]));
}

function normalize(path: string): string {
  return posix.normalize(path.replace(/^\.?\/+/, '')).replace(/^\/+/, '');
}

/** The name an extracted program is written under: it carries our PID, so that a run
 *  after one killed while extracting removes the file at once (releases/fetch.ts). */
export function extractName(program: string, pid = procPid()): string {
  return `.extract-${pid}-${randomBytes(6).toString('hex')}-${program}`;
}

/** The PID in an extractName, or null for other names. Pure. */
export function extractPid(name: string): number | null {
  const m = /^\.extract-(\d+)-[0-9a-f]{12}-/.exec(name);
  return m ? Number(m[1]) : null;
}

/** Runs an extraction into found; on failure, removes what it had written. */
async function keepOnlyOnSuccess(found: Record<string, Extracted>, fn: (found: Record<string, Extracted>) => Promise<void>): Promise<Record<string, Extracted>> {
  try {
    await fn(found);
    return found;
  } catch (err) {
    await Promise.all(Object.values(found).map((f) => rm(f.path, { force: true })));
    throw err;
  }
}

async function writeHashed(src: Readable, outDir: string, program: string): Promise<Extracted> {
  const path = join(outDir, extractName(program));
  const h = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _e, cb) {
      h.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  try {
    await pipeline(src, tap, createWriteStream(path, { mode: 0o755 }));
  } catch (err) {
    await rm(path, { force: true });
    throw err;
  }
  return { path, sha256: h.digest('hex'), size };
}

function missing(archive: string, wanted: Wanted, found: Record<string, Extracted>): void {
  const absent = Object.keys(wanted).filter((p) => !found[p]);
  if (absent.length) {
    throw new VerificationError(`${archive} does not contain ${absent.join(', ')} (the archive is not the expected release)`);
  }
}

function matchOne(wanted: Wanted, path: string, found: Record<string, Extracted>): string | undefined {
  const p = normalize(path);
  return Object.keys(wanted).find((prog) => !found[prog] && wanted[prog]!(p));
}

export async function extractFromZip(zipPath: string, wanted: Wanted, outDir: string, label = zipPath): Promise<Record<string, Extracted>> {
  return keepOnlyOnSuccess({}, (found) => unzipInto(found, zipPath, wanted, outDir, label));
}

async function unzipInto(found: Record<string, Extracted>, zipPath: string, wanted: Wanted, outDir: string, label: string): Promise<void> {
  let zip: yauzl.ZipFile;
  try {
    zip = await new Promise<yauzl.ZipFile>((res, rej) =>
      yauzl.open(zipPath, { lazyEntries: true, strictFileNames: false }, (err, z) => (err ? rej(err) : res(z!))),
    );
  } catch (err) {
    throw new VerificationError(`${label} is not a valid zip file (${(err as Error).message})`);
  }
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('error', reject);
      zip.on('end', resolve);
      zip.on('entry', (entry: yauzl.Entry) => {
        const prog = entry.fileName.endsWith('/') ? undefined : matchOne(wanted, entry.fileName, found);
        if (!prog) return zip.readEntry();
        zip.openReadStream(entry, (err, stream) => {
          if (err) return reject(err);
          writeHashed(stream!, outDir, prog).then((x) => {
            found[prog] = x;
            zip.readEntry();
          }, reject);
        });
      });
      zip.readEntry();
    });
  } catch (err) {
    throw unpackError(label, err);
  } finally {
    zip.close();
  }
  missing(label, wanted, found);
}

/** xz -dc as a stream (the system xz; Node has no xz). */
function xzDecompress(): { stream: Duplex; done: Promise<void> } {
  const child = spawn('xz', ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (err) => reject(new Error(`cannot run xz: ${err.message} (install xz-utils)`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`xz failed: ${stderr.trim() || `exit ${code}`}`))));
  });
  return { stream: Duplex.from({ writable: child.stdin, readable: child.stdout }), done };
}

export function decompressor(name: string): { stream: Duplex; done: Promise<void> } {
  if (name.endsWith('.xz')) return xzDecompress();
  if (name.endsWith('.gz')) return { stream: createGunzip(), done: Promise.resolve() };
  if (/\.tar$|^Packages$/.test(name)) return { stream: new PassThrough(), done: Promise.resolve() };
  throw new VerificationError(`unsupported compression: ${name}`);
}

/** Extracts from a tar stream (already decompressed). */
async function extractTar(found: Record<string, Extracted>, input: Readable, wanted: Wanted, outDir: string, label: string): Promise<void> {
  const ex = tar.extract();
  ex.on('entry', (header, stream, next) => {
    const prog = header.type === 'file' ? matchOne(wanted, header.name, found) : undefined;
    if (!prog) {
      stream.on('end', next);
      // An archive that breaks off inside this entry fails it too; the extraction's own
      // pipeline reports that, and unheard it would end the process.
      stream.on('error', () => undefined);
      stream.resume();
      return;
    }
    writeHashed(stream as unknown as Readable, outDir, prog).then(
      (x) => {
        found[prog] = x;
        next();
      },
      (err: Error) => next(err),
    );
  });
  try {
    await pipeline(input, ex);
  } catch (err) {
    throw unpackError(label, err);
  }
  missing(label, wanted, found);
}

/** extractTar over a decompressing pipeline; settles only when extractTar has, so that no
 *  file is still being written when the caller cleans up after a failure. */
async function extractTarFrom(
  found: Record<string, Extracted>,
  input: Readable,
  piping: Promise<void>,
  done: Promise<void>,
  wanted: Wanted,
  outDir: string,
  label: string,
): Promise<void> {
  const extracting = extractTar(found, input, wanted, outDir, label);
  try {
    await Promise.all([extracting, piping, done]);
  } catch (err) {
    await extracting.catch(() => undefined);
    throw unpackError(label, err);
  }
}

export async function extractFromTarball(path: string, wanted: Wanted, outDir: string, label = path): Promise<Record<string, Extracted>> {
  const { stream, done } = decompressor(path.replace(/\.tgz$/, '.tar.gz'));
  const src = createReadStream(path);
  const pass = new PassThrough();
  const piping = pipeline(src, stream, pass);
  return keepOnlyOnSuccess({}, (found) => extractTarFrom(found, pass, piping, done, wanted, outDir, label));
}

export interface ArMember {
  name: string;
  offset: number;
  size: number;
}

/** The members of an ar archive (a .deb): `!<arch>\n`, then 60-byte headers each followed by data padded to even length. */
export async function readArMembers(path: string): Promise<ArMember[]> {
  const fh = await open(path, 'r');
  try {
    const { size: fileSize } = await fh.stat();
    const magic = Buffer.alloc(8);
    await fh.read(magic, 0, 8, 0);
    if (magic.toString('latin1') !== '!<arch>\n') throw new VerificationError(`${path} is not an ar archive (.deb)`);
    const members: ArMember[] = [];
    let pos = 8;
    const hdr = Buffer.alloc(60);
    while (pos + 60 <= fileSize) {
      await fh.read(hdr, 0, 60, pos);
      if (hdr.toString('latin1', 58, 60) !== '`\n') throw new VerificationError(`${path}: corrupt ar header at offset ${pos}`);
      const name = hdr.toString('latin1', 0, 16).trim().replace(/\/$/, '');
      const size = Number.parseInt(hdr.toString('latin1', 48, 58).trim(), 10);
      if (!Number.isFinite(size) || pos + 60 + size > fileSize) throw new VerificationError(`${path}: truncated ar member ${name}`);
      members.push({ name, offset: pos + 60, size });
      pos += 60 + size + (size % 2);
    }
    return members;
  } finally {
    await fh.close();
  }
}

/** Extracts files by exact path ("usr/bin/consul") from a .deb's data.tar.*. */
export async function extractFromDeb(debPath: string, wanted: Wanted, outDir: string, label = debPath): Promise<Record<string, Extracted>> {
  const members = await readArMembers(debPath);
  const data = members.find((m) => m.name.startsWith('data.tar'));
  if (!data) throw new VerificationError(`${label} has no data.tar member`);
  const { stream, done } = decompressor(data.name);
  const src = createReadStream(debPath, { start: data.offset, end: data.offset + data.size - 1 });
  const pass = new PassThrough();
  const piping = pipeline(src, stream, pass);
  return keepOnlyOnSuccess({}, (found) => extractTarFrom(found, pass, piping, done, wanted, outDir, label));
}

export function byPath(map: Record<string, string>): Wanted {
  return Object.fromEntries(Object.entries(map).map(([prog, p]) => [prog, (path: string) => path === normalize(p)]));
}
