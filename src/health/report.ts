// The health of a whole cluster, local or real: which endpoints to ask (from the cluster's
// addresses, or URLs the user gives), asking them, and one verdict.
import type { Cluster } from '../cluster/types.ts';
import { UserError } from '../errors.ts';
import { probeConsul, type ConsulReport, type Endpoint } from './consul.ts';
import { Http, type HttpAuth } from './http.ts';
import { nomadUnavailable, probeNomad, type NomadReport } from './nomad.ts';
import { probeNodeExporters, probePrometheus, type NodeExporterResult, type PrometheusReport } from './prometheus.ts';

/** The Consul service name node_exporter is registered as (src/render/prometheus.ts). */
export const NODE_EXPORTER_SERVICE = 'node-exporter';

export const PORTS = { consulHttp: 8500, consulHttps: 8501, nomad: 4646, prometheus: 9090, nodeExporter: 9100 } as const;

export interface Targets {
  consul: Endpoint[];
  nomad: Endpoint[];
  prometheus: Endpoint | null;
  nodeExporters: Endpoint[];
  expected: {
    consulServers: string[];
    consulMembers: string[];
    /** Consul services that must be in the catalog, and on which nodes. */
    consulServices: Record<string, string[]>;
    nomadServers: string[];
    nomadClients: string[];
  };
  /** Set when Nomad does not run at all (its binary is unavailable on this machine). */
  nomadUnavailable?: string;
}

/** What to ask, from the nodes' addresses in cluster.yaml (or the localized cluster). */
export function targetsFromCluster(cluster: Cluster, opts: { nomadUnavailable?: string } = {}): Targets {
  const tls = cluster.security.tls;
  const withAddr = cluster.nodes.filter((n) => n.address);
  const servers = withAddr.filter((n) => n.role === 'server');
  const monitor = withAddr.find((n) => n.role === 'monitor');
  const consulBase = (a: string) => (tls ? `https://${a}:${PORTS.consulHttps}` : `http://${a}:${PORTS.consulHttp}`);
  return {
    consul: servers.map((n) => ({ node: n.name, url: consulBase(n.address!) })),
    nomad: servers.map((n) => ({ node: n.name, url: `${tls ? 'https' : 'http'}://${n.address}:${PORTS.nomad}` })),
    prometheus: monitor ? { node: monitor.name, url: `http://${monitor.address}:${PORTS.prometheus}` } : null,
    nodeExporters: withAddr.map((n) => ({ node: n.name, url: `http://${n.address}:${PORTS.nodeExporter}` })),
    expected: {
      consulServers: cluster.nodes.filter((n) => n.role === 'server').map((n) => n.name),
      consulMembers: cluster.nodes.map((n) => n.name),
      // Every node registers its node_exporter with its Consul agent; Prometheus finds it there.
      consulServices: { [NODE_EXPORTER_SERVICE]: cluster.nodes.map((n) => n.name) },
      nomadServers: cluster.nodes.filter((n) => n.role === 'server').map((n) => n.name),
      nomadClients: cluster.nodes.filter((n) => n.role !== 'server').map((n) => n.name),
    },
    ...(opts.nomadUnavailable ? { nomadUnavailable: opts.nomadUnavailable } : {}),
  };
}

/** --target URL...: the given Consul server API URLs replace the cluster's; Nomad is asked on
 *  the same hosts (port 4646). Prometheus and node_exporter stay as cluster.yaml says. */
export function targetsFromUrls(cluster: Cluster, urls: string[]): Targets {
  const base = targetsFromCluster(cluster);
  const consul: Endpoint[] = [];
  const nomad: Endpoint[] = [];
  for (const raw of urls) {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new UserError(`--target ${raw} is not a URL (expected e.g. https://192.168.1.11:8501, or "local")`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UserError(`--target ${raw}: only http:// and https:// are understood`);
    const host = u.hostname;
    const node = cluster.nodes.find((n) => n.address === host)?.name ?? host;
    const port = u.port || (u.protocol === 'https:' ? String(PORTS.consulHttps) : String(PORTS.consulHttp));
    consul.push({ node, url: `${u.protocol}//${u.host.includes(':') ? u.host : `${u.host}:${port}`}` });
    nomad.push({ node, url: `${u.protocol}//${host}:${PORTS.nomad}` });
  }
  return { ...base, consul, nomad };
}

export interface HealthReport {
  healthy: boolean;
  checkedAt: string;
  consul: ConsulReport;
  nomad: NomadReport;
  prometheus: PrometheusReport;
  nodeExporters: NodeExporterResult[];
  /** Every reason the cluster is not healthy, in the order of the sections. */
  problems: string[];
  /** Facts worth saying that do not make the cluster unhealthy (e.g. Nomad unavailable here). */
  notes: string[];
}

export async function checkHealth(targets: Targets, auth: HttpAuth = {}, timeoutMs = 3000): Promise<HealthReport> {
  const http = new Http(auth, timeoutMs);
  try {
    const expectScraped = targets.nodeExporters.map((e) => new URL(e.url).host);
    const [consul, nomad, prometheus, ne] = await Promise.all([
      probeConsul(http, targets.consul, {
        servers: targets.expected.consulServers,
        members: targets.expected.consulMembers,
        services: targets.expected.consulServices,
      }),
      targets.nomadUnavailable
        ? Promise.resolve(nomadUnavailable(targets.nomadUnavailable))
        : probeNomad(http, targets.nomad, { servers: targets.expected.nomadServers, clients: targets.expected.nomadClients }),
      probePrometheus(
        http,
        targets.prometheus,
        targets.prometheus ? expectScraped : [],
        // Prometheus is configured to scrape Nomad (the same config as on the Pis); where no
        // Nomad runs, those targets are down for a reason already reported.
        targets.nomadUnavailable ? { jobPrefix: 'nomad', reason: 'Nomad is not running here' } : undefined,
      ),
      probeNodeExporters(http, targets.nodeExporters),
    ]);
    const problems = [...consul.problems, ...nomad.problems, ...prometheus.problems, ...ne.problems];
    const notes: string[] = [];
    if (nomad.state === 'unavailable') notes.push(`Nomad is not running: ${nomad.reason}`);
    if (prometheus.state === 'absent') notes.push('the cluster has no monitor node, so no Prometheus to ask');
    return { healthy: problems.length === 0, checkedAt: new Date().toISOString(), consul, nomad, prometheus, nodeExporters: ne.results, problems, notes };
  } finally {
    await http.close();
  }
}
