// `piinit up --docker` / `down` / `status` on the Docker twin: one container per node (its
// own hostname, address, and named volume at /data) on a user-defined network with an
// explicit subnet, all labelled piinit.cluster=<name>. What was created is recorded in
// <state>/docker.json, so status and down know the cluster runs in Docker.
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cidrsOverlap, parseCidr } from '../cluster/net.ts';
import type { Cluster } from '../cluster/types.ts';
import { writeFileAtomic } from '../cluster/atomic-write.ts';
import { UserError } from '../errors.ts';
import { PORTS } from '../health/report.ts';
import type { ContainerImageResult } from './build.ts';
import { SYSTEMD_RUN_ARGS } from './container.ts';
import { docker } from './engine.ts';
import { purgeStateDir, readStateFile } from '../run/state.ts';

export interface DockerNode {
  name: string;
  role: string;
  address: string;
  container: string;
  volume: string;
  image: string;
}

export interface DockerState {
  version: 1;
  mode: 'docker';
  cluster: string;
  subnet: string;
  network: string;
  nodes: DockerNode[];
  unavailable: { component: string; reason: string }[];
  /** UI name → URL on 127.0.0.1. */
  urls: { name: string; url: string }[];
}

export const dockerStatePath = (stateDir: string) => join(stateDir, 'docker.json');

export async function readDockerState(stateDir: string): Promise<DockerState | null> {
  return readStateFile<DockerState>(
    dockerStatePath(stateDir),
    (s) => (s.mode !== 'docker' || typeof s.network !== 'string' || !Array.isArray(s.nodes) ? 'no docker network or nodes' : null),
    "remove its containers and network by hand (docker ps -a --filter label=piinit.cluster; the volumes keep the nodes' data)",
  );
}

/** Names and the `docker run` arguments of every node. Pure. */
export function plan(docker: Cluster, images: Map<string, string>): { network: string; nodes: (DockerNode & { args: string[] })[] } {
  const network = `piinit-${docker.name}`;
  const label = ['--label', `piinit.cluster=${docker.name}`];
  const firstServer = docker.nodes.find((n) => n.role === 'server');
  const monitor = docker.nodes.find((n) => n.role === 'monitor');
  const nodes = docker.nodes.map((n) => {
    const container = `${docker.name}-${n.name}`;
    const volume = `${docker.name}-${n.name}-data`;
    const image = images.get(n.role);
    if (!image) throw new Error(`no image for role ${n.role}`);
    const publish: string[] = [];
    if (n === firstServer) for (const p of [PORTS.consulHttp, PORTS.consulHttps, PORTS.nomad]) publish.push('-p', `127.0.0.1::${p}`);
    if (n === monitor) publish.push('-p', `127.0.0.1::${PORTS.prometheus}`);
    const args = ['run', '-d', '--name', container, '--hostname', n.name, '--network', network, '--ip', n.address!, ...label, ...SYSTEMD_RUN_ARGS, '-v', `${volume}:/data`, ...publish, image];
    return { name: n.name, role: n.role, address: n.address!, container, volume, image, args };
  });
  return { network, nodes };
}

/** The host route that already covers part of subnet, if any (`ip -j route` rows). Pure.
 *  Docker does not check an explicit --subnet against the host's routes; an overlap (a LAN,
 *  a VPN, a bridge left by another daemon) would send our probes to the wrong place. */
