// What `piinit image` leaves in --out for each image: the raw image, an xz copy, the block
// map for the burner, a SHA-256 line (sha256sum -c format), and a manifest listing every
// package and version inside (an SBOM-style list).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rename, stat, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { createBlockMap, renderBmapXml } from './bmap.ts';
import { run } from './run.ts';

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

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('hex');
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

export async function writeOutputs(
  raw: string,
  manifest: Record<string, unknown>,
  opts: { xz: boolean },
): Promise<{ files: OutputFiles; sizes: Sizes; sha256: string }> {
  const map = await createBlockMap(raw);
  const bmap = `${raw}.bmap`;
  await atomicWrite(bmap, renderBmapXml(map));
  const sha256 = await sha256File(raw);
  await atomicWrite(`${raw}.sha256`, `${sha256}  ${basename(raw)}\n`);
  let xz: string | null = null;
  let xzBytes: number | null = null;
  if (opts.xz) {
    xz = `${raw}.xz`;
    await run('sh', ['-c', 'xz -T0 -3 -c -- "$1" > "$2.tmp" && mv "$2.tmp" "$2"', 'xz', raw, xz]);
    xzBytes = (await stat(xz)).size;
  }
  const sizes: Sizes = { rawBytes: map.imageSize, usedBytes: map.mappedBlocksCount * map.blockSize, xzBytes };
  const manifestPath = `${raw.replace(/\.img$/, '')}.manifest.json`;
  await atomicWrite(manifestPath, `${JSON.stringify({ ...manifest, image: basename(raw), sha256, sizes }, null, 2)}\n`);
  return { files: { raw, xz, bmap, sha256: `${raw}.sha256`, manifest: manifestPath }, sizes, sha256 };
}
