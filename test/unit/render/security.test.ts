// TLS and ACL blocks: the Consul 1.8 shape is run through `consul validate` in the
// integration tests; here the version branches and the error for missing material.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Cluster } from '../../../src/cluster/types.ts';
import { UserError } from '../../../src/errors.ts';
import type { FileEntry } from '../../../src/render/filetree.ts';
import { renderRole } from '../../../src/render/index.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';

const [BOOT, AGENT, PROM, DNS] = [1, 2, 3, 4].map((i) => `4a3e0d6c-6f1f-4a2b-9a8e-0b5c2c6d7e0${i}`) as [string, string, string, string];
const pair = (n: string) => ({ cert: `-----BEGIN CERTIFICATE-----\n${n}\n-----END CERTIFICATE-----\n`, key: `-----BEGIN EC PRIVATE KEY-----\n${n}-key\n-----END EC PRIVATE KEY-----\n` });

function secured(version = '1.8.7'): Cluster {
  const c = fixtureCluster({ security: { tls: true, acl: true } });
  c.components.consul.version = version;
  c.secrets.tls = { ca: pair('ca'), consulServer: pair('cs'), nomadServer: pair('ns'), nomadClient: pair('nc') };
  c.secrets.tokens = { consulBootstrap: BOOT, consulAgent: AGENT, consulPrometheus: PROM, consulDns: DNS };
  return c;
}
const entry = (t: Map<string, unknown>, p: string) => (t.get(p) as FileEntry | undefined) ?? assert.fail(`missing ${p}`);
const json = (t: Map<string, unknown>, p: string) => JSON.parse(String(entry(t, p).content));

test('Consul 1.8: top-level verify_* keys, acl.tokens.master, HTTP on loopback only, HTTPS on 8501', () => {
  const srv = renderRole(secured(), 'server');
  const cfg = json(srv, '/etc/consul.d/consul.json');
  assert.equal(cfg.verify_incoming_rpc, true);
  assert.equal(cfg.verify_outgoing, true);
  assert.equal(cfg.verify_server_hostname, true);
  assert.equal(cfg.cert_file, '/etc/consul.d/tls/server.pem');
  assert.deepEqual(cfg.auto_encrypt, { allow_tls: true });
  assert.equal(cfg.ports.https, 8501);
  assert.deepEqual(cfg.addresses, { http: '127.0.0.1' });
  assert.equal(cfg.tls, undefined);
  const acl = entry(srv, '/etc/consul.d/acl.json');
  assert.equal(acl.secret, true);
  assert.equal(acl.mode, 0o640);
  const a = JSON.parse(String(acl.content)).acl;
  assert.equal(a.default_policy, 'deny');
  assert.equal(a.enable_token_persistence, true);
  assert.deepEqual(a.tokens, { master: BOOT, agent: AGENT, default: DNS });
  const key = entry(srv, '/etc/consul.d/tls/server-key.pem');
  assert.equal(key.secret, true);
  assert.ok(key.mode === 0o640 || key.mode === 0o600);
  assert.equal(entry(srv, '/etc/consul.d/tls/ca.pem').mode, 0o644);
  // Tokens and keys only in their secret files.
  for (const [p, e] of srv) {
    if ('symlink' in e || e.secret) continue;
    const text = String(e.content);
    for (const s of [BOOT, AGENT, DNS, PROM, 'PRIVATE KEY']) assert.ok(!text.includes(s), `${p} holds ${s}`);
  }
});

test('clients: CA only, auto_encrypt, no server key, no bootstrap token', () => {
  const cli = renderRole(secured(), 'client');
  const cfg = json(cli, '/etc/consul.d/consul.json');
  assert.deepEqual(cfg.auto_encrypt, { tls: true });
  assert.equal(cfg.ca_file, '/etc/consul.d/tls/ca.pem');
  assert.equal(cfg.cert_file, undefined);
  assert.ok(!cli.has('/etc/consul.d/tls/server-key.pem'));
  assert.deepEqual(json(cli, '/etc/consul.d/acl.json').acl.tokens, { agent: AGENT, default: DNS });
  assert.ok(cli.has('/etc/nomad.d/tls/client-key.pem'));
  assert.equal(entry(cli, '/etc/nomad.d/tls/client-key.pem').mode, 0o600);
  assert.equal(json(cli, '/etc/nomad.d/nomad.json').tls.cert_file, '/etc/nomad.d/tls/client.pem');
});

test('Consul 1.12+: tls stanza; 1.11+: initial_management; 1.14+: grpc_tls port', () => {
  const srv = renderRole(secured('1.16.2'), 'server');
  const cfg = json(srv, '/etc/consul.d/consul.json');
  assert.equal(cfg.verify_outgoing, undefined);
  assert.equal(cfg.ca_file, undefined);
  assert.deepEqual(cfg.tls, {
    defaults: {
      ca_file: '/etc/consul.d/tls/ca.pem',
      cert_file: '/etc/consul.d/tls/server.pem',
      key_file: '/etc/consul.d/tls/server-key.pem',
      verify_incoming: false,
      verify_outgoing: true,
    },
    internal_rpc: { verify_incoming: true, verify_server_hostname: true },
    https: { verify_incoming: false },
  });
  assert.equal(cfg.ports.grpc_tls, 8503);
  assert.deepEqual(cfg.ui_config, { enabled: true });
  assert.equal(json(srv, '/etc/consul.d/acl.json').acl.tokens.initial_management, BOOT);
  assert.equal(json(srv, '/etc/consul.d/acl.json').acl.tokens.master, undefined);
  const v111 = json(renderRole(secured('1.11.0'), 'server'), '/etc/consul.d/consul.json');
  assert.equal(v111.verify_outgoing, true, '1.11 still uses the top-level keys');
});

test('Prometheus: HTTPS scrapes of Consul with the CA and the token; SD token inline, file secret', () => {
  const mon = renderRole(secured(), 'monitor');
  const yml = entry(mon, '/etc/prometheus/prometheus.yml');
  assert.equal(yml.secret, true);
  assert.equal(yml.mode, 0o640);
  assert.equal(yml.group, 'prometheus');
  const text = String(yml.content);
  assert.match(text, new RegExp(`token: ${PROM}`));
  assert.match(text, /ca_file: \/etc\/prometheus\/ca\.pem/);
  assert.match(text, /replacement: \$1:8501/);
  assert.match(text, /server_name: server\.home\.consul/);
  assert.equal(entry(mon, '/etc/prometheus/consul-token').secret, true);
});

test('flags on but material missing: a UserError that says what to run', () => {
  const c = fixtureCluster({ security: { tls: true, acl: false } });
  assert.throws(() => renderRole(c, 'server'), (e: unknown) => e instanceof UserError && /piinit secrets/.test(e.message));
  const d = fixtureCluster({ security: { tls: false, acl: true } });
  assert.throws(() => renderRole(d, 'client'), (e: unknown) => e instanceof UserError && /ACL tokens/.test(e.message));
});
