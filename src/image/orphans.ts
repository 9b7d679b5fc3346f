// Work left in the cache by a build that was killed outright (kill -9, power loss): a base
// being built (.build-<pid>-…), a base tree being unpacked (….root.tmp-<pid>), an image's
// or container image's work directory (work/.build-<pid>-<name>-…, maybe with its overlay
// root still mounted).
// Each name carries the PID of the process that made it; when that process is gone, nobody
// will finish or remove it. Without this sweep every such kill left up to a gigabyte behind.
// PIDs are the ones /proc shows: a rootless build is PID 1 of its own PID namespace but sees
// the host's /proc (rootless.ts), so its names carry its host PID, and its sweep checks other
// builds' PIDs where they were made.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { pidAlive, procPid } from '../pid-lock.ts';

const execFileP = promisify(execFile);

/** Prefix of the directory a base is built in (mkdtemp adds the rest). */
export function buildDirPrefix(pid = procPid()): string {
  return `.build-${pid}-`;
}

/** A new work directory for `name` in <cacheDir>/work, after sweeping the dead builds' ones. */
export async function newWorkDir(cacheDir: string, name: string): Promise<string> {
  const workRoot = join(cacheDir, 'work');
  await mkdir(workRoot, { recursive: true });
  await removeOrphans(workRoot);
  return mkdtemp(join(workRoot, `${buildDirPrefix()}${name}-`));
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

/** This process's mount table ('' where /proc does not have it). */
export const readMountinfo = (): Promise<string> => readFile('/proc/self/mountinfo', 'utf8').catch(() => '');

/** The mount points at or under dir in a /proc/self/mountinfo text, deepest first. Pure. */
export function mountsUnder(mountinfo: string, dir: string): string[] {
  return mountinfo
    .split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}

/** Removes the entries of dir whose maker is gone, unmounting first what a killed build left
 *  mounted in them (its overlay root); returns the names removed. */
export async function removeOrphans(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const self = procPid();
  const gone = names.filter((n) => {
    const pid = workEntryPid(n);
    return pid !== null && pid !== self && !pidAlive(pid);
  });
  const removed: string[] = [];
  for (const n of gone) {
    const entry = await realpath(join(dir, n)).catch(() => join(dir, n)); // mountinfo has real paths
    const mounts = mountsUnder(await readMountinfo(), entry);
    if (mounts.length > 0) {
      // Lazy: nothing of a dead build holds it, but the unmount must not fail the new build.
      for (const m of mounts) await execFileP('umount', ['--lazy', m]).catch(() => undefined);
      // rm crosses mount points: with anything still mounted in it, the entry stays.
      if (mountsUnder(await readMountinfo(), entry).length > 0) continue;
    }
    await rm(join(dir, n), { recursive: true, force: true });
    removed.push(n);
  }
  return removed;
}
