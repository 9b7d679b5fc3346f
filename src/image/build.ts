// One image build as a short sequence of named steps: base (cached by a hash of its inputs)
// → config layer (our .debs + rendered files + immutable-system files) → disk → outputs.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Board, Role } from '../cluster/boards.ts';
import type { FileTree } from '../render/filetree.ts';
import { baseSpec, ensureBase, SUITE, type RefreshBase } from './base.ts';
import { addDevNodes, devNodeListing } from './devnodes.ts';
import { assembleDisk, MiB, type DiskLayout } from './disk.ts';
import { buildLayer } from './layer.ts';
import { hostMirrors, resolveMirrors, sourcesLines, type Mirrors } from './mirror.ts';
import { installedPackages, writeOutputs, type OutputFiles, type PackageEntry, type Sizes, type XzChunkStats } from './outputs.ts';
import { prepareBuildRoot } from './baseroot.ts';
import { newWorkDir } from './orphans.ts';
import { UserError } from '../errors.ts';
import { IMAGE_TARGETS, imageKindOf, imageName, type ImageKind } from './targets.ts';
import { treeListing } from './treehash.ts';
import { createHash } from 'node:crypto';
import { stepRunner } from './steps.ts';
import { holderName, takePidLock } from '../pid-lock.ts';

/** 2024-01-01T00:00:00Z: used when SOURCE_DATE_EPOCH is not set, so builds are reproducible by default. */
export const DEFAULT_SOURCE_DATE_EPOCH = 1704067200;

export interface ImageRequest {
  /** Cluster name: the image file name starts with it. */
  cluster: string;
  board: Board;
  role: Role;
  /** Local .deb files installed into the config layer. */
  debs: string[];
  overlay?: FileTree;
  /** Run sshd (host keys generated on the data partition at first boot). */
  ssh?: boolean;
  cmdlineExtras?: string[];
  /** Packages added to the base (e.g. openssh-server, wpasupplicant); part of its cache key. */
  extraPackages?: string[];
}

export interface BuildOptions {
  cacheDir: string;
  outDir: string;
  sourceDateEpoch?: number;
  xz?: boolean;
  /** true: build the base again even if cached; refreshOnce() for several images in one run. */
  refreshBase?: RefreshBase;
  /** Sources lines; default: the host's Debian mirror with main + non-free-firmware. */
  sources?: string[];
  onStep?: (step: string) => void;
  onLine?: (line: string) => void;
  /** Hears that the build waits for another piinit (for the user: it is not stuck). */
  onWait?: (message: string) => void;
  /** Checked before each step: an aborted build stops there and cleans up (unmounts, removes its work directory). */
  signal?: AbortSignal;
}

export interface ImageResult {
  name: string;
  kind: ImageKind;
  role: Role;
  baseKey: string;
  baseCached: boolean;
  /** When the base was built, ISO 8601 (null: unknown); see base-age.ts. */
  baseBuiltAt: string | null;
  /** Stale bases of this kind removed from the cache by this build (image/prune.ts). */
  prunedBases: string[];
  /** sha256 over the listing of root, boot and data trees (paths, modes, owners, mtimes, content). */
  contentHash: string;
  files: OutputFiles;
  sizes: Sizes;
  sha256: string;
  /** null without --xz. */
  xzChunks: XzChunkStats | null;
  layout: DiskLayout;
  /** Milliseconds per step. */
  timings: Record<string, number>;
}

/** The apt sources of an image built from these archives. */
export function imageSources(m: Mirrors): string[] {
  return sourcesLines(m, SUITE, ['main', 'non-free-firmware']);
}

/** The sources from the host's Debian archives (UserError if it has none, or no security one). */
export async function defaultSources(): Promise<string[]> {
  return imageSources(resolveMirrors(await hostMirrors()));
}

/** The boot partition's FAT cannot hold a time before 1980. */
const FAT_FIRST_EPOCH = 315532800;

/** The images' time: SOURCE_DATE_EPOCH when set, else a fixed date (images do not depend on
 *  when they were built). UserError for a value that is not whole seconds from 1980 on. */
export function imageEpoch(env: NodeJS.ProcessEnv = process.env): number {
  const s = env.SOURCE_DATE_EPOCH;
  if (s === undefined || s === '') return DEFAULT_SOURCE_DATE_EPOCH;
  if (!/^\d+$/.test(s) || Number(s) < FAT_FIRST_EPOCH) {
    throw new UserError(`SOURCE_DATE_EPOCH must be whole seconds from ${FAT_FIRST_EPOCH} (1980-01-01, the first time a FAT boot partition can hold) on, got "${s}"`);
  }
  return Number(s);
}

