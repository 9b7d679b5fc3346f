// Writes a node's rendered FileTree (keys are already absolute, relocated under the node's
// root) and changes nothing where a file already has the same content and mode, so a second
// `piinit up` leaves every file untouched.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type FileTree, isSymlink } from '../render/filetree.ts';

export async function syncTree(tree: FileTree): Promise<{ changed: string[] }> {
  const changed: string[] = [];
  for (const [dest, entry] of tree) {
    if (isSymlink(entry)) {
      const cur = await readlink(dest).catch(() => null);
      if (cur === entry.symlink) continue;
    } else {
      const [cur, st] = await Promise.all([readFile(dest).catch(() => null), stat(dest).catch(() => null)]);
      const want = typeof entry.content === 'string' ? Buffer.from(entry.content) : entry.content;
      if (cur && st && cur.equals(want) && (st.mode & 0o7777) === entry.mode) continue;
    }
    await mkdir(dirname(dest), { recursive: true, mode: 0o750 });
    const tmp = join(dirname(dest), `.${randomBytes(6).toString('hex')}.tmp`);
    try {
      if (isSymlink(entry)) await symlink(entry.symlink, tmp);
      else {
        await writeFile(tmp, entry.content, { mode: entry.mode, flag: 'wx' });
        await chmod(tmp, entry.mode);
      }
      await rename(tmp, dest);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    changed.push(dest);
  }
  return { changed };
}
