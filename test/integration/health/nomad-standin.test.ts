// probeNomad against a stand-in for Nomad's HTTP API: no Nomad binary runs on this machine,
// so three local HTTP servers on 127.0.0.1 answer /v1/status/leader, /v1/agent/members and
// /v1/nodes with the shapes of Nomad's API documentation (sample responses of "List
// Members" and "List Nodes"), and refuse a request without the ACL token as Nomad does
// (403 "Permission denied"). A fourth address is a closed port.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { Endpoint } from '../../../src/health/consul.ts';
import { Http } from '../../../src/health/http.ts';
import { probeNomad } from '../../../src/health/nomad.ts';

const TOKEN = 'c0ffee00-0000-4000-8000-000000000001';

interface StandIn {
  leader: string;
  members: { Name: string; Status: string }[];
  nodes: { Name: string; Status: string; SchedulingEligibility: string }[];
}

function nomadApi(state: StandIn): Server {
  return createServer((req, res) => {
    const reply = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': code === 200 ? 'application/json' : 'text/plain' });
      res.end(typeof body === 'string' && code !== 200 ? body : JSON.stringify(body));
    };
    if (req.headers['x-nomad-token'] !== TOKEN) return reply(403, 'Permission denied');
    if (req.url === '/v1/status/leader') return reply(200, state.leader);
    if (req.url === '/v1/agent/members') {
      return reply(200, {
        ServerName: 'core1',
        ServerRegion: 'global',
        ServerDC: 'home',
        Members: state.members.map((m) => ({ ...m, Addr: '127.0.0.1', Port: 4648, Tags: { role: 'nomad', region: 'global' } })),
      });
    }
    if (req.url === '/v1/nodes') {
      return reply(
        200,
        state.nodes.map((n, i) => ({ ...n, ID: `node-${i}`, Datacenter: 'home', NodeClass: '', Drain: false, Address: '127.0.0.1' })),
      );
    }
    reply(404, 'Invalid URL');
  });
}

async function listen(s: Server): Promise<string> {
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

/** A port nothing listens on: bound, then closed again. */
async function closedPort(): Promise<string> {
  const s = createServer();
  const url = await listen(s);
  await new Promise((resolve) => s.close(resolve));
  return url;
}

async function standIns(t: { after: (fn: () => Promise<void>) => void }, states: StandIn[]): Promise<Endpoint[]> {
  const servers = states.map(nomadApi);
  t.after(async () => {
    for (const s of servers) await new Promise((resolve) => s.close(resolve));
  });
  return Promise.all(servers.map(async (s, i) => ({ node: `core${i + 1}`, url: await listen(s) })));
}

const healthy: StandIn = {
  leader: '127.0.0.1:4647',
  members: [
    { Name: 'core1.global', Status: 'alive' },
    { Name: 'core2.global', Status: 'alive' },
    { Name: 'core3.global', Status: 'failed' },
  ],
  nodes: [
    { Name: 'worker1', Status: 'ready', SchedulingEligibility: 'eligible' },
    { Name: 'worker2', Status: 'down', SchedulingEligibility: 'ineligible' },
  ],
};

test('probeNomad: leader, servers by gossip name, clients; a closed port, a failed server, a down and a missing client are problems', async (t) => {
  const endpoints = await standIns(t, [healthy, healthy]);
  const down: Endpoint = { node: 'core3', url: await closedPort() };
  const http = new Http({ nomadToken: TOKEN }, 2000);
  t.after(() => http.close());
  const r = await probeNomad(http, [...endpoints, down], { servers: ['core1', 'core2', 'core3'], clients: ['worker1', 'worker2', 'worker3'] });
  assert.equal(r.state, 'checked');
  assert.deepEqual(r.answering, ['core1', 'core2']);
  assert.deepEqual(r.unreachable, [{ node: 'core3', error: 'connection refused' }]);
  assert.equal(r.leader, '127.0.0.1:4647');
  assert.deepEqual(r.servers, [
    { name: 'core1', status: 'alive' },
    { name: 'core2', status: 'alive' },
    { name: 'core3', status: 'failed' },
  ]);
  assert.deepEqual(r.clients, [
    { name: 'worker1', status: 'ready', eligibility: 'eligible' },
    { name: 'worker2', status: 'down', eligibility: 'ineligible' },
  ]);
  assert.deepEqual(r.problems, [
    'Nomad server core3 does not answer (connection refused)',
    'Nomad server core3 is failed',
    'Nomad client worker2 is down',
    'Nomad client worker3 is not registered',
  ]);
});

test('probeNomad: all healthy gives no problems; the leader is taken from the first server that knows one', async (t) => {
  const all: StandIn = { ...healthy, members: healthy.members.map((m) => ({ ...m, Status: 'alive' })), nodes: [healthy.nodes[0]!] };
  const endpoints = await standIns(t, [{ ...all, leader: '' }, all, all]);
  const http = new Http({ nomadToken: TOKEN }, 2000);
  t.after(() => http.close());
  const r = await probeNomad(http, endpoints, { servers: ['core1', 'core2', 'core3'], clients: ['worker1'] });
  assert.deepEqual(r.answering, ['core1', 'core2', 'core3']);
  assert.equal(r.leader, '127.0.0.1:4647');
  assert.deepEqual(r.problems, []);
});

test('probeNomad: servers that answer without a leader, and a missing token, are reported as such', async (t) => {
  const endpoints = await standIns(t, [
    { ...healthy, leader: '' },
    { ...healthy, leader: '' },
  ]);
  const http = new Http({ nomadToken: TOKEN }, 2000);
  t.after(() => http.close());
  const noLeader = await probeNomad(http, endpoints, { servers: ['core1', 'core2', 'core3'], clients: [] });
  assert.equal(noLeader.leader, null);
  assert.deepEqual(noLeader.problems, ['Nomad has no leader (2 of 3 servers answer)']);

  const anonymous = new Http({}, 2000);
  t.after(() => anonymous.close());
  const denied = await probeNomad(anonymous, endpoints, { servers: ['core1', 'core2'], clients: [] });
  assert.deepEqual(denied.answering, []);
  assert.match(denied.unreachable[0]!.error, /^HTTP 403: Permission denied — the ACL token is missing/);
  assert.equal(denied.problems.at(-1), 'no Nomad server answers');
});
