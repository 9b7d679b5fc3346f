// `consul validate` (Consul 1.8.7) on the rendered /etc/consul.d of each role.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderNode } from '../../../src/render/index.ts';
import { writeTree } from '../../../src/render/write.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';
import { makeTlsMaterial } from './tls-material.ts';
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

test('consul validate accepts servers and clients with TLS and ACLs (Consul 1.8 keys)', async (t) => {
  const dir = await tempDir(t);
  const c = fixtureCluster({ security: { tls: true, acl: true } });
  const pki = join(dir, 'pki');
  await mkdir(pki);
  c.secrets.tls = makeTlsMaterial(pki, c.datacenter, c.domain, c.nodes.filter((n) => n.role === 'server').map((n) => n.address!));
  c.secrets.tokens = {
    consulBootstrap: '4a3e0d6c-6f1f-4a2b-9a8e-0b5c2c6d7e01',
    consulAgent: '4a3e0d6c-6f1f-4a2b-9a8e-0b5c2c6d7e02',
    consulPrometheus: '4a3e0d6c-6f1f-4a2b-9a8e-0b5c2c6d7e03',
    consulDns: '4a3e0d6c-6f1f-4a2b-9a8e-0b5c2c6d7e04',
  };
  for (const name of ['core1', 'worker1', 'monitor']) {
    const node = c.nodes.find((n) => n.name === name)!;
    const root = join(dir, name);
    await writeTree(renderNode(c, node, { target: 'local', root }), '/');
    const r = run('consul', ['validate', join(root, 'etc/consul.d')]);
    assert.equal(r.status, 0, `${name}: ${r.out}`);
  }
});
