// Disk assembly from plain directories, without loop mounts: an MBR partition table on a
// sparse file (sfdisk), the FAT boot partition written in place (mkfs.fat --offset, mcopy),
// and the ext4 root and data partitions written in place (mke2fs -d -E offset=). UUIDs,
// volume IDs and file system timestamps are derived from the inputs, so the same tree gives
// the same partitions. (Not the same bytes from a tree made again: bookworm's mke2fs copies
// each file's atime and ctime from the tree; the contents, contentHash, stay the same.)
import { createHash } from 'node:crypto';
import { lstat, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './run.ts';
import { BOOT_LABEL, DATA_LABEL, ROOT_LABEL } from './system.ts';

export const MiB = 1024 * 1024;
const SECTOR = 512;

export interface Partition {
  startMiB: number;
  sizeMiB: number;
}

export interface DiskLayout {
  boot: Partition;
  root: Partition;
  data: Partition;
  totalMiB: number;
}

export const BOOT_MIB = 256;
/** The data partition as shipped; the first boot grows it to the end of the card. */
export const DATA_MIB = 128;

/** Sizes the partitions for trees of these sizes (treeBytes). Pure. */
export function planDisk(rootBytes: number, bootBytes: number, dataBytes = 0): DiskLayout {
  const bootMiB = Math.max(BOOT_MIB, Math.ceil((bootBytes * 1.3) / MiB));
  // ext4 metadata (inode tables, journal) plus headroom: a read-only root never grows.
  const rootMiB = Math.ceil((rootBytes * 1.15) / MiB) + 96;
  // What a role seeds onto the data partition is small, but must fit whatever it is.
  const dataMiB = Math.max(DATA_MIB, Math.ceil((dataBytes * 1.15) / MiB) + 64);
  const boot = { startMiB: 1, sizeMiB: bootMiB };
  const root = { startMiB: boot.startMiB + boot.sizeMiB, sizeMiB: rootMiB };
  const data = { startMiB: root.startMiB + root.sizeMiB, sizeMiB: dataMiB };
  return { boot, root, data, totalMiB: data.startMiB + data.sizeMiB };
}

/** sfdisk input for the layout. Pure. bootType: 0c (FAT32 LBA, Pi firmware) or ef (EFI). */
export function sfdiskScript(layout: DiskLayout, diskId: string, bootType: '0c' | 'ef'): string {
  const part = (p: Partition, type: string, extra = '') =>
    `start=${(p.startMiB * MiB) / SECTOR}, size=${(p.sizeMiB * MiB) / SECTOR}, type=${type}${extra}`;
  return [
    'label: dos',
    `label-id: 0x${diskId}`,
    'unit: sectors',
    part(layout.boot, bootType, ', bootable'),
    part(layout.root, '83'),
    part(layout.data, '83'),
    '',
  ].join('\n');
}

/** A stable UUID (RFC 4122 layout, version 4 bits) derived from a seed. */
export function derivedUuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest();
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

export function derivedHex32(seed: string): string {
  return createHash('sha256').update(seed).digest('hex').slice(0, 8);
}

const BLOCK = 4096;
const blocks = (bytes: number) => Math.ceil(bytes / BLOCK) * BLOCK;

/** The bytes a tree takes on ext4 with 4 KiB blocks, reckoned from what is in it rather than
 *  from what it takes where it is (du): a compressing file system (ZFS with lz4, common
 *  under Proxmox) stores a root in about half of what ext4 will need. Hard links count once,
 *  symlinks under 60 bytes live in their inode, a directory takes its entries (8 bytes and
 *  the name, to 4) in whole blocks. */
export async function treeBytes(dir: string): Promise<number> {
  const seen = new Set<string>();
  const walk = async (d: string): Promise<number> => {
    const entries = await readdir(d, { withFileTypes: true });
    let total = blocks(Math.max(1, entries.reduce((n, e) => n + 8 + Math.ceil(Buffer.byteLength(e.name) / 4) * 4, 24)));
    const sizes = await Promise.all(
      entries.map(async (e) => {
        const path = join(d, e.name);
        const st = await lstat(path);
        if (e.isDirectory()) return walk(path);
        if (st.nlink > 1) {
          const id = `${st.dev}:${st.ino}`;
          if (seen.has(id)) return 0;
          seen.add(id);
        }
        if (e.isSymbolicLink()) return st.size < 60 ? 0 : BLOCK;
        return e.isFile() ? blocks(st.size) : 0;
      }),
    );
    for (const n of sizes) total += n;
    return total;
  };
  return walk(dir);
}

export interface AssembleInput {
  image: string;
  dirs: { root: string; boot: string; data: string };
  bootType: '0c' | 'ef';
  /** Seeds the UUIDs: the image name (kind and role). */
  seed: string;
  sourceDateEpoch: number;
}

export async function assembleDisk(input: AssembleInput): Promise<DiskLayout> {
  const { image, dirs, seed } = input;
  const layout = planDisk(await treeBytes(dirs.root), await treeBytes(dirs.boot), await treeBytes(dirs.data));
  // TZ: FAT keeps local time, which mcopy takes from the host's zone; in UTC the same tree
  // gives the same bytes on every build host.
  const env = { E2FSPROGS_FAKE_TIME: String(input.sourceDateEpoch), SOURCE_DATE_EPOCH: String(input.sourceDateEpoch), MTOOLS_SKIP_CHECK: '1', TZ: 'UTC' };
  await rm(image, { force: true });
  await writeFile(image, '', { mode: 0o600 }); // the image holds the cluster's secrets: owner-only
  await truncate(image, layout.totalMiB * MiB); // sparse: unwritten ranges stay holes for the block map
  await run('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', image], { input: sfdiskScript(layout, derivedHex32(`${seed}/disk`), input.bootType) });

  const bootOffsetSectors = (layout.boot.startMiB * MiB) / SECTOR;
  await run('mkfs.fat', ['-F', '32', '-s', '2', '-n', BOOT_LABEL, '-i', derivedHex32(`${seed}/boot`), '--invariant', `--offset=${bootOffsetSectors}`, image, String(layout.boot.sizeMiB * 1024)], { env });
  await copyToFat(`${image}@@${layout.boot.startMiB * MiB}`, dirs.boot, env);
  await mkext4(image, layout.root, ROOT_LABEL, dirs.root, `${seed}/root`, env);
  await mkext4(image, layout.data, DATA_LABEL, dirs.data, `${seed}/data`, env);
  return layout;
}

