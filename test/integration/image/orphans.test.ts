// A killed build's work in the base cache is removed by the next build; work of live
// processes and the cache's own files are not.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildDirPrefix, removeOrphans, unpackTmpPath, workEntryPid } from '../../../src/image/orphans.ts';

test('work entry names carry their maker\'s PID; the cache\'s own files carry none', () => {
  assert.equal(workEntryPid('.build-4242-Xy12Ab'), 4242);
  assert.equal(workEntryPid('bookworm-rpi-arm64-687fde2e4b27af45.root.tmp-77'), 77);
  // The names the build makes are the names the sweep reads.
  assert.equal(workEntryPid(`${buildDirPrefix(4242)}Xy12Ab`), 4242);
  assert.equal(workEntryPid(unpackTmpPath('/cache/base/bookworm-amd64-543a64f6e1a53f98.root', 77).split('/').pop()!), 77);
  for (const n of ['bookworm-rpi-arm64-687fde2e4b27af45.tar', 'bookworm-amd64-543a64f6e1a53f98.root', '.build-abc', 'x.tmp-12']) {
    assert.equal(workEntryPid(n), null, n);
  }
});

test('removeOrphans: entries of dead processes go, those of live ones and the cache stay', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-orphans-'));
  try {
    const dead = spawnSync('true').pid!; // exited and reaped by the time spawnSync returns
    const keep = [`.build-${process.pid}-mine`, '.build-1-init', 'bookworm-amd64-0123456789abcdef.tar', 'bookworm-amd64-0123456789abcdef.root'];
    const orphans = [`.build-${dead}-killed`, `bookworm-amd64-0123456789abcdef.root.tmp-${dead}`];
    for (const n of [...keep, ...orphans]) {
      if (n.endsWith('.tar')) await writeFile(join(dir, n), 'tar');
      else {
        await mkdir(join(dir, n, 'etc'), { recursive: true });
        await writeFile(join(dir, n, 'etc', 'f'), 'x');
      }
    }
    const removed = await removeOrphans(dir);
    assert.deepEqual(removed.sort(), [...orphans].sort());
    assert.deepEqual((await readdir(dir)).sort(), [...keep].sort());
    assert.deepEqual(await removeOrphans(join(dir, 'missing')), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
