import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { birthTime } from '../../../src/image/base-age.ts';
import { prepareBuildRoot } from '../../../src/image/baseroot.ts';

const mounted = async (dir: string) => (await readFile('/proc/self/mounts', 'utf8')).split('\n').some((l) => l.split(' ')[1] === dir);

test('a build root is an overlay over the base unpacked once: the build changes only its own layer', async () => {
  const work = await mkdtemp(join(tmpdir(), 'piinit-baseroot-'));
  try {
    const src = join(work, 'src');
    await mkdir(join(src, 'etc'), { recursive: true });
    await writeFile(join(src, 'etc/os-release'), 'ID=debian\n');
    await writeFile(join(src, 'etc/old'), 'base\n');
    const tarball = join(work, 'base-x.tar');
    execFileSync('tar', ['--numeric-owner', '-cf', tarball, '-C', src, '.']);
    const base = { tarball, key: 'x', cached: false, pruned: [], builtAt: null };

    const build1 = join(work, 'build1');
    const r = await prepareBuildRoot(base, build1);
    assert.equal(r.overlay, true, 'overlayfs mounts here (root, as image builds run)');
    assert.ok(await mounted(r.root));
    assert.equal(await readFile(join(r.root, 'etc/os-release'), 'utf8'), 'ID=debian\n');
    await writeFile(join(r.root, 'etc/os-release'), 'ID=piinit\n');
    await rm(join(r.root, 'etc/old'));
    await writeFile(join(r.root, 'etc/new'), 'layer\n');
    await r.release();
    assert.equal(await mounted(r.root), false, 'released: unmounted');

    // The unpacked base beside the tarball is untouched; the changes are in the build's upper layer.
    const tree = join(work, 'base-x.root');
    assert.deepEqual((await readdir(join(tree, 'etc'))).sort(), ['old', 'os-release']);
    assert.equal(await readFile(join(tree, 'etc/os-release'), 'utf8'), 'ID=debian\n');
    assert.equal(await readFile(join(build1, 'upper/etc/new'), 'utf8'), 'layer\n');

    // A cached base reuses the unpacked tree; a rebuilt one (cached: false) is unpacked again.
    await writeFile(join(tree, 'etc/marker'), '');
    const r2 = await prepareBuildRoot({ ...base, cached: true, builtAt: await birthTime(tarball) }, join(work, 'build2'));
    assert.deepEqual((await readdir(join(r2.root, 'etc'))).sort(), ['marker', 'old', 'os-release']);
    await r2.release();
    const r3 = await prepareBuildRoot(base, join(work, 'build3'));
    assert.deepEqual((await readdir(join(r3.root, 'etc'))).sort(), ['old', 'os-release']);
    await r3.release();
    assert.deepEqual((await readdir(work)).filter((n) => n.includes('.tmp')), [], 'no half-unpacked tree is left');

    // A tarball rebuilt (--refresh-base) whose unpacking never finished: the next build finds
    // it cached but newer than the tree, and unpacks it rather than build on the old base.
    await writeFile(join(src, 'etc/updated'), 'security fix\n');
    execFileSync('tar', ['--numeric-owner', '-cf', `${tarball}.new`, '-C', src, '.']);
    await rename(`${tarball}.new`, tarball);
    const r4 = await prepareBuildRoot({ ...base, cached: true, builtAt: await birthTime(tarball) }, join(work, 'build4'));
    assert.deepEqual((await readdir(join(r4.root, 'etc'))).sort(), ['old', 'os-release', 'updated']);
    await r4.release();
  } finally {
    for (const b of ['build1', 'build2', 'build3', 'build4']) {
      if (await mounted(join(work, b, 'root'))) execFileSync('umount', [join(work, b, 'root')]);
    }
    await rm(work, { recursive: true, force: true });
  }
});
