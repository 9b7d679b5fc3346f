// The container images of a cluster: its .debs built for amd64 (config packages rendered
// for the cluster as given — pass the dockerized cluster), then one image per role.
import { rm } from 'node:fs/promises';
import type { Role } from '../cluster/boards.ts';
import type { Cluster } from '../cluster/types.ts';
import { buildPackages, rolesOf } from '../deb/build.ts';
import { externalDepends, roleDebs } from '../image/debs.ts';
import { optionalPackages } from '../image/system.ts';
import { buildContainerImage, type ContainerImageResult } from './build.ts';
import { refreshOnce } from '../image/base.ts';
import { newWorkDir } from '../image/orphans.ts';

export interface DockerImagesOptions {
  /** Release cache (`piinit fetch`). */
  releaseCache: string;
  /** Image cache (base root file systems), shared with `piinit image`. */
  imageCache: string;
  outDir: string;
  roles?: Role[];
  /** SOURCE_DATE_EPOCH for packages and layer; default: the environment's, else the
   *  packages' own rule (newest cluster file) and the image pipeline's default. */
  sourceDateEpoch?: number;
  /** apt sources of the base (default: the host's Debian archives). */
  sources?: string[];
  /** Build each base again once even when it is cached. */
  refreshBase?: boolean;
  onStep?: (role: Role, step: string) => void;
  /** Ctrl-C: the build under way stops at its next step (docker/build.ts). */
  signal?: AbortSignal;
}

export async function buildDockerImages(cluster: Cluster, opts: DockerImagesOptions): Promise<ContainerImageResult[]> {
  const roles = rolesOf(cluster).filter((r) => !opts.roles || opts.roles.includes(r));
  const debDir = await newWorkDir(opts.imageCache, 'oci-debs');
  try {
    await buildPackages({ cluster, arches: ['amd64'], outDir: debDir, cacheDir: opts.releaseCache,
      // Unpacked once into the layer and thrown away: no time spent on xz.
      compression: { kind: 'gzip', level: 1 }, ...(opts.sourceDateEpoch !== undefined ? { epoch: opts.sourceDateEpoch } : {}) });
    const ssh = cluster.ssh.authorizedKeys.some((k) => k.trim());
    const out: ContainerImageResult[] = [];
    const refreshBase = opts.refreshBase ? refreshOnce() : false; // the roles may share one base
    for (const role of roles) {
      opts.onStep?.(role, 'packages');
      const debs = await roleDebs(debDir, cluster.name, role, 'amd64');
      const external = await externalDepends(debs);
      out.push(
        await buildContainerImage(
          { cluster: cluster.name, role, debs, extraPackages: [...optionalPackages({ ssh, wifi: cluster.wifi !== null, raspi: false }), ...external] },
          { cacheDir: opts.imageCache, outDir: opts.outDir, ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}), ...(opts.sources ? { sources: opts.sources } : {}), refreshBase, onStep: (s) => opts.onStep?.(role, s), signal: opts.signal },
        ),
      );
    }
    return out;
  } finally {
    await rm(debDir, { recursive: true, force: true });
  }
}
