// A content hash of a directory tree: every path with its type, mode, owner, size, mtime
// and content (or link target). Two builds with the same inputs must give the same hash.
//
// The walks here use the synchronous fs calls on purpose: a root file system has tens of
// thousands of small files, and one promise round trip per lstat and per file read made
// the tree hash of the arm64 image take 7 s; the synchronous walk takes a fraction of that.
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, lutimesSync, openSync, readdirSync, readlinkSync, readSync, utimesSync, type Stats } from 'node:fs';
import { join } from 'node:path';

const READ_BUF = Buffer.allocUnsafe(1024 * 1024);

function fileHash(p: string): string {
  const h = createHash('sha256');
  const fd = openSync(p, 'r');
  try {
    for (let n; (n = readSync(fd, READ_BUF, 0, READ_BUF.length, null)) > 0; ) h.update(READ_BUF.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** Walks root depth-first in byte order of names, calling fn with each entry below root and its lstat. */
export function walk(root: string, fn: (rel: string, abs: string, st: Stats) => void, rel = ''): void {
  const names = readdirSync(join(root, rel)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const name of names) {
    const r = `${rel}/${name}`;
    const abs = join(root, r);
    const st = lstatSync(abs);
    fn(r, abs, st);
    if (st.isDirectory()) walk(root, fn, r);
  }
}

/** One line per entry, e.g. `/etc/hostname f 644 0:0 12 1700000000 <sha256>`. */
export async function treeListing(root: string): Promise<string[]> {
  const lines: string[] = [];
  walk(root, (rel, abs, st) => {
    const mode = (st.mode & 0o7777).toString(8);
    const common = `${mode} ${st.uid}:${st.gid} ${Math.floor(st.mtimeMs / 1000)}`;
    if (st.isSymbolicLink()) lines.push(`${rel} l ${common} -> ${readlinkSync(abs)}`);
    else if (st.isDirectory()) lines.push(`${rel} d ${common}`);
    else if (st.isFile()) lines.push(`${rel} f ${common} ${st.size} ${fileHash(abs)}`);
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
  const clamp = (abs: string, st: Stats) => {
    if (st.mtimeMs / 1000 <= epoch) return;
    if (st.isSymbolicLink()) lutimesSync(abs, epoch, epoch);
    else utimesSync(abs, epoch, epoch);
  };
  // Children first would be needed if we changed directories' content here; we only touch times.
  walk(root, (_rel, abs, st) => clamp(abs, st));
  clamp(root, lstatSync(root));
}
