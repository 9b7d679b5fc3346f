// Debian archive source: InRelease (OpenPGP, Debian archive keyring) → Packages index (by the
// SHA-256 listed in InRelease) → the .deb (by the SHA256 in Packages) → the binaries from
// its data.tar.
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DebianArch } from '../../cluster/boards.ts';
import type { ComponentSpec } from '../../cluster/types.ts';
import { hostDebianMirror } from '../apt-mirror.ts';
import { blobPath } from '../cache.ts';
import { DEBIAN_PACKAGE } from '../catalog.ts';
import { downloadFile, fetchBytes, joinLocation, sha256File } from '../download.ts';
import { NotFoundError, UnavailableError, unpackError, VerificationError } from '../errors.ts';
import { byPath, decompressor, extractFromDeb } from '../extract.ts';
import { verifyClearsigned } from '../pgp.ts';
import { type Fetched, memo, onePerUrl, type SourceContext, tmpFor } from './context.ts';

export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

interface Release {
  suite: string;
  codename: string;
  architectures: string[];
  components: string[];
  byHash: boolean;
  sha256: Map<string, { hash: string; size: number }>;
}

/** Parses the signed text of a Release/InRelease file. */
export function parseRelease(text: string): Release {
  const fields = new Map<string, string>();
  let current: string | null = null;
  for (const line of text.split('\n')) {
    if (/^\s/.test(line) && current) fields.set(current, `${fields.get(current)}\n${line.trim()}`);
    else {
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m) {
        current = m[1]!;
        fields.set(current, m[2]!);
      }
    }
  }
  const sha256 = new Map<string, { hash: string; size: number }>();
  for (const l of (fields.get('SHA256') ?? '').split('\n')) {
    const m = /^([0-9a-f]{64})\s+(\d+)\s+(\S+)$/.exec(l.trim());
    if (m) sha256.set(m[3]!, { hash: m[1]!, size: Number(m[2]) });
  }
  return {
    suite: fields.get('Suite') ?? '',
    codename: fields.get('Codename') ?? '',
    architectures: (fields.get('Architectures') ?? '').split(/\s+/).filter(Boolean),
    components: (fields.get('Components') ?? '').split(/\s+/).filter(Boolean),
    byHash: (fields.get('Acquire-By-Hash') ?? '').toLowerCase() === 'yes',
    sha256,
  };
}

export interface PackageStanza {
  package: string;
  version: string;
  architecture: string;
  filename: string;
  sha256: string;
  size: number;
}

/** Parses one Packages stanza, or null when it lacks what a download needs. */
function parseStanza(text: string): PackageStanza | null {
  const f: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !/^\s/.test(line)) f[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  if (!f.Package || !f.Filename || !f.SHA256) return null;
  return {
    package: f.Package,
    version: f.Version ?? '',
    architecture: f.Architecture ?? '',
    filename: f.Filename,
    sha256: f.SHA256.toLowerCase(),
    size: Number(f.Size),
  };
}

/**
 * Reads a (decompressed) Packages stream into package name → stanzas, keeping only the
 * packages in `wanted`. An index has ~60 000 stanzas and we need a handful, so the whole
 * index is searched as one Buffer for "Package: <name>" lines (much faster in Node than
 * splitting ~45 MB of text into strings).
 */
export async function parsePackages(input: AsyncIterable<Buffer | string>, wanted: Set<string>): Promise<Map<string, PackageStanza[]>> {
  const chunks: Buffer[] = [];
  for await (const c of input) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  const all = Buffer.concat(chunks);
  const out = new Map<string, PackageStanza[]>();
  for (const name of wanted) {
    const needle = Buffer.from(`Package: ${name}\n`);
    for (let i = all.indexOf(needle); i >= 0; i = all.indexOf(needle, i + 1)) {
      if (i > 0 && all[i - 1] !== 0x0a) continue; // "Package: x" inside another field
      const end = all.indexOf('\n\n', i);
      const st = parseStanza(all.toString('utf8', i, end < 0 ? all.length : end));
      if (!st) continue;
      const list = out.get(st.package);
      if (list) list.push(st);
      else out.set(st.package, [st]);
    }
  }
  return out;
}

/** "1.8.7" matches Debian's "1.8.7+dfsg1-2+b3" and "1.8.7-1", not "1.8.70". An epoch is ignored. */
export function debianVersionMatches(requested: string, debVersion: string): boolean {
  const v = debVersion.replace(/^\d+:/, '');
  if (v === requested) return true;
  return v.startsWith(requested) && /[+~-]/.test(v.charAt(requested.length));
}

