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
    const ask = async (args: string[]) => {
      try {
        return (await promisify(execFile)('apt-get', ['indextargets', ...args])).stdout;
      } catch (err) {
        throw new UnavailableError(
          `cannot ask apt for the Debian mirror (${(err as Error).message}); set PIINIT_DEBIAN_MIRROR to a Debian archive URL`,
        );
      }
    };
    const rows = (out: string) =>
      out
        .split('\n')
        .map((l) => l.split('\t'))
        .filter((r) => r.length >= 4 && r[3] === 'deb');
    // With downloaded lists apt knows each archive's Origin; without them (a fresh or cleaned
    // host: `apt-get clean`, no `apt-get update` yet) only the sources, so fall back to the
    // entries whose URI is a Debian archive (…/debian).
    let debian = rows(await ask(['--format', '$(REPO_URI)\t$(ORIGIN)\t$(RELEASE)\t$(TARGET_OF)'])).filter((r) => r[1] === 'Debian');
    if (debian.length === 0) {
      debian = rows(await ask(['--no-release-info', '--format', '$(REPO_URI)\t-\t$(RELEASE)\t$(TARGET_OF)'])).filter((r) =>
        /\/debian\/?$/.test(r[0]!),
      );
    }
    // The main archive, not debian-security or -updates/-backports (those carry few packages).
    const main = debian.find((r) => !r[2]!.includes('-')) ?? debian[0];
    if (!main) {
      throw new UnavailableError(
        'the host apt sources name no Debian archive; set PIINIT_DEBIAN_MIRROR to a Debian archive URL',
      );
    }
    return main[0]!.replace(/\/+$/, '');
  })();
  return cached;
}
