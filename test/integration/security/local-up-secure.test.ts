// The secure defaults through the local runner (`piinit up`'s code path): TLS + ACL +
// gossip encryption on three Consul servers, a monitor with Prometheus and a client with
// node_exporter. Health is then read with the OPERATOR token only (what `piinit status`
// uses against a real cluster), and the whole state directory and every log is scanned.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { Http, shapes } from '../../../src/health/http.ts';
import { clusterAuth } from '../../../src/health/cluster-auth.ts';
import { checkHealth } from '../../../src/health/report.ts';
import { firstCrash, localAuth, localTargets, upLocal } from '../../../src/run/local.ts';
import { withLocalTls } from '../../../src/run/local-security.ts';
import { waitLocalHealthy } from '../../../src/run/probe.ts';
import { formatFindings, scanDirectory, scanText } from '../../../src/security/scan.ts';
import { cleanup, http, makeCluster, NOMAD_UNAVAILABLE, randomLoopbackSubnet, SYSTEM_BINARIES } from '../run/helpers.ts';

test('piinit up with the secure defaults: healthy with the operator token, anonymous denied, nothing leaked', { timeout: 600_000 }, async (t) => {
  const tc = await makeCluster({ monitor: true, clients: 1, tls: true, acl: true, name: 'secure' });
  t.after(() => cleanup(tc));
  assert.deepEqual(tc.cluster.security, { tls: true, acl: true });
  const up = await upLocal(tc.cluster, {
    stateDir: tc.stateDir,
    binaries: SYSTEM_BINARIES,
    unavailable: NOMAD_UNAVAILABLE,
    subnet: randomLoopbackSubnet(),
    prepare: withLocalTls,
  });
  const local = up.cluster;
  const tokens = local.secrets.tokens;
  const auth = { ...localAuth(local), consulToken: tokens.consulOperator! };
  const report = await waitLocalHealthy(up.state, localTargets(local, up.state), auth, { timeoutMs: 240_000, abort: () => firstCrash(up.state) });
  assert.ok(report.healthy, report.problems.join('\n'));
  assert.equal(report.consul.peers.filter((p) => p.voter).length, 3);
  // Prometheus found node_exporter through consul_sd with its read-only token.
  const node = report.prometheus.targets.find((x) => x.job === 'node' && x.health === 'up');
  assert.ok(node, JSON.stringify(report.prometheus.targets));
  // Prometheus 2.24 says how long that scrape took (status --json passes it on).
  assert.ok(typeof node.lastScrapeSeconds === 'number' && node.lastScrapeSeconds > 0, JSON.stringify(node));
  // Debian's node_exporter (this host's) runs its systemd and text file collectors unless told not to.
  const metrics = await http('GET', node.scrapeUrl);
  assert.match(metrics.body, /^node_scrape_collector_success\{collector="cpu"\} 1$/m);
  assert.doesNotMatch(metrics.body, /collector="(systemd|textfile)"/);

  // Without a token the same questions are refused.
  const anonymous = await checkHealth(localTargets(local, up.state), { ...localAuth(local), consulToken: undefined });
  assert.equal(anonymous.healthy, false);
  const core1 = up.state.nodes.find((n) => n.name === 'core1')!;
  assert.equal((await http('GET', `http://${core1.address}:8500/v1/kv/anything`)).status, 403);
  assert.equal((await http('PUT', `http://${core1.address}:8500/v1/kv/anything`, 'x')).status, 403);

  // No file of the state directory is readable by others (this process is root: owners are
  // root, groups root), and no log holds a secret.
  assert.equal(formatFindings(await scanDirectory(tc.stateDir, local.secrets)), '');
  const logsDir = join(tc.stateDir, 'logs');
  let logs = '';
  for (const f of await readdir(logsDir)) logs += await readFile(join(logsDir, f), 'utf8');
  assert.ok(logs.length > 0);
  assert.equal(formatFindings(scanText(logs, local.secrets, 'local cluster logs')), '');
});

test("piinit up with Nomad (a stand-in for its API): Nomad's ACL system is bootstrapped with the cluster's secret, over HTTPS; once", { timeout: 300_000 }, async (t) => {
  const tc = await makeCluster({ tls: true, acl: true, name: 'nomad-acl' });
  t.after(() => cleanup(tc));
  const nomad = fileURLToPath(new URL('../../helpers/nomad-standin.mjs', import.meta.url));
  const up = () => upLocal(tc.cluster, { stateDir: tc.stateDir, binaries: { ...SYSTEM_BINARIES, nomad }, subnet, prepare: withLocalTls });
  const subnet = randomLoopbackSubnet();
  const first = await up();
  assert.deepEqual(first.started.filter((k) => k.endsWith('/nomad')).sort(), ['core1/nomad', 'core2/nomad', 'core3/nomad']);
  const local = first.cluster;
  const core1 = first.state.nodes.find((n) => n.name === 'core1')!;
  const http = new Http({ ca: local.secrets.tls!.ca.cert, nomadToken: local.secrets.tokens.nomadBootstrap!, serverNames: ['server.global.nomad'] }, 5000);
  t.after(() => http.close());
  const self = await http.nomad<{ Type: string }>(`https://${core1.address}:4646/v1/acl/token/self`, shapes.objectWith('Type'));
  assert.ok(self.ok && self.body.Type === 'management', JSON.stringify(self));
  const standinLog = () => readFile(join(core1.root, 'opt/nomad/standin.log'), 'utf8');
  assert.match(await standinLog(), /^listening https$/m);
  assert.equal((await standinLog()).match(/^POST \/v1\/acl\/bootstrap 200$/gm)?.length, 1);

  // What piinit status sends a real cluster gets Nomad's answers; the Nomad operator token,
  // which is not created in Nomad, would be refused.
  const targets = localTargets(local, first.state);
  const asStatus = await checkHealth(targets, clusterAuth(local), 5000);
  assert.equal(asStatus.nomad.state, 'checked');
  assert.deepEqual(asStatus.nomad.problems.filter((p) => /403/.test(p)), [], asStatus.nomad.problems.join('\n'));
  assert.ok(asStatus.nomad.servers.length > 0, JSON.stringify(asStatus.nomad));
  const withOperator = await checkHealth(targets, { ...clusterAuth(local), nomadToken: local.secrets.tokens.nomadOperator! }, 5000);
  assert.ok(withOperator.nomad.problems.some((p) => /cannot list Nomad servers \(HTTP 403/.test(p)), withOperator.nomad.problems.join('\n'));

  // A second up finds it done: no second bootstrap.
  await up();
  assert.equal((await standinLog()).match(/^POST \/v1\/acl\/bootstrap/gm)?.length, 1, await standinLog());
  const log = await readFile(join(tc.stateDir, 'logs', 'nomad-acl-bootstrap.log'), 'utf8');
  assert.match(log, /bootstrapped Nomad ACLs/);
  assert.equal(formatFindings(scanText(log, local.secrets, 'nomad-acl-bootstrap.log')), '');
});
