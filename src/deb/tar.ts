// Builds the compressed tar members of a .deb in memory: entries in byte order of their
// paths, "./"-prefixed like dpkg-deb, numeric ids 0 with the user/group names, one fixed
// mtime. MD5 sums of regular files are computed on the way (for the md5sums file).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import tar from 'tar-stream';
import { compressor } from './compress.ts';
import {
  type Compression,
  type DebEntry,
  isContentEntry,
  isDirectoryEntry,
  isSourceEntry,
  isSymlinkEntry,
} from './model.ts';

export interface TarResult {
  data: Buffer;
  /** Absolute path → md5 hex, regular files only. */
  md5: Map<string, string>;
  /** Regular file sizes, for Installed-Size. */
  sizes: Map<string, number>;
}

const ROOT_DIR: DebEntry = { directory: true, mode: 0o755, owner: 'root', group: 'root' };

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Adds every missing parent directory and returns the entries sorted by path ("/" first). */
export function withParents(files: Map<string, DebEntry>): [string, DebEntry][] {
  const all = new Map<string, DebEntry>(files);
  all.set('/', files.get('/') ?? ROOT_DIR);
  for (const path of files.keys()) {
    if (!path.startsWith('/') || path.includes('//') || path.split('/').some((s) => s === '.' || s === '..')) {
      throw new Error(`package path must be absolute and normal: ${path}`);
    }
    let dir = path.slice(0, path.lastIndexOf('/'));
    while (dir !== '') {
      const existing = all.get(dir);
      if (existing && !isDirectoryEntry(existing)) throw new Error(`${dir} is both a directory and a file`);
      if (!existing) all.set(dir, ROOT_DIR);
      dir = dir.slice(0, dir.lastIndexOf('/'));
    }
  }
  return [...all.entries()].sort(([a], [b]) => byteCompare(a, b));
}

function tarName(path: string, dir: boolean): string {
  if (path === '/') return './';
  return `.${path}${dir ? '/' : ''}`;
}

export async function buildTar(
  entries: [string, DebEntry][],
  compression: Compression,
  mtime: Date,
): Promise<TarResult> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  const done = pipeline(pack, compressor(compression), sink);
  const md5 = new Map<string, string>();
  const sizes = new Map<string, number>();

  const ids = (e: { owner: string; group: string }) => ({ uid: 0, gid: 0, uname: e.owner, gname: e.group });
  try {
    for (const [path, e] of entries) {
      if (isDirectoryEntry(e)) {
        await addEntry(pack, { name: tarName(path, true), type: 'directory', mode: e.mode, mtime, ...ids(e) });
      } else if (isSymlinkEntry(e)) {
        await addEntry(pack, {
          name: tarName(path, false),
          type: 'symlink',
          linkname: e.symlink,
          mode: 0o777,
          mtime,
          uid: 0,
          gid: 0,
          uname: 'root',
          gname: 'root',
        });
      } else if (isContentEntry(e)) {
        const buf = typeof e.content === 'string' ? Buffer.from(e.content) : e.content;
        md5.set(path, createHash('md5').update(buf).digest('hex'));
        sizes.set(path, buf.length);
        await addEntry(pack, { name: tarName(path, false), type: 'file', mode: e.mode, mtime, size: buf.length, ...ids(e) }, buf);
      } else if (isSourceEntry(e)) {
        const { size } = await stat(e.source);
        const hash = createHash('md5');
        const writer = pack.entry({ name: tarName(path, false), type: 'file', mode: e.mode, mtime, size, ...ids(e) });
        const src = createReadStream(e.source);
        src.on('data', (c) => hash.update(c));
        await pipeline(src, writer);
        md5.set(path, hash.digest('hex'));
        sizes.set(path, size);
      }
    }
    pack.finalize();
    await done;
  } catch (err) {
    pack.destroy(err as Error);
    await done.catch(() => undefined);
    throw err;
  }
  return { data: Buffer.concat(chunks), md5, sizes };
}

function addEntry(pack: tar.Pack, header: Parameters<tar.Pack["entry"]>[0], buf?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (err?: Error | null) => (err ? reject(err) : resolve());
    if (buf) pack.entry(header, buf, cb);
    else pack.entry(header, cb);
  });
}
