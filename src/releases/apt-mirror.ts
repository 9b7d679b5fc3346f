// The Debian mirror the host's apt already uses, read from `apt-get indextargets` so piinit
// never hard-codes a mirror host. PIINIT_DEBIAN_MIRROR overrides it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { UnavailableError } from './errors.ts';

let cached: Promise<string> | undefined;

export function hostDebianMirror(): Promise<string> {
  const env = process.env.PIINIT_DEBIAN_MIRROR;
  if (env) return Promise.resolve(env.replace(/\/+$/, ''));
  cached ??= (async () => {
    let out: string;
    try {
      ({ stdout: out } = await promisify(execFile)('apt-get', [
        'indextargets',
        '--format',
        '$(REPO_URI)\t$(ORIGIN)\t$(RELEASE)\t$(TARGET_OF)',
      ]));
    } catch (err) {
      throw new UnavailableError(
        `cannot ask apt for the Debian mirror (${(err as Error).message}); set PIINIT_DEBIAN_MIRROR to a Debian archive URL`,
      );
    }
    const rows = out
      .split('\n')
      .map((l) => l.split('\t'))
      .filter((r) => r.length >= 4 && r[1] === 'Debian' && r[3] === 'deb');
    // The main archive, not debian-security or -updates/-backports (those carry few packages).
    const main = rows.find((r) => !r[2]!.includes('-')) ?? rows[0];
    if (!main) {
      throw new UnavailableError(
        'the host apt sources name no Debian archive; set PIINIT_DEBIAN_MIRROR to a Debian archive URL',
      );
    }
    return main[0]!.replace(/\/+$/, '');
  })();
  return cached;
}
