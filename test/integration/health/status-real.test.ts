// `piinit status` against a "real" cluster: the demo cluster with its nodes' addresses in
// cluster.yaml set to loopback addresses, run by `piinit up` with exactly those addresses.
// status --target cluster then goes the way it goes to Pis: HTTPS on 8501 verified with
// the cluster CA from the secrets file, the operator token (created by the ACL bootstrap)
// from the secrets file. Nomad is expected on a real cluster, so its absence here must
// make the exit code 1 — and be the only reason.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { downLocal } from '../../../src/run/local.ts';
import { waitFor } from '../run/helpers.ts';

const piinit = (args: string[], timeoutMs = 400_000) =>
  spawnSync(process.execPath, ['bin/piinit.js', ...args], { encoding: 'utf8', timeout: timeoutMs });

test('status --target cluster|URL: TLS with the cluster CA, the operator token, Nomad required', { timeout: 600_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-real-'));
  const state = join(dir, 'state');
  t.after(async () => {
    await downLocal(state, { graceMs: 3000 }).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });
  const b = 1 + Math.floor(Math.random() * 250);
  const net = `127.${b}.77`;
  const demo = await readFile('examples/demo/cluster.yaml', 'utf8');
  const yaml = demo
    .replace('cidr: 192.168.50.0/24', `cidr: ${net}.0/24`)
    .replaceAll('192.168.50.1]', `${net}.1]`)
    .replace('gateway: 192.168.50.1', `gateway: ${net}.1`)
    .replace('address: 192.168.50.11', `address: ${net}.10`)
    .replace('address: 192.168.50.12', `address: ${net}.11`)
    .replace('address: 192.168.50.13', `address: ${net}.12`)
    .replace('address: 192.168.50.20', `address: ${net}.13`)
    .replace('address: dhcp', `address: ${net}.14`)
    .replace('addressing: dhcp', 'addressing: static');
  assert.ok(!yaml.includes('192.168.'), 'every address is a loopback address');
  const file = join(dir, 'cluster.yaml');
  await writeFile(file, yaml);

  const up = piinit(['up', file, '--state', state, '--subnet', `${net}.0/24`, '--timeout', '240']);
  assert.equal(up.status, 0, up.stdout + up.stderr);

  // Bounded, not one shot: on 2 busy cores autopilot can take a moment to judge every
  // server again after the cluster came up.
  type Report = { consul: { problems: string[]; peers: { voter: boolean; healthy: boolean }[]; failureTolerance: number } };
  const settled = (r: Report) => r.consul.problems.length === 0 && r.consul.failureTolerance === 1;
  const real = await waitFor('Consul without problems as a real cluster', 60_000, async () => {
    const x = piinit(['status', file, '--target', 'cluster', '--json'], 60_000);
    return settled(JSON.parse(x.stdout) as Report) && x;
  }, 1000);
  assert.equal(real.status, 1, 'Nomad is part of a real cluster: its absence is unhealthy');
  const r = JSON.parse(real.stdout);
  assert.deepEqual(r.consul.problems, []);
  assert.equal(r.consul.peers.filter((p: { voter: boolean; healthy: boolean }) => p.voter && p.healthy).length, 3);
  assert.equal(r.consul.failureTolerance, 1);
  assert.equal(r.nomad.state, 'checked');
  for (const p of r.problems as string[]) assert.match(p, /Nomad|nomad/, p);
  assert.deepEqual(r.nodeExporters.filter((e: { ok: boolean }) => !e.ok), []);
  assert.deepEqual(r.processes, [], 'a real cluster has no local processes to report');

  const viaUrl = piinit(['status', file, '--target', `https://${net}.11:8501`, '--json'], 60_000);
  const u = JSON.parse(viaUrl.stdout);
  assert.deepEqual(u.consul.answering, ['core2']);
  assert.deepEqual(u.consul.problems, []);

  // A wrong token is refused by the default-deny ACLs, and said so.
  const wrong = piinit(['status', file, '--target', 'cluster', '--token', '00000000-0000-0000-0000-00000000abcd'], 60_000);
  assert.equal(wrong.status, 1);
  assert.match(wrong.stdout, /cannot read the raft configuration \(HTTP 403/);
});
