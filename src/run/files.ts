// Writes a node's rendered FileTree (keys are already absolute, relocated under the node's
// root) and changes nothing where a file already has the same content and mode, so a second
// `piinit up` leaves every file untouched.
import { readFile, readlink, stat } from 'node:fs/promises';
import { type FileTree, isSymlink } from '../render/filetree.ts';
import { writeEntry } from '../render/write.ts';

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
    await writeEntry(dest, entry, 0o750);
    changed.push(dest);
  }
  return { changed };
}
