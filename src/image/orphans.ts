// Work left in the base cache by a build that was killed outright (kill -9, power loss):
// a base being built (.build-<pid>-…) or a base tree being unpacked (….root.tmp-<pid>).
// Each name carries the PID of the process that made it; when that process is gone, nobody
// will finish or remove it. Without this sweep every such kill left up to a gigabyte behind.
// PIDs are the ones /proc shows: a rootless build is PID 1 of its own PID namespace but sees
// the host's /proc (rootless.ts), so its names carry its host PID, and its sweep checks other
// builds' PIDs where they were made.
import { existsSync, readlinkSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** This process's PID as /proc numbers it. */
export function procPid(): number {
  return Number(readlinkSync('/proc/self'));
}

/** Prefix of the directory a base is built in (mkdtemp adds the rest). */
export function buildDirPrefix(pid = procPid()): string {
  return `.build-${pid}-`;
}

/** Where a base tree is unpacked before it is renamed into place. */
export function unpackTmpPath(tree: string, pid = procPid()): string {
  return `${tree}.tmp-${pid}`;
}

/** The PID a work entry's name carries (the two names above), or null for names that are
 *  not ours. Pure. */
export function workEntryPid(name: string): number | null {
  const m = /^\.build-(\d+)-/.exec(name) ?? /\.root\.tmp-(\d+)$/.exec(name);
  return m ? Number(m[1]) : null;
}

const alive = (pid: number) => existsSync(`/proc/${pid}`);

/** Removes the entries of dir whose maker is gone; returns their names. */
export async function removeOrphans(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const self = procPid();
  const gone = names.filter((n) => {
    const pid = workEntryPid(n);
    return pid !== null && pid !== self && !alive(pid);
  });
  for (const n of gone) await rm(join(dir, n), { recursive: true, force: true });
  return gone;
}