async function release(ctx: SourceContext, mirror: string, suite: string): Promise<Release> {
  return memo(ctx, `inrelease ${mirror} ${suite}`, async () => {
    const url = joinLocation(mirror, 'dists', suite, 'InRelease');
    let text: string;
    try {
      text = (await fetchBytes(url)).toString('utf8');
    } catch (err) {
      if (err instanceof NotFoundError) throw new UnavailableError(`Debian suite "${suite}" is not on ${mirror} (no ${url})`);
      throw err;
    }
    const rel = parseRelease(await verifyClearsigned(text, ctx.debianKeyring, `Debian ${suite} InRelease from ${mirror}`));
    // A correctly signed InRelease of another suite (an old one, say) must not pass for this one.
    if (rel.codename !== suite && rel.suite !== suite) {
      throw new VerificationError(`${url} is signed but describes ${rel.codename || rel.suite || 'no suite'}, not ${suite}`);
    }
    return rel;
  });
}

async function packagesIndex(
  ctx: SourceContext,
  mirror: string,
  suite: string,
  arch: DebianArch,
  wanted: Set<string>,
): Promise<Map<string, PackageStanza[]>> {
  return memo(ctx, `packages ${mirror} ${suite} ${arch} ${[...wanted].sort().join(' ')}`, async () => {
    const rel = await release(ctx, mirror, suite);
    if (!rel.architectures.includes(arch)) {
      throw new UnavailableError(
        `Debian ${suite} on ${mirror} has no ${arch} packages (it lists: ${rel.architectures.join(' ') || 'none'})`,
      );
    }
    const dir = `main/binary-${arch}`;
    const name = ['Packages.xz', 'Packages.gz'].find((n) => rel.sha256.has(`${dir}/${n}`));
    if (!name) throw new UnavailableError(`Debian ${suite} InRelease on ${mirror} lists no ${dir}/Packages.xz or .gz`);
    const { hash, size } = rel.sha256.get(`${dir}/${name}`)!;
    // Indexes are kept in the blob store too, by their hash: a later fetch of another
    // package from the same suite does not download them again.
    const blob = blobPath(ctx.cacheDir, hash);
    const have = await sha256File(blob).catch(() => null);
    if (have !== hash) {
      const url = rel.byHash
        ? joinLocation(mirror, 'dists', suite, dir, 'by-hash', 'SHA256', hash)
        : joinLocation(mirror, 'dists', suite, dir, name);
      const tmp = tmpFor(ctx, url);
      await downloadFile(url, tmp, {
        expectedSha256: hash,
        expectedSize: size,
        label: `${suite}/${dir}/${name}`,
        onProgress: ctx.onProgress,
      });
      await mkdir(join(ctx.cacheDir, 'blobs', 'sha256'), { recursive: true });
      await rename(tmp, blob);
    }
    const { stream, done } = decompressor(name);
    const text = new PassThrough();
    const piping = pipeline(createReadStream(blob), stream, text);
    const [parsed] = await Promise.all([parsePackages(text, wanted), piping, done]);
    return parsed;
  });
}

export async function fetchDebian(ctx: SourceContext, spec: ComponentSpec, arch: DebianArch): Promise<Fetched> {
  const mirror = ctx.debianMirror ?? (await hostDebianMirror());
  const suite = spec.suite;
  if (!suite) throw new UnavailableError(`${spec.name}: source "debian" needs a suite (e.g. bookworm)`);
  const pkg = spec.package ?? DEBIAN_PACKAGE[spec.name].package;
  // Every Debian package this run needs, so the index is read once for all of them.
  const wanted = new Set([...(ctx.debianPackages ?? []), pkg]);
  const index = await packagesIndex(ctx, mirror, suite, arch, wanted);
  const all = (index.get(pkg) ?? []).filter((s) => s.architecture === arch || s.architecture === 'all');
  if (all.length === 0) throw new UnavailableError(`Debian ${suite} has no package ${pkg} for ${arch}`);
  const match = all.filter((s) => debianVersionMatches(spec.version, s.version));
  if (match.length === 0) {
    throw new UnavailableError(
      `Debian ${suite} has ${pkg} ${[...new Set(all.map((s) => s.version))].join(', ')} for ${arch}, not ${spec.version}`,
    );
  }
  const stanza = match[match.length - 1]!;
  const url = joinLocation(mirror, stanza.filename);
  const debTmp = tmpFor(ctx, url);
  return onePerUrl(ctx, url, async () => {
    const dl = await downloadFile(url, debTmp, {
      expectedSha256: stanza.sha256,
      expectedSize: stanza.size,
      label: stanza.filename.split('/').pop()!,
      onProgress: ctx.onProgress,
    });
    try {
      const files = await extractFromDeb(debTmp, byPath(DEBIAN_PACKAGE[spec.name].paths), ctx.tmp, stanza.filename);
      return { origin: url, upstreamVersion: stanza.version, files, transferred: dl.transferred };
    } catch (err) {
      throw unpackError(stanza.filename, err);
    } finally {
      await rm(debTmp, { force: true });
    }
  });
}
