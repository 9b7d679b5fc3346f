// Puts local executables into a release cache exactly as `piinit fetch` leaves them, so the
// packaging tests run without downloads. The binaries are real programs of this host.
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DebianArch } from '../../../src/cluster/boards.ts';
import type { Cluster, ComponentName, ComponentSpec } from '../../../src/cluster/types.ts';
import { type BuildResult, buildPackages } from '../../../src/deb/build.ts';
import { storeBlob, tmpDir, writeEntry } from '../../../src/releases/cache.ts';
import { sha256File } from '../../../src/releases/download.ts';

export async function seedRelease(
  cacheDir: string,
  spec: ComponentSpec,
  arch: DebianArch,
  programs: Record<string, string>,
): Promise<void> {
  await mkdir(tmpDir(cacheDir), { recursive: true });
  const sha256: Record<string, string> = {};
  for (const [program, src] of Object.entries(programs)) {
    const tmp = join(tmpDir(cacheDir), `${spec.name}-${program}-${arch}.seed`);
    await copyFile(src, tmp);
    const hex = await sha256File(tmp);
    await storeBlob(cacheDir, tmp, hex);
    sha256[program] = hex;
  }
  await writeEntry(cacheDir, spec, arch, { origin: `file://${Object.values(programs)[0]}`, sha256 });
}

/** The `components:` of a cluster.yaml whose versions are this host's programs (setup-test-host.sh
 *  installs them from Debian; Nomad has none, see HOST_AMD64). */
export const HOST_COMPONENTS_YAML = `components:
  consul: { version: 1.8.7, source: debian, suite: bullseye, package: consul }
  nomad: { version: 1.6.5, source: hashicorp }
  prometheus: { version: 2.24.1, source: debian, suite: bullseye, package: prometheus }
  node_exporter: { version: 1.5.0, source: debian, suite: bookworm, package: prometheus-node-exporter }`;

/** The amd64 programs of this host for every component. Nomad has no binary here: a small
 *  real amd64 executable stands in, which is enough for packaging (never run as Nomad). */
export const HOST_AMD64: Record<ComponentName, Record<string, string>> = {
  consul: { consul: '/usr/local/bin/consul' },
  nomad: { nomad: '/usr/bin/true' },
  prometheus: { prometheus: '/usr/local/bin/prometheus', promtool: '/usr/local/bin/promtool' },
  node_exporter: { node_exporter: '/usr/bin/prometheus-node-exporter' },
};

export async function seedHostAmd64(cacheDir: string, components: Record<ComponentName, ComponentSpec>): Promise<void> {
  for (const [c, programs] of Object.entries(HOST_AMD64) as [ComponentName, Record<string, string>][]) {
    await seedRelease(cacheDir, components[c], 'amd64', programs);
  }
}

/** The cluster's .debs for amd64 from this host's binaries: the release cache is seeded,
 *  then every package is built (gzip -1: these tests look inside, they do not ship them). */
export async function buildHostAmd64Debs(
  cluster: Cluster,
  dirs: { releases: string; out: string },
  epoch?: number,
): Promise<BuildResult> {
  await seedHostAmd64(dirs.releases, cluster.components);
  return buildPackages({
    cluster,
    arches: ['amd64'],
    outDir: dirs.out,
    cacheDir: dirs.releases,
    ...(epoch === undefined ? {} : { epoch }),
    compression: { kind: 'gzip', level: 1 },
  });
}
