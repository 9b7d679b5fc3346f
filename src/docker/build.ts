// `piinit image --format oci`: the amd64 root file system of one role, built by the image
// pipeline (cached base + our .debs + rendered files), adjusted for a container
// (container.ts), packed as one reproducible layer tar and written as an image archive
// `docker load` accepts. No Docker daemon is needed. Runs as root or, like `piinit image`,
// as root of a user namespace (image/rootless.ts): no device nodes are made there, and the
// layer never carries /dev's nodes (Docker mounts a /dev of its own over it), so both give
// the same layer.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Role } from '../cluster/boards.ts';
import { baseSpec, ensureBase, type RefreshBase } from '../image/base.ts';
import { defaultSources, imageEpoch } from '../image/build.ts';
import { extractBase } from '../image/baseroot.ts';
import { devNodeExcludes } from '../image/devnodes.ts';
import { inUserNamespace } from '../image/rootless.ts';
import { newWorkDir } from '../image/orphans.ts';
import { stepRunner } from '../image/steps.ts';
import { buildLayer, writeTree } from '../image/layer.ts';
import { run } from '../image/run.ts';
import { clampMtimes } from '../image/treehash.ts';
import { CONTAINER_REMOVED_PATHS, containerImageConfig, containerTree } from './container.ts';
import { writeImageArchive } from './oci.ts';

export interface ContainerImageRequest {
  cluster: string;
  role: Role;
  /** Local .deb files (amd64 + all), in install order (image/debs.ts roleDebs). */
  debs: string[];
  extraPackages?: string[];
}

export interface ContainerBuildOptions {
  /** The image cache (base root file systems), shared with `piinit image`. */
  cacheDir: string;
  outDir: string;
  sourceDateEpoch?: number;
  sources?: string[];
  /** Build the base again even when it is cached (Debian's updates since); see RefreshBase. */
  refreshBase?: RefreshBase;
  onStep?: (step: string) => void;
  onLine?: (line: string) => void;
  /** Checked before each step: an aborted build stops there and removes its work directory. */
  signal?: AbortSignal;
}

export interface ContainerImageResult {
  role: Role;
  /** piinit/<cluster>-<role>:<first 12 hex of the layer digest> */
  tag: string;
  archive: string;
  imageId: string;
  layerDigest: string;
  baseCached: boolean;
  /** When the base was built, ISO 8601 (null: unknown); see image/base-age.ts. */
  baseBuiltAt: string | null;
  /** Stale amd64 bases removed from the cache by this build (image/prune.ts). */
  prunedBases: string[];
}

export function containerImageRepo(cluster: string, role: Role): string {
  return `piinit/${cluster}-${role}`;
}

/** Makes the unpacked root a container root: the data directory's content at /data (Docker
 *  copies it into a fresh named volume), the container files, no kernel. */
export async function adjustForContainer(dirs: { root: string; data: string }, epoch: number): Promise<void> {
  const dataMount = join(dirs.root, 'data');
  for (const name of await readdir(dirs.data)) await rename(join(dirs.data, name), join(dataMount, name));
  for (const p of CONTAINER_REMOVED_PATHS) await rm(join(dirs.root, p), { recursive: true, force: true });
  await mkdir(join(dirs.root, 'boot'), { mode: 0o755 });
  await writeTree(dirs.root, containerTree());
  await clampMtimes(dirs.root, epoch);
}

/** GNU tar with everything that differs between two builds taken out, /dev's nodes too. */
export async function writeLayerTar(root: string, out: string, epoch: number): Promise<void> {
  await run('tar', [
    '--create',
    '--file',
    out,
    '--directory',
    root,
    '--sort=name',
    '--numeric-owner',
    `--mtime=@${epoch}`,
    '--clamp-mtime',
    '--format=posix',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    '--xattrs',
    '--xattrs-include=security.capability',
    ...devNodeExcludes(),
    '.',
  ]);
}

async function sha256Hex(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

export async function buildContainerImage(req: ContainerImageRequest, opts: ContainerBuildOptions): Promise<ContainerImageResult> {
  const epoch = opts.sourceDateEpoch ?? imageEpoch();
  const sources = opts.sources ?? (await defaultSources());
  const name = `${req.cluster}-${req.role}.oci`;
  const step = stepRunner(name, opts);
  const base = await step('base', () => ensureBase(baseSpec('amd64', sources, req.extraPackages ?? [], epoch), opts.cacheDir, { refresh: opts.refreshBase, onLine: opts.onLine, signal: opts.signal }));
  await mkdir(opts.outDir, { recursive: true });
  const work = await newWorkDir(opts.cacheDir, `oci-${req.cluster}-${req.role}`);
  try {
    const dirs = { root: join(work, 'root'), boot: join(work, 'boot'), data: join(work, 'data') };
    await step('layer', async () => {
      const devNodes = !inUserNamespace();
      await extractBase(base.tarball, dirs.root, { devNodes });
      await buildLayer({ kind: 'amd64', debs: req.debs, sourceDateEpoch: epoch }, { ...dirs, devNodes });
      await adjustForContainer(dirs, epoch);
    });
    const layer = join(work, 'layer.tar');
    const digest = await step('tar', async () => {
      await writeLayerTar(dirs.root, layer, epoch);
      await rm(dirs.root, { recursive: true, force: true });
      return sha256Hex(layer);
    });
    const tag = `${containerImageRepo(req.cluster, req.role)}:${digest.slice(0, 12)}`;
    const archive = join(opts.outDir, `${req.cluster}-${req.role}.oci.tar`);
    const cfg = containerImageConfig(tag, epoch, { 'piinit.cluster': req.cluster, 'piinit.role': req.role });
    const r = await step('archive', () => writeImageArchive(layer, cfg, archive));
    return { role: req.role, tag, archive, imageId: r.imageId, layerDigest: r.layerDigest, baseCached: base.cached, baseBuiltAt: base.builtAt?.toISOString() ?? null, prunedBases: base.pruned };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
