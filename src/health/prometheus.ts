// Prometheus scrape targets and node_exporter endpoints.
import type { Endpoint } from './consul.ts';
import { type Http, shapes } from './http.ts';

export interface PrometheusTarget {
  job: string;
  instance: string;
  scrapeUrl: string;
  health: string;
  lastError: string;
  /** How long the last scrape took (a slow node's scrapes near the time-out go down). */
  lastScrapeSeconds?: number;
  /** Down for a known reason that does not make the cluster unhealthy (Nomad unavailable). */
  excused?: string;
}

export interface PrometheusReport {
  state: 'checked' | 'absent';
  url: string | null;
  reachable: boolean;
  targets: PrometheusTarget[];
  problems: string[];
}

interface TargetsResponse {
  data: {
    activeTargets: { labels: Record<string, string>; scrapePool: string; scrapeUrl: string; health: string; lastError: string; lastScrapeDuration?: number }[];
  };
}

/** expectScraped: host:port of node_exporters that must appear among the targets. */
export async function probePrometheus(
  http: Http,
  prom: Endpoint | null,
  expectScraped: string[],
  excuse?: { jobPrefix: string; reason: string },
): Promise<PrometheusReport> {
  if (!prom) return { state: 'absent', url: null, reachable: false, targets: [], problems: [] };
  const r: PrometheusReport = { state: 'checked', url: prom.url, reachable: false, targets: [], problems: [] };
  const res = await http.getJson<TargetsResponse>(`${prom.url}/api/v1/targets?state=active`, undefined, shapes.arrayAt('data.activeTargets'));
  if (!res.ok) {
    r.problems.push(`Prometheus on ${prom.node} does not answer (${res.error})`);
    return r;
  }
  r.reachable = true;
  r.targets = res.body.data.activeTargets
    .map((t) => ({
      job: t.labels.job ?? t.scrapePool,
      instance: t.labels.instance ?? '',
      scrapeUrl: t.scrapeUrl,
      health: t.health,
      lastError: t.lastError,
      ...(typeof t.lastScrapeDuration === 'number' ? { lastScrapeSeconds: t.lastScrapeDuration } : {}),
    }))
    .sort((a, b) => a.job.localeCompare(b.job) || a.instance.localeCompare(b.instance));
  if (r.targets.length === 0) r.problems.push('Prometheus has no scrape targets yet');
  for (const t of r.targets) {
    if (excuse && t.job.startsWith(excuse.jobPrefix) && t.health !== 'up') {
      t.excused = excuse.reason;
      continue;
    }
    if (t.health === 'unknown') r.problems.push(`Prometheus target ${t.job} ${t.instance} has not been scraped yet`);
    else if (t.health !== 'up') r.problems.push(`Prometheus target ${t.job} ${t.instance} is ${t.health}${t.lastError ? ` (${t.lastError})` : ''}`);
  }
  for (const hp of expectScraped) {
    if (!r.targets.some((t) => t.scrapeUrl.includes(`//${hp}/`))) r.problems.push(`Prometheus does not scrape node_exporter at ${hp}`);
  }
  return r;
}

export interface NodeExporterResult {
  node: string;
  url: string;
  ok: boolean;
  error?: string;
}

export async function probeNodeExporters(http: Http, endpoints: Endpoint[]): Promise<{ results: NodeExporterResult[]; problems: string[] }> {
  const results = await Promise.all(
    endpoints.map(async (e): Promise<NodeExporterResult> => {
      const res = await http.getJson<string>(`${e.url}/metrics`);
      if (!res.ok) return { node: e.node, url: e.url, ok: false, error: res.error };
      const text = typeof res.body === 'string' ? res.body : '';
      if (!text.includes('node_')) return { node: e.node, url: e.url, ok: false, error: 'answers, but not with node_exporter metrics' };
      return { node: e.node, url: e.url, ok: true };
    }),
  );
  return { results, problems: results.filter((r) => !r.ok).map((r) => `node_exporter on ${r.node} (${r.url}) is not reachable: ${r.error}`) };
}
