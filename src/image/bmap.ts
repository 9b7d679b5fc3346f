// Block maps in bmaptool's XML format 2.0 (SHA-256 per range): which blocks of a disk image
// hold data, so a burner writes only those and can verify each range afterwards.
//
// "Mapped" follows bmaptool: every block the file system has allocated for the image file
// (holes are unmapped), even when it reads as zeros — tools like mke2fs and sfdisk write
// zeros on purpose to erase old signatures, and those zeros must reach the card. Where the
// allocation cannot be read (no FIEMAP, e.g. tmpfs), every block is mapped: blocks of zeros
// cannot be told from holes there, and skipping them would leave a used card's old bytes
// under the new file systems' free FAT entries and empty directories. Images should be
// made sparse (truncate -s), not fallocate'd: unwritten extents count as allocated, like
// bmaptool counts them.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { open, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { UserError } from '../errors.ts';

export interface BlockRange {
  /** First and last block of the range, inclusive. */
  first: number;
  last: number;
  /** SHA-256 (hex) of the range's bytes; the last block of the image may be short. */
  sha256: string;
}

export interface BlockMap {
  imageSize: number;
  blockSize: number;
  blocksCount: number;
  mappedBlocksCount: number;
  ranges: BlockRange[];
}

const run = promisify(execFile);
const READ_CHUNK = 4 * 1024 * 1024;

/** Byte extents [start, end) the file system allocated for the file, or null when unknown. */
export async function allocatedExtents(path: string): Promise<Array<[number, number]> | null> {
  let out: string;
  try {
    // -s: sync first, so delayed allocation is settled; -b1: offsets in bytes.
    ({ stdout: out } = await run('filefrag', ['-s', '-v', '-b1', path], { maxBuffer: 256 * 1024 * 1024 }));
  } catch {
    return null; // no filefrag, or FIEMAP unsupported here (tmpfs): map every block instead
  }
  if (!/logical_offset/.test(out)) return null;
  const extents: Array<[number, number]> = [];
  for (const line of out.split('\n')) {
    const m = /^\s*\d+:\s*(\d+)\.\.\s*(\d+):\s*\d*\.\.\s*\d*:\s*(\d+):/.exec(line);
    if (!m) continue;
    const start = Number(m[1]);
    extents.push([start, start + Number(m[3])]);
  }
  return extents;
}

/** Turns byte extents into sorted, merged, inclusive block ranges within the image. */
export function extentsToBlockRanges(
  extents: Array<[number, number]>,
  blockSize: number,
  blocksCount: number,
): Array<[number, number]> {
  const blocks = extents
    .map(([s, e]): [number, number] => [Math.floor(s / blockSize), Math.min(Math.ceil(e / blockSize), blocksCount) - 1])
    .filter(([f, l]) => l >= f)
    .sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const [f, l] of blocks) {
    const prev = merged[merged.length - 1];
    if (prev && f <= prev[1] + 1) prev[1] = Math.max(prev[1], l);
    else merged.push([f, l]);
  }
  return merged;
}

export async function createBlockMap(imagePath: string, blockSize = 4096): Promise<BlockMap> {
  if (!Number.isInteger(blockSize) || blockSize < 512 || (blockSize & (blockSize - 1)) !== 0) {
    throw new UserError(`block size must be a power of two of at least 512, not ${blockSize}`);
  }
  const imageSize = (await stat(imagePath)).size;
  const blocksCount = Math.ceil(imageSize / blockSize);
  const extents = await allocatedExtents(imagePath);
  const fh = await open(imagePath, 'r');
  try {
    const blockRanges: Array<[number, number]> =
      extents === null ? (blocksCount > 0 ? [[0, blocksCount - 1]] : []) : extentsToBlockRanges(extents, blockSize, blocksCount);
    const ranges = await hashRanges(fh, imageSize, blockSize, blockRanges);
    return {
      imageSize,
      blockSize,
      blocksCount,
      mappedBlocksCount: ranges.reduce((n, r) => n + r.last - r.first + 1, 0),
      ranges,
    };
  } finally {
    await fh.close();
  }
}

type Handle = Awaited<ReturnType<typeof open>>;

async function hashRanges(
  fh: Handle,
  imageSize: number,
  blockSize: number,
  blockRanges: Array<[number, number]>,
): Promise<BlockRange[]> {
  const buf = Buffer.allocUnsafe(READ_CHUNK);
  const out: BlockRange[] = [];
  for (const [first, last] of blockRanges) {
    const hash = createHash('sha256');
    const end = Math.min((last + 1) * blockSize, imageSize);
    for (let pos = first * blockSize; pos < end; ) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(READ_CHUNK, end - pos), pos);
      if (bytesRead === 0) throw new Error(`image shrank while mapping it (at byte ${pos})`);
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    out.push({ first, last, sha256: hash.digest('hex') });
  }
  return out;
}