export async function buildImage(req: ImageRequest, opts: BuildOptions): Promise<ImageResult> {
  const kind = imageKindOf(req.board);
  const name = imageName(req.cluster, kind, req.role);
  await mkdir(opts.outDir, { recursive: true });
  const raw = join(opts.outDir, `${name}.img`);
  // Two builds of one image into one folder would write the same temporary files.
  const unlock = await takePidLock(`${raw}.lock`, 0o644, (pid) => new UserError(`${holderName(pid)} is building ${name}.img in ${opts.outDir}; wait for it to finish, or build into another --out`));
  try {
    return await buildInto({ raw, kind, name }, req, opts);
  } finally {
    await unlock();
  }
}

async function buildInto({ raw, kind, name }: { raw: string; kind: ImageKind; name: string }, req: ImageRequest, opts: BuildOptions): Promise<ImageResult> {
  const epoch = opts.sourceDateEpoch ?? imageEpoch();
  const timings: Record<string, number> = {};
  const step = stepRunner(name, opts, timings);

  const target = IMAGE_TARGETS[kind];
  const sources = opts.sources ?? (await defaultSources());
  const spec = baseSpec(kind, sources, req.extraPackages ?? [], epoch);
  const base = await step('base', () => ensureBase(spec, opts.cacheDir, { refresh: opts.refreshBase, onLine: opts.onLine, signal: opts.signal }));

  // Assembled beside its final name (same file system: the rename keeps it sparse), put in
  // place with the other outputs by writeOutputs; removed below if the build stops first.
  const partial = `${raw}.partial`;
  const work = await newWorkDir(opts.cacheDir, name);
  try {
    const buildRoot = await step('root', () => prepareBuildRoot(base, work, {
      signal: opts.signal,
      onWait: (pid) => opts.onWait?.(`${name}: waiting for ${holderName(pid)}, which unpacks the same base`),
    }));
    const dirs = { root: buildRoot.root, boot: join(work, 'boot'), data: join(work, 'data') };
    const devNodes = buildRoot.devNodes;
    let contentHash: string;
    let packages: PackageEntry[];
    let layout: DiskLayout;
    try {
      await step('layer', () =>
        buildLayer(
          {
            kind,
            debs: req.debs,
            overlay: req.overlay,
            ssh: req.ssh,
            cmdlineExtras: req.cmdlineExtras,
            sourceDateEpoch: epoch,
          },
          { ...dirs, devNodes },
        ),
      );
      // Sorted, so that the device nodes a rootless build adds to the disk afterwards
      // (devnodes.ts) hash the same as the ones a root build has in its tree.
      contentHash = await step('hash', async () => {
        const lines: string[] = [];
        for (const [label, dir] of Object.entries(dirs)) for (const line of await treeListing(dir)) lines.push(`${label}${line}`);
        if (!devNodes) lines.push(...devNodeListing(epoch).map((l) => `root${l}`));
        const h = createHash('sha256');
        for (const line of lines.sort()) h.update(`${line}\n`);
        return h.digest('hex');
      });
      packages = await installedPackages(dirs.root);
      layout = await step('disk', async () => {
        const l = await assembleDisk({ image: partial, dirs, bootType: target.boot === 'efi' ? 'ef' : '0c', seed: name, sourceDateEpoch: epoch });
        if (!devNodes) await addDevNodes(partial, l.root.startMiB * MiB, epoch);
        return l;
      });
    } finally {
      await buildRoot.release();
    }
    const out = await step('outputs', () =>
      writeOutputs(
        partial,
        raw,
        {
          name,
          kind,
          role: req.role,
          arch: target.arch,
          suite: SUITE,
          sources,
          boards: target.boards,
          sourceDateEpoch: epoch,
          baseKey: base.key,
          contentHash,
          layout,
          packages,
        },
        { xz: opts.xz ?? true, cacheDir: opts.cacheDir },
      ),
    );
    return { name, kind, role: req.role, baseKey: base.key, baseCached: base.cached, baseBuiltAt: base.builtAt?.toISOString() ?? null, prunedBases: base.pruned, contentHash, files: out.files, sizes: out.sizes, sha256: out.sha256, xzChunks: out.xzChunks, layout, timings };
  } finally {
    await rm(work, { recursive: true, force: true });
    await rm(partial, { force: true });
  }
}
