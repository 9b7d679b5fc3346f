// Image build times for the arm64 (Pi 3/4/5) server image: a full build from a warm package
// cache (the base root file system rebuilt with mmdebstrap, packages already downloaded), and
// a config-only rebuild (cached base; only the config layer changes, as after an edit of
// cluster.yaml). Targets: full < 3 min, config-only < 15 s on 2 cores. Reference: pi-gen
// reports about 20 minutes for Raspberry Pi OS Lite.
//
// PIINIT_BENCH_CACHE keeps the caches between runs (default: ~/.cache/piinit/bench-images).
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, type ImageResult } from '../src/image/build.ts';
import { file } from '../src/render/filetree.ts';
import { buildProbeDeb } from '../test/e2e/image/fixture-deb.ts';

const PI_GEN_LITE_S = 20 * 60;
const mib = (n: number | null) => (n === null ? '-' : `${(n / 1024 / 1024).toFixed(0)} MiB`);

export default async function (): Promise<void> {
  const cache = process.env.PIINIT_BENCH_CACHE ?? join(homedir(), '.cache/piinit/bench-images');
  await mkdir(cache, { recursive: true });
  const work = await mkdtemp(join(tmpdir(), 'piinit-image-bench-'));
  try {
    const deb = await buildProbeDeb(work, 'arm64');
    const build = (note: string, refreshBase: boolean) =>
      buildImage(
        {
          cluster: 'bench',
          board: 'pi4',
          role: 'server',
          debs: [deb],
          overlay: new Map([['/etc/piinit-bench', file(`${note}\n`)]]),
        },
        { cacheDir: cache, outDir: join(work, 'out'), refreshBase, xz: true },
      );
    const warm = (await readdir(join(cache, 'debs/arm64')).catch(() => [])).length > 0;
    if (!warm) {
      console.log('warming the package cache (first run, not timed)…');
      await build('warm-up', false);
    }
    const timed = async (label: string, f: () => Promise<ImageResult>) => {
      const t0 = performance.now();
      const r = await f();
      const s = (performance.now() - t0) / 1000;
      console.log(
        `${label.padEnd(34)} ${s.toFixed(1).padStart(7)} s  (steps: ${Object.entries(r.timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ')})`,
      );
      return { r, s };
    };
    const full = await timed('full build (warm package cache)', () => build('full', true));
    const cfg = await timed('config-only rebuild (cached base)', () => build(`config ${Date.now()}`, false));
    console.log(`image sizes: raw ${mib(cfg.r.sizes.rawBytes)}, used ${mib(cfg.r.sizes.usedBytes)}, xz ${mib(cfg.r.sizes.xzBytes)}`);
    console.log(`targets: full < 180 s (${full.s < 180 ? 'met' : 'missed'}), config-only < 15 s (${cfg.s < 15 ? 'met' : 'missed'})`);
    console.log(`reference pi-gen Lite ~${PI_GEN_LITE_S} s: full build ratio ${(full.s / PI_GEN_LITE_S).toFixed(2)}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
