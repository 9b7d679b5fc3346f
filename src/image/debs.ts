// Which of the built .debs go into a role's image, and in what order: the role package
// (piinit-<cluster>-<role>, which depends on everything the role needs) and its dependency
// closure among the .debs at hand, dependencies first. Dependencies not at hand (libc6)
// must already be in the base.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { run } from './run.ts';

export interface DebInfo {
  path: string;
  name: string;
  arch: string;
  /** Package names from Pre-Depends and Depends (first alternative, no versions). */
  depends: string[];
}

/** Parses a Depends-style field into package names. Pure. */
export function dependNames(field: string): string[] {
  return field
    .split(',')
    .map((d) => d.split('|')[0]!.trim().split(/[\s(:]/)[0]!)
    .filter(Boolean);
}

export async function readDebInfo(path: string): Promise<DebInfo> {
  const out = await run('dpkg-deb', ['-f', path, 'Package', 'Architecture', 'Pre-Depends', 'Depends']);
  const f = new Map<string, string>();
  let last = '';
  for (const line of out.split('\n')) {
    const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
    if (m) f.set((last = m[1]!), m[2]!);
    else if (/^\s/.test(line) && last) f.set(last, `${f.get(last)} ${line.trim()}`);
  }
  return { path, name: f.get('Package') ?? '', arch: f.get('Architecture') ?? '', depends: [...dependNames(f.get('Pre-Depends') ?? ''), ...dependNames(f.get('Depends') ?? '')] };
}

/** The closure of roots over the debs, dependencies before dependants. Pure. */
export function installOrder(debs: DebInfo[], roots: string[], arch: string): DebInfo[] {
  const byName = new Map<string, DebInfo>();
  for (const d of debs) if (d.arch === arch || d.arch === 'all') byName.set(d.name, d);
  const out: DebInfo[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string) => {
    const d = byName.get(name);
    if (!d || state.get(name)) return; // not ours (in the base), or already placed (cycles allowed by dpkg)
    state.set(name, 'visiting');
    for (const dep of d.depends) visit(dep);
    state.set(name, 'done');
    out.push(d);
  };
  for (const r of roots) {
    if (!byName.has(r)) throw new UserError(`package ${r} for ${arch} is not among the built packages (run: piinit packages)`);
    visit(r);
  }
  return out;
}

export async function roleDebs(dir: string, clusterName: string, role: string, arch: string): Promise<string[]> {
  const files = (await readdir(dir).catch(() => {
    throw new UserError(`package directory ${dir} not found (run: piinit packages --out ${dir})`);
  })).filter((f) => f.endsWith('.deb'));
  const infos = await Promise.all(files.sort().map((f) => readDebInfo(join(dir, f))));
  return installOrder(infos, [`piinit-${clusterName}-${role}`], arch).map((d) => d.path);
}

/** Debian packages our .debs depend on that are not among them (procps, curl, …): they
 *  must come with the base, since the layer installs with dpkg and has no apt lists. */
export async function externalDepends(debs: string[]): Promise<string[]> {
  const infos = await Promise.all(debs.map((d) => readDebInfo(d)));
  const ours = new Set(infos.map((i) => i.name));
  return [...new Set(infos.flatMap((i) => i.depends).filter((n) => !ours.has(n)))].sort();
}
