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
import { execa } from 'execa';
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
    // The warm-up writes elsewhere: a full build must not find the chunks of an identical
    // .xz to copy (a config-only rebuild, the second timed build, may: that is its point).
    const build = (note: string, refreshBase: boolean, out = 'out') =>
      buildImage(
        {
          cluster: 'bench',
          board: 'pi4',
          role: 'server',
          debs: [deb],
          overlay: new Map([['/etc/piinit-bench', file(`${note}\n`)]]),
        },
        { cacheDir: cache, outDir: join(work, out), refreshBase, xz: true },
      );
    const warm = (await readdir(join(cache, 'debs/arm64')).catch(() => [])).length > 0;
    if (!warm) {
      console.log('warming the package cache (first run, not timed)…');
      await build('warm-up', false, 'out-warm-up');
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
    const chunks = cfg.r.xzChunks;
    if (chunks) console.log(`config-only rebuild: ${chunks.reused} of ${chunks.chunks} xz chunks copied from the full build's .xz`);
    // Reference for the outputs step: one xz -T0 stream of the same image, as before the chunked copy.
    const t0 = performance.now();
    const ref = await execa('sh', ['-c', 'xz -T0 -3 -c -- "$1" | wc -c', 'xz', cfg.r.files.raw]);
    const refS = (performance.now() - t0) / 1000;
    const outputsS = (cfg.r.timings.outputs ?? 0) / 1000;
    console.log(
      `reference xz -T0 -3 of the whole image: ${refS.toFixed(1)} s, ${mib(Number(ref.stdout.trim()))}; ` +
        `config-only outputs step (bmap + sha256 + chunked xz) ${outputsS.toFixed(1)} s, ratio ${(outputsS / refS).toFixed(2)}; ` +
        `chunked xz size ratio ${((cfg.r.sizes.xzBytes ?? 0) / Number(ref.stdout.trim())).toFixed(3)}`,
    );
    console.log(`targets: full < 180 s (${full.s < 180 ? 'met' : 'missed'}), config-only < 15 s (${cfg.s < 15 ? 'met' : 'missed'})`);
    console.log(`reference pi-gen Lite ~${PI_GEN_LITE_S} s: full build ratio ${(full.s / PI_GEN_LITE_S).toFixed(2)}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
