// `piinit status --target URL` at a port where something else answers (a web page, other
// JSON): every section reports what it got, as a problem; nothing throws. A local HTTP
// server on 127.0.0.1 answers a leader like Consul's and Nomad's, and a web page or JSON of
// another shape for everything else.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { checkHealth, type Targets } from '../../../src/health/report.ts';

test('a service that is not Consul, Nomad or Prometheus is reported, not a crash', async (t) => {
  const server = createServer((req, res) => {
    if (req.url === '/v1/status/leader') return res.end('"127.0.0.1:8300"');
    if (req.url?.startsWith('/api/v1/targets')) return res.end('{"status":"success","data":{}}');
    if (req.url === '/v1/agent/members') return res.end('{"Members":"none"}');
    res.end('<html><body>router admin</body></html>');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const at = { node: 'core1', url };
  const targets: Targets = {
    consul: [at],
    nomad: [at],
    prometheus: { node: 'monitor', url },
    nodeExporters: [at],
    expected: { consulServers: ['core1'], consulMembers: ['core1'], consulServices: { 'node-exporter': ['core1'] }, nomadServers: ['core1'], nomadClients: [] },
  };
  const r = await checkHealth(targets, {}, 2000);
  assert.equal(r.healthy, false);
  const other = 'not the answer expected here, HTTP 200:';
  for (const want of [
    `cannot read the raft configuration (${other} <html><body>router admin</body></html>)`,
    `cannot read autopilot health (${other} <html>`,
    `cannot list Consul members (${other} {"Members":"none"})`,
    `cannot read service node-exporter from the Consul catalog (${other} <html>`,
    `cannot list Nomad servers (${other} {"Members":"none"})`,
    `cannot list Nomad client nodes (${other} <html>`,
    `Prometheus on monitor does not answer (${other} {"status":"success","data":{}})`,
    'node_exporter on core1',
  ]) {
    assert.ok(r.problems.some((p) => p.startsWith(want)), `"${want}…" in:\n${r.problems.join('\n')}`);
  }
  // A web page where the leader is asked: the server does not answer as Consul.
  const page = createServer((_req, res) => res.end('<html></html>'));
  page.listen(0, '127.0.0.1');
  await once(page, 'listening');
  t.after(() => page.close());
  const pageAt = { node: 'core1', url: `http://127.0.0.1:${(page.address() as AddressInfo).port}` };
  const r2 = await checkHealth({ ...targets, consul: [pageAt], nomad: [pageAt] }, {}, 2000);
  assert.ok(r2.problems.includes(`Consul server core1 does not answer (${other} <html></html>)`), r2.problems.join('\n'));
  assert.ok(r2.problems.includes('no Consul server answers'), r2.problems.join('\n'));
  assert.equal(r2.consul.leader, null);
});
