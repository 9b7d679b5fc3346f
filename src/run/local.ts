// The local cluster: render every node of the localized cluster under the state directory
// and start exactly the commands its systemd units would run (serviceCommands), each node
// on its own address; stop exactly those again. Health is asked through src/health.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Cluster, ComponentName } from '../cluster/types.ts';
import { UserError } from '../errors.ts';
import type { HttpAuth } from '../health/http.ts';
import { targetsFromCluster, type Targets } from '../health/report.ts';
import { renderNode, type ServiceCommand, serviceCommands } from '../render/index.ts';
import { NOMAD_TLS_DIR } from '../render/nomad.ts';
import { syncTree } from './files.ts';
import { DEFAULT_LOOPBACK_SUBNET, DEFAULT_NETNS_SUBNET, localizeCluster } from './localize.ts';
import { liveness, type Liveness, logTail, type ProcessRecord, startDaemon, stopDaemon } from './proc.ts';
import { type LocalNode, type LocalState, lockState, purgeStateDir, readState, STATE_VERSION, statePaths, writeState } from './state.ts';

/** program name (as in serviceCommands: consul, nomad, prometheus, node_exporter) → executable. */
export type Binaries = Partial<Record<ComponentName, string>>;

export interface UpOptions {
  stateDir: string;
  binaries: Binaries;
  /** Components no binary could be obtained for, with the reason (from ensureReleases). */
  unavailable?: { component: ComponentName; reason: string }[];
  netns?: boolean;
  /** The local range (default 127.0.100.0/24, or 10.213.0.0/24 with netns). */
  subnet?: string;
  /** Turns the cluster (already localized) into the one that is rendered — e.g. TLS
   *  certificates re-issued for the local addresses. */
  prepare?: (localized: Cluster, stateDir: string) => Promise<Cluster>;
  onEvent?: (ev: UpEvent) => void;
  /** How long to wait for Consul to settle before starting Prometheus (default 60 s). */
  consulWaitMs?: number;
}

export type UpEvent =
  | { kind: 'started'; node: string; daemon: string; pid: number }
  | { kind: 'running'; node: string; daemon: string; pid: number }
  | { kind: 'skipped'; node: string; daemon: string; reason: string }
  | { kind: 'config-changed'; node: string; files: string[] }
  | { kind: 'waiting'; what: string };

export interface UpResult {
  state: LocalState;
  cluster: Cluster;
  started: string[];
  alreadyRunning: string[];
  skipped: { key: string; reason: string }[];
  /** Running daemons whose rendered files changed: they run the old config until restarted. */
  staleConfig: string[];
}

export const processKey = (node: string, daemon: string) => `${node}/${daemon}`;

/** The localized cluster (addresses in the local range) for a state, as `up` renders it. */
export function localClusterOf(cluster: Cluster, subnet: string): Cluster {
  return localizeCluster(cluster, subnet);
}

export async function upLocal(cluster: Cluster, opts: UpOptions): Promise<UpResult> {
  const release = await lockState(opts.stateDir);
  try {
    return await upLocked(cluster, opts);
  } finally {
    await release();
  }
}