export function routeConflict(subnet: string, routes: { dst: string; dev?: string }[]): { dst: string; dev?: string } | null {
  const ours = parseCidr(subnet);
  if (!ours.ok) throw new UserError(`--docker-subnet ${subnet} ${ours.reason}`);
  for (const r of routes) {
    if (r.dst === 'default') continue;
    const theirs = parseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/32`);
    if (theirs.ok && cidrsOverlap(ours.cidr, theirs.cidr)) return r;
  }
  return null;
}

async function hostRoutes(): Promise<{ dst: string; dev?: string }[]> {
  const { stdout } = await promisify(execFile)('ip', ['-j', 'route', 'show']);
  return JSON.parse(stdout || '[]') as { dst: string; dev?: string }[];
}

export async function upDocker(
  dockerCluster: Cluster,
  opts: { stateDir: string; subnet: string; images: ContainerImageResult[]; unavailable: { component: string; reason: string }[]; onEvent?: (s: string) => void },
): Promise<DockerState> {
  const say = opts.onEvent ?? (() => {});
  for (const img of opts.images) {
    if ((await docker(['image', 'inspect', img.tag], { reject: false })).ok) continue;
    await docker(['load', '-i', img.archive]);
    say(`loaded ${img.tag}`);
  }
  const p = plan(dockerCluster, new Map(opts.images.map((i) => [i.role, i.tag])));
  if (!(await docker(['network', 'inspect', p.network], { reject: false })).ok) {
    const clash = routeConflict(opts.subnet, await hostRoutes());
    if (clash) {
      throw new UserError(
        `the Docker subnet ${opts.subnet} overlaps ${clash.dst}${clash.dev ? ` on ${clash.dev}` : ''}, already routed on this host; choose another with --docker-subnet`,
      );
    }
    await docker(['network', 'create', '--subnet', opts.subnet, '--label', `piinit.cluster=${dockerCluster.name}`, p.network]);
    say(`created network ${p.network} (${opts.subnet})`);
  }
  for (const n of p.nodes) {
    if (!(await docker(['volume', 'inspect', n.volume], { reject: false })).ok) {
      await docker(['volume', 'create', '--label', `piinit.cluster=${dockerCluster.name}`, n.volume]);
    }
    const inspect = await docker(['inspect', '--format', '{{.State.Running}} {{.Config.Image}}', n.container], { reject: false });
    if (inspect.ok && inspect.out.trim() === `true ${n.image}`) continue;
    if (inspect.ok) await docker(['rm', '-f', n.container]);
    await docker(n.args);
    say(`started ${n.container} (${n.address})`);
  }
  const urls: { name: string; url: string }[] = [];
  const port = async (container: string, p: number) => (await docker(['port', container, `${p}/tcp`])).out.trim().split('\n')[0]!;
  const server = p.nodes.find((n) => n.role === 'server');
  const monitor = p.nodes.find((n) => n.role === 'monitor');
  const tls = dockerCluster.security.tls;
  if (server) {
    urls.push({ name: 'Consul UI', url: `${tls ? 'https' : 'http'}://${await port(server.container, tls ? PORTS.consulHttps : PORTS.consulHttp)}/ui/` });
    if (!opts.unavailable.some((u) => u.component === 'nomad')) urls.push({ name: 'Nomad UI', url: `${tls ? 'https' : 'http'}://${await port(server.container, PORTS.nomad)}/ui/` });
  }
  if (monitor) urls.push({ name: 'Prometheus', url: `http://${await port(monitor.container, PORTS.prometheus)}/` });
  const state: DockerState = {
    version: 1,
    mode: 'docker',
    cluster: dockerCluster.name,
    subnet: opts.subnet,
    network: p.network,
    nodes: p.nodes.map(({ args: _args, ...n }) => n),
    unavailable: opts.unavailable,
    urls,
  };
  await mkdir(opts.stateDir, { recursive: true, mode: 0o750 });
  await writeFileAtomic(dockerStatePath(opts.stateDir), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o640, overwrite: true });
  return state;
}

/** Removes the containers and the network; with purge also the volumes and the state file. */
export async function downDocker(stateDir: string, state: DockerState, opts: { purge?: boolean }): Promise<{ removed: string[]; volumes: string[]; kept: string[] }> {
  const removed: string[] = [];
  for (const n of [...state.nodes].reverse()) {
    if ((await docker(['rm', '-f', n.container], { reject: false })).ok) removed.push(n.container);
  }
  await docker(['network', 'rm', state.network], { reject: false });
  const volumes: string[] = [];
  let kept: string[] = [];
  if (opts.purge) {
    for (const n of state.nodes) if ((await docker(['volume', 'rm', n.volume], { reject: false })).ok) volumes.push(n.volume);
    kept = await purgeStateDir(stateDir);
  }
  return { removed, volumes, kept };
}

/** Containers of the cluster that are not running. */
export async function stoppedContainers(state: DockerState): Promise<string[]> {
  const out: string[] = [];
  for (const n of state.nodes) {
    const r = await docker(['inspect', '--format', '{{.State.Running}}', n.container], { reject: false });
    if (!r.ok || r.out.trim() !== 'true') out.push(n.container);
  }
  return out;
}
