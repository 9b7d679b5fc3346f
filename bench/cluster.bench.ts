// `npm run bench cluster`: the demo cluster on this machine (examples/demo/cluster.yaml:
// TLS, ACLs, raft_multiplier as configured). Times, as the median of several runs:
//   - `up` (fresh state) → Consul settled (leader, all servers healthy voters, all members
//     alive, services registered) and → fully healthy (Prometheus has scraped every target);
//   - leader fail-over: kill -9 of the leader → a surviving server reports a new leader.
// Reference in the same process: three bare `consul agent -server` processes with minimal
// flags on loopback, time to a leader, and their fail-over. Printed beside the raft settings.
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCluster } from '../src/cluster/load.ts';
import { ensureSecretsFile } from '../src/cluster/secrets.ts';
import { defaultCacheDir } from '../src/releases/cache.ts';
import { releaseBinaries } from '../src/run/binaries.ts';
import { downLocal, firstCrash, localAuth, localTargets, upLocal } from '../src/run/local.ts';
import { withLocalTls } from '../src/run/local-security.ts';
import { checkLocalHealth } from '../src/run/probe.ts';
import { killDaemon, liveness, type ProcessRecord, startDaemon, stopDaemon } from '../src/run/proc.ts';

const RUNS = Number(process.env.PIINIT_BENCH_RUNS ?? 3);
const here = dirname(fileURLToPath(import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function leaderOf(url: string): Promise<string | null> {
  try {
    const res = await fetch(`${url}/v1/status/leader`, { signal: AbortSignal.timeout(1000) });
    const l = (await res.json()) as string;
    return l || null;
  } catch {
    return null;
  }
}

const url = (a: string) => `http://${a}:8500`;

async function until<T>(timeoutMs: number, fn: () => Promise<T | null>, everyMs = 100): Promise<T | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v !== null) return v;
    await sleep(everyMs);
  }
  return null;
}

