// `promtool check config` (Prometheus 2.24.1, which still has consul_sd_configs) on prometheus.yml.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderNode, renderRole } from '../../../src/render/index.ts';
import { writeTree } from '../../../src/render/write.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';
import { makeTlsMaterial } from './tls-material.ts';
import { run, tempDir } from './tools.ts';

test('promtool accepts prometheus.yml with consul_sd_configs (image and local target)', async (t) => {
  const dir = await tempDir(t);
  const c = fixtureCluster();
  await writeTree(renderRole(c, 'monitor'), join(dir, 'image'));
  const img = run('promtool', ['check', 'config', join(dir, 'image/etc/prometheus/prometheus.yml')]);
  assert.equal(img.status, 0, img.out);
  const monitor = c.nodes.find((n) => n.role === 'monitor')!;
  const root = join(dir, 'local');
  await writeTree(renderNode(c, monitor, { target: 'local', root }), '/');
  const loc = run('promtool', ['check', 'config', join(root, 'etc/prometheus/prometheus.yml')]);
  assert.equal(loc.status, 0, loc.out);
  assert.match(loc.out, /SUCCESS/);
});

test('promtool accepts prometheus.yml with TLS (CA) and ACL (token) on', async (t) => {
  const dir = await tempDir(t);
  const c = fixtureCluster({ security: { tls: true, acl: true } });
  const pki = join(dir, 'pki');
  await mkdir(pki);
  c.secrets.tls = makeTlsMaterial(pki, c.datacenter, c.domain, ['192.168.50.11', '192.168.50.12', '192.168.50.13']);
  c.secrets.tokens = { consulBootstrap: '4a3e0d6c-6f1f-4a2b-9a8e-0b5c2c6d7e01', consulAgent: '4a3e0d6c-6f1f-4a2b-9a8e-0b5c2c6d7e02', consulPrometheus: '4a3e0d6c-6f1f-4a2b-9a8e-0b5c2c6d7e03' };
  const monitor = c.nodes.find((n) => n.role === 'monitor')!;
  const root = join(dir, 'local');
  await writeTree(renderNode(c, monitor, { target: 'local', root }), '/');
  const r = run('promtool', ['check', 'config', join(root, 'etc/prometheus/prometheus.yml')]);
  assert.equal(r.status, 0, r.out);
});