function humanSize(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[i]}`;
}

const ZERO_SUM = '0'.repeat(64);

/** The block map as bmaptool writes it (format 2.0), BmapFileChecksum included. */
export function renderBmapXml(map: BlockMap): string {
  const mappedBytes = map.mappedBlocksCount * map.blockSize;
  const percent = map.blocksCount ? ((map.mappedBlocksCount * 100) / map.blocksCount).toFixed(1) : '0.0';
  const lines = [
    '<?xml version="1.0" ?>',
    '<!-- This file contains the block map for an image file, which is basically',
    '     a list of useful (mapped) block numbers in the image file. In other words,',
    '     it lists only those blocks which contain data (boot sector, partition',
    '     table, file-system metadata, files, directories, extents, etc). These',
    '     blocks have to be copied to the target device. The other blocks do not',
    '     contain any useful data and do not have to be copied to the target',
    '     device. Written by piinit. -->',
    '',
    '<bmap version="2.0">',
    `    <!-- Image size in bytes: ${humanSize(map.imageSize)} -->`,
    `    <ImageSize> ${map.imageSize} </ImageSize>`,
    '',
    '    <!-- Size of a block in bytes -->',
    `    <BlockSize> ${map.blockSize} </BlockSize>`,
    '',
    '    <!-- Count of blocks in the image file -->',
    `    <BlocksCount> ${map.blocksCount} </BlocksCount>`,
    '',
    `    <!-- Count of mapped blocks: ${humanSize(mappedBytes)} or ${percent}% -->`,
    `    <MappedBlocksCount> ${map.mappedBlocksCount} </MappedBlocksCount>`,
    '',
    '    <!-- Type of checksum used in this file -->',
    '    <ChecksumType> sha256 </ChecksumType>',
    '',
    '    <!-- The checksum of this bmap file. When it is calculated, the value of',
    '         the checksum has be zero (all ASCII "0" symbols).  -->',
    `    <BmapFileChecksum> ${ZERO_SUM} </BmapFileChecksum>`,
    '',
    '    <!-- The block map which consists of elements which may either be a',
    "         range of blocks or a single block. The 'chksum' attribute",
    '         (if present) is the checksum of this blocks range. -->',
    '    <BlockMap>',
    ...map.ranges.map(
      (r) => `        <Range chksum="${r.sha256}"> ${r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`} </Range>`,
    ),
    '    </BlockMap>',
    '</bmap>',
    '',
  ];
  const xml = lines.join('\n');
  const sum = createHash('sha256').update(xml).digest('hex');
  return xml.replace(`<BmapFileChecksum> ${ZERO_SUM} `, `<BmapFileChecksum> ${sum} `);
}

function tag(xml: string, name: string): string | undefined {
  return new RegExp(`<${name}>\\s*([^<]*?)\\s*</${name}>`).exec(xml)?.[1];
}

function intTag(xml: string, name: string): number {
  const v = tag(xml, name);
  if (v === undefined || !/^\d+$/.test(v)) throw new UserError(`block map: <${name}> is missing or not a number`);
  return Number(v);
}

/** Reads a bmap file (format 2.x, SHA-256), as written by bmaptool or renderBmapXml. */
export function parseBmapXml(xml: string): BlockMap {
  const version = /<bmap\s+version\s*=\s*"([^"]+)"/.exec(xml)?.[1];
  if (!version) throw new UserError('block map: not a bmap file (no <bmap version="...">)');
  if (version.split('.')[0] !== '2') {
    throw new UserError(`block map: format version ${version} is not supported (only 2.x, as bmaptool 3 writes)`);
  }
  const type = tag(xml, 'ChecksumType')?.toLowerCase();
  if (type !== 'sha256') throw new UserError(`block map: checksum type ${type ?? '(none)'} is not supported (only sha256)`);
  const fileSum = tag(xml, 'BmapFileChecksum');
  if (fileSum !== undefined) {
    if (!/^[0-9a-f]{64}$/i.test(fileSum)) throw new UserError('block map: BmapFileChecksum is not a SHA-256');
    const at = xml.indexOf(fileSum);
    const zeroed = xml.slice(0, at) + ZERO_SUM + xml.slice(at + fileSum.length);
    const actual = createHash('sha256').update(zeroed).digest('hex');
    if (actual !== fileSum.toLowerCase()) {
      throw new UserError(`block map: file checksum mismatch (the .bmap file is damaged or was edited)`);
    }
  }
  const imageSize = intTag(xml, 'ImageSize');
  const blockSize = intTag(xml, 'BlockSize');
  const blocksCount = intTag(xml, 'BlocksCount');
  const mappedBlocksCount = intTag(xml, 'MappedBlocksCount');
  if (blockSize === 0 || blocksCount !== Math.ceil(imageSize / blockSize)) {
    throw new UserError('block map: BlocksCount does not match ImageSize / BlockSize');
  }
  const ranges: BlockRange[] = [];
  const re = /<Range([^>]*)>\s*(\d+)(?:\s*-\s*(\d+))?\s*<\/Range>/g;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    const sum = /chksum\s*=\s*"([0-9a-fA-F]{64})"/.exec(m[1] ?? '')?.[1];
    if (!sum) throw new UserError(`block map: range ${m[2]} has no sha256 checksum`);
    const first = Number(m[2]);
    const last = m[3] === undefined ? first : Number(m[3]);
    const prev = ranges[ranges.length - 1];
    if (last < first || last >= blocksCount || (prev && first <= prev.last)) {
      throw new UserError(`block map: range ${first}-${last} is out of order or outside the image`);
    }
    ranges.push({ first, last, sha256: sum.toLowerCase() });
  }
  const counted = ranges.reduce((n, r) => n + r.last - r.first + 1, 0);
  if (counted !== mappedBlocksCount) {
    throw new UserError(`block map: ranges cover ${counted} blocks but MappedBlocksCount says ${mappedBlocksCount}`);
  }
  return { imageSize, blockSize, blocksCount, mappedBlocksCount, ranges };
}
