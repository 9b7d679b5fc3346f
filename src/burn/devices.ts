// The I/O edge of device safety: reads lsblk, mountinfo, swaps and sysfs into a snapshot for
// the pure decisions in safety.ts, resolves what the user typed to a target, flushes caches.
import { execFile } from 'node:child_process';
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { UserError } from '../errors.ts';
import {
  assessAll,
  assessTarget,
  type DeviceIdentity,
  parseMountinfo,
  parseSwaps,
  type SystemSnapshot,
  type TargetOptions,
  type Verdict,
} from './safety.ts';

const run = promisify(execFile);

export async function takeSnapshot(): Promise<SystemSnapshot> {
  let lsblk: SystemSnapshot['lsblk'];
  try {
    const { stdout } = await run('lsblk', ['--json', '--bytes', '-O'], { maxBuffer: 64 * 1024 * 1024 });
    lsblk = JSON.parse(stdout) as SystemSnapshot['lsblk'];
  } catch (err) {
    throw new UserError(`cannot list block devices with lsblk (util-linux): ${(err as Error).message.split('\n')[0]}`);
  }
  const [mountinfo, swaps] = await Promise.all([
    readFile('/proc/self/mountinfo', 'utf8'),
    readFile('/proc/swaps', 'utf8').catch(() => ''),
  ]);
  const mmcTypes: Record<string, string> = {};
  for (const name of await readdir('/sys/block').catch(() => [] as string[])) {
    if (!name.startsWith('mmcblk')) continue;
    const t = await readFile(`/sys/block/${name}/device/type`, 'utf8').catch(() => null);
    if (t) mmcTypes[name] = t.trim();
  }
  return { lsblk, mounts: parseMountinfo(mountinfo), swaps: parseSwaps(swaps), mmcTypes };
}

export interface ResolvedTarget {
  /** What the user typed. */
  given: string;
  /** The real path (symlinks like /dev/disk/by-id/... resolved). */
  path: string;
  kind: 'block' | 'file';
  verdict: Verdict;
  /** Of a block device, as checked: the burn writes only to the same device. */
  identity?: DeviceIdentity;
}

export interface ResolveOptions extends TargetOptions {
  /** Accept a regular file (or a path that does not exist yet) as the target. */
  allowFile?: boolean;
  /** The files the burn reads (the image, its block map): never a target. */
  sources?: string[];
}

/** Resolves and judges every target; the same device given twice is refused. */
export async function resolveTargets(
  given: string[],
  opts: ResolveOptions,
  snapshot?: SystemSnapshot,
): Promise<ResolvedTarget[]> {
  const snap = snapshot ?? (await takeSnapshot());
  const out: ResolvedTarget[] = [];
  const seen = new Map<string, string>();
  const sources = await Promise.all((opts.sources ?? []).map((p) => stat(p, { bigint: true }).then((s) => `${s.dev}:${s.ino}`, () => null)));
  for (const g of given) {
    let path = g;
    let st;
    try {
      path = await realpath(g);
      st = await stat(path, { bigint: true }); // bigint: rdev of any device number
    } catch {
      st = null;
    }
    let t: ResolvedTarget;
    if (st?.isBlockDevice()) {
      const identity = await deviceIdentity(st.rdev);
      t = { given: g, path, kind: 'block', verdict: assessTarget(path, snap, opts, identity.rdev), identity };
    } else if (st === null || st.isFile()) {
      const reasons = opts.allowFile
        ? fileTargetProblems(resolve(path), st === null ? null : `${st.dev}:${st.ino}`, sources)
        : [st === null ? 'does not exist' : 'is a regular file, not a block device (use --allow-file to write an image file)'];
      t = { given: g, path, kind: 'file', verdict: { path, ok: reasons.length === 0, reasons } };
    } else {
      t = { given: g, path, kind: 'file', verdict: { path, ok: false, reasons: ['is neither a block device nor a regular file'] } };
    }
    const dup = seen.get(path);
    if (dup !== undefined) {
      t.verdict = { ...t.verdict, ok: false, reasons: [...t.verdict.reasons, `is the same device as ${dup}, given twice`] };
    }
    seen.set(path, g);
    out.push(t);
  }
  return out;
}

/** Why a file target (--allow-file) is refused: the image itself, or a name in /dev that
 *  does not exist (a card not inserted yet, a typo: the file would shadow the device). Pure. */
export function fileTargetProblems(path: string, inode: string | null, sources: (string | null)[]): string[] {
  if (inode !== null && sources.includes(inode)) return ['is the image (or block map) being burned'];
  if (inode === null && (path === '/dev' || path.startsWith('/dev/'))) {
    return ['does not exist: in /dev that is a card not inserted yet or a typo, not a file to create'];
  }
  return [];
}

/** major:minor of a device number (glibc's gnu_dev_major/minor) and what sysfs says of it. */
export async function deviceIdentity(rdev: bigint): Promise<DeviceIdentity> {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  const sys = `/sys/dev/block/${major}:${minor}`;
  const read = (f: string) => readFile(`${sys}/${f}`, 'utf8').then((v) => v.trim(), () => null);
  return { rdev: `${major}:${minor}`, diskseq: await read('diskseq'), sectors: await read('size') };
}

export async function listDevices(opts: TargetOptions): Promise<Verdict[]> {
  return assessAll(await takeSnapshot(), opts);
}

/**
 * Drops the kernel's cached pages of a block device (BLKFLSBUF, through util-linux's
 * blockdev), so that the read-back reads the card and not what we just wrote to memory.
 */
export async function flushDeviceCache(path: string): Promise<void> {
  try {
    await run('blockdev', ['--flushbufs', path]);
  } catch (err) {
    throw new UserError(`cannot flush the caches of ${path} (blockdev --flushbufs): ${(err as Error).message.split('\n')[0]}`);
  }
}

/** Asks the kernel to read the new partition table (BLKRRPART); best effort, some devices (loop without partscan) cannot. */
export async function rereadPartitions(path: string): Promise<boolean> {
  try {
    await run('blockdev', ['--rereadpt', path]);
    return true;
  } catch {
    return false;
  }
}
