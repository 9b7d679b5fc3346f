// ensureReleases: every component × arch the caller needs, from the cache when it holds a
// verified copy, otherwise from the component's source; verified, then stored in the cache.
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DebianArch } from '../cluster/boards.ts';
import { type Cluster, COMPONENTS, type ComponentName, type ComponentSpec } from '../cluster/types.ts';
import { findRelease, type ReleaseEntry, storeBlob, tmpDir, type Verify, writeEntry } from './cache.ts';
import { DEBIAN_PACKAGE, DEFAULT_GITHUB_BASE, DEFAULT_HASHICORP_BASE, NAMING } from './catalog.ts';
import type { OnProgress, ProgressEvent } from './download.ts';
import { UserError } from '../errors.ts';
import { UnavailableError, VerificationError } from './errors.ts';
import { hashicorpTrust, trustedKey } from './pgp.ts';
import type { Fetched, SourceContext } from './sources/context.ts';
import { DEBIAN_KEYRING, fetchDebian } from './sources/debian.ts';
import { fetchGithub, githubReleaseDir } from './sources/github.ts';
import { fetchHashicorp } from './sources/hashicorp.ts';
import { extractPid } from './extract.ts';
import { pidAlive } from '../pid-lock.ts';

export type { ProgressEvent };

export interface FetchReport {
  entries: ReleaseEntry[];
  unavailable: { component: ComponentName; arch: DebianArch; reason: string }[];
  downloadedBytes: number;
  /** The entries that were downloaded in this call (the others came from the cache). */
  fetched: { component: ComponentName; arch: DebianArch }[];
}

export interface EnsureOptions {
  cluster: Cluster;
  arches: DebianArch[];
  cacheDir: string;
  /** Use only the cache; anything missing is reported unavailable. */
  offline?: boolean;
  /** Default: all four. */
  components?: ComponentName[];
  onProgress?: (ev: ProgressEvent) => void;
  /** Where HashiCorp releases live (a mirror with the same layout). Default https://releases.hashicorp.com. */
  hashicorpBase?: string;
  /** Default https://github.com. */
  githubBase?: string;
  /** Debian archive URL. Default: the mirror in the host's apt sources. */
  debianMirror?: string;
  debianKeyring?: string;
  /** Replaces HashiCorp's key as the trust anchor; it goes through the same fingerprint check. */
  hashicorpKey?: { armoredKey: string; fingerprint: string };
  /** How cached binaries are checked: 'stamp' (default) re-hashes only files changed since
   *  they were last hashed; 'full' re-hashes every one. */
  verify?: Verify;
  /** Parallel component/arch fetches (default 4). */
  concurrency?: number;
}

/** One or more releases failed verification. The rest was fetched; `report` says what. */
export class FetchVerificationError extends VerificationError {
  constructor(
    readonly failures: { component: ComponentName; arch: DebianArch; error: VerificationError }[],
    readonly report: FetchReport,
  ) {
    super(
      `verification failed, nothing was cached for:\n${failures.map((f) => `  ${f.component} ${f.arch}: ${f.error.message}`).join('\n')}`,
    );
    this.name = 'FetchVerificationError';
  }
}

function sourceFor(ctx: SourceContext, spec: ComponentSpec): (arch: DebianArch) => Promise<Fetched> {
  switch (spec.source) {
    case 'debian':
      return (arch) => fetchDebian(ctx, spec, arch);
    case 'hashicorp':
      if (NAMING[spec.name] !== 'hashicorp') throw new UnavailableError(`${spec.name} is not a HashiCorp product; choose another source`);
      return (arch) => fetchHashicorp(ctx, spec, arch, ctx.hashicorpBase);
    case 'github':
      return (arch) => fetchGithub(ctx, spec, arch, githubReleaseDir(ctx.githubBase, spec));
    case 'mirror': {
      const mirror = spec.mirror;
      if (!mirror) throw new UnavailableError(`${spec.name}: source "mirror" needs a mirror directory or URL`);
      return NAMING[spec.name] === 'hashicorp'
        ? (arch) => fetchHashicorp(ctx, spec, arch, mirror)
        : (arch) => fetchGithub(ctx, spec, arch, `${mirror.replace(/\/+$/, '')}/${spec.name}/${spec.version}`);
    }
  }
}

