// HashiCorp release source (releases.hashicorp.com layout, or a mirror of it):
//   <base>/<name>/<version>/index.json              builds (os, arch, filename), shasums names
//   <base>/<name>/<version>/<name>_<ver>_SHA256SUMS  and its detached signature(s):
//       <...>_SHA256SUMS.<KEYID>.sig (one per signing key) and <...>_SHA256SUMS.sig
//   <base>/<name>/<version>/<name>_<ver>_linux_<arch>.zip
// SHA256SUMS must carry a valid signature by the pinned key; the zip must match its line.
import { rm } from 'node:fs/promises';
import { upstreamArch } from '../../cluster/boards.ts';
import type { DebianArch } from '../../cluster/boards.ts';
import type { ComponentSpec } from '../../cluster/types.ts';
import { PROGRAMS } from '../catalog.ts';
import { downloadFile, fetchBytes, joinLocation } from '../download.ts';
import { NotFoundError, UnavailableError, VerificationError } from '../errors.ts';
import { byBasename, extractFromZip } from '../extract.ts';
import { verifyDetached } from '../pgp.ts';
import { parseSha256Sums } from './checksums.ts';
import { type Fetched, memo, onePerUrl, type SourceContext, tmpFor } from './context.ts';

interface VersionIndex {
  name?: string;
  version?: string;
  shasums?: string;
  shasums_signature?: string;
  shasums_signatures?: string[];
  builds?: { os?: string; arch?: string; filename?: string; url?: string }[];
}

const SAFE_NAME = /^[A-Za-z0-9._+-]+$/;

interface VerifiedSums {
  index: VersionIndex | null;
  sums: Map<string, string>;
  sumsName: string;
}

/** index.json (optional: a bare mirror may lack it) and the signature-checked SHA256SUMS for one version. */
async function verifiedSums(ctx: SourceContext, base: string, spec: ComponentSpec): Promise<VerifiedSums> {
  return memo(ctx, `hashicorp ${base} ${spec.name} ${spec.version}`, async () => {
    const dir = joinLocation(base, spec.name, spec.version);
    let index: VersionIndex | null = null;
    try {
      index = JSON.parse((await fetchBytes(joinLocation(dir, 'index.json'))).toString('utf8')) as VersionIndex;
    } catch (err) {
      if (!(err instanceof NotFoundError)) {
        if (err instanceof SyntaxError) throw new VerificationError(`${dir}/index.json is not valid JSON`);
        throw err;
      }
    }
    const sumsName = index?.shasums ?? `${spec.name}_${spec.version}_SHA256SUMS`;
    if (!SAFE_NAME.test(sumsName)) throw new VerificationError(`${dir}/index.json names a strange checksum file: ${sumsName}`);
    let sumsBytes: Buffer;
    try {
      sumsBytes = await fetchBytes(joinLocation(dir, sumsName));
    } catch (err) {
      if (err instanceof NotFoundError) {
        throw new UnavailableError(`${spec.name} ${spec.version} is not published at ${dir} (no ${sumsName})`);
      }
      throw err;
    }
    const anchor = await ctx.hashicorpTrust();
    const keyId = anchor.fingerprint.slice(-8);
    // HashiCorp publishes one signature per signing key; the one named after our key first.
    const names = [
      ...(index?.shasums_signatures ?? []),
      index?.shasums_signature ?? `${sumsName}.sig`,
      `${sumsName}.${keyId}.sig`,
      `${sumsName}.sig`,
    ].filter((n, i, all) => SAFE_NAME.test(n) && all.indexOf(n) === i);
    names.sort((a, b) => Number(b.includes(keyId)) - Number(a.includes(keyId)));
    let lastErr: Error | null = null;
    let verified = false;
    for (const n of names) {
      let sig: Buffer;
      try {
        sig = await fetchBytes(joinLocation(dir, n));
      } catch (err) {
        if (err instanceof NotFoundError) continue;
        throw err;
      }
      try {
        await verifyDetached(sumsBytes, sig, anchor, `${dir}/${n}`);
        verified = true;
        break;
      } catch (err) {
        lastErr = err as Error;
      }
    }
    if (!verified) {
      throw lastErr ?? new VerificationError(`${dir}: no signature file for ${sumsName} (tried ${names.join(', ')})`);
    }
    return { index, sums: parseSha256Sums(sumsBytes.toString('utf8'), `${dir}/${sumsName}`), sumsName };
  });
}

export async function fetchHashicorp(ctx: SourceContext, spec: ComponentSpec, arch: DebianArch, base: string): Promise<Fetched> {
  const upArch = upstreamArch('hashicorp', arch);
  if (!upArch) throw new UnavailableError(`HashiCorp publishes no ${spec.name} build for ${arch}`);
  const dir = joinLocation(base, spec.name, spec.version);
  const { index, sums, sumsName } = await verifiedSums(ctx, base, spec);
  // Always the conventional name: index.json is not signed, so it may say which builds
  // exist but must not choose the file (it could point at another platform's signed zip).
  const filename = `${spec.name}_${spec.version}_linux_${upArch}.zip`;
  if (index?.builds) {
    const build = index.builds.find((b) => b.os === 'linux' && b.arch === upArch);
    if (!build) {
      const have = index.builds.filter((b) => b.os === 'linux').map((b) => b.arch);
      throw new UnavailableError(
        `HashiCorp publishes no linux_${upArch} build of ${spec.name} ${spec.version} (needed for ${arch}; linux builds: ${have.join(', ') || 'none'})`,
      );
    }
  }
  const expected = sums.get(filename);
  if (!expected) {
    if (!index) throw new UnavailableError(`${dir}/${sumsName} lists no ${filename} (no ${spec.name} build for ${arch})`);
    throw new VerificationError(`${dir}/${sumsName} lists no checksum for ${filename}`);
  }
  const url = joinLocation(dir, filename);
  const zip = tmpFor(ctx, url);
  return onePerUrl(ctx, url, async () => {
    const dl = await downloadFile(url, zip, { expectedSha256: expected, label: filename, onProgress: ctx.onProgress });
    try {
      const files = await extractFromZip(zip, byBasename(PROGRAMS[spec.name]), ctx.tmp, filename);
      return { origin: url, files, transferred: dl.transferred };
    } finally {
      await rm(zip, { force: true });
    }
  });
}
