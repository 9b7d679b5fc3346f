// An image build stopped by Ctrl-C in `piinit image` leaves no overlay mount, no work
// directory and no partial base behind: stopped between steps (the amd64 base the boot test
// caches), and while mmdebstrap builds a base (a cache of its own), where the tool's
// failure is reported as the interruption it is (exit status 130).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildImage } from '../../../src/image/build.ts';
import { buildContainerImage } from '../../../src/docker/build.ts';
import { UserError } from '../../../src/errors.ts';
import { buildProbeDeb } from './fixture-deb.ts';
import { testCacheDir } from '../../helpers/debian-root.ts';

/** A build of the probe package on the shared image cache (its amd64 base cached by the boot
 *  test): fn gets a scratch directory, the cache, the .deb and the cache's work entries before. */
async function onSharedCache(fn: (c: { work: string; cache: string; deb: string; before: string[] }) => Promise<void>): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'piinit-interrupt-'));
  const cache = process.env.PIINIT_IMAGE_TEST_CACHE ?? join(testCacheDir(), 'images');
  await mkdir(cache, { recursive: true });
  try {
    const deb = await buildProbeDeb(work, 'amd64');
    await fn({ work, cache, deb, before: await readdir(join(cache, 'work')).catch(() => [] as string[]) });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

test('an image build stopped after its layer step unmounts its root and removes its work directory', { timeout: 30 * 60_000 }, () =>
  onSharedCache(async ({ work, cache, deb, before }) => {
    const controller = new AbortController();
    const steps: string[] = [];
    let mountsDuringLayer = '';
    const build = buildImage(
      { cluster: 'boottest', board: 'amd64', role: 'server', debs: [deb] },
      {
        cacheDir: cache,
        outDir: join(work, 'out'),
        xz: false,
        signal: controller.signal,
        onStep: (s) => {
          steps.push(s);
          if (s === 'layer') {
            void readFile('/proc/self/mounts', 'utf8').then((m) => (mountsDuringLayer = m));
            controller.abort(); // as Ctrl-C while the layer is built
          }
        },
      },
    );
    await assert.rejects(build, (err) => err instanceof UserError && err.exitCode === 130 && /interrupted before hash/.test(err.message));
    assert.deepEqual(steps, ['base', 'root', 'layer']);
    assert.match(mountsDuringLayer, /^piinit-build .*\/work\/\.build-\d+-boottest-amd64-server-/m, 'the build root was an overlay mount');
    assert.doesNotMatch(await readFile('/proc/self/mounts', 'utf8'), /^piinit-build /m, 'no build root is left mounted');
    assert.deepEqual((await readdir(join(cache, 'work'))).sort(), before.sort(), 'the work directory is gone');
    assert.deepEqual(await readdir(join(work, 'out')).catch(() => []), [], 'no partial image');
  }));

test('a container image build (--format oci) stopped after its layer step removes its work directory and writes no archive', { timeout: 30 * 60_000 }, () =>
  onSharedCache(async ({ work, cache, deb, before }) => {
    const controller = new AbortController();
    const steps: string[] = [];
    const build = buildContainerImage(
      { cluster: 'boottest', role: 'server', debs: [deb] },
      {
        cacheDir: cache,
        outDir: join(work, 'out'),
        signal: controller.signal,
        onStep: (s) => {
          steps.push(s);
          if (s === 'layer') controller.abort(); // as Ctrl-C while the layer is built
        },
      },
    );
    await assert.rejects(build, (err) => err instanceof UserError && err.exitCode === 130 && /^boottest-server\.oci: interrupted before tar;/.test(err.message));
    assert.deepEqual(steps, ['base', 'layer']);
    assert.deepEqual((await readdir(join(cache, 'work'))).sort(), before.sort(), 'the work directory is gone');
    assert.deepEqual(await readdir(join(work, 'out')).catch(() => []), [], 'no archive');
  }));

/** Children of this process whose command line starts with name (from /proc, no tools). */
async function childrenNamed(name: string): Promise<number[]> {
  const pids: number[] = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const stat = await readFile(`/proc/${d}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid !== process.pid) continue;
    const cmdline = (await readFile(`/proc/${d}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (cmdline.some((a) => a.endsWith(name))) pids.push(Number(d));
  }
  return pids;
}

test('Ctrl-C while the base is built: exit status 130 and "interrupted during base", no partial base, no work directory', { timeout: 10 * 60_000 }, async () => {
  const work = await mkdtemp(join(tmpdir(), 'piinit-interrupt-'));
  const cache = join(work, 'cache'); // a base of its own: the shared ones stay
  try {
    const deb = await buildProbeDeb(work, 'amd64');
    const controller = new AbortController();
    const steps: string[] = [];
    let signalled = 0;
    const build = buildImage(
      { cluster: 'interrupt', board: 'amd64', role: 'server', debs: [deb] },
      {
        cacheDir: cache,
        outDir: join(work, 'out'),
        xz: false,
        signal: controller.signal,
        onStep: (s) => {
          steps.push(s);
          if (s !== 'base') return;
          // What the terminal does on Ctrl-C: piinit's handler aborts, and mmdebstrap gets
          // SIGINT too. Bounded: 600 polls of 100 ms.
          void (async () => {
            for (let i = 0; i < 600 && signalled === 0; i++) {
              const pids = await childrenNamed('mmdebstrap');
              if (pids.length > 0) {
                controller.abort();
                for (const pid of pids) process.kill(pid, 'SIGINT');
                signalled = pids.length;
              } else await new Promise((r) => setTimeout(r, 100));
            }
          })();
        },
      },
    );
    await assert.rejects(build, (err) => err instanceof UserError && err.exitCode === 130 && /^interrupt-amd64-server: interrupted during base;/.test(err.message));
    assert.ok(signalled > 0, 'mmdebstrap was running and got SIGINT');
    assert.deepEqual(steps, ['base']);
    assert.deepEqual(await readdir(join(cache, 'base')).catch(() => []), [], 'no partial base, no build directory');
    assert.deepEqual(await readdir(join(cache, 'work')).catch(() => []), [], 'no work directory');
    assert.deepEqual(await childrenNamed('mmdebstrap'), [], 'mmdebstrap has ended');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});
