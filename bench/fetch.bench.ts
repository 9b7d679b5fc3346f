// Fetch benchmark: a cold `ensureReleases` of Consul for three arches (parallel downloads,
// signature and checksum checks, unzip, cache) from a local HashiCorp-layout server, against
// `curl` downloading the same files one after another; then a warm (cached) run.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { downloadFile } from '../src/releases/download.ts';
import { ensureReleases } from '../src/releases/fetch.ts';
import { fixtureCluster } from '../test/helpers/cluster-fixture.ts';
import { generateTestKey, hashicorpLayout, writeLayout } from '../test/helpers/release-layout.ts';
import { serveDirectoryInWorker } from '../test/helpers/release-server-worker.ts';

export default async function (): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'piinit-bench-fetch-'));
  try {
    const key = await generateTestKey();
    const consul = await readFile(await realpath('/usr/local/bin/consul'));
    const layout = await hashicorpLayout('consul', '1.8.7', { amd64: consul, arm64: consul, arm: consul }, key);
    await writeLayout(join(work, 'www'), layout);
    const server = await serveDirectoryInWorker(join(work, 'www'));
    try {
      const cluster = fixtureCluster();
      cluster.components.consul = { name: 'consul', version: '1.8.7', source: 'hashicorp' };
      const run = (cacheDir: string, verify: 'full' | 'stamp' = 'stamp') =>
        ensureReleases({
          verify,
          cluster,
          arches: ['amd64', 'arm64', 'armhf'],
          components: ['consul'],
          cacheDir,
          hashicorpBase: server.url,
          hashicorpKey: { armoredKey: key.armoredPublic, fingerprint: key.fingerprint },
        });
      const paths = [...layout.keys()].filter((p) => !p.endsWith('index.json'));
      const bytes = paths.reduce((n, p) => n + layout.get(p)!.length, 0);

      const curlDir = join(work, 'curl');
      const t0 = performance.now();
      for (const p of paths) {
        const r = spawnSync('curl', ['-sSf', '--create-dirs', '-o', join(curlDir, p), `${server.url}${p}`]);
        if (r.status !== 0) throw new Error(`curl failed: ${r.stderr}`);
      }
      const curlMs = performance.now() - t0;

      const tDl = performance.now();
      await Promise.all(
        paths.map((p, i) => downloadFile(`${server.url}${p}`, join(work, `dl-${i}`), { label: p, expectedSize: layout.get(p)!.length })),
      );
      const dlMs = performance.now() - tDl;

      const t1 = performance.now();
      const cold = await run(join(work, 'cache'));
      const coldMs = performance.now() - t1;
      if (cold.entries.length !== 3) throw new Error(`cold fetch got ${cold.entries.length} entries: ${JSON.stringify(cold.unavailable)}`);

      const t2 = performance.now();
      const warm = await run(join(work, 'cache'));
      const warmMs = performance.now() - t2;
      if (warm.downloadedBytes !== 0) throw new Error('warm fetch downloaded something');
      const t3 = performance.now();
      await run(join(work, 'cache'), 'full');
      const fullMs = performance.now() - t3;

      const mib = (bytes / 1024 / 1024).toFixed(1);
      console.log(`files: ${paths.length} (${mib} MiB): 3 consul zips, SHA256SUMS, signatures`);
      console.log(`curl, one file after another:              ${curlMs.toFixed(0)} ms`);
      console.log(`piinit downloads only, in parallel:        ${dlMs.toFixed(0)} ms  ratio piinit/curl ${(dlMs / curlMs).toFixed(2)}`);
      console.log(`piinit cold fetch (download+verify+unzip): ${coldMs.toFixed(0)} ms  ratio piinit/curl ${(coldMs / curlMs).toFixed(2)}`);
      console.log(`piinit warm fetch (cache):                 ${warmMs.toFixed(0)} ms`);
      console.log(`piinit warm fetch --verify (all re-hashed): ${fullMs.toFixed(0)} ms`);
    } finally {
      await server.close();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
