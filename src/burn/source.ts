// Where the bytes to burn come from: a raw image read range by range through its block map,
// or an xz-compressed image streamed through the system `xz -dc` (never unpacked to disk).
// Every source yields the mapped data as chunks in offset order, at most `chunkSize` bytes,
// split at multiples of `chunkSize` so writes stay aligned, and checks the data against the
// block map's SHA-256 per range as it goes.
import { spawn, execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, open, readFile, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { UserError } from '../errors.ts';
import { createBlockMap, parseBmapXml, type BlockMap } from '../image/bmap.ts';

/** burn's exit status for what it refuses before writing anything (docs/burn.md). */
const REFUSED = 2;

const run = promisify(execFile);

export interface Chunk {
  offset: number;
  data: Buffer;
}

export interface ImageSource {
  path: string;
  compressed: boolean;
  imageSize: number;
  /** The .bmap file read, or null. */
  bmapPath: string | null;
  /** Where the block map came from: a .bmap file, made from the raw image now, or from the data while streaming. */
  mapOrigin: 'bmap-file' | 'allocation' | 'streamed';
  /** The block map; for 'streamed' it is complete only after chunks() has finished. */
  map(): BlockMap;
  /** Bytes the map says hold data. */
  mappedBytes(): number;
  chunks(chunkSize: number, signal?: AbortSignal): AsyncGenerator<Chunk>;
  /** For a mismatch found on the card: the exact image bytes at [offset, offset+length), when cheap to get. */
  readImage?(offset: number, length: number): Promise<Buffer>;
}

/** Compressions known by name and by their first bytes; burn reads only xz. */
const COMPRESSIONS = [
  { name: 'xz', ext: '.xz', magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) },
  { name: 'gzip', ext: '.gz', magic: Buffer.from([0x1f, 0x8b]) },
  { name: 'bzip2', ext: '.bz2', magic: Buffer.from('BZh') },
  { name: 'zstd', ext: '.zst', magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]) },
  { name: 'zip', ext: '.zip', magic: Buffer.from('PK\x03\x04') },
];

/** The compression an image's first bytes show, or undefined (a raw image). */
async function compressionOf(path: string): Promise<(typeof COMPRESSIONS)[number] | undefined> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(6);
    await fh.read(b, 0, 6, 0);
    return COMPRESSIONS.find((c) => b.subarray(0, c.magic.length).equals(c.magic));
  } finally {
    await fh.close();
  }
}

/** The .bmap next to an image as bmaptool looks for it: IMAGE.bmap, or with .xz stripped. */
export async function findBmap(image: string): Promise<string | null> {
  const candidates = [`${image}.bmap`];
  if (/\.xz$/.test(image)) candidates.push(`${image.replace(/\.xz$/, '')}.bmap`);
  if (/\.img(\.xz)?$/.test(image)) candidates.push(`${image.replace(/\.img(\.xz)?$/, '')}.bmap`);
  for (const c of candidates) {
    try {
      await access(c);
      return c;
    } catch {
      // next
    }
  }
  return null;
}

/** xz's own reasons from its stderr, without the "xz: FILE: " it puts before each. */
function xzReason(path: string, stderr: string): string {
  return stderr
    .trim()
    .split('\n')
    .map((l) => (l.startsWith(`xz: ${path}: `) ? l.slice(`xz: ${path}: `.length) : l))
    .join('; ');
}

async function xzUncompressedSize(path: string): Promise<number> {
  let stdout: string;
  try {
    ({ stdout } = await run('xz', ['--robot', '--list', '--', path]));
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new UserError(`cannot read ${path}: the xz command was not found; is xz installed?`, REFUSED);
    throw new UserError(`xz cannot read image ${path}: ${xzReason(path, e.stderr ?? '') || e.message}`, REFUSED);
  }
  const line = stdout.split('\n').find((l) => l.startsWith('totals\t')) ?? '';
  const size = Number(line.split('\t')[4]);
  if (!Number.isFinite(size)) throw new UserError(`xz --list gave no size for image ${path}`, REFUSED);
  return size;
}

export interface OpenSourceOptions {
  /** A .bmap file; undefined: look next to the image; null: do not use one. */
  bmap?: string | null;
}