/** Files in <cache>/tmp older than this are leftovers of a killed run (the files of a killed
 *  extraction, which carry its PID, go at once); partial downloads (*.part) are kept longer,
 *  since the next run resumes them, and so are their locks (a lock's holder may still be
 *  downloading; download.ts takes over the locks of the gone). */
const STALE_MS = 60 * 60 * 1000;
const STALE_PART_MS = 7 * 24 * 60 * 60 * 1000;

async function cleanTmp(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const p = join(dir, name);
    const extractor = extractPid(name);
    if (extractor !== null && !pidAlive(extractor)) {
      await rm(p, { force: true }); // its extraction was killed midway
      continue;
    }
    const s = await stat(p).catch(() => null);
    if (s && Date.now() - s.mtimeMs > (/\.part(\.lock)?$/.test(name) ? STALE_PART_MS : STALE_MS)) {
      await rm(p, { force: true, recursive: true });
    }
  }
}

async function pool<T>(items: T[], n: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await work(items[next++]!);
  });
  await Promise.all(runners);
}

export async function ensureReleases(opts: EnsureOptions): Promise<FetchReport> {
  const { cacheDir } = opts;
  const tmp = tmpDir(cacheDir);
  await mkdir(tmp, { recursive: true });
  await cleanTmp(tmp);
  const custom = opts.hashicorpKey;
  let anchor: ReturnType<typeof hashicorpTrust> | undefined;
  const ctx: SourceContext = {
    cacheDir,
    tmp,
    onProgress: opts.onProgress as OnProgress | undefined,
    hashicorpTrust: () => (anchor ??= custom ? trustedKey(custom.armoredKey, custom.fingerprint) : hashicorpTrust()),
    hashicorpBase: opts.hashicorpBase ?? DEFAULT_HASHICORP_BASE,
    githubBase: opts.githubBase ?? DEFAULT_GITHUB_BASE,
    debianMirror: opts.debianMirror,
    debianKeyring: opts.debianKeyring ?? DEBIAN_KEYRING,
    memo: new Map(),
    debianPackages: new Set(
      (opts.components ?? [...COMPONENTS])
        .map((c) => opts.cluster.components[c])
        .filter((s) => s.source === 'debian')
        .map((s) => s.package ?? DEBIAN_PACKAGE[s.name].package),
    ),
  };

  const report: FetchReport = { entries: [], unavailable: [], downloadedBytes: 0, fetched: [] };
  const failures: FetchVerificationError['failures'] = [];
  let bug: unknown;
  const tasks = (opts.components ?? [...COMPONENTS]).flatMap((c) => opts.arches.map((arch) => ({ c, arch })));

  await pool(tasks, opts.concurrency ?? 4, async ({ c, arch }) => {
    const spec = opts.cluster.components[c];
    try {
      const hit = await findRelease(cacheDir, spec, arch, { verify: opts.verify ?? 'stamp' });
      if (hit) {
        report.entries.push(hit);
        return;
      }
      if (opts.offline) {
        throw new UnavailableError(`${c} ${spec.version} for ${arch} is not in the cache ${cacheDir} (offline: nothing was downloaded)`);
      }
      const fetched = await sourceFor(ctx, spec)(arch);
      report.downloadedBytes += fetched.transferred;
      try {
        const sha256: Record<string, string> = {};
        for (const [prog, f] of Object.entries(fetched.files)) {
          await storeBlob(cacheDir, f.path, f.sha256);
          sha256[prog] = f.sha256;
        }
        report.entries.push(
          await writeEntry(cacheDir, spec, arch, { origin: fetched.origin, sha256, upstreamVersion: fetched.upstreamVersion }),
        );
        report.fetched.push({ component: c, arch });
      } finally {
        for (const f of Object.values(fetched.files)) await rm(f.path, { force: true });
      }
    } catch (err) {
      if (err instanceof VerificationError) failures.push({ component: c, arch, error: err });
      else if (err instanceof UserError) report.unavailable.push({ component: c, arch, reason: err.message });
      else bug ??= err;
    }
  });
  const order = (c: ComponentName, a: DebianArch) => `${COMPONENTS.indexOf(c)} ${a}`;
  report.entries.sort((x, y) => order(x.component, x.arch).localeCompare(order(y.component, y.arch)));
  report.unavailable.sort((x, y) => order(x.component, x.arch).localeCompare(order(y.component, y.arch)));
  if (bug) throw bug;
  if (failures.length) throw new FetchVerificationError(failures, report);
  return report;
}
