// What every source gets from ensureReleases, and what it hands back.
import { createHash } from 'node:crypto';
import { join, posix } from 'node:path';
import type { OnProgress } from '../download.ts';
import type { Extracted } from '../extract.ts';
import type { TrustAnchor } from '../pgp.ts';

export interface SourceContext {
  cacheDir: string;
  /** <cacheDir>/tmp: same file system as the blobs, so a rename moves a verified file into place. */
  tmp: string;
  onProgress?: OnProgress;
  /** The key HashiCorp SHA256SUMS files must be signed with (production: the pinned HashiCorp key). */
  hashicorpTrust: () => Promise<TrustAnchor>;
  hashicorpBase: string;
  githubBase: string;
  /** Debian archive URL; undefined = the host apt mirror. */
  debianMirror?: string;
  debianKeyring: string;
  /** The Debian package names this run asks for (indexes are parsed once for all of them). */
  debianPackages?: Set<string>;
  /** Shared within one ensureReleases call: each index is fetched and parsed once. */
  memo: Map<string, Promise<unknown>>;
}

export interface Fetched {
  origin: string;
  upstreamVersion?: string;
  /** program → extracted file in ctx.tmp, hashed. */
  files: Record<string, Extracted>;
  /** Bytes that came over the network. */
  transferred: number;
}

export function memo<T>(ctx: SourceContext, key: string, make: () => Promise<T>): Promise<T> {
  let p = ctx.memo.get(key) as Promise<T> | undefined;
  if (!p) {
    p = make();
    ctx.memo.set(key, p);
  }
  return p;
}

/** A stable temp path per URL, so a download interrupted in one run resumes in the next. */
export function tmpFor(ctx: SourceContext, location: string): string {
  const id = createHash('sha256').update(location).digest('hex').slice(0, 16);
  const base = posix.basename(location.split('?')[0]!).replace(/[^A-Za-z0-9._+~-]/g, '_') || 'download';
  return join(ctx.tmp, `${id}-${base}`);
}

/**
 * Download-and-extract once per URL and run: two arches can map to the same upstream file
 * (HashiCorp's linux_arm serves armel and armhf), and two tasks must not write one temp file.
 * The second caller gets the same extracted files (storeBlob accepts a blob already stored).
 */
export async function onePerUrl(ctx: SourceContext, url: string, make: () => Promise<Fetched>): Promise<Fetched> {
  const key = `file ${url}`;
  const again = ctx.memo.has(key);
  const v = await memo(ctx, key, make);
  return again ? { ...v, transferred: 0 } : v;
}