async function upLocked(cluster: Cluster, opts: UpOptions): Promise<UpResult> {
  const dir = opts.stateDir;
  const paths = statePaths(dir);
  const prev = await readState(dir);
  const mode = opts.netns ? 'netns' : 'loopback';
  if (prev && prev.cluster.name !== cluster.name) {
    throw new UserError(`state directory ${dir} belongs to cluster "${prev.cluster.name}", not "${cluster.name}"`);
  }
  if (prev && prev.mode !== mode && Object.values(prev.processes).some((p) => liveness(p) === 'running')) {
    throw new UserError(`the local cluster runs in ${prev.mode} mode; run \`piinit down\` before switching to ${mode}`);
  }
  const subnet = opts.subnet ?? (prev?.mode === mode ? prev.subnet : undefined) ?? (opts.netns ? DEFAULT_NETNS_SUBNET : DEFAULT_LOOPBACK_SUBNET);
  let local = localizeCluster(cluster, subnet);
  const nodes: LocalNode[] = local.nodes.map((n, i) => ({
    name: n.name,
    role: n.role,
    address: n.address!,
    root: join(paths.nodes, n.name),
    netns: null,
    ...(opts.netns ? { netns: `${nsPrefix(dir)}${i}` } : {}),
  }));
  const state: LocalState = {
    version: STATE_VERSION,
    cluster: { name: cluster.name, file: cluster.files.cluster },
    mode,
    subnet,
    nodes,
    processes: { ...(prev?.processes ?? {}) },
    unavailable: opts.unavailable ?? [],
    raftMultiplier: local.consul.raftMultiplier,
  };
  // state.json comes first into a new state directory: all else there is piinit's because
  // it is beside it (down --purge removes a nodes/ or logs/ only then).
  if (!prev) await writeState(dir, state);
  await mkdir(paths.logs, { recursive: true, mode: 0o750 });
  if (opts.prepare) local = await opts.prepare(local, dir);
  if (opts.netns) {
    const { networkOf, setupNetwork } = await import('./netns.ts');
    // Recorded before it is made: an up stopped half-way leaves nothing `down` does not know.
    state.network = networkOf(nodes);
    await writeState(dir, state);
    await setupNetwork(nodes, subnet);
  } else if (prev?.network) {
    // Last run in namespaces (nothing of it runs: checked above): they go, or health would
    // still be asked from inside the old hub.
    const { teardownNetwork } = await import('./netns.ts');
    await teardownNetwork(prev.network);
  }

  const unavailable = new Map((opts.unavailable ?? []).map((u) => [u.component as string, u.reason]));
  for (const comp of ['consul', 'nomad', 'prometheus', 'node_exporter'] as const) {
    if (!opts.binaries[comp] && !unavailable.has(comp)) unavailable.set(comp, `no ${comp} binary for this machine`);
  }
  state.unavailable = [...unavailable].map(([component, reason]) => ({ component, reason }));
  const result: UpResult = { state, cluster: local, started: [], alreadyRunning: [], skipped: [], staleConfig: [] };

  // Render every node first; servers first in every phase.
  const order = [...local.nodes].sort((a, b) => Number(a.role !== 'server') - Number(b.role !== 'server'));
  const plans: { node: LocalNode; cmd: ServiceCommand; changed: boolean }[] = [];
  for (const node of order) {
    const ln = nodes.find((n) => n.name === node.name)!;
    const { changed } = await syncTree(renderNode(local, node, { target: 'local', root: ln.root }));
    if (changed.length) opts.onEvent?.({ kind: 'config-changed', node: node.name, files: changed });
    for (const cmd of serviceCommands(local, node, { target: 'local', root: ln.root })) plans.push({ node: ln, cmd, changed: changed.length > 0 });
  }
  const start = async (plan: (typeof plans)[number]) => {
    const { node, cmd } = plan;
    const key = processKey(node.name, cmd.program);
    const rec = state.processes[key];
    if (rec && liveness(rec) === 'running') {
      result.alreadyRunning.push(key);
      if (plan.changed) result.staleConfig.push(key);
      opts.onEvent?.({ kind: 'running', node: node.name, daemon: cmd.program, pid: rec.pid });
      return;
    }
    const bin = opts.binaries[cmd.program as ComponentName];
    if (!bin) {
      const reason = unavailable.get(cmd.program) ?? `no ${cmd.program} binary for this machine`;
      result.skipped.push({ key, reason });
      delete state.processes[key];
      opts.onEvent?.({ kind: 'skipped', node: node.name, daemon: cmd.program, reason });
      return;
    }
    const started = await startDaemon({
      name: key,
      program: bin,
      args: cmd.args,
      log: join(paths.logs, `${node.name}.${cmd.program}.log`),
      cwd: node.root,
      netns: node.netns,
    });
    state.processes[key] = started;
    // Recorded at once: a failure later on must not lose a PID.
    await writeState(dir, state);
    result.started.push(key);
    opts.onEvent?.({ kind: 'started', node: node.name, daemon: cmd.program, pid: started.pid });
  };
  for (const plan of plans.filter((p) => p.cmd.program !== 'prometheus')) await start(plan);
  const firstServer = nodes.find((n) => n.role === 'server');
  if (local.security.acl && firstServer && state.processes[processKey(firstServer.name, 'consul')]) {
    const { runAclBootstrap, triggerAgentSync } = await import('./local-security.ts');
    opts.onEvent?.({ kind: 'waiting', what: 'a Consul leader, then the ACL bootstrap (policies and tokens)' });
    await runAclBootstrap('Consul', firstServer, join(paths.logs, 'consul-acl-bootstrap.log'));
    await triggerAgentSync(local, nodes.filter((n) => state.processes[processKey(n.name, 'consul')]));
  }
  // Nomad's ACL system, as piinit-nomad-acl.service bootstraps it on a Pi: without it the
  // management token the health checks send is unknown to Nomad.
  if (local.security.acl && local.secrets.tokens.nomadBootstrap && firstServer && state.processes[processKey(firstServer.name, 'nomad')]) {
    const { runAclBootstrap } = await import('./local-security.ts');
    opts.onEvent?.({ kind: 'waiting', what: 'a Nomad leader, then its ACL bootstrap' });
    const cacert = local.security.tls ? join(firstServer.root, NOMAD_TLS_DIR, 'ca.pem') : undefined;
    await runAclBootstrap('Nomad', firstServer, join(paths.logs, 'nomad-acl-bootstrap.log'), { cacert });
  }
  const proms = plans.filter((p) => p.cmd.program === 'prometheus');
  // Prometheus 2.24's Consul discovery asks once, then only every refresh_interval (30 s):
  // started before the agents registered their services it would miss them for that long.
  // So it starts once Consul is settled — as After=consul.service orders it on a Pi, but
  // waiting for readiness rather than just the start.
  if (proms.some((p) => !(state.processes[processKey(p.node.name, 'prometheus')] && liveness(state.processes[processKey(p.node.name, 'prometheus')]!) === 'running'))) {
    const { checkLocalHealth } = await import('./probe.ts');
    opts.onEvent?.({ kind: 'waiting', what: 'Consul to settle (voters, members, services) before starting Prometheus' });
    const targets = localTargets(local, state);
    const deadline = Date.now() + (opts.consulWaitMs ?? 60_000);
    while (Date.now() < deadline && !firstCrash(state)) {
      const r = await checkLocalHealth(state, targets, localAuth(local), 2000);
      if (r.consul.problems.length === 0) break;
      await new Promise((res) => setTimeout(res, 200));
    }
  }
  for (const plan of proms) await start(plan);
  await writeState(dir, state);
  return result;
}

