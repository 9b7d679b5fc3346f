import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { access, mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
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

test('--refresh-base while a build runs on the unpacked base: that tree stays until the build ends, and the lock orders the two', async () => {
  const work = await mkdtemp(join(tmpdir(), 'piinit-baseroot-'));
  const roots: string[] = [];
  let holder: ReturnType<typeof spawn> | null = null;
  try {
    const src = join(work, 'src');
    await mkdir(join(src, 'etc'), { recursive: true });
    await writeFile(join(src, 'etc/os-release'), 'ID=debian\n');
    // A name of its own: trees are told in use by name (baseroot.ts), across caches.
    const key = randomBytes(8).toString('hex');
    const tarball = join(work, `base-${key}.tar`);
    const tree = join(work, `base-${key}.root`);
    const pack = async () => {
      execFileSync('tar', ['--numeric-owner', '-cf', `${tarball}.new`, '-C', src, '.']);
      await rename(`${tarball}.new`, tarball);
    };
    await pack();
    const base = { tarball, key, cached: false, pruned: [], builtAt: null };
    const running = await prepareBuildRoot(base, join(work, 'running'));
    roots.push(running.root);
    assert.equal(running.overlay, true);

    // The base is built again while that build runs.
    await writeFile(join(src, 'etc/updated'), 'security fix\n');
    await pack();
    const next = await prepareBuildRoot(base, join(work, 'next'));
    roots.push(next.root);
    assert.equal(next.overlay, false, 'the tree is a running build\'s lower layer: this build unpacks its own root');
    assert.deepEqual((await readdir(join(next.root, 'etc'))).sort(), ['os-release', 'updated']);
    assert.deepEqual((await readdir(join(running.root, 'etc'))).sort(), ['os-release'], 'the running build still sees its base whole');
    assert.deepEqual(await readdir(join(tree, 'etc')), ['os-release']);
    await running.release();

    // With no build on it, the out-of-date tree is unpacked again and built on.
    const later = await prepareBuildRoot({ ...base, cached: true, builtAt: await birthTime(tarball) }, join(work, 'later'));
    roots.push(later.root);
    assert.equal(later.overlay, true);
    assert.deepEqual((await readdir(join(later.root, 'etc'))).sort(), ['os-release', 'updated']);
    await later.release();
    await assert.rejects(access(`${tree}.lock`), { code: 'ENOENT' }, 'each build let go of the lock');

    // A running process holds the lock: the build waits (here until it is stopped)...
    holder = spawn('sleep', ['60'], { stdio: 'ignore' });
    await writeFile(`${tree}.lock`, String(holder.pid));
    const stop = new AbortController();
    const waitedFor: (number | null)[] = [];
    const waiting = prepareBuildRoot({ ...base, cached: true, builtAt: await birthTime(tarball) }, join(work, 'waiting'), {
      signal: stop.signal,
      onWait: (pid) => waitedFor.push(pid),
    });
    setTimeout(() => stop.abort(), 700);
    await assert.rejects(waiting, { name: 'AbortError' });
    assert.deepEqual(waitedFor, [holder.pid], 'told once, and for whom');
    assert.equal(await readFile(`${tree}.lock`, 'utf8'), String(holder.pid), 'the holder keeps its lock');
    // ...and once the holder is gone its lock is taken over.
    holder.kill('SIGKILL');
    await once(holder, 'exit');
    holder = null;
    const after = await prepareBuildRoot({ ...base, cached: true, builtAt: await birthTime(tarball) }, join(work, 'after'));
    roots.push(after.root);
    assert.equal(after.overlay, true);
    await after.release();
    await assert.rejects(access(`${tree}.lock`), { code: 'ENOENT' });
  } finally {
    holder?.kill('SIGKILL');
    for (const r of roots) if (await mounted(r)) execFileSync('umount', [r]);
    await rm(work, { recursive: true, force: true });
  }
});
