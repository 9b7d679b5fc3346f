// What `piinit image` leaves in --out for each image: the raw image, an xz copy, the block
// map for the burner, a SHA-256 line (sha256sum -c format), and a manifest listing every
// package and version inside (an SBOM-style list).
import { Worker } from 'node:worker_threads';
import { rename, writeFile } from 'node:fs/promises';
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

async function atomicWrite(path: string, content: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, path);
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

export async function writeOutputs(
  raw: string,
  manifest: Record<string, unknown>,
  opts: { xz: boolean; /** Keeps the xz chunk index, so a rebuild copies unchanged chunks. */ cacheDir?: string },
): Promise<{ files: OutputFiles; sizes: Sizes; sha256: string; xzChunks: XzChunkStats | null }> {
  const hashing = sha256File(raw);
  hashing.catch(() => undefined); // awaited below; avoids an unhandled rejection meanwhile
  const map = await createBlockMap(raw);
  const bmap = `${raw}.bmap`;
  await atomicWrite(bmap, renderBmapXml(map));
  let xz: string | null = null;
  let xzBytes: number | null = null;
  let xzChunks: XzChunkStats | null = null;
  if (opts.xz) {
    xz = `${raw}.xz`;
    const r = await writeChunkedXz(raw, xz, { indexDir: opts.cacheDir && join(opts.cacheDir, 'xz-index') });
    xzBytes = r.xzBytes;
    xzChunks = { chunks: r.chunks, reused: r.reused };
  }
  const sha256 = await hashing;
  await atomicWrite(`${raw}.sha256`, `${sha256}  ${basename(raw)}\n`);
  const sizes: Sizes = { rawBytes: map.imageSize, usedBytes: map.mappedBlocksCount * map.blockSize, xzBytes };
  const manifestPath = `${raw.replace(/\.img$/, '')}.manifest.json`;
  await atomicWrite(manifestPath, `${JSON.stringify({ ...manifest, image: basename(raw), sha256, sizes }, null, 2)}\n`);
  return { files: { raw, xz, bmap, sha256: `${raw}.sha256`, manifest: manifestPath }, sizes, sha256, xzChunks };
}
