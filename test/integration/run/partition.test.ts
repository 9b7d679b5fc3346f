// A network partition between real Consul servers: `piinit up --netns` puts each node in
// its own network namespace; cutting one server's link leaves a majority of two that keeps
// serving writes while the minority refuses consistent reads; healing it lets it catch up.
// Needs root (network namespaces), like CI. Bounded; namespaces and processes are removed
// in t.after.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firstCrash, localAuth, localTargets, upLocal } from '../../../src/run/local.ts';
import { runInNamespace, setLink } from '../../../src/run/netns.ts';
import { waitLocalHealthy } from '../../../src/run/probe.ts';
import { cleanup, makeCluster, NOMAD_UNAVAILABLE, SYSTEM_BINARIES, waitFor } from './helpers.ts';

/** curl inside a namespace (where the private addresses exist); status 0 = no answer. */
async function nsHttp(ns: string, method: 'GET' | 'PUT', url: string, body?: string, maxTimeS = 5): Promise<{ status: number; body: string }> {
  const args = ['curl', '-sS', '--max-time', String(maxTimeS), '-X', method, '-o', '-', '-w', '\n%{http_code}'];
  if (body !== undefined) args.push('--data-binary', body);
  const r = await runInNamespace(ns, [...args, url], { timeoutMs: (maxTimeS + 5) * 1000 });
  const i = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(i + 1)) || 0, body: r.stdout.slice(0, Math.max(i, 0)) };
}

test('partition one server away: the majority writes, the minority refuses consistent reads, healing catches it up', { timeout: 300_000 }, async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test needs root for network namespaces (CI runs as root)');
  const tc = await makeCluster({ name: 'partition' });
  t.after(() => cleanup(tc));
  const octet = 1 + Math.floor(Math.random() * 250);
  const r = await upLocal(tc.cluster, {
    stateDir: tc.stateDir,
    binaries: SYSTEM_BINARIES,
    unavailable: NOMAD_UNAVAILABLE,
    netns: true,
    subnet: `10.213.${octet}.0/24`,
  });
  const net = r.state.network!;
  assert.equal(net.namespaces.length, 3);
  const targets = localTargets(r.cluster, r.state);
  const auth = localAuth(r.cluster);
  const h = await waitLocalHealthy(r.state, targets, auth, { timeoutMs: 90_000, abort: () => firstCrash(r.state) });
  assert.ok(h.healthy, h.problems.join('\n'));

  const node = (name: string) => r.state.nodes.find((n) => n.name === name)!;
  const api = (name: string) => `http://${node(name).address}:8500`;
  const hub = net.hub;
  const leaderAddr = JSON.parse((await nsHttp(hub, 'GET', `${api('core1')}/v1/status/leader`)).body) as string;
  const leader = r.state.nodes.find((n) => n.address === leaderAddr.split(':')[0])!.name;
  const minority = ['core1', 'core2', 'core3'].find((n) => n !== leader)!;
  const other = ['core1', 'core2', 'core3'].find((n) => n !== leader && n !== minority)!;

  assert.equal((await nsHttp(hub, 'PUT', `${api(leader)}/v1/kv/p/before`, 'b')).body.trim(), 'true');

  await setLink(net, node(minority).netns!, false);

  // The majority (leader + one follower) still commits writes.
  for (let i = 0; i < 5; i++) {
    const w = await nsHttp(hub, 'PUT', `${api(other)}/v1/kv/p/during${i}`, `d${i}`, 10);
    assert.equal(w.body.trim(), 'true', `write ${i} through ${other}: HTTP ${w.status} ${w.body}`);
  }
  // The minority, asked from inside its own namespace, refuses a consistent read (bounded:
  // it gives up on the lost leader within its raft timeouts).
  const refused = await waitFor('the minority to refuse consistent reads', 90_000, async () => {
    const res = await nsHttp(node(minority).netns!, 'GET', `${api(minority)}/v1/kv/p/before?consistent`, undefined, 10);
    return res.status !== 200 ? res : null;
  }, 1000);
  assert.notEqual(refused.status, 200);
  // …and does not have what the majority wrote.
  const stale = await nsHttp(node(minority).netns!, 'GET', `${api(minority)}/v1/kv/p/during4?stale`, undefined, 10);
  assert.notEqual(stale.status, 200);

  // Away is not gone: once gossip marks it failed, autopilot's dead-server cleanup (every
  // 10 s) would remove it from the raft peers, but min_quorum (the cluster's 3 servers)
  // stops that. Watched for 25 s, more than two cleanup rounds.
  const SERF_FAILED = 4;
  await waitFor('the majority to see the minority as failed', 60_000, async () => {
    const m = await nsHttp(hub, 'GET', `${api(leader)}/v1/agent/members`);
    const members = JSON.parse(m.body) as { Name: string; Status: number }[];
    return members.find((x) => x.Name === minority)?.Status === SERF_FAILED;
  }, 1000);
  for (let i = 0; i < 25; i++) {
    const c = await nsHttp(hub, 'GET', `${api(leader)}/v1/operator/raft/configuration`);
    const servers = (JSON.parse(c.body) as { Servers: { Node: string; Voter: boolean }[] }).Servers;
    assert.ok(servers.some((x) => x.Node === minority && x.Voter), `${minority} is still a raft voter after ${i} s (${c.body})`);
    await new Promise((r) => setTimeout(r, 1000));
  }

  await setLink(net, node(minority).netns!, true);
  const caught = await waitFor('the healed server to catch up', 90_000, async () => {
    const res = await nsHttp(hub, 'GET', `${api(minority)}/v1/kv/p/during4?raw&stale`);
    return res.status === 200 ? res.body : null;
  }, 1000);
  assert.equal(caught, 'd4');
  const healed = await waitLocalHealthy(r.state, targets, auth, { timeoutMs: 90_000 });
  assert.ok(healed.healthy, healed.problems.join('\n'));
  const consistent = await nsHttp(hub, 'GET', `${api(minority)}/v1/kv/p/during0?raw&consistent`, undefined, 10);
  assert.equal(consistent.body, 'd0');
});
