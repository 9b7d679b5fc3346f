// The I/O edge for FileTrees: write one under a directory (atomically, file by file, with the
// tree's modes). Owners are not applied (that needs the users to exist and root): callers
// that need them write the manifest (manifestOf) or apply them when packaging.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type FileEntry, type FileTree, isSymlink, type SymlinkEntry } from './filetree.ts';

/** Writes every entry at join(base, path). Pass base '/' for trees of the local target. */
export async function writeTree(tree: FileTree, base: string): Promise<string[]> {
  const written: string[] = [];
  for (const [path, entry] of tree) {
    const dest = join(base, path);
    await writeEntry(dest, entry, 0o755);
    written.push(dest);
  }
  return written;
}

/** One entry, atomically: a temporary name beside dest, then a rename over it. Missing
 *  parent directories are made with dirMode. */
export async function writeEntry(dest: string, entry: FileEntry | SymlinkEntry, dirMode: number): Promise<void> {
  await mkdir(dirname(dest), { recursive: true, mode: dirMode });
  const tmp = join(dirname(dest), `.${randomBytes(6).toString('hex')}.tmp`);
  try {
    if (isSymlink(entry)) {
      await symlink(entry.symlink, tmp);
    } else {
      // Created with the final mode (never briefly world-readable), then chmod against umask.
      await writeFile(tmp, entry.content, { mode: entry.mode, flag: 'wx' });
      await chmod(tmp, entry.mode);
    }
    await rename(tmp, dest);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

export interface ManifestEntry {
  path: string;
  type: 'file' | 'symlink';
  mode?: string;
  owner?: string;
  group?: string;
  size?: number;
  secret?: boolean;
  target?: string;
}

/** One line per path: what the image builder needs to set owners; never any content. */
export function manifestOf(tree: FileTree): ManifestEntry[] {
  return [...tree].map(([path, e]) =>
    isSymlink(e)
      ? { path, type: 'symlink', target: e.symlink }
      : {
          path,
          type: 'file',
          mode: `0${e.mode.toString(8)}`,
          owner: e.owner,
          group: e.group,
          size: Buffer.byteLength(e.content),
          ...(e.secret ? { secret: true } : {}),
        },
  );
}
