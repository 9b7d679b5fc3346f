// Work left in the base cache by a build that was killed outright (kill -9, power loss):
// a base being built (.build-<pid>-…) or a base tree being unpacked (….root.tmp-<pid>).
// Each name carries the PID of the process that made it; when that process is gone, nobody
// will finish or remove it. Without this sweep every such kill left up to a gigabyte behind.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Prefix of the directory a base is built in (mkdtemp adds the rest). */
export function buildDirPrefix(pid = process.pid): string {
  return `.build-${pid}-`;
}

/** Where a base tree is unpacked before it is renamed into place. */
export function unpackTmpPath(tree: string, pid = process.pid): string {
  return `${tree}.tmp-${pid}`;
}

/** The PID a work entry's name carries (the two names above), or null for names that are
 *  not ours. Pure. */
export function workEntryPid(name: string): number | null {
  const m = /^\.build-(\d+)-/.exec(name) ?? /\.root\.tmp-(\d+)$/.exec(name);
  return m ? Number(m[1]) : null;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but is someone else's.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the entries of dir whose maker is gone; returns their names. */
export async function removeOrphans(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const gone = names.filter((n) => {
    const pid = workEntryPid(n);
    return pid !== null && pid !== process.pid && !alive(pid);
  });
  for (const n of gone) await rm(join(dir, n), { recursive: true, force: true });
  return gone;
}
