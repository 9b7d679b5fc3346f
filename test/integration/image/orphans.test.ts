// A killed build's work in the base cache is removed by the next build; work of live
// processes and the cache's own files are not.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildDirPrefix, mountsUnder, removeOrphans, unpackTmpPath, workEntryPid } from '../../../src/image/orphans.ts';

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

test('mountsUnder: the mount points at or below a directory, deepest first, spaces unescaped', () => {
  const info = [
    '22 1 0:21 / /proc rw,nosuid - proc proc rw',
    '90 30 0:50 / /c/work/.build-9-x-AbC/root rw - overlay piinit-build rw,lowerdir=/c/base/t.root',
    '91 90 0:51 / /c/work/.build-9-x-AbC/root/dev/null rw - devtmpfs udev rw',
    '92 30 0:52 / /c/work/.build-9-x-AbC2/root rw - overlay piinit-build rw',
    '93 30 0:53 / /c/my\\040cache/.build-9-y-Def/root rw - overlay piinit-build rw',
  ].join('\n');
  assert.deepEqual(mountsUnder(info, '/c/work/.build-9-x-AbC'), ['/c/work/.build-9-x-AbC/root/dev/null', '/c/work/.build-9-x-AbC/root']);
  assert.deepEqual(mountsUnder(info, '/c/my cache/.build-9-y-Def'), ['/c/my cache/.build-9-y-Def/root']);
  assert.deepEqual(mountsUnder(info, '/c/base'), []);
});

test("removeOrphans: a killed build's work directory goes with the overlay still mounted in it", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-orphans-work-'));
  const mounted = async (p: string) => (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').some((l) => l.split(' ')[4] === p);
  const dead = spawnSync('true').pid!;
  const entry = join(dir, `${buildDirPrefix(dead)}homelab-amd64-server-AbC123`);
  const live = join(dir, `${buildDirPrefix()}homelab-amd64-client-DeF456`);
  try {
    for (const e of [entry, live]) {
      for (const d of ['lower', 'upper', 'overlay-work', 'root']) await mkdir(join(e, d), { recursive: true });
      await writeFile(join(e, 'lower', 'base-file'), 'base');
      execFileSync('mount', ['-t', 'overlay', 'piinit-test', '-o', `lowerdir=${e}/lower,upperdir=${e}/upper,workdir=${e}/overlay-work`, join(e, 'root')]);
      await writeFile(join(e, 'root', 'layer-file'), 'layer');
    }
    assert.deepEqual(await removeOrphans(dir), [entry.split('/').pop()]);
    assert.equal(await mounted(join(entry, 'root')), false, 'unmounted');
    assert.deepEqual(await readdir(dir), [live.split('/').pop()]);
    assert.ok(await mounted(join(live, 'root')), "a live build's root stays mounted");
    assert.equal(await readFile(join(live, 'root', 'base-file'), 'utf8'), 'base');
  } finally {
    for (const e of [entry, live]) if (await mounted(join(e, 'root'))) execFileSync('umount', [join(e, 'root')]);
    await rm(dir, { recursive: true, force: true });
  }
});
