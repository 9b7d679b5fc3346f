// Writes a DebPackage as a .deb: ar(debian-binary, control.tar.*, data.tar.*). The bytes
// depend only on the package and the options (mtime, compression): reproducible builds.
// Files appear atomically: written to a temp file in the output directory, then renamed.
import { randomBytes } from 'node:crypto';
import { open, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { pidAlive, procPid } from '../pid-lock.ts';
import { arChunks } from './ar.ts';
import { memberSuffix } from './compress.ts';
import { conffilesOf, controlFile, installedSizeKiB, md5sumsFile, validatePackage } from './control.ts';
import { type Compression, type DebEntry, type DebPackage, debFileName, isSymlinkEntry } from './model.ts';
import { buildTar, withParents } from './tar.ts';

export interface WriteOptions {
  /** Seconds since the epoch for every mtime in the archive (SOURCE_DATE_EPOCH). */
  mtime: number;
  compression?: Compression;
}

export const DEFAULT_COMPRESSION: Compression = { kind: 'xz', level: 6 };

/** The .deb as a list of buffers (concatenate or writev them). */
export async function buildDeb(p: DebPackage, opts: WriteOptions): Promise<Buffer[]> {
  validatePackage(p);
  const compression = opts.compression ?? DEFAULT_COMPRESSION;
  const mtime = new Date(opts.mtime * 1000);
  const entries = withParents(p.files);
  const data = await buildTar(entries, compression, mtime);

  const conffiles = conffilesOf(p);
  const own = (mode: number) => ({ mode, owner: 'root', group: 'root' });
  const control = new Map<string, DebEntry>();
  control.set('/control', { content: controlFile(p, installedSizeKiB(entries, data.sizes)), ...own(0o644) });
  // Like dh_md5sums: conffiles are left out, dpkg records their hashes itself.
  const md5sums = md5sumsFile(data.md5, new Set(conffiles));
  if (md5sums) control.set('/md5sums', { content: md5sums, ...own(0o644) });
  if (conffiles.length) control.set('/conffiles', { content: conffiles.map((c) => `${c}\n`).join(''), ...own(0o644) });
  for (const [name, body] of Object.entries(p.maintainerScripts ?? {})) {
    if (body) control.set(`/${name}`, { content: body, ...own(0o755) });
  }
  const controlTar = await buildTar(withParents(control), compression, mtime);

  const suffix = memberSuffix(compression);
  return arChunks(
    [
      { name: 'debian-binary', data: Buffer.from('2.0\n') },
      { name: `control.tar${suffix}`, data: controlTar.data },
      { name: `data.tar${suffix}`, data: data.data },
    ],
    opts.mtime,
  );
}

export interface WrittenDeb {
  path: string;
  file: string;
  size: number;
}

/** A package with files others may not read (the cluster's keys and tokens) is itself
 *  readable by its owner only: anyone could unpack them from it. Pure. */
export function debFileMode(p: DebPackage): number {
  const hidden = [...p.files.values()].some((e) => !isSymlinkEntry(e) && !('directory' in e) && (e.mode & 0o004) === 0);
  return hidden ? 0o600 : 0o644;
}

/** The temp file a .deb is written to (its name carries the writer's PID). Pure. */
export const debTempName = (file: string, pid: number, tag: string) => `.${file}.${pid}.${tag}.tmp`;

/** The PID in a debTempName, or null for other names. Pure. */
export function debTempPid(name: string): number | null {
  const m = /^\..+\.deb\.(\d+)\.[0-9a-f]{8}\.tmp$/.exec(name);
  return m ? Number(m[1]) : null;
}

/** Removes the temp files of writers that are gone (killed mid-write: Ctrl-C, kill -9); a
 *  config package's may hold the cluster's secrets. Returns their names. */
export async function removeDeadTemps(outDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of (await readdir(outDir).catch(() => [] as string[])).sort()) {
    const pid = debTempPid(name);
    if (pid === null || pidAlive(pid)) continue;
    await rm(join(outDir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

/** Builds and writes <outDir>/<name>_<version>_<arch>.deb atomically. */
export async function writeDeb(p: DebPackage, outDir: string, opts: WriteOptions): Promise<WrittenDeb> {
  const chunks = await buildDeb(p, opts);
  const file = debFileName(p);
  const path = join(outDir, file);
  const tmp = join(outDir, debTempName(file, procPid(), randomBytes(4).toString('hex')));
  let handle;
  try {
    handle = await open(tmp, 'wx', debFileMode(p));
  } catch (err) {
    throw outDirError(err, outDir);
  }
  try {
    await handle.writev(chunks);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, path);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw outDirError(err, outDir);
  }
  return { path, file, size: chunks.reduce((n, c) => n + c.length, 0) };
}

function outDirError(err: unknown, outDir: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new UserError(`cannot write packages to ${outDir}: not writable (${code})`);
  }
  if (code === 'ENOENT' || code === 'ENOTDIR') return new UserError(`output directory ${outDir} does not exist`);
  if (code === 'ENOSPC') return new UserError(`no space left on the device of ${outDir}`);
  return err;
}
