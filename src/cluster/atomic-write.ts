// Atomic file writes: a temporary file in the same directory, fsync, then rename (or link,
// when an existing file must not be replaced). The mode is set with fchmod, so the umask
// never makes a secret readable by others.
import { randomBytes } from 'node:crypto';
import { link, lstat, open, readlink, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { UserError } from '../errors.ts';

export class FileExistsError extends Error {
  constructor(readonly path: string) {
    super(`${path} already exists`);
    this.name = 'FileExistsError';
  }
}

/** Where writing path lands: the file at the end of its symlinks, also when that file does
 *  not exist yet (a dangling link is written through, not replaced). */
export async function linkTarget(path: string): Promise<string> {
  for (let hops = 0; hops < 40; hops++) {
    const st = await lstat(path).catch(() => null);
    if (!st?.isSymbolicLink()) return path;
    path = resolve(dirname(path), await readlink(path));
  }
  throw new UserError(`${path}: too many levels of symbolic links`);
}

export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  opts: { mode?: number; overwrite?: boolean } = {},
): Promise<void> {
  const mode = opts.mode ?? 0o644;
  const asked = path;
  // A symlink (a secrets file kept elsewhere) is written through: its target gets the new
  // content, rather than the link being replaced by a file beside the old one.
  if (opts.overwrite) path = await linkTarget(path);
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
    err.path = asked; // the file the user asked for, not our temp name
    throw err;
  });
  try {
    await fh.chmod(mode);
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  try {
    // link() fails if path exists: no window in which another file could be replaced.
    await (opts.overwrite ? rename(tmp, path) : link(tmp, path));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EEXIST' && !opts.overwrite) throw new FileExistsError(path);
    err.path = asked; // as for open: the file asked for, not our temp name
    throw err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}
