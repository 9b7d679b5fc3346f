// Lock files and temp names that carry their maker's PID, and whether that process still
// runs. Liveness is read from /proc, not with kill(pid, 0): a rootless image build runs in a
// PID namespace of its own but sees the host's /proc (image/rootless.ts), so the PIDs it
// writes and checks are the host's; and another user's process counts as running.
import { existsSync, readlinkSync } from 'node:fs';
import { open, readFile, rm, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from './errors.ts';

/** This process's PID as /proc numbers it. */
export function procPid(): number {
  return Number(readlinkSync('/proc/self'));
}

export function pidAlive(pid: number): boolean {
  return pid > 0 && existsSync(`/proc/${pid}`);
}

/** The locks this process holds. A lock file with our PID that is not among them was left
 *  by an earlier process that had our PID: in a container, piinit is PID 1 run after run. */
const heldHere = new Set<string>();

/** Creates the lock file (O_EXCL) holding our PID and returns its release, or null when the
 *  file exists already. */
export async function tryPidLock(path: string, mode: number): Promise<(() => Promise<void>) | null> {
  let fh;
  try {
    fh = await open(path, 'wx', mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return null;
    throw err;
  }
  let mine: PidLockHolder;
  try {
    await fh.writeFile(String(procPid()));
    const s = await fh.stat();
    mine = { pid: procPid(), held: true, mtimeMs: s.mtimeMs, ino: s.ino };
  } catch (err) {
    await rm(path, { force: true }); // a lock without a PID would look held for a while
    throw err;
  } finally {
    await fh.close();
  }
  const key = resolve(path);
  heldHere.add(key);
  // Only our own file: a lock taken over from us (lockPart's idle holder) is the new holder's.
  return async () => {
    heldHere.delete(key);
    if (sameLock(await pidLockHolder(path, 0), mine)) await rm(path, { force: true });
  };
}

/** Whether two looks at a lock file saw the same lock: a file made again can have the same
 *  inode, but not the same PID and time as well. Pure. */
export function sameLock(a: PidLockHolder, b: PidLockHolder): boolean {
  return a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.pid === b.pid;
}

export interface PidLockHolder {
  /** The holder's PID; null while its taker has not written it yet. */
  pid: number | null;
  /** Whether the lock is held: its PID runs, or it has none yet and is younger than
   *  `writingMs` (after that its taker died between creating and writing it). */
  held: boolean;
  /** When the lock file was last written (0 when it is gone). */
  mtimeMs: number;
  /** The lock file's inode (0 when it is gone): a lock taken again is another file. */
  ino: number;
}

/** The holder as messages name it. Pure. */
export function holderName(pid: number | null | undefined): string {
  return pid ? `another piinit (pid ${pid})` : 'another piinit';
}

export async function pidLockHolder(path: string, writingMs: number): Promise<PidLockHolder> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const s = await stat(path).catch(() => null);
  const mtimeMs = s?.mtimeMs ?? 0;
  const n = Number(text.trim());
  const pid = Number.isInteger(n) && n > 0 ? n : null;
  const held =
    pid !== null
      ? pidAlive(pid) && (pid !== procPid() || heldHere.has(resolve(path)))
      : mtimeMs > 0 && Date.now() - mtimeMs < writingMs;
  return { pid, held, mtimeMs, ino: s?.ino ?? 0 };
}

/** A lock holder that has not written its PID this long after creating the lock is gone. */
export const LOCK_WRITING_MS = 10_000;

/**
 * Removes the lock that `seen` describes, found stale, unless it is another lock by now. Two
 * waiters that both saw the dead holder would otherwise each remove the lock the other had
 * just taken, and both would hold it. The second look and the removal are made holding
 * `<path>.break`; a breaker that dies in between (killed in those microseconds) leaves a
 * break lock that is removed as stale in turn. Callers try to take the lock again after.
 */
export async function removeStaleLock(path: string, seen: PidLockHolder): Promise<void> {
  const breakPath = `${path}.break`;
  const breaking = await tryPidLock(breakPath, 0o644);
  if (!breaking) {
    if (!(await pidLockHolder(breakPath, LOCK_WRITING_MS)).held) await rm(breakPath, { force: true });
    await sleep(10);
    return;
  }
  try {
    if (sameLock(await pidLockHolder(path, 0), seen)) await rm(path, { force: true });
  } finally {
    await breaking();
  }
}

export async function mtimeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return 0;
  }
}

/** Takes the lock, waiting while a running process holds it; a dead holder's lock is taken
 *  over, and so is a live one's when `takeOver` says it is stuck. `onWait` hears once that we
 *  wait, and for whom. */
export async function waitForPidLock(
  path: string,
  mode: number,
  opts: {
    writingMs: number;
    onWait?: (holder: number | null) => void;
    signal?: AbortSignal;
    takeOver?: (holder: PidLockHolder) => Promise<boolean>;
  },
): Promise<() => Promise<void>> {
  let told = false;
  for (;;) {
    opts.signal?.throwIfAborted();
    const release = await tryPidLock(path, mode);
    if (release) return release;
    const holder = await pidLockHolder(path, opts.writingMs);
    if (!holder.held || (await opts.takeOver?.(holder))) {
      await removeStaleLock(path, holder);
      continue;
    }
    if (!told) opts.onWait?.(holder.pid);
    told = true;
    await sleep(250, undefined, opts.signal ? { signal: opts.signal } : {});
  }
}

/** Takes the lock, or throws busy(holder) while a running process holds it; a dead holder's
 *  lock is taken over. For work that should not wait: the user is told who holds it. */
export async function takePidLock(path: string, mode: number, busy: (holder: number | null) => Error): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const release = await tryPidLock(path, mode);
    if (release) return release;
    const holder = await pidLockHolder(path, LOCK_WRITING_MS);
    if (holder.held) throw busy(holder.pid);
    await removeStaleLock(path, holder);
  }
  throw new UserError(`cannot take the lock ${path}: another piinit keeps taking it over (remove ${path}.break if no piinit runs)`);
}
