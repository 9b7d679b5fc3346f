import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isSymlink, type FileEntry } from '../../../src/render/filetree.ts';
import { renderNode, renderRole, serviceCommands } from '../../../src/render/index.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';

const json = (e: unknown) => JSON.parse(String((e as FileEntry).content));

test('local target: every key and referenced path lives under root, daemons bind the node address', () => {
  const c = fixtureCluster();
  const core1 = c.nodes[0]!;
  const root = '/state/nodes/core1';
  const tree = renderNode(c, core1, { target: 'local', root });
  for (const path of tree.keys()) assert.ok(path.startsWith(`${root}/`), path);
  const cfg = json(tree.get(`${root}/etc/consul.d/consul.json`));
  assert.equal(cfg.server, true);
  assert.equal(cfg.bootstrap_expect, 3);
  assert.deepEqual(cfg.retry_join, ['192.168.50.11', '192.168.50.12', '192.168.50.13']);
  assert.equal(cfg.bind_addr, core1.address);
  assert.equal(cfg.client_addr, core1.address);
  assert.equal(cfg.node_name, 'core1');
  assert.equal(cfg.data_dir, `${root}/opt/consul`);
  assert.equal(cfg.performance.raft_multiplier, 3);
  assert.deepEqual(cfg.autopilot, { last_contact_threshold: '600ms', min_quorum: 3 });
  assert.equal(cfg.ui, true);
  const enc = tree.get(`${root}/etc/consul.d/encrypt.json`) as FileEntry;
  assert.equal(enc.secret, true);
  assert.equal(enc.mode, 0o640);
  assert.equal(enc.group, 'consul');
  assert.equal(json(enc).encrypt, c.secrets.consulGossipKey);
  // The gossip key is nowhere else.
  for (const [p, e] of tree) {
    if (p.endsWith('encrypt.json') || isSymlink(e)) continue;
    assert.ok(!String(e.content).includes(c.secrets.consulGossipKey), p);
  }
  const cmds = serviceCommands(c, core1, { target: 'local', root });
  assert.deepEqual(cmds[0], { program: 'consul', args: ['agent', `-config-dir=${root}/etc/consul.d`], user: 'consul' });
});

test('clients are not servers and carry no UI; image config binds through a CIDR template', () => {
  const c = fixtureCluster();
  const tree = renderRole(c, 'client');
  const cfg = json(tree.get('/etc/consul.d/consul.json'));
  assert.equal(cfg.server, false);
  assert.equal(cfg.bootstrap_expect, undefined);
  assert.equal(cfg.ui, undefined);
  assert.equal(cfg.autopilot, undefined);
  assert.equal(cfg.node_name, undefined);
  assert.match(cfg.bind_addr, /^\{\{ GetAllInterfaces \| include "network" "192\.168\.50\.0\/24" .*attr "address" \}\}$/);
  assert.match(cfg.client_addr, /^127\.0\.0\.1 \{\{/);
  const unit = String((tree.get('/usr/lib/systemd/system/consul.service') as FileEntry).content);
  assert.match(unit, /^ExecStart=\/usr\/bin\/consul agent -config-dir=\/etc\/consul\.d$/m);
  assert.match(unit, /^User=consul$/m);
  assert.match(unit, /^ProtectSystem=strict$/m);
  assert.match(unit, /^ReadWritePaths=\/opt\/consul$/m);
  assert.deepEqual(tree.get('/etc/systemd/system/multi-user.target.wants/consul.service'), {
    symlink: '/usr/lib/systemd/system/consul.service',
  });
});

test('renderNode on the image target is the role image, identical for every node of the role', () => {
  const c = fixtureCluster();
  const [a, b] = [renderNode(c, c.nodes[0]!), renderNode(c, c.nodes[1]!)];
  assert.deepEqual([...a], [...b]);
});

test('newer Consul: ui_config instead of ui', () => {
  const c = fixtureCluster();
  c.components.consul.version = '1.17.0';
  const cfg = json(renderRole(c, 'server').get('/etc/consul.d/consul.json'));
  assert.deepEqual(cfg.ui_config, { enabled: true });
  assert.equal(cfg.ui, undefined);
});