/** What to ask for the health of a local cluster (a localized Cluster). */
export function localTargets(local: Cluster, state: Pick<LocalState, 'unavailable'>): Targets {
  const nomad = state.unavailable.find((u) => u.component === 'nomad');
  return targetsFromCluster(local, nomad ? { nomadUnavailable: nomad.reason } : {});
}

/** Credentials for asking a local cluster: its CA, and the management tokens from the
 *  secrets (the local cluster is ours; a real one is asked with the operator token). */
export function localAuth(local: Cluster): HttpAuth {
  const t = local.secrets.tokens;
  const consulToken = local.security.acl ? (t.consulBootstrap ?? t.consulOperator) : undefined;
  const nomadToken = local.security.acl ? (t.nomadBootstrap ?? t.nomadOperator) : undefined;
  return {
    ...(local.security.tls && local.secrets.tls ? { ca: local.secrets.tls.ca.cert } : {}),
    ...(consulToken ? { consulToken } : {}),
    ...(nomadToken ? { nomadToken } : {}),
    serverNames: [`server.${local.datacenter}.${local.domain}`, 'server.global.nomad'],
  };
}

/** Namespace names are short: the kernel limits interface names to 15 characters and we
 *  derive veth names from these. */
export function nsPrefix(stateDir: string): string {
  let h = 0;
  for (const ch of stateDir) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return `pi${(h % 0xfffff).toString(36)}n`;
}

