// Bases of older keys in the base cache. Each is a tarball and its unpacked tree, about a
// gigabyte together, and a new piinit (hooks, package list), a changed package set or
// another mirror makes a new key: without pruning, every old base stayed for good. A build
// removes the bases of its own suite and kind that no build has used for STALE_DAYS, but
// keeps the KEEP_RECENT most recently used ones whatever their age (one per role: each
// role's packages can give its own key) and any whose tree is mounted (the lower layer of a
// running build's overlay).
import { readdir, rm, stat, utimes } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { readMountinfo } from './orphans.ts';

export const STALE_DAYS = 14;
export const KEEP_RECENT = 3;

const BASE_NAME = /^(.+)-([0-9a-f]{16})\.(tar|root)$/;

export interface CacheEntry {
  name: string;
  /** The tarball's mtime: a build touches it each time it uses the base. */
  mtimeMs: number;
}

/** The names (tarballs and trees) to remove from a base cache directory. group is
 *  `<suite>-<kind>`; names of other groups, work entries and unknown files are never
 *  returned. Pure. */
export function staleBases(entries: CacheEntry[], group: string, currentKey: string, nowMs: number, mounted: Set<string>): string[] {
  const lastUse = new Map<string, number>();
  const names = new Map<string, string[]>();
  for (const e of entries) {
    const m = BASE_NAME.exec(e.name);
    if (!m || m[1] !== group) continue;
    const key = m[2]!;
    names.set(key, [...(names.get(key) ?? []), e.name]);
    // A tree without its tarball counts as never used.
    if (m[3] === 'tar') lastUse.set(key, e.mtimeMs);
    else if (!lastUse.has(key)) lastUse.set(key, 0);
  }
  const byRecency = [...lastUse.keys()].sort((a, b) => lastUse.get(b)! - lastUse.get(a)!);
  const keep = new Set([currentKey, ...byRecency.slice(0, KEEP_RECENT)]);
  const cutoff = nowMs - STALE_DAYS * 24 * 3600 * 1000;
  return byRecency
    .filter((key) => !keep.has(key) && lastUse.get(key)! < cutoff && !names.get(key)!.some((n) => mounted.has(n)))
    .flatMap((key) => names.get(key)!)
    .sort();
}

/** The lower directories of the overlay mounts in a /proc/self/mountinfo text. Pure. */
export function overlayLowerDirs(mountinfo: string): string[] {
  const dirs: string[] = [];
  for (const line of mountinfo.split('\n')) {
    // "<id> <parent> <dev> <root> <mount point> <options> [optional fields] - <type> <source> <super options>"
    const [, after] = line.split(' - ');
    const [type, , superOptions] = after?.split(' ') ?? [];
    if (type !== 'overlay' || !superOptions) continue;
    const lower = /(?:^|,)lowerdir=([^,]*)/.exec(superOptions)?.[1];
    if (lower) dirs.push(...lower.split(':').map((d) => d.replace(/\\040/g, ' ')));
  }
  return dirs;
}

/** The names of the directories mounted overlays build on. By name alone: a mount shows the
 *  path as it was given, maybe through a symlink or relative. A tree of the same name in
 *  another cache counts too, which errs on the safe side. */
export async function mountedLowerNames(): Promise<Set<string>> {
  return new Set(overlayLowerDirs(await readMountinfo()).map((d) => basename(d)));
}

/** The line a command prints for the bases a build removed. Pure. */
export function prunedMessage(names: string[]): string {
  return `  removed from the base cache (unused for ${STALE_DAYS} days): ${names.join(', ')}`;
}

/** Records that a build used this base (its tarball's mtime is the base's last use). */
export async function markUsed(tarball: string): Promise<void> {
  const now = new Date();
  await utimes(tarball, now, now);
}

/** Removes the stale bases of group from dir; returns their names. */
export async function pruneBases(dir: string, group: string, currentKey: string): Promise<string[]> {
  const entries: CacheEntry[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!BASE_NAME.test(name)) continue;
    const s = await stat(join(dir, name)).catch(() => null);
    if (s) entries.push({ name, mtimeMs: s.mtimeMs });
  }
  const stale = staleBases(entries, group, currentKey, Date.now(), await mountedLowerNames());
  for (const name of stale) {
    await rm(join(dir, name), { recursive: true, force: true });
    // The tree's lock (baseroot.ts), left by a build that was killed holding it.
    if (name.endsWith('.root')) for (const lock of [`${name}.lock`, `${name}.lock.break`]) await rm(join(dir, lock), { force: true });
  }
  return stale;
}
