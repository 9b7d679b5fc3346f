// A content hash of a directory tree: every path with its type, mode, owner, size, mtime
// and content (or link target). Two builds with the same inputs must give the same hash.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink, utimes, lutimes } from 'node:fs/promises';
import { join } from 'node:path';

export interface TreeEntry {
  path: string;
  line: string;
}

async function fileHash(p: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(p)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Walks root depth-first in byte order of names, calling fn for each entry below root. */
export async function walk(root: string, fn: (rel: string, abs: string) => Promise<void>, rel = ''): Promise<void> {
  const names = (await readdir(join(root, rel))).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const name of names) {
    const r = `${rel}/${name}`;
    const abs = join(root, r);
    await fn(r, abs);
    const st = await lstat(abs);
    if (st.isDirectory()) await walk(root, fn, r);
  }
}

/** One line per entry, e.g. `/etc/hostname f 644 0:0 12 1700000000 <sha256>`. */
export async function treeListing(root: string): Promise<string[]> {
  const lines: string[] = [];
  await walk(root, async (rel, abs) => {
    const st = await lstat(abs);
    const mode = (st.mode & 0o7777).toString(8);
    const common = `${mode} ${st.uid}:${st.gid} ${Math.floor(st.mtimeMs / 1000)}`;
    if (st.isSymbolicLink()) lines.push(`${rel} l ${common} -> ${await readlink(abs)}`);
    else if (st.isDirectory()) lines.push(`${rel} d ${common}`);
    else if (st.isFile()) lines.push(`${rel} f ${common} ${st.size} ${await fileHash(abs)}`);
    else lines.push(`${rel} ${st.isFIFO() ? 'p' : st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : 's'} ${common} ${st.rdev}`);
  });
  return lines;
}

export async function treeHash(root: string): Promise<string> {
  const h = createHash('sha256');
  for (const line of await treeListing(root)) h.update(`${line}\n`);
  return h.digest('hex');
}

/** Sets every mtime later than epoch to epoch (what SOURCE_DATE_EPOCH asks of a build). */
export async function clampMtimes(root: string, epoch: number): Promise<void> {
  const clamp = async (abs: string) => {
    const st = await lstat(abs);
    if (st.mtimeMs / 1000 <= epoch) return;
    if (st.isSymbolicLink()) await lutimes(abs, epoch, epoch);
    else await utimes(abs, epoch, epoch);
  };
  // Children first would be needed if we changed directories' content here; we only touch times.
  await walk(root, async (_rel, abs) => clamp(abs));
  await clamp(root);
}
