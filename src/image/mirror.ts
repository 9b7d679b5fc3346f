// The Debian archive the image is built from: by default the one the host's apt uses (read
// from apt's own lists, never hard-coded), so a machine with a local mirror or a proxy builds
// from there; --mirror and --security-mirror name others.
import { run } from './run.ts';
import { UserError } from '../errors.ts';

export interface Mirrors {
  main: string;
  /** null: built without security updates (only when asked for: --security-mirror none). */
  security: string | null;
}

/** The host's Debian archives by the Label of their Release files, from
 *  `apt-get indextargets --format '$(REPO_URI) $(LABEL)'`: "Debian" (the suite and its
 *  -updates) and "Debian-Security". Other repositories (HashiCorp's, Docker's, backports,
 *  Ubuntu's) are never taken, whatever order the sources are in. Pure. */
export function pickMirrors(indextargets: string): { main: string | null; security: string | null } {
  let main: string | null = null;
  let security: string | null = null;
  for (const line of indextargets.split('\n')) {
    const [uri, ...words] = line.trim().split(/\s+/);
    const label = words.join(' ');
    if (!uri || !label) continue;
    const base = uri.replace(/\/+$/, '');
    if (label === 'Debian') main ??= base;
    else if (label === 'Debian-Security') security ??= base;
  }
  return { main, security };
}

/** `given.securityMirror` "none" builds without security updates. Pure. */
export function resolveMirrors(
  host: { main: string | null; security: string | null },
  given: { mirror?: string; securityMirror?: string } = {},
): Mirrors {
  const main = given.mirror !== undefined ? archiveUrl(given.mirror, '--mirror') : host.main;
  if (!main) {
    throw new UserError(
      "the host's apt lists name no Debian archive (a Release file labelled Debian; run apt-get update on a Debian host): " +
        'give one with --mirror, e.g. --mirror http://deb.debian.org/debian',
    );
  }
  if (given.securityMirror === 'none') return { main, security: null };
  const security = given.securityMirror !== undefined ? archiveUrl(given.securityMirror, '--security-mirror') : host.security;
  if (!security) {
    throw new UserError(
      "the host's apt lists name no Debian security archive (labelled Debian-Security): give one with --security-mirror, " +
        'e.g. --security-mirror http://deb.debian.org/debian-security, or build without security updates with --security-mirror none',
    );
  }
  return { main, security };
}

function archiveUrl(value: string, option: string): string {
  if (!/^(https?|file):\/\/\S+$/.test(value)) throw new UserError(`${option} ${JSON.stringify(value)}: expected an http://, https:// or file:// URL`);
  return value.replace(/\/+$/, '');
}

export async function hostMirrors(): Promise<{ main: string | null; security: string | null }> {
  // Without --no-release-info apt reads each Release file for $(LABEL); a source whose lists
  // were never downloaded is left out.
  return pickMirrors(await run('apt-get', ['indextargets', '--format', '$(REPO_URI) $(LABEL)']));
}

/** One-line apt sources for the image build. */
export function sourcesLines(m: Mirrors, suite: string, components: string[]): string[] {
  const comps = components.join(' ');
  const lines = [`deb ${m.main} ${suite} ${comps}`, `deb ${m.main} ${suite}-updates ${comps}`];
  if (m.security) lines.push(`deb ${m.security} ${suite}-security ${comps}`);
  return lines;
}
