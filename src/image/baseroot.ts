// The root a build works in: the cached base as the read-only lower layer of an overlay
// mount, so a build writes only what it changes instead of unpacking the whole base
// (750 MB in 15,000 files for arm64) each time — the largest part of a config-only
// rebuild before. Where overlayfs cannot be mounted, the base is unpacked as before; so it
// is in a user namespace (a rootless build), where dpkg's renames of the lower layer's
// directories fail (EXDEV) and the base's device nodes cannot be made (devnodes.ts).
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { BaseResult } from './base.ts';
import { devNodeExcludes } from './devnodes.ts';
import { unpackTmpPath } from './orphans.ts';
import { mountedLowerNames } from './prune.ts';
import { LOCK_WRITING_MS, waitForPidLock } from '../pid-lock.ts';
import { inUserNamespace } from './rootless.ts';
import { run } from './run.ts';

export interface BuildRoot {
  /** The directory to build in. */
  root: string;
  overlay: boolean;
  /** false: root/dev lacks the device nodes (devnodes.ts adds them to the disk). */
  devNodes: boolean;
  /** Unmounts the overlay (its upper layer is left in work for the caller to remove). */
  release(): Promise<void>;
}

export async function extractBase(tarball: string, root: string, opts: { devNodes?: boolean } = {}): Promise<void> {
  await mkdir(root, { recursive: true });
  await run('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-xpf', tarball, '-C', root, ...(opts.devNodes === false ? devNodeExcludes() : [])]);
}

/** Where the base is unpacked for overlays to build on: beside its tarball. */
export function treePathOf(base: BaseResult): string {
  return base.tarball.replace(/\.tar$/, '.root');
}

/** The base unpacked once beside its tarball (again when the tarball was just rebuilt, or
 *  is newer than the tree: a rebuild stopped while unpacking left the last base's tree).
 *  null when the tree is out of date but running builds build on it (--refresh-base while
 *  they run): it stays theirs until they end, and this build unpacks a root of its own.
 *  Called holding the tree's lock (prepareBuildRoot). */
export async function baseTree(base: BaseResult): Promise<string | null> {
  const tree = treePathOf(base);
  const s = await stat(tree).catch(() => null);
  // The tree's ctime is when it was renamed into place, after its tarball was made; no
  // one can set it back.
  const current = s?.isDirectory() && (base.builtAt === null || s.ctimeMs >= base.builtAt.getTime());
  if (current && base.cached) return tree;
  if (s && (await mountedLowerNames()).has(basename(tree))) return null; // a running build's lower layer
  const tmp = unpackTmpPath(tree);
  await rm(tmp, { recursive: true, force: true });
  try {
    await extractBase(base.tarball, tmp);
    await rm(tree, { recursive: true, force: true });
    await rename(tmp, tree);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return tree;
}

/** overlayfs takes ':' and ',' as separators in its options; such paths are unpacked instead. */
function overlaySafe(path: string): boolean {
  return !/[:,\\]/.test(path);
}

/** onWait hears once that the build waits for another that unpacks the same base. */
export async function prepareBuildRoot(
  base: BaseResult,
  work: string,
  opts: { signal?: AbortSignal; onWait?: (holder: number | null) => void } = {},
): Promise<BuildRoot> {
  const root = join(work, 'root');
  const upper = join(work, 'upper');
  const overlayWork = join(work, 'overlay-work');
  await mkdir(root, { recursive: true });
  if (inUserNamespace()) {
    await extractBase(base.tarball, root, { devNodes: false });
    return { root, overlay: false, devNodes: false, release: async () => undefined };
  }
  const tree = treePathOf(base);
  if (overlaySafe(tree) && overlaySafe(work)) {
    // Held from the look at the tree to the mount on it: a build that would unpack the tree
    // again sees every overlay that builds on the old one, and one that waits for it
    // mounts the new tree, not one half removed.
    const unlock = await waitForPidLock(`${tree}.lock`, 0o644, { writingMs: LOCK_WRITING_MS, signal: opts.signal, onWait: opts.onWait });
    try {
      const lower = await baseTree(base);
      if (lower) {
        await mkdir(upper, { recursive: true });
        await mkdir(overlayWork, { recursive: true });
        const mounted = await run('mount', ['-t', 'overlay', 'piinit-build', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${overlayWork}`, root]).then(
          () => true,
          () => false, // no overlayfs here (or not allowed): unpack below
        );
        if (mounted) {
          return {
            root,
            overlay: true,
            devNodes: true,
            release: async () => {
              // A lazy unmount if something still holds it open: the mount must not outlive the build.
              await run('umount', [root]).catch(() => run('umount', ['--lazy', root]));
            },
          };
        }
      }
    } finally {
      await unlock();
    }
  }
  await extractBase(base.tarball, root);
  return { root, overlay: false, devNodes: true, release: async () => undefined };
}