export async function openSource(path: string, opts: OpenSourceOptions = {}): Promise<ImageSource> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new UserError(`image ${path} does not exist`, REFUSED);
  }
  if (!st.isFile()) throw new UserError(`image ${path} is not a regular file`, REFUSED);
  if (st.size === 0) throw new UserError(`image ${path} is empty`, REFUSED);
  const byData = await compressionOf(path);
  const byName = COMPRESSIONS.find((c) => path.toLowerCase().endsWith(c.ext));
  // Otherwise a web server's error page saved as IMAGE.img.xz would be burned as a raw image.
  if (byName?.name === 'xz' && byData?.name !== 'xz') {
    throw new UserError(`image ${path} is not xz data, though its name ends in .xz (${st.size} bytes; a failed download?)`, REFUSED);
  }
  const other = [byData, byName].find((c) => c && c.name !== 'xz');
  if (other) {
    throw new UserError(
      `image ${path} is ${other.name}-compressed, which burn does not support: decompress it, or burn the .img or .img.xz that piinit image wrote`,
      REFUSED,
    );
  }
  const compressed = byData?.name === 'xz';
  const bmapPath = opts.bmap === undefined ? await findBmap(path) : opts.bmap;
  let map: BlockMap | null = null;
  if (bmapPath) {
    let xml: string;
    try {
      xml = await readFile(bmapPath, 'utf8');
    } catch {
      throw new UserError(`block map ${bmapPath} cannot be read`, REFUSED);
    }
    try {
      map = parseBmapXml(xml);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      const found = opts.bmap === undefined ? ' (found next to the image; --no-bmap ignores it)' : '';
      throw new UserError(`${err.message.replace(/^block map:/, `block map ${bmapPath}:`)}${found}`, REFUSED);
    }
  }
  if (compressed) {
    const size = await xzUncompressedSize(path);
    if (map && map.imageSize !== size) {
      throw new UserError(`block map ${bmapPath} is for an image of ${map.imageSize} bytes, but ${path} unpacks to ${size}`, REFUSED);
    }
    return { ...(map ? xzWithMap(path, map) : xzStreamed(path, size)), bmapPath };
  }
  if (map && map.imageSize !== st.size) {
    throw new UserError(`block map ${bmapPath} is for an image of ${map.imageSize} bytes, but ${path} has ${st.size}`, REFUSED);
  }
  return { ...rawWithMap(path, map ?? (await createBlockMap(path)), map ? 'bmap-file' : 'allocation'), bmapPath };
}

const rangeBytes = (map: BlockMap, r: { first: number; last: number }) => ({
  start: r.first * map.blockSize,
  end: Math.min((r.last + 1) * map.blockSize, map.imageSize),
});

function mismatch(path: string, start: number, end: number): UserError {
  return new UserError(
    `image ${path} does not match its block map in bytes ${start}-${end - 1} (SHA-256 differs): the image changed after the map was made`,
  );
}

function rawWithMap(path: string, map: BlockMap, origin: 'bmap-file' | 'allocation'): Omit<ImageSource, 'bmapPath'> {
  const mapped = map.ranges.reduce((n, r) => {
    const { start, end } = rangeBytes(map, r);
    return n + end - start;
  }, 0);
  return {
    path,
    compressed: false,
    imageSize: map.imageSize,
    mapOrigin: origin,
    map: () => map,
    mappedBytes: () => mapped,
    async *chunks(chunkSize, signal) {
      const fh = await open(path, 'r');
      try {
        for (const r of map.ranges) {
          const { start, end } = rangeBytes(map, r);
          const hash = createHash('sha256');
          for (let pos = start; pos < end; ) {
            signal?.throwIfAborted();
            const len = Math.min(end, (Math.floor(pos / chunkSize) + 1) * chunkSize) - pos;
            const data = Buffer.allocUnsafe(len);
            let got = 0;
            while (got < len) {
              const { bytesRead } = await fh.read(data, got, len - got, pos + got);
              if (bytesRead === 0) throw new UserError(`image ${path} is shorter than its block map says`);
              got += bytesRead;
            }
            hash.update(data);
            yield { offset: pos, data };
            pos += len;
          }
          if (hash.digest('hex') !== r.sha256) throw mismatch(path, start, end);
        }
      } finally {
        await fh.close();
      }
    },
    async readImage(offset, length) {
      const fh = await open(path, 'r');
      try {
        const b = Buffer.alloc(length);
        await fh.read(b, 0, length, offset);
        return b;
      } finally {
        await fh.close();
      }
    },
  };
}

