// The text files of control.tar: control, md5sums, conffiles. Pure functions.
import {
  type DebEntry,
  type DebPackage,
  isContentEntry,
  isDirectoryEntry,
  isSourceEntry,
  PACKAGE_NAME,
  PACKAGE_VERSION,
} from './model.ts';

export function isRegular(e: DebEntry): boolean {
  return isContentEntry(e) || isSourceEntry(e);
}

/** Default conffiles: every regular file under /etc (Debian Policy 10.7.2). */
export function conffilesOf(p: DebPackage): string[] {
  if (p.conffiles) return [...p.conffiles].sort();
  return [...p.files.entries()]
    .filter(([path, e]) => path.startsWith('/etc/') && isRegular(e))
    .map(([path]) => path)
    .sort();
}

/** Installed-Size in KiB as dpkg-gencontrol counts it: each regular file rounded up to
 *  1 KiB, one KiB for every other entry (directories, symlinks). */
export function installedSizeKiB(entries: [string, DebEntry][], sizes: Map<string, number>): number {
  let kib = 0;
  for (const [path, e] of entries) {
    if (isRegular(e)) kib += Math.ceil((sizes.get(path) ?? 0) / 1024);
    else kib += 1;
  }
  return kib;
}

function formatDescription(description: string): string {
  const [synopsis = '', ...rest] = description.replace(/\s+$/, '').split('\n');
  const body = rest.map((l) => (l.trim() === '' ? ' .' : ` ${l}`));
  return [synopsis.trim(), ...body].join('\n');
}

export function validatePackage(p: DebPackage): void {
  if (!PACKAGE_NAME.test(p.name)) throw new Error(`invalid package name "${p.name}"`);
  if (!PACKAGE_VERSION.test(p.version)) throw new Error(`invalid version "${p.version}" of ${p.name}`);
  if (!/^[a-z0-9-]+$/.test(p.arch)) throw new Error(`invalid architecture "${p.arch}" of ${p.name}`);
  if (!p.description.trim()) throw new Error(`${p.name} has no description`);
  for (const c of p.conffiles ?? []) {
    const e = p.files.get(c);
    if (!e || !isRegular(e)) throw new Error(`conffile ${c} of ${p.name} is not a regular file in the package`);
  }
  for (const [path, e] of p.files) {
    if (isDirectoryEntry(e) || isRegular(e)) {
      const o = e as { mode: number; owner: string; group: string };
      if (!Number.isInteger(o.mode) || o.mode < 0 || o.mode > 0o7777) throw new Error(`bad mode for ${path}`);
      if (!/^[a-z_][a-z0-9_-]*$/.test(o.owner) || !/^[a-z_][a-z0-9_-]*$/.test(o.group)) {
        throw new Error(`bad owner/group for ${path}`);
      }
    }
  }
}

export function controlFile(p: DebPackage, installedSize: number): string {
  const fields: [string, string | undefined][] = [
    ['Package', p.name],
    ['Version', p.version],
    ['Architecture', p.arch],
    ['Maintainer', p.maintainer],
    ['Installed-Size', String(installedSize)],
    ['Pre-Depends', p.preDepends?.join(', ')],
    ['Depends', p.depends?.join(', ')],
    ['Conflicts', p.conflicts?.join(', ')],
    ['Breaks', p.breaks?.join(', ')],
    ['Replaces', p.replaces?.join(', ')],
    ['Provides', p.provides?.join(', ')],
    ['Section', p.section],
    ['Priority', p.priority],
    ['Homepage', p.homepage],
    ['Description', formatDescription(p.description)],
  ];
  return (
    fields
      .filter((f): f is [string, string] => f[1] !== undefined && f[1] !== '')
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n') + '\n'
  );
}

export function md5sumsFile(md5: Map<string, string>, exclude: Set<string>): string {
  return [...md5.entries()]
    .filter(([path]) => !exclude.has(path))
    .sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .map(([path, sum]) => `${sum}  ${path.slice(1)}\n`)
    .join('');
}
