// The local cluster's life: up → healthy, up again changes nothing, a crashed daemon is
// reported by status and restarted by the next up, down stops exactly what up started and
// the data survives until down --purge. Real Consul, Prometheus and node_exporter.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { downLocal, firstCrash, localAuth, localTargets, upLocal } from '../../../src/run/local.ts';
import { killDaemon, liveness } from '../../../src/run/proc.ts';
import { waitLocalHealthy } from '../../../src/run/probe.ts';
import { readState } from '../../../src/run/state.ts';
import { cleanup, http, makeCluster, NOMAD_UNAVAILABLE, randomLoopbackSubnet, SYSTEM_BINARIES, untilExit0 } from './helpers.ts';

const piinit = (args: string[]) =>
  spawnSync(process.execPath, ['bin/piinit.js', ...args], { encoding: 'utf8', timeout: 120_000 });

test('local cluster: up, idempotent up, crash report and restart, down, data survives, purge', { timeout: 600_000 }, async (t) => {
  const tc = await makeCluster({ monitor: true, clients: 1, name: 'lifecycle' });
  t.after(() => cleanup(tc));
  const subnet = randomLoopbackSubnet();
  const up = () => upLocal(tc.cluster, { stateDir: tc.stateDir, binaries: SYSTEM_BINARIES, unavailable: NOMAD_UNAVAILABLE, subnet });

  const first = await up();
  assert.equal(first.started.length, 11, `consul + node_exporter on 5 nodes, Prometheus on the monitor: ${first.started.join(' ')}`);
  assert.deepEqual(first.skipped.map((s) => s.key).sort(), ['core1/nomad', 'core2/nomad', 'core3/nomad', 'monitor/nomad', 'worker1/nomad']);
  const targets = localTargets(first.cluster, first.state);
  const auth = localAuth(first.cluster);
  const healthy = await waitLocalHealthy(first.state, targets, auth, { timeoutMs: 150_000, abort: () => firstCrash(first.state) });
  assert.ok(healthy.healthy, healthy.problems.join('\n'));
  assert.equal(healthy.consul.peers.filter((p) => p.voter).length, 3);
  assert.equal(healthy.consul.members.filter((m) => m.status === 'alive').length, 5);
  assert.equal(healthy.nomad.state, 'unavailable');
  assert.ok(healthy.prometheus.targets.some((t) => t.job === 'node' && t.health === 'up'));

  // The rendered files are the ones the processes use.
  const server = first.state.nodes.find((n) => n.name === 'core1')!;
  const consulJson = join(server.root, 'etc/consul.d/consul.json');
  assert.ok(existsSync(consulJson));
  const rec = first.state.processes['core1/consul']!;
  assert.ok(rec.argv.includes(`-config-dir=${join(server.root, 'etc/consul.d')}`), rec.argv.join(' '));

  // A KV write to prove the data survives down/up.
  const api = `http://${server.address}:8500`;
  assert.equal((await http('PUT', `${api}/v1/kv/lifecycle`, 'kept')).body, 'true');

  // A second up changes nothing: no process, no file.
  const mtime = statSync(consulJson).mtimeMs;
  const second = await up();
  assert.deepEqual(second.started, []);
  assert.equal(second.alreadyRunning.length, 11);
  assert.equal(statSync(consulJson).mtimeMs, mtime);
  for (const [k, r] of Object.entries(second.state.processes)) assert.equal(r.pid, first.state.processes[k]!.pid, k);

  // status through the CLI: healthy, exit 0 (bounded: on 2 busy cores autopilot can take a
  // moment to judge every server again).
  const ok = await untilExit0('piinit status --json', () => piinit(['status', tc.file, '--state', tc.stateDir, '--json']));
  assert.equal(JSON.parse(ok.stdout).healthy, true);

  // A crash is reported (exit 1, with the log's end), not hidden.
  const ne = second.state.processes['worker1/node_exporter']!;
  assert.ok(killDaemon(ne));
  const bad = piinit(['status', tc.file, '--state', tc.stateDir]);
  assert.equal(bad.status, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, /worker1\/node_exporter \(pid \d+\) has exited/);
  assert.match(bad.stdout, /worker1\/node_exporter is exited; the end of its log:/);
  assert.match(bad.stdout, /NOT HEALTHY/);

  // The next up starts exactly that one again.
  const third = await up();
  assert.deepEqual(third.started, ['worker1/node_exporter']);
  const again = await waitLocalHealthy(third.state, targets, auth, { timeoutMs: 120_000 });
  assert.ok(again.healthy, again.problems.join('\n'));

  // down stops every recorded process, and nothing else.
  const pids = Object.values(third.state.processes);
  const down = await downLocal(tc.stateDir, { graceMs: 15_000 });
  assert.equal(down.stopped.length + down.killed.length, 11);
  for (const p of pids) assert.notEqual(liveness(p), 'running', `${p.name} still runs`);
  const after = await readState(tc.stateDir);
  assert.deepEqual(after!.processes, {});
  assert.ok(existsSync(join(server.root, 'opt/consul')), 'data kept after down');

  // status of a stopped cluster: not healthy.
  const stopped = piinit(['status', tc.file, '--state', tc.stateDir, '--target', 'local']);
  assert.equal(stopped.status, 1);
  assert.match(stopped.stdout, /stopped/);

  // up again: the same data.
  const fourth = await up();
  assert.equal(fourth.started.length, 11);
  const back = await waitLocalHealthy(fourth.state, targets, auth, { timeoutMs: 150_000, abort: () => firstCrash(fourth.state) });
  assert.ok(back.healthy, back.problems.join('\n'));
  const kv = await http('GET', `${api}/v1/kv/lifecycle?raw&consistent`);
  assert.equal(kv.body, 'kept');

  const purged = await downLocal(tc.stateDir, { purge: true });
  assert.ok(purged.purged);
  assert.ok(!existsSync(tc.stateDir));
});
