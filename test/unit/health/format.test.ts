import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatReport, progressLine, table } from '../../../src/health/format.ts';
import { nomadUnavailable } from '../../../src/health/nomad.ts';
import type { HealthReport } from '../../../src/health/report.ts';
import { targetsFromCluster, targetsFromUrls } from '../../../src/health/report.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';

function report(over: Partial<HealthReport> = {}): HealthReport {
  return {
    healthy: true,
    checkedAt: '2026-01-01T00:00:00Z',
    consul: {
      answering: ['core1', 'core2', 'core3'],
      unreachable: [],
      leader: '10.0.0.1:8300',
      leaderNode: 'core1',
      peers: [
        { node: 'core1', id: 'a', address: '10.0.0.1:8300', voter: true, leader: true, healthy: true, serfStatus: 'alive', lastContact: '0s' },
        { node: 'core2', id: 'b', address: '10.0.0.2:8300', voter: true, leader: false, healthy: true, serfStatus: 'alive', lastContact: '10ms' },
      ],
      failureTolerance: 1,
      autopilotHealthy: true,
      members: [{ name: 'core1', addr: '10.0.0.1', status: 'alive', role: 'consul' }],
      services: {},
      problems: [],
    },
    nomad: nomadUnavailable('no Nomad binary for amd64'),
    prometheus: {
      state: 'checked',
      url: 'http://10.0.0.4:9090',
      reachable: true,
      targets: [
        { job: 'node', instance: 'core1', scrapeUrl: 'http://10.0.0.1:9100/metrics', health: 'up', lastError: '' },
        { job: 'nomad-servers', instance: 'core1', scrapeUrl: 'http://10.0.0.1:4646/v1/metrics', health: 'down', lastError: 'refused', excused: 'Nomad is not running here' },
      ],
      problems: [],
    },
    nodeExporters: [{ node: 'core1', url: 'http://10.0.0.1:9100', ok: true }],
    problems: [],
    notes: ['Nomad is not running: no Nomad binary for amd64'],
    ...over,
  };
}

test('formatReport: a healthy cluster with Nomad unavailable', () => {
  const text = formatReport(report());
  assert.match(text, /^Consul: leader core1 \(10\.0\.0\.1:8300\), failure tolerance 1$/m);
  assert.match(text, /^Nomad: unavailable — no Nomad binary for amd64$/m);
  assert.match(text, /Prometheus: 2 targets, all up \(besides 1 expected down: Nomad is not running here\)/);
  assert.match(text, /nomad-servers\s+core1\s+down \(expected\)/);
  assert.match(text, /^HEALTHY$/m);
});

test('formatReport: lost quorum and a crashed daemon are spelled out', () => {
  const r = report({
    healthy: false,
    problems: ['Consul has no leader: quorum lost (1 of 3 servers answer, a quorum needs 2)'],
  });
  r.consul = { ...r.consul, leader: null, leaderNode: null, peers: [], failureTolerance: null, unreachable: [{ node: 'core2', error: 'connection refused' }] };
  const text = formatReport(r, [{ node: 'core2', daemon: 'consul', pid: 42, state: 'exited', logTail: 'panic: boom' }]);
  assert.match(text, /^Consul: NO LEADER$/m);
  assert.match(text, /server core2: not answering \(connection refused\)/);
  assert.match(text, /core2\/consul is exited; the end of its log:\n {4}panic: boom/);
  assert.match(text, /NOT HEALTHY \(1 problem\):\n {2}- Consul has no leader: quorum lost/);
});

test('progressLine counts only what matters', () => {
  assert.equal(progressLine(report(), 3), 'leader: core1 · voters 2/3 · members 1/1 · targets up 1/1 · node_exporter 1/1');
});

test('table pads columns', () => {
  assert.equal(table([['a', 'bb'], ['ccc', 'd']]), '  a    bb\n  ccc  d');
});

test('targets: from the cluster addresses, with TLS on 8501, and from URLs', () => {
  const c = fixtureCluster();
  const plain = targetsFromCluster(c);
  assert.deepEqual(plain.consul.map((e) => e.url), ['http://192.168.50.11:8500', 'http://192.168.50.12:8500', 'http://192.168.50.13:8500']);
  assert.equal(plain.prometheus?.url, 'http://192.168.50.14:9090');
  assert.equal(plain.nodeExporters.length, 5);
  assert.deepEqual(plain.expected.nomadClients, ['monitor', 'worker1']);
  const tls = targetsFromCluster({ ...c, security: { tls: true, acl: true } });
  assert.equal(tls.consul[0]!.url, 'https://192.168.50.11:8501');
  assert.equal(tls.nomad[0]!.url, 'https://192.168.50.11:4646');
  const urls = targetsFromUrls(c, ['https://192.168.50.12', 'http://pi.example:8500']);
  assert.deepEqual(urls.consul, [
    { node: 'core2', url: 'https://192.168.50.12:8501' },
    { node: 'pi.example', url: 'http://pi.example:8500' },
  ]);
  assert.throws(() => targetsFromUrls(c, ['not a url']), /not a URL/);
});
