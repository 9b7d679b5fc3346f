// `piinit up --docker` end to end with a real Docker daemon of the test's own: the demo
// cluster without its client (three servers and the monitor) as containers, `piinit status`
// healthy, KV data written, the leader's container killed, a new leader elected and the
// data still there; `piinit down` keeps the volumes and a second `up` brings the data back;
// then `piinit down --purge` leaves no container, network or volume of the cluster behind. The base root file system is shared with the other image tests
// ($PIINIT_IMAGE_TEST_CACHE, by default the test cache's images/).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { loadCluster } from '../../../src/cluster/load.ts';
import { ensureSecretsFile } from '../../../src/cluster/secrets.ts';
import { readDockerState } from '../../../src/docker/cluster.ts';
import { dockerTargets } from '../../../src/docker/up-command.ts';
import { Http } from '../../../src/health/http.ts';
import { testCacheDir } from '../../helpers/debian-root.ts';
import { seedHostAmd64 } from '../../integration/deb/seed-cache.ts';
import { docker, startDockerd, type Dockerd } from './dockerd.ts';

const SUBNET = '172.31.252.0/24';
let work: string;
let dockerdStarting: Promise<Dockerd> | undefined;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'piinit-docker-cluster-'));
});

after(async () => {
  // Stopping the test's own dockerd stops every container it ran; its data root (images,
  // volumes) is inside the temp dir.
  // Containers and networks go first: a daemon stopped with them in place leaves their
  // bridge on the host, and a later run on the same subnet would be routed into it.
  const d = dockerdStarting && (await dockerdStarting.catch(() => null));
  if (d) {
    const ids = (await docker(d, ['ps', '-a', '-q']).catch(() => '')).split('\n').filter(Boolean);
    if (ids.length) await docker(d, ['rm', '-f', ...ids]).catch(() => '');
    await docker(d, ['network', 'prune', '-f']).catch(() => '');
    await d.stop();
  }
  await rm(work, { recursive: true, force: true });
});

