// The rendered Consul configs (local target, TLS + ACLs on) run by the real Consul 1.8.7:
// three servers elect a leader, the security step's rendered ACL script creates the tokens,
// the two clients join through auto_encrypt, and the servers' metrics are served over HTTPS
// to the Prometheus token; autopilot runs with the rendered threshold. Addresses 127.0.71.x
// keep clear of other tests' clusters.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { renderNode, serviceCommands } from '../../../src/render/index.ts';
import { writeTree } from '../../../src/render/write.ts';
import { consulAclBootstrapCommand } from '../../../src/security/acl.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';
import { makeTlsMaterial } from './tls-material.ts';
import { run, tempDir } from './tools.ts';

const uuid = (i: number) => `7c1f0e2a-5b3d-4c6e-8f90-a1b2c3d4e5f${i}`;

async function waitFor<T>(what: string, seconds: number, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < seconds; i++) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    await sleep(1000);
  }
  throw new Error(`timed out after ${seconds} s waiting for ${what}`);
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  if ((await Promise.race([exited, sleep(15_000, 'timeout')])) === 'timeout') {
    p.kill('SIGKILL');
    await exited;
  }
}

test('Consul 1.8.7 runs the rendered TLS + ACL configs: leader, clients via auto_encrypt, HTTPS metrics', async (t) => {
  const dir = await tempDir(t);
  const c = fixtureCluster({ security: { tls: true, acl: true } });
  // 2, not 1: the rendered autopilot threshold (200 ms per multiplier step) then differs from
  // Consul's default and the check below can tell.
  c.consul.raftMultiplier = 2;
  c.network.cidr = '127.0.71.0/24';
  c.nodes.forEach((n, i) => {
    n.address = `127.0.71.${i + 2}`;
  });
  const servers = c.nodes.filter((n) => n.role === 'server');
  await mkdir(join(dir, 'pki'));
  c.secrets.tls = makeTlsMaterial(join(dir, 'pki'), c.datacenter, c.domain, servers.map((n) => n.address!));
  c.secrets.tokens = { consulBootstrap: uuid(1), consulAgent: uuid(2), consulPrometheus: uuid(3), consulDns: uuid(4) };

  const procs: ChildProcess[] = [];
  t.after(async () => {
    await Promise.all(procs.map(stop));
  });
  for (const n of c.nodes) {
    const root = join(dir, n.name);
    await writeTree(renderNode(c, n, { target: 'local', root }), '/');
    const cmd = serviceCommands(c, n, { target: 'local', root }).find((x) => x.program === 'consul')!;
    const log = await open(join(dir, `${n.name}.log`), 'w');
    procs.push(spawn('consul', cmd.args, { stdio: ['ignore', log.fd, log.fd] }));
    await log.close();
  }
  const api = `http://${servers[0]!.address}:8500`;
  await waitFor('a leader', 180, async () => {
    const r = await fetch(`${api}/v1/status/leader`);
    const l = (await r.json()) as string;
    return l ? l : undefined;
  });

  const acl = consulAclBootstrapCommand((p) => join(dir, servers[0]!.name, p));
  const boot = run(acl.program, acl.args);
  assert.equal(boot.status, 0, boot.out);

  const head = { 'X-Consul-Token': uuid(1) };
  await waitFor('all five agents alive', 180, async () => {
    const r = await fetch(`${api}/v1/agent/members`, { headers: head });
    const m = (await r.json()) as { Name: string; Status: number }[];
    return m.filter((x) => x.Status === 1).length === c.nodes.length ? m : undefined;
  });

  const autopilot = await fetch(`${api}/v1/operator/autopilot/configuration`, { headers: head });
  assert.equal(autopilot.status, 200);
  assert.equal(((await autopilot.json()) as { LastContactThreshold: string }).LastContactThreshold, '400ms');

  const metrics = run('curl', [
    '-sS', '--fail', '--max-time', '10', '--cacert', join(dir, 'pki/ca.pem'),
    '-H', `Authorization: Bearer ${uuid(3)}`,
    `https://${servers[1]!.address}:8501/v1/agent/metrics?format=prometheus`,
  ]);
  assert.equal(metrics.status, 0, metrics.out);
  assert.match(metrics.out, /^consul_/m);
  // Without a token, default deny.
  const anon = run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', join(dir, 'pki/ca.pem'), `https://${servers[1]!.address}:8501/v1/agent/metrics?format=prometheus`]);
  assert.equal(anon.out.trim(), '403');

  // Prometheus 2.24.1 and node_exporter on the monitor, started with the units' arguments:
  // Consul SD (with the Prometheus token) finds the servers and node_exporter, and the
  // servers' metrics are scraped over HTTPS with the cluster CA.
  const monitor = c.nodes.find((n) => n.role === 'monitor')!;
  const root = join(dir, monitor.name);
  const binary: Record<string, string> = { prometheus: 'prometheus', node_exporter: 'prometheus-node-exporter' };
  for (const cmd of serviceCommands(c, monitor, { target: 'local', root })) {
    if (!binary[cmd.program]) continue;
    const log = await open(join(dir, `${monitor.name}-${cmd.program}.log`), 'w');
    procs.push(spawn(binary[cmd.program]!, cmd.args, { stdio: ['ignore', log.fd, log.fd] }));
    await log.close();
  }
  type Target = { labels: { job: string; instance: string }; health: string; lastError: string };
  const targets = await waitFor('consul and node targets up in Prometheus', 180, async () => {
    const r = await fetch(`http://${monitor.address}:9090/api/v1/targets`);
    const ts = ((await r.json()) as { data: { activeTargets: Target[] } }).data.activeTargets;
    const up = (job: string) => ts.filter((x) => x.labels.job === job && x.health === 'up').length;
    return up('consul') === 3 && up('node') >= 1 && up('prometheus') === 1 ? ts : undefined;
  });
  assert.deepEqual(
    targets.filter((x) => x.labels.job === 'consul').map((x) => x.labels.instance).sort(),
    ['core1', 'core2', 'core3'],
  );
});
