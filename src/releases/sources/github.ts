// GitHub release source (Prometheus, node_exporter): <dir>/<name>-<ver>.linux-<arch>.tar.gz
// checked against <dir>/sha256sums.txt. GitHub releases carry no signature: the checksum
// list is trusted as far as the HTTPS connection to github.com (or the mirror) is.
import { rm } from 'node:fs/promises';
import { upstreamArch } from '../../cluster/boards.ts';
import type { DebianArch } from '../../cluster/boards.ts';
import type { ComponentSpec } from '../../cluster/types.ts';
import { GITHUB_REPO, PROGRAMS } from '../catalog.ts';
import { downloadFile, fetchBytes, joinLocation } from '../download.ts';
import { NotFoundError, UnavailableError } from '../errors.ts';
import { byBasename, extractFromTarball } from '../extract.ts';
import { parseSha256Sums } from './checksums.ts';
import { type Fetched, memo, onePerUrl, type SourceContext, tmpFor } from './context.ts';

/** The release directory on GitHub itself. */
export function githubReleaseDir(base: string, spec: ComponentSpec): string {
  const repo = GITHUB_REPO[spec.name];
  if (!repo) throw new UnavailableError(`${spec.name} is not published as a GitHub release; choose another source`);
  return joinLocation(base, repo, 'releases', 'download', `v${spec.version}`);
}

/** `dir` holds the release assets: githubReleaseDir(...) or <mirror>/<name>/<version>. */
export async function fetchGithub(ctx: SourceContext, spec: ComponentSpec, arch: DebianArch, dir: string): Promise<Fetched> {
  const upArch = upstreamArch('github', arch);
  if (!upArch) throw new UnavailableError(`${spec.name} publishes no build for ${arch}`);
  const sums = await memo(ctx, `github ${dir}`, async () => {
    try {
      return parseSha256Sums((await fetchBytes(joinLocation(dir, 'sha256sums.txt'))).toString('utf8'), `${dir}/sha256sums.txt`);
    } catch (err) {
      if (err instanceof NotFoundError) {
        throw new UnavailableError(`${spec.name} ${spec.version} is not published at ${dir} (no sha256sums.txt)`);
      }
      throw err;
    }
  });
  const filename = `${spec.name}-${spec.version}.linux-${upArch}.tar.gz`;
  const expected = sums.get(filename);
  if (!expected) {
    throw new UnavailableError(`${dir}/sha256sums.txt lists no ${filename}: ${spec.name} ${spec.version} has no linux-${upArch} build (needed for ${arch})`);
  }
  const url = joinLocation(dir, filename);
  const tgz = tmpFor(ctx, url);
  return onePerUrl(ctx, url, async () => {
    const dl = await downloadFile(url, tgz, { expectedSha256: expected, label: filename, onProgress: ctx.onProgress });
    try {
      const files = await extractFromTarball(tgz, byBasename(PROGRAMS[spec.name]), ctx.tmp, filename);
      return { origin: url, files, transferred: dl.transferred };
    } finally {
      await rm(tgz, { force: true });
    }
  });
}
