// `consul validate` (Consul 1.8.7) on the rendered /etc/consul.d of each role.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderNode } from '../../../src/render/index.ts';
import { writeTree } from '../../../src/render/write.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';
import { run, tempDir } from './tools.ts';

test('consul validate accepts the local-target config of a server, a client and the monitor', async (t) => {
  const dir = await tempDir(t);
  const c = fixtureCluster();
  for (const name of ['core1', 'worker1', 'monitor']) {
    const node = c.nodes.find((n) => n.name === name)!;
    const root = join(dir, name);
    await writeTree(renderNode(c, node, { target: 'local', root }), '/');
    const r = run('consul', ['validate', join(root, 'etc/consul.d')]);
    assert.equal(r.status, 0, `${name}: ${r.out}`);
    assert.match(r.out, /Configuration is valid/);
  }
});
