// Our config packages enable their daemons through systemd preset files. An image has a
// read-only root and a container has no first boot that would apply them, so the build does.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './run.ts';
import { IMAGE_PATH } from './targets.ts';

/** Enables the units our packages' preset files name (/usr/lib/systemd/system-preset/*piinit*):
 *  the daemons of the role. */
export async function enablePiinitPresets(root: string): Promise<string[]> {
  const dir = join(root, 'usr/lib/systemd/system-preset');
  const units: string[] = [];
  for (const f of (await readdir(dir).catch(() => [] as string[])).filter((n) => n.includes('piinit')).sort()) {
    for (const line of (await readFile(join(dir, f), 'utf8')).split('\n')) {
      const m = /^enable\s+(\S+)(?:\s+(\S+))?/.exec(line);
      if (m) units.push(m[2] && m[1]!.endsWith('@.service') ? m[1]!.replace('@.service', `@${m[2]}.service`) : m[1]!);
    }
  }
  if (units.length) await run('chroot', [root, 'systemctl', 'enable', ...units], { env: { PATH: IMAGE_PATH } });
  return units;
}
