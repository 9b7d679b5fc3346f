// An image build stopped between steps (what Ctrl-C in `piinit image` does) leaves no
// overlay mount and no work directory behind. Uses the amd64 base the boot test caches.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildImage } from '../../../src/image/build.ts';
import { UserError } from '../../../src/errors.ts';
import { buildProbeDeb } from './fixture-deb.ts';
import { testCacheDir } from '../../helpers/debian-root.ts';

test('an image build stopped after its layer step unmounts its root and removes its work directory', { timeout: 30 * 60_000 }, async () => {
  const work = await mkdtemp(join(tmpdir(), 'piinit-interrupt-'));
  const cache = process.env.PIINIT_IMAGE_TEST_CACHE ?? join(testCacheDir(), 'images');
  await mkdir(cache, { recursive: true });
  try {
    const deb = await buildProbeDeb(work, 'amd64');
    const before = await readdir(join(cache, 'work')).catch(() => [] as string[]);
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
    assert.match(mountsDuringLayer, /^piinit-build .*\/work\/boottest-amd64-server-/m, 'the build root was an overlay mount');
    assert.doesNotMatch(await readFile('/proc/self/mounts', 'utf8'), /^piinit-build /m, 'no build root is left mounted');
    assert.deepEqual((await readdir(join(cache, 'work'))).sort(), before.sort(), 'the work directory is gone');
    assert.deepEqual(await readdir(join(work, 'out')).catch(() => []), [], 'no partial image');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});
