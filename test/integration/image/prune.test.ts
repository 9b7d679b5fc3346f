// A build that takes its base from the cache marks it used and removes the stale bases of
// its kind, but not one whose tree is the lower layer of a mounted build root.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { baseKey, baseSpec, ensureBase } from '../../../src/image/base.ts';
import { prepareBuildRoot } from '../../../src/image/baseroot.ts';
import { STALE_DAYS } from '../../../src/image/prune.ts';

test('ensureBase on a cache hit marks the base used and prunes the stale ones of its kind', async () => {
  const cache = await mkdtemp(join(tmpdir(), 'piinit-prune-'));
  const releases: Array<() => Promise<void>> = [];
  try {
    const dir = join(cache, 'base');
    await mkdir(dir, { recursive: true });
    const spec = baseSpec('amd64', ['deb http://deb.debian.org/debian bookworm main'], [], 1704067200);
    const current = baseKey(spec);
    const old = (Date.now() - (STALE_DAYS + 30) * 24 * 3600 * 1000) / 1000;
    const src = join(cache, 'src');
    await mkdir(join(src, 'etc'), { recursive: true });
    await writeFile(join(src, 'etc/os-release'), 'ID=debian\n');
    // Five stale bases besides the current one (also last used long ago), each a real tarball
    // with its unpacked tree; other kinds' and work entries beside them.
    const names = (k: string) => [`bookworm-amd64-${k}.tar`, `bookworm-amd64-${k}.root`];
    const keys = ['a', 'b', 'c', 'd', 'e'].map((c) => c.repeat(16));
    for (const [i, k] of [current, ...keys].entries()) {
      const [tar, tree] = names(k).map((n) => join(dir, n));
      execFileSync('tar', ['--numeric-owner', '-cf', tar!, '-C', src, '.']);
      await mkdir(tree!);
      execFileSync('tar', ['-xf', tar!, '-C', tree!]);
      await utimes(tar!, old - i * 3600, old - i * 3600); // current the most recent, e the oldest
    }
    await writeFile(join(dir, `bookworm-rpi-arm64-${'f'.repeat(16)}.tar`), '');
    await utimes(join(dir, `bookworm-rpi-arm64-${'f'.repeat(16)}.tar`), old, old);
    // The tree lock (baseroot.ts) of a build that was killed holding it: it goes with its base.
    await writeFile(join(dir, `${names(keys[2]!)[1]}.lock`), String(2 ** 22 + 1));
    // A running build's overlay over the oldest base.
    const r = await prepareBuildRoot({ tarball: join(dir, names(keys[4]!)[0]!), key: keys[4]!, cached: true, pruned: [], builtAt: null }, join(cache, 'work'));
    assert.equal(r.overlay, true);
    releases.push(() => r.release());

    const before = Date.now();
    const got = await ensureBase(spec, cache);
    assert.equal(got.cached, true);
    assert.equal(got.key, current);
    // Kept: the current base and the two next most recently used (a, b), and the mounted e.
    assert.deepEqual(got.pruned, [...names(keys[2]!), ...names(keys[3]!)].sort());
    assert.deepEqual(
      (await readdir(dir)).sort(),
      [...names(current), ...names(keys[0]!), ...names(keys[1]!), ...names(keys[4]!), `bookworm-rpi-arm64-${'f'.repeat(16)}.tar`].sort(),
    );
    assert.ok((await stat(got.tarball)).mtimeMs >= before - 1000, 'the base used is marked as used now');

    // Once the build is done, its base goes at the next build's sweep.
    await r.release();
    releases.pop();
    assert.deepEqual((await ensureBase(spec, cache)).pruned, names(keys[4]!).sort());
  } finally {
    for (const release of releases) await release();
    await rm(cache, { recursive: true, force: true });
  }
});
