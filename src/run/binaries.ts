// The executables the local cluster runs: the verified releases of cluster.yaml's
// components for this machine's architecture, from piinit's release cache (fetched on
// first use). A component with no reachable source is reported, not faked.
import type { DebianArch } from '../cluster/boards.ts';
import type { Cluster, ComponentName } from '../cluster/types.ts';
import { UserError } from '../errors.ts';
import { ensureReleases, type ProgressEvent } from '../releases/fetch.ts';
import type { Binaries } from './local.ts';

export function hostArch(): DebianArch {
  switch (process.arch) {
    case 'x64':
      return 'amd64';
    case 'arm64':
      return 'arm64';
    case 'arm':
      return 'armhf';
    default:
      throw new UserError(`piinit up runs on amd64, arm64 or armhf machines, not ${process.arch}`);
  }
}

export interface ResolvedBinaries {
  binaries: Binaries;
  unavailable: { component: ComponentName; reason: string }[];
  fetched: ComponentName[];
}

export async function releaseBinaries(
  cluster: Cluster,
  opts: { cacheDir: string; offline?: boolean; onProgress?: (ev: ProgressEvent) => void },
): Promise<ResolvedBinaries> {
  const arch = hostArch();
  const report = await ensureReleases({ cluster, arches: [arch], cacheDir: opts.cacheDir, offline: opts.offline, onProgress: opts.onProgress });
  const binaries: Binaries = {};
  for (const e of report.entries) {
    if (e.arch !== arch) continue;
    const path = e.binaries[e.component];
    if (path) binaries[e.component] = path;
  }
  return {
    binaries,
    unavailable: report.unavailable.filter((u) => u.arch === arch).map((u) => ({ component: u.component, reason: u.reason })),
    fetched: report.fetched.filter((f) => f.arch === arch).map((f) => f.component),
  };
}
