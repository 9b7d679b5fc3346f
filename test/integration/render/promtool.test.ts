// `promtool check config` (Prometheus 2.24.1, which still has consul_sd_configs) on prometheus.yml.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderNode, renderRole } from '../../../src/render/index.ts';
import { writeTree } from '../../../src/render/write.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';
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
