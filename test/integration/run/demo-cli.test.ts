// The README's main command, end to end through the CLI: `piinit up` on (a copy of) the
// demo cluster — TLS and ACLs on, releases verified from the Debian archive into piinit's
// cache, Nomad unavailable on this machine and said so — to a healthy cluster; a second
// `up` changes nothing; `status` agrees; `down` leaves no process behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { downLocal } from '../../../src/run/local.ts';
import { liveness } from '../../../src/run/proc.ts';
import { readState } from '../../../src/run/state.ts';
import { randomLoopbackSubnet, untilExit0 } from './helpers.ts';

const piinit = (args: string[], timeoutMs = 400_000) =>
  spawnSync(process.execPath, ['bin/piinit.js', ...args], { encoding: 'utf8', timeout: timeoutMs });

test('piinit up examples/demo/cluster.yaml runs to a healthy cluster; down leaves nothing', { timeout: 900_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-demo-'));
  const state = join(dir, 'state');
  t.after(async () => {
    await downLocal(state, { graceMs: 3000 }).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });
  const file = join(dir, 'cluster.yaml');
  await copyFile('examples/demo/cluster.yaml', file);

  const up = piinit(['up', file, '--state', state, '--subnet', randomLoopbackSubnet(), '--json', '--timeout', '240']);
  assert.equal(up.status, 0, up.stdout + up.stderr);
  const res = JSON.parse(up.stdout);
  assert.equal(res.health.healthy, true, JSON.stringify(res.health.problems));
  assert.equal(res.started.length, 11);
  assert.ok(res.unavailable.some((u: { component: string }) => u.component === 'nomad'), 'Nomad is reported unavailable');
  assert.equal(res.health.nomad.state, 'unavailable');
  assert.ok(res.urls.some((u: { name: string; url: string }) => u.name === 'Prometheus' && u.url.startsWith('http://127.')));
  // The secrets file was created (0600) so that one command is enough.
  const st = (await import('node:fs')).statSync(join(dir, 'cluster.secrets.yaml'));
  assert.equal(st.mode & 0o777, 0o600);
  // The binaries come from the verified release cache, not from the test host's PATH.
  const recorded = await readState(state);
  assert.ok(recorded!.processes['core1/consul']!.argv[0]!.includes('/blobs/'), recorded!.processes['core1/consul']!.argv[0]);

  const again = piinit(['up', file, '--state', state]);
  assert.equal(again.status, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /already running \(11 daemons\); nothing changed/);

  // Bounded: on 2 busy cores autopilot can take a moment to judge every server again.
  const status = await untilExit0('piinit status', () => piinit(['status', file, '--state', state]));
  assert.match(status.stdout, /^HEALTHY$/m);
  assert.match(status.stdout, /^Nomad: unavailable — /m);

  const pids = Object.values((await readState(state))!.processes);
  const down = piinit(['down', file, '--state', state]);
  assert.equal(down.status, 0, down.stderr);
  assert.match(down.stdout, /stopped 11 daemons/);
  for (const p of pids) assert.notEqual(liveness(p), 'running', `${p.name} (pid ${p.pid}) still runs`);
});
