import type { Command } from '@commander-js/extra-typings';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { loadCluster } from '../cluster/load.ts';
import type { Cluster } from '../cluster/types.ts';
import { UserError } from '../errors.ts';
import { secondsOption } from './seconds.ts';
import { formatReport, type ProcessLine } from '../health/format.ts';
import { clusterAuth } from '../health/cluster-auth.ts';
import type { HttpAuth } from '../health/http.ts';
import { checkHealth, type HealthReport, PORTS, targetsFromCluster, targetsFromUrls } from '../health/report.ts';
import { localAuth, localTargets, processStatus } from '../run/local.ts';
import { localizeCluster } from '../run/localize.ts';
import { checkLocalHealth } from '../run/probe.ts';
import { defaultStateDir, type LocalState, readState } from '../run/state.ts';
import { readDockerState } from '../docker/cluster.ts';
import { checkDockerHealth } from '../docker/up-command.ts';

/** Where the web UIs of a (localized) cluster are. */
export function uiUrls(local: Cluster, state: Pick<LocalState, 'unavailable'>): { name: string; url: string; note?: string }[] {
  const server = local.nodes.find((n) => n.role === 'server' && n.address);
  const monitor = local.nodes.find((n) => n.role === 'monitor' && n.address);
  const out: { name: string; url: string; note?: string }[] = [];
  if (server) out.push({ name: 'Consul UI', url: `http://${server.address}:${PORTS.consulHttp}/ui/`, ...(local.security.acl ? { note: 'log in with the operator token from the secrets file' } : {}) });
  const nomad = state.unavailable.find((u) => u.component === 'nomad');
  if (server) {
    out.push(
      nomad
        ? { name: 'Nomad UI', url: '-', note: `Nomad unavailable: ${nomad.reason}` }
        : { name: 'Nomad UI', url: `${local.security.tls ? 'https' : 'http'}://${server.address}:${PORTS.nomad}/ui/` },
    );
  }
  if (monitor) out.push({ name: 'Prometheus', url: `http://${monitor.address}:${PORTS.prometheus}/` });
  return out;
}

export function register(program: Command): void {
  program
    .command('status')
    .description('Health of the cluster, local (`piinit up`) or real: Consul, Nomad, Prometheus targets, node_exporter')
    .argument('[cluster]', 'cluster file', 'cluster.yaml')
    .option('--target <target...>', '"local" (the `piinit up` cluster), "cluster" (the addresses in cluster.yaml) or Consul server URLs')
    .option('--state <dir>', 'state directory of the local cluster (default: ~/.local/state/piinit/<cluster name>)')
    .option('--token <token>', 'ACL token for Consul and Nomad (default from the secrets file: Consul\'s operator token and Nomad\'s bootstrap token; locally the bootstrap tokens)')
    .option('--ca <file>', 'CA certificate (PEM) for HTTPS (default: the cluster CA from the secrets file)')
    .option('--timeout <seconds>', 'per-request timeout', '3')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      `
Without --target: the local cluster when \`piinit up\` has a state directory for this
cluster (even a stopped one), otherwise the real cluster at the addresses in cluster.yaml.
Against a real cluster the cluster CA and the tokens (Consul's operator token, Nomad's
bootstrap token) come from the secrets file.
Exit code 0 only when healthy: a Consul leader, every server a healthy voter, every member
alive, node_exporter registered in Consul and reachable on every node, every Prometheus
target up, and Nomad's leader, servers and clients — unless no Nomad binary was available
to \`piinit up\` on this machine: that is reported as a note, and the Nomad scrape targets
count as expected down. A cluster started with \`piinit up --docker\` is asked at its
containers' addresses, from this host through the bridge of its Docker network.`,
    )
    .action(async (clusterArg, opts) => {
      const timeoutMs = secondsOption('--timeout', opts.timeout) * 1000;
      const overrides = await authOverrides(opts);
      const { cluster } = await loadCluster(resolve(clusterArg));
      const stateDir = resolve(opts.state ?? defaultStateDir(cluster.name));
      const state = await readState(stateDir);
      const dockerState = await readDockerState(stateDir);
      const targetArg = opts.target ?? [state || dockerState ? 'local' : 'cluster'];

      let report: HealthReport;
      let processes: ProcessLine[] = [];
      let where: string;
      if (dockerState && targetArg.length === 1 && targetArg[0] === 'local') {
        // `piinit up --docker`: asked from this host through the bridge of its network.
        report = await checkDockerHealth(cluster, dockerState, overrides, timeoutMs);
        where = `Docker cluster "${cluster.name}" (network ${dockerState.network}, ${dockerState.subnet}, state ${stateDir})`;
      } else if (targetArg.length === 1 && targetArg[0] === 'local') {
        if (!state) throw new UserError(`no local cluster in ${stateDir} (start one with: piinit up ${clusterArg})`);
        const local = localizeCluster(cluster, state.subnet);
        const auth = { ...localAuth(local), ...overrides };
        report = await checkLocalHealth(state, localTargets(local, state), auth, timeoutMs);
        const procs = await processStatus(state);
        processes = procs.map((p) => ({ node: p.node, daemon: p.daemon, pid: p.pid, state: p.state, ...(p.logTail !== undefined ? { logTail: p.logTail } : {}) }));
        // A daemon `up` started that is gone is a problem even if the cluster copes without it.
        const dead = procs.filter((p) => p.state !== 'running');
        if (dead.length) {
          report = { ...report, healthy: false, problems: [...dead.map((p) => `${p.key} (pid ${p.pid}) has ${p.state === 'exited' ? 'exited' : 'been replaced by another process'}; see ${p.log}`), ...report.problems] };
        }
        if (Object.keys(state.processes).length === 0) {
          report = { ...report, healthy: false, problems: [`the local cluster is stopped (start it with: piinit up ${clusterArg})`, ...report.problems] };
        }
        where = `local cluster "${cluster.name}" (${state.mode}, ${state.subnet}, state ${stateDir})`;
      } else {
        const real = targetArg.length === 1 && targetArg[0] === 'cluster';
        const targets = real ? targetsFromCluster(cluster) : targetsFromUrls(cluster, targetArg);
        const auth: HttpAuth = { ...clusterAuth(cluster), ...overrides };
        report = await checkHealth(targets, auth, timeoutMs);
        where = real ? `cluster "${cluster.name}" at the addresses in ${clusterArg}` : `cluster "${cluster.name}" via ${targetArg.join(', ')}`;
      }
      if (opts.json) console.log(JSON.stringify({ target: where, ...report, processes }, null, 2));
      else console.log(`${where}\n\n${formatReport(report, processes)}`);
      process.exitCode = report.healthy ? 0 : 1;
    });
}

async function authOverrides(opts: { token?: string; ca?: string }): Promise<Partial<HttpAuth>> {
  const out: Partial<HttpAuth> = {};
  if (opts.token) Object.assign(out, { consulToken: opts.token, nomadToken: opts.token });
  if (opts.ca) {
    try {
      out.ca = await readFile(opts.ca, 'utf8');
    } catch (err) {
      throw new UserError(`cannot read --ca ${opts.ca}: ${(err as Error).message}`);
    }
    // Node would take a file with no certificate in it and fail every request later, as if
    // the cluster served an unknown CA.
    try {
      new X509Certificate(out.ca);
    } catch {
      throw new UserError(`--ca ${opts.ca}: not a PEM certificate (expected a file starting with -----BEGIN CERTIFICATE-----)`);
    }
  }
  return out;
}
