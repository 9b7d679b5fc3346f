// Shared by the local-cluster integration tests: a cluster.yaml on disk (loaded by the real
// loader), the Consul/Prometheus/node_exporter binaries setup-test-host.sh installs, small
// KV helpers and bounded waits.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCluster } from '../../../src/cluster/load.ts';
import { ensureSecretsFile } from '../../../src/cluster/secrets.ts';
import type { Cluster } from '../../../src/cluster/types.ts';
import { downLocal } from '../../../src/run/local.ts';
import type { Binaries } from '../../../src/run/local.ts';
import { HOST_COMPONENTS_YAML } from '../deb/seed-cache.ts';

export const SYSTEM_BINARIES: Binaries = {
  consul: '/usr/local/bin/consul',
  prometheus: '/usr/local/bin/prometheus',
  node_exporter: '/usr/bin/prometheus-node-exporter',
};
export const NOMAD_UNAVAILABLE = [{ component: 'nomad' as const, reason: 'no Nomad binary on the test host' }];

export interface TestCluster {
  dir: string;
  file: string;
  stateDir: string;
  cluster: Cluster;
}

/** A random 127.x.y.0/24, so a test never collides with a demo cluster someone runs. */
export function randomLoopbackSubnet(): string {
  const b = 1 + Math.floor(Math.random() * 250);
  const c = 1 + Math.floor(Math.random() * 250);
  return `127.${b}.${c}.0/24`;
}

export async function makeCluster(
  opts: { monitor?: boolean; clients?: number; raftMultiplier?: number; tls?: boolean; acl?: boolean; name?: string } = {},
): Promise<TestCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-local-'));
  const nodes = [
    '  - { name: core1, role: server, board: amd64, mac: "52:54:00:00:00:11", address: 192.168.77.11 }',
    '  - { name: core2, role: server, board: amd64, mac: "52:54:00:00:00:12", address: 192.168.77.12 }',
    '  - { name: core3, role: server, board: amd64, mac: "52:54:00:00:00:13", address: 192.168.77.13 }',
  ];
  if (opts.monitor) nodes.push('  - { name: monitor, role: monitor, board: amd64, mac: "52:54:00:00:00:20", address: 192.168.77.20 }');
  for (let i = 1; i <= (opts.clients ?? 0); i++) {
    nodes.push(`  - { name: worker${i}, role: client, board: amd64, mac: "52:54:00:00:00:3${i}", address: 192.168.77.3${i} }`);
  }
  const yaml = `name: ${opts.name ?? 'faults'}
datacenter: test
domain: consul
network:
  cidr: 192.168.77.0/24
  gateway: 192.168.77.1
  dns: [192.168.77.1]
  addressing: static
nodes:
${nodes.join('\n')}
${HOST_COMPONENTS_YAML}
consul:
  raft_multiplier: ${opts.raftMultiplier ?? 1}
ssh:
  authorized_keys: []
security:
  tls: ${opts.tls ?? false}
  acl: ${opts.acl ?? false}
`;
  const file = join(dir, 'cluster.yaml');
  await writeFile(file, yaml);
  await ensureSecretsFile(file);
  const { cluster } = await loadCluster(file);
  return { dir, file, stateDir: join(dir, 'state'), cluster };
}

/** Stops whatever the test started (by the recorded PIDs), removes the network namespaces
 *  and the temp dir. For t.after: runs also when the test failed. */
export async function cleanup(tc: TestCluster): Promise<void> {
  try {
    await downLocal(tc.stateDir, { graceMs: 3000 });
  } finally {
    await rm(tc.dir, { recursive: true, force: true });
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a command (piinit status) until it exits 0, bounded: right after a start or a
 *  recovery autopilot may not have judged every server yet ("HEALTHY ?"). Its last result. */
export function untilExit0<R extends { status: number | null; stdout: string; stderr: string }>(what: string, run: () => R): Promise<R> {
  return waitFor(`${what} to exit 0`, 60_000, async () => {
    const r = run();
    if (r.status !== 0) throw new Error(`exit ${r.status}:\n${r.stdout}${r.stderr}`);
    return r;
  }, 1000);
}

/** Polls fn until it returns a value other than null/undefined/false, bounded. */
export async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | null | undefined | false>, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== null && v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await sleep(intervalMs);
  }
}

export interface HttpResponse {
  status: number;
  body: string;
}

/** One request with a hard time limit; network errors become status 0. */
export async function http(method: 'GET' | 'PUT', url: string, body?: string, timeoutMs = 5000): Promise<HttpResponse> {
  try {
    const res = await fetch(url, { method, body, signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: await res.text() };
  } catch (err) {
    return { status: 0, body: String(err) };
  }
}
