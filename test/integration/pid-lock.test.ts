// The PID lock files that downloads, the local cluster's state and image builds take: a dead
// holder's lock is taken over once, not by two waiters at the same time, and a holder that
// was taken over from does not remove its successor's lock.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pidAlive, pidLockHolder, procPid, removeStaleLock, takePidLock, tryPidLock, waitForPidLock } from '../../src/pid-lock.ts';
import { lockPart } from '../../src/releases/download.ts';

/** The PID of a process that has exited. */
function deadPid(): number {
  const pid = spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim();
  assert.equal(pidAlive(Number(pid)), false);
  return Number(pid);
}

async function inTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-pidlock-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a stale lock is removed only while it is the one that was found stale', () =>
  inTemp(async (dir) => {
    const lock = join(dir, 'x.lock');
    await writeFile(lock, String(deadPid()));
    const seen = await pidLockHolder(lock, 10_000);
    assert.equal(seen.held, false);

    // Another waiter saw the same dead holder, removed its lock and took it first.
    await rm(lock);
    const other = await tryPidLock(lock, 0o644);
    assert.ok(other);
    await removeStaleLock(lock, seen);
    assert.equal(await readFile(lock, 'utf8'), String(procPid()), 'the new holder keeps its lock');
    await assert.rejects(readFile(`${lock}.break`), { code: 'ENOENT' });
    await other();

    await writeFile(lock, String(deadPid()));
    await removeStaleLock(lock, await pidLockHolder(lock, 10_000));
    await assert.rejects(readFile(lock), { code: 'ENOENT' }, 'the stale lock itself is removed');
  }));

test('a released lock that someone else took over meanwhile stays theirs', () =>
  inTemp(async (dir) => {
    const lock = join(dir, 'x.lock');
    const release = await tryPidLock(lock, 0o644);
    assert.ok(release);
    await rm(lock);
    await writeFile(lock, '4242');
    await release();
    assert.equal(await readFile(lock, 'utf8'), '4242');
  }));

test('many waiters on a dead holder lock: one at a time holds it', () =>
  inTemp(async (dir) => {
    const lock = join(dir, 'x.lock');
    await writeFile(lock, String(deadPid()));
    let inside = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const release = await waitForPidLock(lock, 0o644, { writingMs: 10_000 });
        inside++;
        most = Math.max(most, inside);
        await new Promise((r) => setTimeout(r, 20));
        order.push(i);
        inside--;
        await release();
      }),
    );
    assert.equal(most, 1);
    assert.equal(order.length, 8);
    await assert.rejects(readFile(lock), { code: 'ENOENT' });
  }));

test('a lock with our own PID that we do not hold was left by an earlier process with that PID (PID 1 in a container): taken over', () =>
  inTemp(async (dir) => {
    const lock = join(dir, 'x.lock');
    await writeFile(lock, String(procPid()));
    assert.equal((await pidLockHolder(lock, 10_000)).held, false);
    const busy = () => new Error('refused');
    const release = await takePidLock(lock, 0o644, busy);
    assert.equal((await pidLockHolder(lock, 10_000)).held, true, 'now we hold it');
    await assert.rejects(takePidLock(lock, 0o644, busy), /refused/, 'and a second taker in this process is refused');
    await release();
    await assert.rejects(readFile(lock), { code: 'ENOENT' });
  }));

test('a stale lock made again by the same PID is another lock: the one found stale is gone already', () =>
  inTemp(async (dir) => {
    const lock = join(dir, 'x.lock');
    const pid = String(deadPid());
    await writeFile(lock, pid);
    const seen = await pidLockHolder(lock, 10_000);
    await rm(lock);
    await new Promise((r) => setTimeout(r, 5));
    await writeFile(lock, pid);
    await removeStaleLock(lock, seen);
    assert.equal(await readFile(lock, 'utf8'), pid, 'same PID, but not the file that was found stale');
  }));

test('waiting for a lock stops at once when aborted', () =>
  inTemp(async (dir) => {
    const lock = join(dir, 'x.lock');
    const release = await tryPidLock(lock, 0o644);
    assert.ok(release);
    await assert.rejects(waitForPidLock(lock, 0o644, { writingMs: 10_000, signal: AbortSignal.abort() }), { name: 'AbortError' });
    await release();
  }));

test('a download part whose live holder has written nothing for minutes is taken over; a busy one is waited for', () =>
  inTemp(async (dir) => {
    const part = join(dir, 'consul.zip.part');
    const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      await writeFile(`${part}.lock`, String(holder.pid));
      await writeFile(part, 'first bytes');
      // Busy: lock and part written just now. We wait, and say for whom.
      const heard: (number | null)[] = [];
      const waiting = lockPart(part, (pid) => heard.push(pid));
      const early = await Promise.race([waiting.then(() => 'taken'), new Promise((r) => setTimeout(r, 1000, 'waiting'))]);
      assert.equal(early, 'waiting');
      assert.deepEqual(heard, [holder.pid]);
      // Idle for 4 minutes (a holder stuck in a dead transfer): taken over, though it runs.
      const old = new Date(Date.now() - 4 * 60_000);
      await utimes(part, old, old);
      await utimes(`${part}.lock`, old, old);
      const stuck = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('an idle holder was not taken over')), 10_000).unref());
      const release = await Promise.race([waiting, stuck]);
      assert.equal(await readFile(`${part}.lock`, 'utf8'), String(procPid()));
      await release();
      await assert.rejects(readFile(`${part}.lock`), { code: 'ENOENT' });
    } finally {
      holder.kill('SIGKILL');
    }
  }));
