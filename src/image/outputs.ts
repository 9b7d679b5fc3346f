// What `piinit image` leaves in --out for each image: the raw image, an xz copy, the block
// map for the burner, a SHA-256 line (sha256sum -c format), and a manifest listing every
// package and version inside (an SBOM-style list).
import { Worker } from 'node:worker_threads';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createBlockMap, renderBmapXml } from './bmap.ts';
import { run } from './run.ts';
import { writeChunkedXz } from './xzchunks.ts';

export interface PackageEntry {
  name: string;
  version: string;
  arch: string;
  source: string;
}

/** Parses dpkg-query -W -f '${Package}\t${Version}\t${Architecture}\t${source:Package}\n'. Pure. */
export function parsePackageList(out: string): PackageEntry[] {
  return out
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [name = '', version = '', arch = '', source = ''] = l.split('\t');
      return { name, version, arch, source: source || name };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export async function installedPackages(root: string): Promise<PackageEntry[]> {
  const out = await run('dpkg-query', [`--admindir=${root}/var/lib/dpkg`, '-W', '-f', '${Package}\\t${Version}\\t${Architecture}\\t${source:Package}\\n']);
  return parsePackageList(out);
}

// Hashing runs on the thread that calls update(): in a worker, the image's SHA-256 takes
// the second core while the block map and the xz copy use the first.
const SHA256_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { closeSync, openSync, readSync } = require('node:fs');
const h = createHash('sha256');
const buf = Buffer.allocUnsafe(16 * 1024 * 1024);
const fd = openSync(workerData, 'r');
try {
  for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
} finally {
  closeSync(fd);
}
parentPort.postMessage(h.digest('hex'));
`;

/** SHA-256 (hex) of a file, computed on a worker thread. */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const worker = new Worker(SHA256_WORKER, { eval: true, workerData: path });
    worker.once('message', (hex: string) => resolvePromise(hex));
    worker.once('error', reject);
    worker.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`hashing ${path} stopped (exit ${code})`))));
  });
}

export interface OutputFiles {
  raw: string;
  xz: string | null;
  bmap: string;
  sha256: string;
  manifest: string;
}

export interface Sizes {
  rawBytes: number;
  /** Bytes that hold data (the block map's mapped blocks). */
  usedBytes: number;
  xzBytes: number | null;
}

/** How the xz copy was made: chunks in it, and how many were copied from the previous build's. */
export interface XzChunkStats {
  chunks: number;
  reused: number;
}

/**
 * Makes the outputs of the image assembled at `partial` and only then puts them all in place
 * under `raw`'s names: a build that fails or is interrupted before leaves the previous
 * build's set whole (no new .img beside an old .sha256 or .xz).
 */
export async function writeOutputs(
  partial: string,
  raw: string,
  manifest: Record<string, unknown>,
  opts: { xz: boolean; /** Keeps the xz chunk index, so a rebuild copies unchanged chunks. */ cacheDir?: string },
): Promise<{ files: OutputFiles; sizes: Sizes; sha256: string; xzChunks: XzChunkStats | null }> {
  const hashing = sha256File(partial);
  hashing.catch(() => undefined); // awaited below; avoids an unhandled rejection meanwhile
  const map = await createBlockMap(partial);
  const xzPath = `${raw}.xz`;
  // The image's secrets (gossip key, TLS keys, tokens) are in the copy too: owner-only.
  const xz = opts.xz ? await writeChunkedXz(partial, xzPath, { indexDir: opts.cacheDir && join(opts.cacheDir, 'xz-index'), mode: 0o600 }) : null;
  const small: [path: string, content: string][] = [];
  try {
    const sha256 = await hashing;
    const sizes: Sizes = { rawBytes: map.imageSize, usedBytes: map.mappedBlocksCount * map.blockSize, xzBytes: xz?.xzBytes ?? null };
    const bmap = `${raw}.bmap`;
    const manifestPath = `${raw.replace(/\.img$/, '')}.manifest.json`;
    small.push(
      [bmap, renderBmapXml(map)],
      [`${raw}.sha256`, `${sha256}  ${basename(raw)}\n`],
      [manifestPath, `${JSON.stringify({ ...manifest, image: basename(raw), sha256, sizes }, null, 2)}\n`],
    );
    // Every file written before any is put in place: a full disk here leaves the old set.
    for (const [path, content] of small) await writeFile(`${path}.tmp`, content);
    if (xz) await xz.commit();
    else await rm(xzPath, { force: true }); // an earlier build's copy: not of this image
    await rename(partial, raw);
    for (const [path] of small) await rename(`${path}.tmp`, path);
    return {
      files: { raw, xz: xz ? xzPath : null, bmap, sha256: `${raw}.sha256`, manifest: manifestPath },
      sizes,
      sha256,
      xzChunks: xz ? { chunks: xz.chunks, reused: xz.reused } : null,
    };
  } finally {
    await xz?.discard();
    await Promise.all(small.map(([path]) => rm(`${path}.tmp`, { force: true })));
  }
}