/** Copies a tree into a FAT file system (mtools' image@@offset) in sorted order. A FAT
 *  directory lists its entries in the order they were made, and `mcopy -s` makes them in
 *  readdir order, which differs between file systems and even between two ext4
 *  directories of the same names: the same tree would give other bytes elsewhere. */
async function copyToFat(target: string, dir: string, env: Record<string, string>): Promise<void> {
  const dirs: string[] = []; // parents before their children
  const files: [string, string[]][] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = (await readdir(join(dir, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const here = entries.filter((e) => !e.isDirectory()).map((e) => join(dir, rel, e.name));
    if (here.length > 0) files.push([rel, here]);
    for (const e of entries.filter((e) => e.isDirectory())) {
      dirs.push(join(rel, e.name));
      await walk(join(rel, e.name));
    }
  };
  await walk('');
  if (dirs.length > 0) await run('mmd', ['-i', target, ...dirs.map((d) => `::/${d}`)], { env });
  for (const [rel, paths] of files) await run('mcopy', ['-p', '-m', '-Q', '-i', target, ...paths, `::/${rel}`], { env });
}

async function mkext4(image: string, p: Partition, label: string, dir: string, seed: string, env: Record<string, string>): Promise<void> {
  await run(
    'mke2fs',
    [
      '-q',
      '-F',
      '-t', 'ext4',
      '-b', '4096',
      '-m', '0',
      '-L', label,
      '-U', derivedUuid(seed),
      '-E', `hash_seed=${derivedUuid(`${seed}/hash`)},offset=${p.startMiB * MiB},root_owner=0:0`,
      '-d', dir,
      image,
      `${p.sizeMiB * 1024}k`,
    ],
    { env },
  );
}
