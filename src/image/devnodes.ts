// The device nodes in every image's /dev, as mmdebstrap makes them in the base (checked
// against its tarball: all root:root, mode 0666). A build in a user namespace (rootless)
// cannot make device nodes: it unpacks the base without them, binds the host's nodes in
// while programs run in the image, and writes the nodes into the finished ext4 file system
// with debugfs, so the image's contents do not depend on who built it.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './run.ts';

export const DEV_NODES: readonly { name: string; major: number; minor: number }[] = [
  { name: 'console', major: 5, minor: 1 },
  { name: 'full', major: 1, minor: 7 },
  { name: 'null', major: 1, minor: 3 },
  { name: 'ptmx', major: 5, minor: 2 },
  { name: 'random', major: 1, minor: 8 },
  { name: 'tty', major: 5, minor: 0 },
  { name: 'urandom', major: 1, minor: 9 },
  { name: 'zero', major: 1, minor: 5 },
];
const MODE = 0o666;

/** tar options that leave the device nodes out of an unpacked base. */
export function devNodeExcludes(): string[] {
  return DEV_NODES.map((d) => `--exclude=./dev/${d.name}`);
}

/** Linux's dev_t of major:minor (glibc's makedev), as lstat reports it in st.rdev. */
function rdev(major: number, minor: number): number {
  return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12) | (major & ~0xfff) * 2 ** 32;
}

/** The nodes as treehash.ts lists them, for a tree that lacks them. Pure. */
export function devNodeListing(epoch: number): string[] {
  return DEV_NODES.map((d) => `/dev/${d.name} c ${MODE.toString(8)} 0:0 ${epoch} ${rdev(d.major, d.minor)}`);
}

/** debugfs commands that add the nodes to a file system whose /dev lacks them. Pure. */
export function devNodesDebugfsScript(epoch: number): string {
  const t = new Date(epoch * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDhhmmss, UTC
  const lines = ['cd /dev'];
  for (const d of DEV_NODES) {
    lines.push(`mknod ${d.name} c ${d.major} ${d.minor}`, `sif ${d.name} mode 0${(0o20000 | MODE).toString(8)}`, `sif ${d.name} uid 0`, `sif ${d.name} gid 0`);
    for (const f of ['atime', 'mtime', 'ctime', 'crtime']) lines.push(`sif ${d.name} ${f} ${t}`);
  }
  for (const f of ['atime', 'mtime', 'ctime', 'crtime']) lines.push(`sif /dev ${f} ${t}`);
  return `${lines.join('\n')}\n`;
}

/** Writes the nodes into the ext4 file system at byte offset of image. */
export async function addDevNodes(image: string, offset: number, epoch: number): Promise<void> {
  const fs = `${image}?offset=${offset}`;
  const env = { E2FSPROGS_FAKE_TIME: String(epoch) };
  await run('debugfs', ['-w', '-f', '-', fs], { input: devNodesDebugfsScript(epoch), env });
  // debugfs reports a failed command on stderr and still exits 0: check what it made.
  const stats = await run('debugfs', ['-f', '-', fs], { input: DEV_NODES.map((d) => `stat /dev/${d.name}\n`).join(''), env });
  for (const d of DEV_NODES) {
    const start = stats.indexOf(`debugfs: stat /dev/${d.name}\n`);
    const end = stats.indexOf('debugfs: ', start + 1);
    const stat = start < 0 ? '' : stats.slice(start, end < 0 ? undefined : end);
    const dev = `${String(d.major).padStart(2, '0')}:${String(d.minor).padStart(2, '0')}`;
    const mode = `0${MODE.toString(8)}`;
    if (!new RegExp(`Type: character special\\s+Mode:\\s+${mode}\\b`).test(stat) || !/User:\s+0\s+Group:\s+0\b/.test(stat) || !stat.includes(`Device major/minor number: ${dev} `)) {
      throw new Error(`debugfs did not make /dev/${d.name} (${dev}, ${mode}, root):\n${stat || stats}`);
    }
  }
}

/** The nodes programs run in the image use (not console or ptmx: no terminal there). */
const BOUND = ['full', 'null', 'random', 'tty', 'urandom', 'zero'];

/** Binds the host's nodes over empty files in root/dev (in this process's own mount namespace),
 *  so programs run in the image find /dev/null and friends; release() takes them away again. */
export async function bindHostDevNodes(root: string): Promise<{ release(): Promise<void> }> {
  const made: string[] = [];
  const mounted: string[] = [];
  const release = async () => {
    for (const p of mounted.splice(0).reverse()) await run('umount', [p]);
    for (const p of made.splice(0)) await rm(p, { force: true });
  };
  try {
    for (const name of BOUND) {
      const p = join(root, 'dev', name);
      await writeFile(p, '', { flag: 'wx' });
      made.push(p);
      await run('mount', ['--bind', `/dev/${name}`, p]);
      mounted.push(p);
    }
  } catch (err) {
    await release().catch(() => undefined);
    throw err;
  }
  return { release };
}
