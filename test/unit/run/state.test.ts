import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultStateDir, lockState, readState, STATE_VERSION, statePaths, writeState } from '../../../src/run/state.ts';

test('state.json round-trips, written atomically and not world-readable', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-state-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.equal(await readState(dir), null);
  const s = {
    version: STATE_VERSION,
    cluster: { name: 'demo', file: '/x/cluster.yaml' },
    mode: 'loopback' as const,
    subnet: '127.0.100.0/24',
    nodes: [],
    processes: {},
    unavailable: [{ component: 'nomad', reason: 'no binary' }],
    raftMultiplier: 3,
  };
  await writeState(dir, s);
  assert.deepEqual(await readState(dir), s);
  assert.equal((await stat(statePaths(dir).file)).mode & 0o007, 0);
});

test('one up/down at a time; a lock of a dead process is taken over', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-state-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const release = await lockState(dir);
  await assert.rejects(lockState(dir), /another piinit \(pid \d+\) is starting or stopping/);
  await release();
  const again = await lockState(dir);
  await again();
  // Another user's running process (PID 1: init) holds it as much as ours would.
  await writeFile(statePaths(dir).lock, '1');
  await assert.rejects(lockState(dir), /another piinit \(pid 1\) is starting or stopping/);
  // PID 2^22 + 1 is above the kernel's pid_max default: certainly not running.
  await writeFile(statePaths(dir).lock, String(4194305));
  const taken = await lockState(dir);
  await taken();
  // Empty: another piinit has just taken it and is writing its PID; empty and old: gone.
  await writeFile(statePaths(dir).lock, '');
  await assert.rejects(lockState(dir), /^UserError: another piinit is starting or stopping/);
  const old = new Date(Date.now() - 60_000);
  await utimes(statePaths(dir).lock, old, old);
  await (await lockState(dir))();
});

test('default state dir follows XDG_STATE_HOME', () => {
  assert.equal(defaultStateDir('demo', { XDG_STATE_HOME: '/s', HOME: '/h' }), '/s/piinit/demo');
  assert.equal(defaultStateDir('demo', { HOME: '/h' }), '/h/.local/state/piinit/demo');
});
