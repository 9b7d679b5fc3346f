// Health of the local cluster: asked directly on loopback, or from inside the hub
// namespace when the nodes live in network namespaces.
import { fileURLToPath } from 'node:url';
import type { HttpAuth } from '../health/http.ts';
import { UserError } from '../errors.ts';
import { checkHealth, type HealthReport, type Targets } from '../health/report.ts';
import { listNamespaces, runInNamespace } from './netns.ts';
import type { LocalState } from './state.ts';

export async function checkLocalHealth(state: LocalState, targets: Targets, auth: HttpAuth, timeoutMs = 3000): Promise<HealthReport> {
  if (state.mode !== 'netns' || !state.network) return checkHealth(targets, auth, timeoutMs);
  if (!(await listNamespaces()).includes(state.network.hub)) {
    throw new UserError(
      `the network namespaces of the local cluster are gone (was the machine restarted?): \`piinit up --netns\` makes them and starts the cluster again, \`piinit down\` forgets them`,
    );
  }
  const script = fileURLToPath(new URL('../health/probe-stdin.ts', import.meta.url));
  const tsx = import.meta.resolve('tsx/esm');
  const r = await runInNamespace(state.network.hub, [process.execPath, '--import', tsx, script], {
    input: JSON.stringify({ targets, auth, timeoutMs }),
    timeoutMs: timeoutMs * 4 + 15_000,
  });
  if (r.code !== 0) throw new Error(`health probe in namespace ${state.network.hub} failed: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as HealthReport;
}

/** Polls until healthy, the deadline, or abort() names a reason to stop (a daemon crashed). */
export async function waitLocalHealthy(
  state: LocalState,
  targets: Targets,
  auth: HttpAuth,
  opts: { timeoutMs: number; intervalMs?: number; onProgress?: (r: HealthReport) => void; abort?: () => string | null },
): Promise<HealthReport> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const r = await checkLocalHealth(state, targets, auth, Math.min(3000, Math.max(500, deadline - Date.now())));
    opts.onProgress?.(r);
    if (r.healthy || Date.now() >= deadline) return r;
    const why = opts.abort?.();
    if (why) return { ...r, healthy: false, problems: [why, ...r.problems] };
    await new Promise((res) => setTimeout(res, opts.intervalMs ?? 250));
  }
}
