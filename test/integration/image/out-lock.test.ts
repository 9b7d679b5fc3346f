// Two builds of one image into one --out would write the same temporary files (the
// .img.partial, the .tmp outputs): the second is refused, naming the first, before it builds
// anything; a lock whose holder is gone is taken over.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildImage } from '../../../src/image/build.ts';
import { UserError } from '../../../src/errors.ts';

test('a build of an image that another piinit is writing into the same --out: refused with its PID; a dead holder is taken over', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-outlock-'));
  const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    const out = join(dir, 'out');
    const cache = join(dir, 'cache');
    await mkdir(out);
    const lock = join(out, 'locktest-amd64-server.img.lock');
    await writeFile(lock, String(holder.pid));
    const req = { cluster: 'locktest', board: 'amd64' as const, role: 'server' as const, debs: [] };
    const stopped = new AbortController();
    stopped.abort(); // past the lock, the build stops before its first step: nothing is built here
    const opts = { cacheDir: cache, outDir: out, xz: false, sources: ['deb http://127.0.0.1:9/debian bookworm main'], signal: stopped.signal };

    await assert.rejects(buildImage(req, opts), (err) => {
      assert.ok(err instanceof UserError);
      assert.equal(err.message, `another piinit (pid ${holder.pid}) is building locktest-amd64-server.img in ${out}; wait for it to finish, or build into another --out`);
      return true;
    });
    assert.equal(await readFile(lock, 'utf8'), String(holder.pid), 'the holder keeps its lock');
    assert.equal(existsSync(cache), false, 'nothing was built');

    holder.kill('SIGKILL');
    await once(holder, 'exit');
    await assert.rejects(buildImage(req, opts), (err) => err instanceof UserError && err.exitCode === 130 && /interrupted before base/.test(err.message));
    assert.deepEqual(await readdir(out), [], 'the lock was taken over and let go when the build ended');
  } finally {
    holder.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});
