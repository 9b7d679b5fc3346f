// No Nomad binary on this machine: the shape of the rendered config is checked against the docs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FileEntry } from '../../../src/render/filetree.ts';
import { bootCmdlineExtras, renderNode, renderRole, serviceCommands } from '../../../src/render/index.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';

const entry = (t: Map<string, unknown>, p: string) => (t.get(p) as FileEntry | undefined) ?? assert.fail(`missing ${p}`);
const json = (t: Map<string, unknown>, p: string) => JSON.parse(String(entry(t, p).content));

test('servers: server block with bootstrap_expect and retry_join, gossip key in its own secret file', () => {
  const c = fixtureCluster();
  const tree = renderRole(c, 'server');
  const cfg = json(tree, '/etc/nomad.d/nomad.json');
  assert.deepEqual(cfg.server, {
    enabled: true,
    bootstrap_expect: 3,
    server_join: { retry_join: ['192.168.50.11', '192.168.50.12', '192.168.50.13'] },
  });
  assert.equal(cfg.client, undefined);
  assert.equal(cfg.datacenter, 'home');
  assert.equal(cfg.data_dir, '/opt/nomad');
  assert.match(cfg.bind_addr, /GetAllInterfaces \| include "network" "192\.168\.50\.0\/24"/);
  // The HTTP API answers on 127.0.0.1 too: Consul's check and the ACL bootstrap call it there.
  assert.deepEqual(cfg.addresses, { http: '0.0.0.0' });
  assert.deepEqual(cfg.advertise, { http: cfg.bind_addr });
  const check = json(tree, '/etc/consul.d/service-nomad-metrics.json');
  assert.equal(check.service.check.tcp, '127.0.0.1:4646');
  assert.deepEqual(cfg.telemetry, {
    collection_interval: '15s',
    disable_hostname: true,
    prometheus_metrics: true,
    publish_allocation_metrics: true,
    publish_node_metrics: true,
  });
  assert.equal(cfg.consul.address, '127.0.0.1:8500');
  const enc = entry(tree, '/etc/nomad.d/encrypt.json');
  assert.equal(enc.secret, true);
  assert.equal(enc.mode, 0o640);
  assert.equal(enc.group, 'nomad');
  assert.deepEqual(JSON.parse(String(enc.content)), { server: { encrypt: c.secrets.nomadGossipKey } });
  const unit = String(entry(tree, '/usr/lib/systemd/system/nomad.service').content);
  assert.match(unit, /^User=nomad$/m);
  assert.match(unit, /^ExecStart=\/usr\/bin\/nomad agent -config=\/etc\/nomad\.d$/m);
  assert.match(unit, /^ProtectSystem=strict$/m);
  assert.ok(tree.has('/usr/lib/sysusers.d/nomad.conf'));
  const svc = json(tree, '/etc/consul.d/service-nomad-metrics.json').service;
  assert.deepEqual(svc.tags, ['server']);
  assert.equal(svc.port, 4646);
});

test('clients (workers and the monitor): client block, root, no gossip key, memory cgroup on the command line', () => {
  const c = fixtureCluster();
  for (const role of ['client', 'monitor'] as const) {
    const tree = renderRole(c, role);
    const cfg = json(tree, '/etc/nomad.d/nomad.json');
    assert.equal(cfg.server, undefined);
    assert.equal(cfg.client.enabled, true);
    assert.deepEqual(cfg.client.server_join.retry_join, ['192.168.50.11:4647', '192.168.50.12:4647', '192.168.50.13:4647']);
    assert.ok(!tree.has('/etc/nomad.d/encrypt.json'));
    const unit = String(entry(tree, '/usr/lib/systemd/system/nomad.service').content);
    assert.doesNotMatch(unit, /^User=/m);
    assert.deepEqual(bootCmdlineExtras(c, role), ['cgroup_enable=memory', 'cgroup_memory=1']);
    assert.ok(!tree.has('/usr/lib/sysusers.d/nomad.conf'));
  }
  assert.deepEqual(bootCmdlineExtras(c, 'server'), []);
});

test('local target: name, addresses and data dir per node; serviceCommands match the units', () => {
  const c = fixtureCluster();
  const worker = c.nodes.find((n) => n.name === 'worker1')!;
  const root = '/tmp/piinit-state/nodes/worker1';
  const tree = renderNode(c, worker, { target: 'local', root });
  const cfg = json(tree, `${root}/etc/nomad.d/nomad.json`);
  assert.equal(cfg.name, 'worker1');
  assert.equal(cfg.bind_addr, worker.address);
  assert.equal(cfg.addresses, undefined, 'one address per node: they share the host');
  assert.equal(cfg.data_dir, `${root}/opt/nomad`);
  assert.equal(cfg.consul.address, `${worker.address}:8500`);
  const cmds = serviceCommands(c, worker, { target: 'local', root });
  assert.deepEqual(
    cmds.map((x) => [x.program, x.user]),
    [
      ['consul', 'consul'],
      ['nomad', 'root'],
      ['node_exporter', 'node_exporter'],
    ],
  );
  for (const cmd of cmds) {
    const unit = String(entry(tree, `${root}/usr/lib/systemd/system/${cmd.program}.service`).content);
    assert.ok(unit.includes(`\nExecStart=/usr/bin/${cmd.program} ${cmd.args.join(' ')}\n`), cmd.program);
  }
});

test('ACL on: Nomad acl enabled', () => {
  const c = fixtureCluster({ security: { tls: false, acl: true } });
  c.secrets.tokens = { consulBootstrap: '4a3e0d6c-6f1f-4a2b-9a8e-0b5c2c6d7e01', consulAgent: '4a3e0d6c-6f1f-4a2b-9a8e-0b5c2c6d7e02', consulPrometheus: '4a3e0d6c-6f1f-4a2b-9a8e-0b5c2c6d7e03' };
  const tree = renderRole(c, 'server');
  assert.deepEqual(json(tree, '/etc/nomad.d/nomad.json').acl, { enabled: true });
  assert.equal(json(tree, '/etc/nomad.d/nomad.json').consul.token, undefined);
  const tok = entry(tree, '/etc/nomad.d/consul-token.json');
  assert.equal(tok.secret, true);
  assert.deepEqual(JSON.parse(String(tok.content)), { consul: { token: c.secrets.tokens.consulAgent } });
  assert.equal(entry(renderRole(c, 'client'), '/etc/nomad.d/consul-token.json').mode, 0o600);
});