function piinit(args: string[], env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/piinit.js', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const t = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

async function until<T>(what: string, timeoutMs: number, f: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

test('up --docker: three servers and the monitor healthy, leader killed, new leader keeps the KV data, data survives down/up, down --purge leaves nothing', { timeout: 45 * 60_000 }, async () => {
  dockerdStarting = startDockerd(join(work, 'dk'));
  dockerdStarting.catch(() => {});

  const doc = parse(await readFile('examples/demo/cluster.yaml', 'utf8')) as { nodes: { role: string }[] };
  doc.nodes = doc.nodes.filter((n) => n.role !== 'client');
  const clusterFile = join(work, 'cluster.yaml');
  await writeFile(clusterFile, stringify(doc));
  await ensureSecretsFile(clusterFile);
  const { cluster } = await loadCluster(clusterFile);
  const releaseCache = join(work, 'releases');
  await seedHostAmd64(releaseCache, cluster.components);
  const imageCache = process.env.PIINIT_IMAGE_TEST_CACHE ?? join(testCacheDir(), 'images');
  await mkdir(imageCache, { recursive: true });
  const stateDir = join(work, 'state');

  const d = await dockerdStarting;
  const common = ['--state', stateDir];
  const up = await piinit(
    ['up', clusterFile, '--docker', '--docker-subnet', SUBNET, '--cache', releaseCache, '--offline', '--image-cache', imageCache, '--timeout', '300', ...common],
    d.env,
    40 * 60_000,
  );
  assert.equal(up.code, 0, `piinit up --docker failed:\n${up.out}`);
  assert.match(up.out, /healthy after/);
  // The UIs are published on 127.0.0.1 only.
  assert.match(up.out, /Consul UI\s+https:\/\/127\.0\.0\.1:\d+\/ui\//);
  assert.match(up.out, /Prometheus\s+http:\/\/127\.0\.0\.1:\d+\//);
  assert.match(up.out, /Nomad UI\s+-\s+\(Nomad unavailable/);

  const state = await readDockerState(stateDir);
  assert.ok(state, 'docker.json written');
  assert.equal(state.nodes.length, 4);
  assert.deepEqual(state.unavailable.map((u) => u.component), ['nomad']);
  const hostnames = await Promise.all(state.nodes.map((n) => docker(d, ['exec', n.container, 'hostname'])));
  assert.deepEqual(hostnames.map((h) => h.trim()), state.nodes.map((n) => n.name));

  const status = await piinit(['status', clusterFile, ...common], d.env, 120_000);
  assert.equal(status.code, 0, `piinit status is not healthy:\n${status.out}`);
  assert.match(status.out, /Docker cluster "demo"/);

  // KV data through the servers' HTTPS API, with the cluster CA and the management token.
  const { targets, auth } = dockerTargets(cluster, state);
  const http = new Http(auth, 5000);
  const token = { header: 'X-Consul-Token', value: auth.consulToken };
  try {
    const put = await http.send<boolean>('PUT', `${targets.consul[0]!.url}/v1/kv/piinit/failover`, 'still here', token);
    assert.ok(put.ok && put.body === true, `KV write failed: ${JSON.stringify(put)}`);

    const leaderOf = async (url: string) => {
      const r = await http.getJson<string>(`${url}/v1/status/leader`, token);
      return r.ok && typeof r.body === 'string' && r.body ? r.body.split(':')[0]! : null;
    };
    const oldLeader = await until('a leader', 60_000, () => leaderOf(targets.consul[0]!.url));
    const victim = state.nodes.find((n) => n.address === oldLeader);
    assert.ok(victim, `leader ${oldLeader} is one of our containers`);
    await docker(d, ['kill', victim.container]);

    const survivors = targets.consul.filter((e) => e.node !== victim.name);
    const newLeader = await until('a new leader', 120_000, async () => {
      const l = await leaderOf(survivors[0]!.url);
      return l && l !== oldLeader ? l : null;
    });
    assert.ok(state.nodes.some((n) => n.address === newLeader && n.role === 'server'));
    const value = await until('the KV data from a surviving server', 60_000, async () => {
      const r = await http.getJson<string>(`${survivors[1]!.url}/v1/kv/piinit/failover?raw`, token);
      return r.ok ? String(r.body) : null;
    });
    assert.equal(value, 'still here');
  } finally {
    await http.close();
  }

  // down keeps the data: the volumes stay, and the next up (the killed container included)
  // comes back healthy with the KV entry.
  const label = 'label=piinit.cluster=demo';
  const stop = await piinit(['down', clusterFile, ...common], d.env, 300_000);
  assert.equal(stop.code, 0, `piinit down failed:\n${stop.out}`);
  assert.equal((await docker(d, ['ps', '-a', '-q', '--filter', label])).trim(), '');
  assert.equal((await docker(d, ['volume', 'ls', '-q', '--filter', label])).trim().split('\n').length, 4);
  const again = await piinit(
    ['up', clusterFile, '--docker', '--docker-subnet', SUBNET, '--cache', releaseCache, '--offline', '--image-cache', imageCache, '--timeout', '300', ...common],
    d.env,
    20 * 60_000,
  );
  assert.equal(again.code, 0, `second piinit up --docker failed:\n${again.out}`);
  const http2 = new Http(auth, 5000);
  try {
    const value = await until('the KV data after down/up', 60_000, async () => {
      const r = await http2.getJson<string>(`${targets.consul[2]!.url}/v1/kv/piinit/failover?raw`, token);
      return r.ok ? String(r.body) : null;
    });
    assert.equal(value, 'still here');
  } finally {
    await http2.close();
  }

  const down = await piinit(['down', clusterFile, '--purge', ...common], d.env, 300_000);
  assert.equal(down.code, 0, `piinit down --purge failed:\n${down.out}`);
  assert.equal((await docker(d, ['ps', '-a', '-q', '--filter', label])).trim(), '');
  assert.equal((await docker(d, ['network', 'ls', '-q', '--filter', label])).trim(), '');
  assert.equal((await docker(d, ['volume', 'ls', '-q', '--filter', label])).trim(), '');
  assert.equal(existsSync(stateDir), false, 'down --purge removed the state directory');
});
