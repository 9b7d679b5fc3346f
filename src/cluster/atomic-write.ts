// Atomic file writes: a temporary file in the same directory, fsync, then rename (or link,
// when an existing file must not be replaced). The mode is set with fchmod, so the umask
// never makes a secret readable by others.
import { randomBytes } from 'node:crypto';
import { link, open, realpath, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export class FileExistsError extends Error {
  constructor(readonly path: string) {
    super(`${path} already exists`);
    this.name = 'FileExistsError';
  }
}

export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  opts: { mode?: number; overwrite?: boolean } = {},
): Promise<void> {
  const mode = opts.mode ?? 0o644;
  // A symlink (a secrets file kept elsewhere) is written through: its target gets the new
  // content, rather than the link being replaced by a file beside the old one.
  if (opts.overwrite) path = await realpath(path).catch(() => path);
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
    err.path = path; // the file the user asked for, not our temp name
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
    if (opts.overwrite) await rename(tmp, path);
    else {
      // link() fails if path exists: no window in which another file could be replaced.
      try {
        await link(tmp, path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new FileExistsError(path);
        throw e;
      }
    }
  } finally {
    await unlink(tmp).catch(() => {});
  }
}
