// The Debian archive the image is built from: the same mirror the host's apt uses (read
// from apt's own configuration, never hard-coded), so a machine with a local mirror or a
// proxy builds from there.
import { run } from './run.ts';
import { UserError } from '../errors.ts';

export interface AptSource {
  uri: string;
  suite: string;
}

/** Parses `apt-get indextargets --format '$(REPO_URI) $(RELEASE)'` output. Pure. */
export function pickMirrors(indextargets: string, suite: string): { main: string; security: string | null } {
  let main: string | null = null;
  let security: string | null = null;
  for (const line of indextargets.split('\n')) {
    const [uri, release] = line.trim().split(/\s+/);
    if (!uri || !release) continue;
    const base = uri.replace(/\/+$/, '');
    if (release === `${suite}-security` || /security/.test(release)) security ??= base;
    else if (!/updates|backports|proposed/.test(release)) main ??= base;
  }
  if (!main) throw new UserError('could not find a Debian mirror in the host apt sources (apt-get indextargets)');
  return { main, security };
}

export async function hostMirrors(suite: string): Promise<{ main: string; security: string | null }> {
  const out = await run('apt-get', ['indextargets', '--no-release-info', '--format', '$(REPO_URI) $(RELEASE)']);
  return pickMirrors(out, suite);
}

/** One-line apt sources for the image build. */
export function sourcesLines(m: { main: string; security: string | null }, suite: string, components: string[]): string[] {
  const comps = components.join(' ');
  const lines = [`deb ${m.main} ${suite} ${comps}`, `deb ${m.main} ${suite}-updates ${comps}`];
  if (m.security) lines.push(`deb ${m.security} ${suite}-security ${comps}`);
  return lines;
}