export interface ProcessStatus {
  key: string;
  node: string;
  daemon: string;
  pid: number;
  state: Liveness;
  log: string;
  logTail?: string;
}

/** What each recorded daemon is doing; the end of the log of those that are not running. */
export async function processStatus(state: LocalState): Promise<ProcessStatus[]> {
  const out: ProcessStatus[] = [];
  for (const [key, rec] of Object.entries(state.processes)) {
    const [node = key, daemon = ''] = key.split('/');
    const l = liveness(rec);
    const ps: ProcessStatus = { key, node, daemon, pid: rec.pid, state: l, log: rec.log };
    if (l !== 'running') ps.logTail = await logTail(rec.log);
    out.push(ps);
  }
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

/** The first recorded daemon that is no longer running, as a sentence, or null. */
export function firstCrash(state: LocalState): string | null {
  for (const [key, rec] of Object.entries(state.processes)) {
    if (liveness(rec) !== 'running') return `${key} exited (pid ${rec.pid}); its log: ${rec.log}`;
  }
  return null;
}

export interface DownResult {
  stopped: string[];
  killed: string[];
  notRunning: string[];
  purged: boolean;
  /** With purge: files piinit did not make, kept with the directory. */
  kept: string[];
}

/** Stops what `up` recorded, clients and Prometheus before servers (so they leave cleanly). */
export async function downLocal(stateDir: string, opts: { purge?: boolean; graceMs?: number; only?: string[] } = {}): Promise<DownResult> {
  if (!existsSync(stateDir)) return { stopped: [], killed: [], notRunning: [], purged: false, kept: [] };
  const release = await lockState(stateDir);
  let purged = false;
  try {
    const r = await downLocked(stateDir, opts);
    purged = r.purged;
    return r;
  } finally {
    if (!purged) await release();
  }
}

async function downLocked(stateDir: string, opts: { purge?: boolean; graceMs?: number; only?: string[] }): Promise<DownResult> {
  const state = await readState(stateDir);
  const r: DownResult = { stopped: [], killed: [], notRunning: [], purged: false, kept: [] };
  if (!state) {
    if (opts.purge) {
      r.kept = await purgeStateDir(stateDir);
      r.purged = true;
    }
    return r;
  }
  const roleOf = (key: string) => state.nodes.find((n) => n.name === key.split('/')[0])?.role ?? '';
  const keys = Object.keys(state.processes)
    .filter((k) => !opts.only || opts.only.includes(k))
    .sort((a, b) => Number(roleOf(a) === 'server') - Number(roleOf(b) === 'server'));
  // Non-servers in parallel, then servers in parallel.
  for (const group of [keys.filter((k) => roleOf(k) !== 'server'), keys.filter((k) => roleOf(k) === 'server')]) {
    await Promise.all(
      group.map(async (key) => {
        const res = await stopDaemon(state.processes[key]!, opts.graceMs);
        (res === 'stopped' ? r.stopped : res === 'killed' ? r.killed : r.notRunning).push(key);
        delete state.processes[key];
      }),
    );
  }
  await writeState(stateDir, state);
  if (!opts.only && state.network) {
    const { teardownNetwork } = await import('./netns.ts');
    await teardownNetwork(state.network);
    delete state.network;
    await writeState(stateDir, state);
  }
  if (opts.purge && !opts.only) {
    r.kept = await purgeStateDir(stateDir);
    r.purged = true;
  }
  return r;
}

export type { ProcessRecord };
