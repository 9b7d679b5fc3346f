// The release cache: content-addressed blobs plus one small JSON entry per
// component/version/arch/source that names the blobs.
//
//   <cache>/blobs/sha256/<hex>                 verified executables (0755), named by content
//   <cache>/entries/<component>/<key>.json     ReleaseEntry (key: version, arch, source)
//   <cache>/verified/<hex>                     size, inode and times of a blob when it was last hashed
//   <cache>/tmp/                               downloads in progress (*.part resume here)
//
// Every write is temp file + rename, so a reader never sees a half-written blob or entry.
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { DebianArch } from '../cluster/boards.ts';
import type { ComponentName, ComponentSpec, SourceKind } from '../cluster/types.ts';
import { sha256File } from './download.ts';

export function defaultCacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.cache'), 'piinit');
}

export interface ReleaseEntry {
  component: ComponentName;
  version: string;
  arch: DebianArch;
  source: SourceKind;
  /** program name → absolute path of the verified executable in the cache:
   *  consul → {consul}; nomad → {nomad}; prometheus → {prometheus, promtool}; node_exporter → {node_exporter} */
  binaries: Record<string, string>;
  /** Where it came from (URL), for manifests. */
  origin: string;
  /** Per binary, lower-case hex. */
  sha256: Record<string, string>;
}

/** On disk the entry stores blob hashes only; paths are derived from the cache dir when read. */
interface StoredEntry {
  component: ComponentName;
  version: string;
  arch: DebianArch;
  source: SourceKind;
  origin: string;
  sha256: Record<string, string>;
  /** The exact upstream version (e.g. Debian's 1.8.7+dfsg1-2+b3). */
  upstreamVersion?: string;
  fetchedAt: string;
}

export function blobPath(cacheDir: string, sha256: string): string {
  return join(cacheDir, 'blobs', 'sha256', sha256);
}

export function tmpDir(cacheDir: string): string {
  return join(cacheDir, 'tmp');
}

/** Which source variant an entry belongs to: a Consul from Debian bullseye is not one from HashiCorp. */
function sourceKey(spec: ComponentSpec): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9.+~-]/g, '_');
  if (spec.source === 'debian') return `debian-${safe(spec.suite ?? 'default')}-${safe(spec.package ?? spec.name)}`;
  return spec.source;
}

export function entryPath(cacheDir: string, spec: ComponentSpec, arch: DebianArch): string {
  const v = spec.version.replace(/[^A-Za-z0-9.+~-]/g, '_');
  return join(cacheDir, 'entries', spec.name, `${v}_${arch}_${sourceKey(spec)}.json`);
}

export async function atomicWrite(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data, { mode });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Moves a verified file (already in the cache's tmp dir, same file system) into the blob
 * store under its SHA-256. The caller has computed `sha256` from the file's content.
 */
/** Identifies one state of a file: any write (or chmod, rename over it) changes it. */
async function fileStamp(path: string): Promise<string | null> {
  const st = await stat(path).catch(() => null);
  return st ? `${st.size} ${st.ino} ${st.mtimeMs} ${st.ctimeMs}` : null;
}

/** Records that the blob, as it is now, was hashed and found to be `sha256`. */
async function markVerified(cacheDir: string, sha256: string): Promise<void> {
  const stamp = await fileStamp(blobPath(cacheDir, sha256));
  if (!stamp) return;
  await mkdir(join(cacheDir, 'verified'), { recursive: true });
  await atomicWrite(join(cacheDir, 'verified', sha256), stamp);
}

/**
 * full: hash the blob. stamp: trust it when its size, inode, mtime and ctime are those it had
 * when last hashed (a write, even one that restores the mtime, changes the ctime); hash it
 * otherwise. Both remember a successful hash.
 */
async function blobIsIntact(cacheDir: string, sha256: string, verify: Verify): Promise<boolean> {
  const path = blobPath(cacheDir, sha256);
  const stampFile = join(cacheDir, 'verified', sha256);
  if (verify === 'stamp') {
    const [now, then] = await Promise.all([fileStamp(path), readFile(stampFile, 'utf8').catch(() => null)]);
    if (now !== null && now === then) return true;
  }
  const ok = (await sha256File(path).catch(() => null)) === sha256;
  if (ok) await markVerified(cacheDir, sha256);
  else await rm(stampFile, { force: true });
  return ok;
}

export type Verify = 'full' | 'stamp';

export async function storeBlob(cacheDir: string, file: string, sha256: string): Promise<string> {
  const dest = blobPath(cacheDir, sha256);
  await mkdir(join(cacheDir, 'blobs', 'sha256'), { recursive: true });
  try {
    await chmod(file, 0o755);
    await rename(file, dest);
  } catch (err) {
    // Already stored by another task of this run (the same file serves two arches).
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || (await sha256File(dest).catch(() => null)) !== sha256) throw err;
  }
  await markVerified(cacheDir, sha256);
  return dest;
}

export async function writeEntry(
  cacheDir: string,
  spec: ComponentSpec,
  arch: DebianArch,
  e: { origin: string; sha256: Record<string, string>; upstreamVersion?: string },
): Promise<ReleaseEntry> {
  const stored: StoredEntry = {
    component: spec.name,
    version: spec.version,
    arch,
    source: spec.source,
    origin: e.origin,
    sha256: e.sha256,
    ...(e.upstreamVersion ? { upstreamVersion: e.upstreamVersion } : {}),
    fetchedAt: new Date().toISOString(),
  };
  const path = entryPath(cacheDir, spec, arch);
  await mkdir(join(cacheDir, 'entries', spec.name), { recursive: true });
  await atomicWrite(path, `${JSON.stringify(stored, null, 2)}\n`);
  return toEntry(cacheDir, stored);
}

function toEntry(cacheDir: string, s: StoredEntry): ReleaseEntry {
  const binaries: Record<string, string> = {};
  for (const [prog, hex] of Object.entries(s.sha256)) binaries[prog] = blobPath(cacheDir, hex);
  return {
    component: s.component,
    version: s.version,
    arch: s.arch,
    source: s.source,
    binaries,
    origin: s.origin,
    sha256: { ...s.sha256 },
  };
}

/**
 * The cached release for spec/arch, or null. Every binary is hashed again (`verify: 'stamp'`
 * skips the hash of a file unchanged since it was last hashed); an entry whose blob is
 * missing or altered is removed (with the bad blob) so the next fetch replaces it.
 */
export async function findRelease(
  cacheDir: string,
  spec: ComponentSpec,
  arch: DebianArch,
  opts: { verify?: Verify } = {},
): Promise<ReleaseEntry | null> {
  const path = entryPath(cacheDir, spec, arch);
  let stored: StoredEntry;
  try {
    stored = JSON.parse(await readFile(path, 'utf8')) as StoredEntry;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    await rm(path, { force: true }); // unreadable JSON: treat as corrupt
    return null;
  }
  const hashes = Object.entries(stored.sha256 ?? {});
  if (
    stored.component !== spec.name ||
    stored.version !== spec.version ||
    stored.arch !== arch ||
    hashes.length === 0 ||
    hashes.some(([, h]) => !/^[0-9a-f]{64}$/.test(h))
  ) {
    await rm(path, { force: true });
    return null;
  }
  const results = await Promise.all(hashes.map(([, hex]) => blobIsIntact(cacheDir, hex, opts.verify ?? 'full')));
  if (results.every(Boolean)) return toEntry(cacheDir, stored);
  await rm(path, { force: true });
  for (const [i, ok] of results.entries()) {
    if (!ok) await rm(blobPath(cacheDir, hashes[i]![1]), { force: true });
  }
  return null;
}
