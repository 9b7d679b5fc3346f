import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { generateSecrets } from '../../../src/cluster/secrets.ts';
import type { Cluster } from '../../../src/cluster/types.ts';
import { makeContext } from '../../../src/render/context.ts';
import { type FileEntry, isSymlink } from '../../../src/render/filetree.ts';
import {
  accessorIdFor,
  CONSUL_ACL_ENV,
  CONSUL_ACL_SCRIPT,
  CONSUL_ACL_UNIT,
  CONSUL_POLICIES,
  NOMAD_ACL_ENV,
  NOMAD_ACL_SCRIPT,
  renderAclBootstrap,
} from '../../../src/security/acl.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';

function secureCluster(): Cluster {
  const c = fixtureCluster({ security: { tls: true, acl: true } });
  c.secrets = generateSecrets(c);
  return c;
}

const text = (e: unknown) => String((e as FileEntry).content);

test('servers carry the bootstrap scripts, their 0600 env files and enabled background units', () => {
  const c = secureCluster();
  const tree = renderAclBootstrap(makeContext(c, 'server', 'image', null));
  const env = tree.get(CONSUL_ACL_ENV) as FileEntry;
  assert.equal(env.mode, 0o600);
  assert.equal(env.secret, true);
  assert.match(text(env), new RegExp(`CONSUL_MASTER_TOKEN=${c.secrets.tokens.consulBootstrap}`));
  assert.match(text(env), new RegExp(`CONSUL_AGENT_ACCESSOR=${accessorIdFor(c.secrets.tokens.consulAgent!)}`));
  assert.equal((tree.get(NOMAD_ACL_ENV) as FileEntry).mode, 0o600);
  for (const script of [CONSUL_ACL_SCRIPT, NOMAD_ACL_SCRIPT]) {
    const s = text(tree.get(script));
    assert.equal((tree.get(script) as FileEntry).mode, 0o755);
    // No secret value in the world-readable script.
    for (const v of Object.values(c.secrets.tokens)) assert.ok(!s.includes(v!), `${script} holds no token`);
    execFileSync('sh', ['-n'], { input: s }); // syntax check by the shell that runs it
  }
  const unit = text(tree.get(`/usr/lib/systemd/system/${CONSUL_ACL_UNIT}`));
  // Runs beside the boot: a server waiting for its peers must not hold multi-user.target.
  assert.match(unit, /Type=exec/);
  assert.match(unit, /RemainAfterExit=yes/);
  assert.match(unit, /After=consul\.service/);
  const wants = tree.get(`/etc/systemd/system/multi-user.target.wants/${CONSUL_ACL_UNIT}`)!;
  assert.ok(isSymlink(wants));
  // Nomad's API is HTTPS with TLS on: the unit tells curl the CA.
  assert.match(text(tree.get('/usr/lib/systemd/system/piinit-nomad-acl.service')), /PIINIT_ACL_CACERT=/);
  assert.match(text(tree.get(NOMAD_ACL_SCRIPT)), /https:\/\/127\.0\.0\.1:4646/);
});

test('every policy the script creates is in it, and nothing is rendered for other roles or with ACLs off', () => {
  const c = secureCluster();
  const script = text(renderAclBootstrap(makeContext(c, 'server', 'image', null)).get(CONSUL_ACL_SCRIPT));
  for (const p of CONSUL_POLICIES) assert.ok(script.includes(`ensure_policy ${p.name} `));
  assert.equal(renderAclBootstrap(makeContext(c, 'monitor', 'image', null)).size, 0);
  assert.equal(renderAclBootstrap(makeContext(c, 'client', 'image', null)).size, 0);
  const off = { ...c, security: { tls: true, acl: false } };
  assert.equal(renderAclBootstrap(makeContext(off, 'server', 'image', null)).size, 0);
});

test('the local target relocates the files, targets the node address and has no units', () => {
  const c = secureCluster();
  const node = { ...c.nodes[0]!, address: '127.0.100.1' };
  const tree = renderAclBootstrap(makeContext(c, 'server', 'local', node, '/state/core1'));
  const script = text(tree.get(`/state/core1${CONSUL_ACL_SCRIPT}`));
  assert.match(script, /PIINIT_ACL_ENV:-\/state\/core1\/etc\/piinit\/consul-acl-bootstrap\.env/);
  assert.match(script, /http:\/\/127\.0\.100\.1:8500/);
  assert.ok(![...tree.keys()].some((k) => k.includes('systemd')));
});

test('accessor IDs are stable UUIDs derived from the secret, and refuse non-UUID tokens', () => {
  const a = accessorIdFor('0b1e8c52-52b4-4a87-a7b4-4cb5b86c23a8');
  assert.equal(a, accessorIdFor('0b1e8c52-52b4-4a87-a7b4-4cb5b86c23a8'));
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(a, '0b1e8c52-52b4-4a87-a7b4-4cb5b86c23a8');
  const c = secureCluster();
  c.secrets.tokens.consulAgent = 'x; rm -rf /';
  assert.throws(() => renderAclBootstrap(makeContext(c, 'server', 'image', null)), /not a UUID/);
});
