// `piinit up --docker`: the cluster moved into a Docker subnet, its role images built (the
// same pipeline as `piinit image --format oci`) and loaded, one container per node, then a
// wait for health asked from this host (it reaches the containers' addresses through the
// bridge of the network piinit created).
import { execa } from 'execa';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Cluster } from '../cluster/types.ts';
import { UserError } from '../errors.ts';
import type { HttpAuth } from '../health/http.ts';
import { checkHealth, type HealthReport, type Targets } from '../health/report.ts';
import { formatReport, progressLine } from '../health/format.ts';
import { sayWaits } from '../cli/fetch.ts';
import { releaseBinaries } from '../run/binaries.ts';
import { localAuth, localTargets } from '../run/local.ts';
import { dockerizeCluster } from './dockerize.ts';
import { checkDocker } from './engine.ts';
import { checkStateDir } from '../run/state.ts';
import { buildDockerImages } from './images.ts';
import { type DockerState, stoppedContainers, upDocker } from './cluster.ts';

export interface UpDockerCommandOptions {
  stateDir: string;
  subnet: string;
  releaseCache: string;
  imageCache: string;
  offline: boolean;
  timeoutS: number;
  wait: boolean;
  json: boolean;
  tty: boolean;
}

/** Nomad is unavailable when the release cache has none for amd64, or when what it holds is
 *  not a Nomad program (a stand-in that only lets the packages be built). */
export async function nomadAvailability(nomadBinary: string | undefined, unavailableReason?: string): Promise<string | null> {
  if (!nomadBinary) return unavailableReason ?? 'no Nomad release in the release cache';
  const r = await execa(nomadBinary, ['version'], { reject: false, timeout: 10_000 });
  return /^Nomad v/m.test(r.stdout ?? '') ? null : `the cached Nomad release (${nomadBinary}) is not a Nomad program (\`nomad version\` printed no version)`;
}

/** What to ask and with which credentials, for a cluster running in Docker. */
export function dockerTargets(cluster: Cluster, state: Pick<DockerState, 'subnet' | 'unavailable'>): { targets: Targets; auth: HttpAuth } {
  const d = dockerizeCluster(cluster, state.subnet);
  return { targets: localTargets(d, state), auth: localAuth(d) };
}

/** Health of the Docker cluster, with containers that are not running named as problems. */
export async function checkDockerHealth(cluster: Cluster, state: DockerState, auth: Partial<HttpAuth> = {}, timeoutMs = 3000): Promise<HealthReport> {
  const t = dockerTargets(cluster, state);
  const report = await checkHealth(t.targets, { ...t.auth, ...auth }, timeoutMs);
  const stopped = await stoppedContainers(state);
  if (!stopped.length) return report;
  return { ...report, healthy: false, problems: [...stopped.map((c) => `container ${c} is not running`), ...report.problems] };
}

export async function upDockerCommand(cluster: Cluster, clusterArg: string, opts: UpDockerCommandOptions): Promise<void> {
  const say = (s: string) => {
    if (!opts.json) console.log(s);
  };
  await checkDocker();
  if (process.getuid?.() !== 0) throw new UserError('up --docker builds the role images (chroot, file owners) and needs root (run with sudo)');
  await checkStateDir(opts.stateDir);
  const t0 = Date.now();
  const rel = await releaseBinaries(cluster, { cacheDir: opts.releaseCache, offline: opts.offline, onProgress: sayWaits });
  const nomadReason = rel.unavailable.find((u) => u.component === 'nomad')?.reason;
  const unavailable = rel.unavailable.filter((u) => u.component !== 'nomad');
  if (unavailable.length) throw new UserError(`cannot build the images: ${unavailable.map((u) => `${u.component}: ${u.reason}`).join('; ')}`);
  const nomad = await nomadAvailability(rel.binaries.nomad, nomadReason);
  const dockerUnavailable = nomad ? [{ component: 'nomad', reason: nomad }] : [];
  if (nomad) say(`unavailable: nomad — ${nomad}`);

  const dc = dockerizeCluster(cluster, opts.subnet);
  await mkdir(opts.imageCache, { recursive: true });
  const outDir = join(opts.stateDir, 'images');
  try {
    const images = await buildDockerImages(dc, {
      releaseCache: opts.releaseCache,
      imageCache: opts.imageCache,
      outDir,
      onStep: opts.tty ? (role, s) => console.log(`  image ${role}: ${s} …`) : undefined,
    });
    const state = await upDocker(dc, { stateDir: opts.stateDir, subnet: opts.subnet, images, unavailable: dockerUnavailable, onEvent: opts.tty ? (s) => console.log(`  ${s}`) : undefined });

    let health: HealthReport | null = null;
    if (opts.wait) {
      const deadline = Date.now() + opts.timeoutS * 1000;
      const { targets } = dockerTargets(cluster, state);
      let last = '';
      for (;;) {
        health = await checkDockerHealth(cluster, state, {}, 3000);
        if (opts.tty) {
          const line = `  ${((Date.now() - t0) / 1000).toFixed(0).padStart(3)} s  ${progressLine(health, targets.expected.consulServers.length)}`;
          if (line !== last) process.stdout.write(`\r\x1b[2K${line}`);
          last = line;
        }
        if (health.healthy || Date.now() >= deadline) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      if (opts.tty) process.stdout.write('\n');
    }
    if (opts.json) {
      console.log(JSON.stringify({ stateDir: opts.stateDir, mode: 'docker', network: state.network, subnet: state.subnet, nodes: state.nodes, unavailable: state.unavailable, urls: state.urls, seconds: (Date.now() - t0) / 1000, health }, null, 2));
    } else {
      if (health && !health.healthy) console.log(formatReport(health, []));
      else if (health) {
        console.log(`healthy after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        for (const n of health.notes) console.log(`note: ${n}`);
      }
      console.log(`\nDocker network ${state.network} (${state.subnet}); containers: ${state.nodes.map((n) => n.container).join(', ')}\n`);
      for (const u of state.urls) console.log(`  ${u.name.padEnd(11)} ${u.url}`);
      if (nomad) console.log(`  ${'Nomad UI'.padEnd(11)} -  (Nomad unavailable: ${nomad})`);
      console.log(`\n  piinit status ${clusterArg}    piinit down ${clusterArg}`);
    }
    if (health && !health.healthy) throw new UserError(`the Docker cluster is not healthy after ${opts.timeoutS} s (docker logs <container>, or docker exec <container> journalctl)`, 1);
  } finally {
    // The archives are in Docker by now (or the build failed); the next `up` builds them
    // again, to the same tag, which is then not loaded again.
    await rm(outDir, { recursive: true, force: true });
  }
}
