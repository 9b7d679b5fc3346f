import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { init } from '../../../src/cli/init.ts';
import { loadCluster } from '../../../src/cluster/load.ts';
import { certificateInfo, isIssuedBy } from '../../../src/security/pki.ts';

test('piinit init writes the CA, certificates for the servers in cluster.yaml, and tokens, mode 0600', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-sec-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const out = process.stdout.write;
  process.stdout.write = () => true; // init's friendly summary; it never contains a secret
  try {
    await init(dir, { force: false, clients: 1, secretsOnly: false });
  } finally {
    process.stdout.write = out;
  }
  const secretsPath = join(dir, 'cluster.secrets.yaml');
  assert.equal((await stat(secretsPath)).mode & 0o777, 0o600);
  const { cluster } = await loadCluster(join(dir, 'cluster.yaml'));
  assert.deepEqual(cluster.security, { tls: true, acl: true });
  const tls = cluster.secrets.tls;
  assert.ok(tls, 'TLS material generated');
  const serverAddrs = cluster.nodes.filter((n) => n.role === 'server').map((n) => n.address);
  const names = certificateInfo(tls.consulServer.cert).names;
  assert.ok(names.includes(`server.${cluster.datacenter}.${cluster.domain}`));
  for (const a of serverAddrs) assert.ok(names.includes(a!), `consul server cert names ${a}`);
  assert.ok(isIssuedBy(tls.nomadClient.cert, tls.ca.cert));
  for (const k of ['consulBootstrap', 'consulAgent', 'consulPrometheus', 'consulOperator', 'consulDns', 'nomadBootstrap'] as const) {
    assert.match(cluster.secrets.tokens[k] ?? '', /^[0-9a-f-]{36}$/);
  }
});