export default async function (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-bench-'));
  const running: ProcessRecord[] = [];
  const stateDir = join(dir, 'state');
  try {
    const file = join(dir, 'cluster.yaml');
    await copyFile(join(here, '../examples/demo/cluster.yaml'), file);
    await ensureSecretsFile(file);
    const { cluster } = await loadCluster(file);
    const rel = await releaseBinaries(cluster, { cacheDir: defaultCacheDir() });
    const consulBin = rel.binaries.consul;
    if (!consulBin) throw new Error(`no Consul binary: ${rel.unavailable.map((u) => u.reason).join('; ')}`);
    const subnet = '127.0.99.0/24';
    const up = () =>
      upLocal(cluster, { stateDir, binaries: rel.binaries, unavailable: rel.unavailable, subnet, prepare: withLocalTls });

    const consulReady: number[] = [];
    const healthy: number[] = [];
    const failover: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      await downLocal(stateDir, { purge: true });
      const t0 = Date.now();
      const r = await up();
      const targets = localTargets(r.cluster, r.state);
      const auth = localAuth(r.cluster);
      let tConsul: number | null = null;
      const tHealthy = await until(180_000, async () => {
        const h = await checkLocalHealth(r.state, targets, auth, 2000);
        if (tConsul === null && h.consul.problems.length === 0) tConsul = Date.now() - t0;
        if (firstCrash(r.state)) throw new Error(firstCrash(r.state)!);
        return h.healthy ? Date.now() - t0 : null;
      }, 200);
      if (tHealthy === null || tConsul === null) throw new Error(`run ${run + 1}: not healthy within 180 s`);
      consulReady.push(tConsul);
      healthy.push(tHealthy);

      // Fail-over: kill -9 the leader, time until a survivor names a new one.
      const servers = r.state.nodes.filter((n) => n.role === 'server');
      const leaderAddr = (await leaderOf(url(servers[0]!.address)))!.split(':')[0];
      const leader = servers.find((s) => s.address === leaderAddr)!;
      const survivor = servers.find((s) => s !== leader)!;
      const tk = Date.now();
      killDaemon(r.state.processes[`${leader.name}/consul`]!);
      const got = await until(60_000, async () => {
        const l = await leaderOf(url(survivor.address));
        return l && !l.startsWith(`${leader.address}:`) ? l : null;
      });
      if (!got) throw new Error(`run ${run + 1}: no new leader within 60 s`);
      failover.push(Date.now() - tk);
    }
    await downLocal(stateDir, { purge: true });

    // Reference: three bare Consul servers, minimal flags, same raft multiplier.
    const refLeader: number[] = [];
    const refFailover: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const refDir = join(dir, `ref${run}`);
      const addrs = ['127.0.98.10', '127.0.98.11', '127.0.98.12'];
      const recs: ProcessRecord[] = [];
      const t0 = Date.now();
      for (const [i, a] of addrs.entries()) {
        await mkdir(join(refDir, `s${i}`), { recursive: true });
        const rec = await startDaemon({
          name: `ref${i}`,
          program: consulBin,
          args: [
            'agent', '-server', '-bootstrap-expect=3', `-bind=${a}`, `-client=${a}`, `-node=ref${i}`,
            `-data-dir=${join(refDir, `s${i}`)}`, `-retry-join=${addrs[0]}`, `-retry-join=${addrs[1]}`, '-disable-host-node-id',
            `-hcl=performance { raft_multiplier = ${cluster.consul.raftMultiplier} }`,
          ],
          log: join(refDir, `s${i}.log`),
          cwd: refDir,
        });
        recs.push(rec);
        running.push(rec);
      }
      const l = await until(120_000, async () => {
        const all = await Promise.all(addrs.map((a) => leaderOf(url(a))));
        return all.every((x) => x) ? all[0] : null;
      });
      if (!l) throw new Error('reference cluster elected no leader within 120 s');
      refLeader.push(Date.now() - t0);
      const li = addrs.findIndex((a) => l.startsWith(`${a}:`));
      const tk = Date.now();
      killDaemon(recs[li]!);
      const si = (li + 1) % 3;
      const got = await until(60_000, async () => {
        const x = await leaderOf(url(addrs[si]!));
        return x && !x.startsWith(`${addrs[li]}:`) ? x : null;
      });
      if (!got) throw new Error('reference: no new leader within 60 s');
      refFailover.push(Date.now() - tk);
      await Promise.all(recs.map((r) => stopDaemon(r, 5000)));
    }

    const m = cluster.consul.raftMultiplier;
    console.log(`demo cluster: ${cluster.nodes.length} nodes, TLS ${cluster.security.tls ? 'on' : 'off'}, ACLs ${cluster.security.acl ? 'on' : 'off'}`);
    console.log(`raft: raft_multiplier ${m} → heartbeat/election timeout ${m * 1000} ms, leader lease ${m * 500} ms (Consul 1.8.7); Prometheus scrape_interval 15 s`);
    console.log(`runs: ${RUNS} (median; all runs in brackets)`);
    const line = (what: string, xs: number[]) => console.log(`  ${what.padEnd(46)} ${secs(median(xs)).padStart(7)}   [${xs.map(secs).join(', ')}]`);
    line('up → Consul settled (piinit)', consulReady);
    line('up → healthy incl. Prometheus targets (piinit)', healthy);
    line('bare consul servers → leader (reference)', refLeader);
    line('leader fail-over, kill -9 (piinit)', failover);
    line('leader fail-over, kill -9 (reference)', refFailover);
    console.log(`  ratio Consul settled / bare leader: ${(median(consulReady) / median(refLeader)).toFixed(2)}`);
    console.log(`  targets: healthy < 10 s: ${median(healthy) < 10_000 ? 'met' : 'NOT met'}; fail-over < 10 s: ${median(failover) < 10_000 ? 'met' : 'NOT met'}`);
  } finally {
    await downLocal(stateDir, { purge: true }).catch(() => {});
    for (const r of running) if (liveness(r) === 'running') await stopDaemon(r, 3000);
    await rm(dir, { recursive: true, force: true });
  }
}