/** Runs `xz -dc` and yields its output; a failure of xz ends the stream with an error. */
async function* unxz(path: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const child = spawn('xz', ['-dc', '--', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  let done = false;
  try {
    for await (const b of child.stdout) {
      signal?.throwIfAborted();
      yield b as Buffer;
    }
    done = true;
    const code = await exited;
    if (code !== 0) throw new UserError(`xz cannot unpack image ${path}: ${xzReason(path, stderr) || `exit code ${code}`}`);
  } finally {
    if (!done && child.exitCode === null) {
      child.kill('SIGTERM');
      await exited.catch(() => undefined);
    }
  }
}

/** Gathers pieces (in offset order) into chunks that end at multiples of chunkSize or at gaps. */
class Coalescer {
  private buf: Buffer;
  private start = -1;
  private len = 0;
  constructor(private readonly chunkSize: number) {
    this.buf = Buffer.allocUnsafe(chunkSize);
  }
  *push(offset: number, data: Buffer): Generator<Chunk> {
    let pos = 0;
    while (pos < data.length) {
      const at = offset + pos;
      if (this.len > 0 && this.start + this.len !== at) yield* this.flush();
      if (this.len === 0) this.start = at;
      const boundary = (Math.floor(this.start / this.chunkSize) + 1) * this.chunkSize;
      const room = boundary - (this.start + this.len);
      const n = Math.min(room, data.length - pos);
      data.copy(this.buf, this.len, pos, pos + n);
      this.len += n;
      pos += n;
      if (this.start + this.len === boundary) yield* this.flush();
    }
  }
  *flush(): Generator<Chunk> {
    if (this.len === 0) return;
    const out = { offset: this.start, data: this.buf.subarray(0, this.len) };
    this.buf = Buffer.allocUnsafe(this.chunkSize);
    this.len = 0;
    this.start = -1;
    yield out;
  }
}

function xzWithMap(path: string, map: BlockMap): Omit<ImageSource, 'bmapPath'> {
  const src = rawWithMap(path, map, 'bmap-file');
  return {
    ...src,
    compressed: true,
    readImage: undefined,
    async *chunks(chunkSize, signal) {
      const co = new Coalescer(chunkSize);
      const ranges = map.ranges.map((r) => ({ ...rangeBytes(map, r), sha256: r.sha256 }));
      let i = 0;
      let hash = createHash('sha256');
      let pos = 0;
      for await (const b of unxz(path, signal)) {
        const bEnd = pos + b.length;
        while (i < ranges.length && ranges[i]!.start < bEnd) {
          const r = ranges[i]!;
          const s = Math.max(r.start, pos);
          const e = Math.min(r.end, bEnd);
          if (e > s) {
            const piece = b.subarray(s - pos, e - pos);
            hash.update(piece);
            yield* co.push(s, piece);
          }
          if (r.end <= bEnd) {
            if (hash.digest('hex') !== r.sha256) throw mismatch(path, r.start, r.end);
            hash = createHash('sha256');
            i++;
          } else break;
        }
        pos = bEnd;
      }
      yield* co.flush();
      if (pos !== map.imageSize || i !== ranges.length) {
        throw new UserError(`image ${path} unpacked to ${pos} bytes, but its block map says ${map.imageSize}`);
      }
    },
  };
}

/** An xz image without a block map: every block is written (blocks of zeros too: the image's
 *  free FAT entries and empty directories must not show a used card's old bytes). Its map,
 *  one range over the whole image, is known once the stream has been hashed. */
function xzStreamed(path: string, imageSize: number): Omit<ImageSource, 'bmapPath'> {
  let final: BlockMap | null = null;
  const blockSize = 4096;
  return {
    path,
    compressed: true,
    imageSize,
    mapOrigin: 'streamed',
    map: () => {
      if (!final) throw new Error('the block map of a streamed image is known only after streaming it');
      return final;
    },
    mappedBytes: () => imageSize,
    async *chunks(chunkSize, signal) {
      const co = new Coalescer(chunkSize);
      const hash = createHash('sha256');
      let pos = 0;
      for await (const b of unxz(path, signal)) {
        hash.update(b);
        yield* co.push(pos, b);
        pos += b.length;
      }
      yield* co.flush();
      if (pos !== imageSize) {
        throw new UserError(`image ${path} unpacked to ${pos} bytes, but xz --list said ${imageSize}`);
      }
      const blocksCount = Math.ceil(imageSize / blockSize);
      const ranges = blocksCount > 0 ? [{ first: 0, last: blocksCount - 1, sha256: hash.digest('hex') }] : [];
      final = { imageSize, blockSize, blocksCount, mappedBlocksCount: blocksCount, ranges };
    },
  };
}
