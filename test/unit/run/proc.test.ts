import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { liveness, logTail, startDaemon, stopDaemon } from '../../../src/run/proc.ts';

test('startDaemon records a detached process; stopDaemon ends exactly it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-proc-'));
  const recs: { pid: number }[] = [];
  t.after(async () => {
    for (const r of recs) {
      try {
        process.kill(r.pid, 'SIGKILL');
      } catch {}
    }
    await rm(dir, { recursive: true, force: true });
  });
  const rec = await startDaemon({ name: 'sleeper', program: '/bin/sleep', args: ['300'], log: join(dir, 'sleep.log'), cwd: dir });
  recs.push(rec);
  assert.equal(liveness(rec), 'running');
  // Its own process group: detached from ours.
  const { readFileSync } = await import('node:fs');
  const stat = readFileSync(`/proc/${rec.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  assert.equal(Number(fields[2]), rec.pid, 'process group id is its own pid');

  // A record with the same PID but another start time is someone else's process: never signalled.
  const impostor = { ...rec, startTicks: rec.startTicks - 1 };
  assert.equal(liveness(impostor), 'replaced');
  assert.equal(await stopDaemon(impostor, 100), 'not-running');
  assert.equal(liveness(rec), 'running');
  // Nor one whose program differs.
  assert.equal(liveness({ ...rec, argv: ['/bin/other'] }), 'replaced');

  assert.equal(await stopDaemon(rec, 5000), 'stopped');
  assert.equal(liveness(rec), 'exited');
  assert.equal(await stopDaemon(rec, 100), 'not-running');
});

test('stopDaemon falls back to SIGKILL after the grace period', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-proc-'));
  const script = join(dir, 'stubborn.sh');
  await writeFile(script, '#!/bin/sh\ntrap "" TERM\necho ready\nwhile :; do sleep 1; done\n', { mode: 0o755 });
  const rec = await startDaemon({ name: 'stubborn', program: script, args: [], log: join(dir, 'x.log'), cwd: dir });
  t.after(async () => {
    try {
      process.kill(rec.pid, 'SIGKILL');
    } catch {}
    await rm(dir, { recursive: true, force: true });
  });
  // Wait (bounded) until the trap is installed.
  for (let i = 0; i < 100 && !(await logTail(rec.log)).includes('ready'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(await stopDaemon(rec, 300), 'killed');
  assert.equal(liveness(rec), 'exited');
});

test('logTail returns the last lines', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-proc-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'l'), Array.from({ length: 40 }, (_, i) => `line ${i}`).join('\n') + '\n');
  assert.equal(await logTail(join(dir, 'l'), 3), 'line 37\nline 38\nline 39');
  assert.equal(await logTail(join(dir, 'missing')), '');
});
