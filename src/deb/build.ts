// `piinit packages`: render every role, find the verified binaries in the release cache,
// define the packages and write them. All I/O of the packaging step happens here.
import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, open, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type DebianArch, ROLES, type Role } from '../cluster/boards.ts';
import type { Cluster, ComponentName } from '../cluster/types.ts';
import { UserError } from '../errors.ts';
import { findRelease } from '../releases/cache.ts';
import { PROGRAMS } from '../releases/catalog.ts';
import { type FileTree, isSymlink } from '../render/filetree.ts';
import { componentsOf, renderRole } from '../render/index.ts';
import { elfMatchesArch, readElf } from './elf.ts';
import type { Compression, DebPackage } from './model.ts';
import { type BinaryInput, definePackages, type PackageSet } from './packages.ts';
import { removeDeadTemps, writeDeb } from './writer.ts';

export interface BuildOptions {
  cluster: Cluster;
  /** Default: every arch the cluster's boards need. */
  arches?: DebianArch[];
  outDir: string;
  cacheDir: string;
  /** SOURCE_DATE_EPOCH; default: the environment's, else the newest mtime of the cluster files. */
  epoch?: number;
  compression?: Compression;
  onPackage?: (p: BuiltPackage, index: number, total: number) => void;
}

export interface BuiltPackage {
  name: string;
  version: string;
  arch: string;
  kind: 'binary' | 'config';
  file: string;
  path: string;
  size: number;
}

export interface BuildResult {
  outDir: string;
  epoch: number;
  configVersion: string;
  arches: DebianArch[];
  /** Role → the package that pulls in everything for that role. */
  rolePackages: Partial<Record<Role, string>>;
  packages: BuiltPackage[];
  /** Older builds of the same packages that were removed from the output directory. */
  replaced: string[];
}

export function rolesOf(cluster: Cluster): Role[] {
  return ROLES.filter((r) => cluster.nodes.some((n) => n.role === r));
}

/** A stable digest of what the config packages carry (every role's files). */
export function treeDigest(clusterName: string, trees: Map<Role, FileTree>): string {
  const h = createHash('sha256').update(`piinit-deb-v1\0${clusterName}\0`);
  for (const [role, tree] of [...trees.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    h.update(`role\0${role}\0`);
    for (const [path, e] of [...tree.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (isSymlink(e)) h.update(`l\0${path}\0${e.symlink}\0`);
      else {
        const c = Buffer.from(e.content);
        h.update(`f\0${path}\0${e.mode}\0${e.owner}\0${e.group}\0${c.length}\0`).update(c);
      }
    }
  }
  return h.digest('hex');
}

/** SOURCE_DATE_EPOCH if set, else the newest mtime of the cluster and secrets files. */
export async function resolveEpoch(cluster: Cluster, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const s = env.SOURCE_DATE_EPOCH;
  if (s !== undefined && s !== '') {
    if (!/^\d+$/.test(s)) throw new UserError(`SOURCE_DATE_EPOCH must be a number of seconds, got "${s}"`);
    return Number(s);
  }
  let newest = 0;
  for (const f of [cluster.files.cluster, cluster.files.secrets]) {
    try {
      newest = Math.max(newest, Math.floor((await stat(f)).mtimeMs / 1000));
    } catch {
      // a missing secrets file is fine here; the loader has already complained if it matters
    }
  }
  if (newest === 0) throw new UserError('cannot derive a build time: set SOURCE_DATE_EPOCH');
  return newest;
}

async function binaryInputs(cluster: Cluster, cacheDir: string, arches: DebianArch[], components: ComponentName[]): Promise<BinaryInput[]> {
  const out: BinaryInput[] = [];
  const problems: string[] = [];
  for (const arch of arches) {
    for (const c of components) {
      const spec = cluster.components[c];
      const entry = await findRelease(cacheDir, spec, arch);
      if (!entry) {
        problems.push(`${c} ${spec.version} for ${arch} is not in the release cache`);
        continue;
      }
      let dynamic = false;
      const binaries: Record<string, string> = {};
      for (const program of PROGRAMS[c]) {
        const path = entry.binaries[program];
        const elf = path ? await readElf(path).catch(() => null) : null;
        if (!path || !elf) {
          problems.push(`${c} ${spec.version} for ${arch}: the program ${program} is missing from the cached release`);
          continue;
        }
        if (!elfMatchesArch(elf, arch)) {
          problems.push(`${c} ${spec.version} for ${arch}: ${program} is built for ${elf.machine}/${elf.bits}-bit, not ${arch}`);
          continue;
        }
        dynamic ||= elf.dynamic;
        binaries[program] = path;
      }
      out.push({ component: c, version: spec.version, arch, origin: entry.origin, binaries, dynamic });
    }
  }
  if (problems.length) {
    throw new UserError(
      `cannot build the binary packages:\n  ${problems.join('\n  ')}\n` +
        `(release cache: ${cacheDir}; \`piinit fetch\` downloads and verifies the releases)`,
    );
  }
  return out;
}

/** Fails early (before any long work) when the output directory cannot take files. */
async function prepareOutDir(outDir: string): Promise<void> {
  try {
    await mkdir(outDir, { recursive: true });
    const probe = join(outDir, `.piinit-probe-${randomBytes(4).toString('hex')}`);
    await (await open(probe, 'wx')).close();
    await unlink(probe);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`cannot write packages to ${outDir}: ${code === 'EEXIST' ? 'a file is in the way' : (code ?? String(err))}`);
  }
}

export interface PreparedPackages {
  epoch: number;
  arches: DebianArch[];
  set: PackageSet;
}

/** Everything up to the writing: render, find and check the binaries, define the packages. */
export async function preparePackages(opts: Omit<BuildOptions, 'outDir' | 'onPackage' | 'compression'>): Promise<PreparedPackages> {
  const { cluster } = opts;
  const arches = [...new Set(opts.arches ?? [...new Set(cluster.nodes.map((n) => n.arch))])].sort();
  if (arches.length === 0) throw new UserError('no architectures to build for (the cluster has no nodes)');
  const roles = rolesOf(cluster);
  const trees = new Map<Role, FileTree>(roles.map((r) => [r, renderRole(cluster, r)]));
  const components = [...new Set(roles.flatMap((r) => componentsOf(r)))].sort();
  const epoch = opts.epoch ?? (await resolveEpoch(cluster));
  await access(opts.cacheDir).catch(() => {
    throw new UserError(`release cache ${opts.cacheDir} does not exist: run \`piinit fetch\` first`);
  });
  const binaries = await binaryInputs(cluster, opts.cacheDir, arches, components);
  const set = definePackages({ cluster, roleTrees: trees, binaries, epoch, digest: treeDigest(cluster.name, trees) });
  return { epoch, arches, set };
}

export async function buildPackages(opts: BuildOptions): Promise<BuildResult> {
  await prepareOutDir(opts.outDir);
  await removeDeadTemps(opts.outDir);
  const { epoch, arches, set } = await preparePackages(opts);
  const all: [DebPackage, 'config' | 'binary'][] = [
    ...set.config.map((p) => [p, 'config'] as [DebPackage, 'config']),
    ...set.binary.map((p) => [p, 'binary'] as [DebPackage, 'binary']),
  ];
  const packages: BuiltPackage[] = [];
  for (const [i, [p, kind]] of all.entries()) {
    const w = await writeDeb(p, opts.outDir, { mtime: epoch, ...(opts.compression ? { compression: opts.compression } : {}) });
    const built: BuiltPackage = { name: p.name, version: p.version, arch: p.arch, kind, file: w.file, path: w.path, size: w.size };
    packages.push(built);
    opts.onPackage?.(built, i + 1, all.length);
  }
  const replaced = await removeSuperseded(opts.outDir, packages);
  return {
    outDir: opts.outDir,
    epoch,
    replaced,
    configVersion: set.configVersion,
    arches,
    rolePackages: Object.fromEntries(set.rolePackage),
    packages,
  };
}

/** Removes other versions of the packages just built (name_*_arch.deb), so the output
 *  directory holds one consistent set for `piinit image`. Other files are left alone. */
async function removeSuperseded(outDir: string, built: BuiltPackage[]): Promise<string[]> {
  const current = new Set(built.map((p) => p.file));
  const keys = new Set(built.map((p) => `${p.name}\0${p.arch}`));
  const removed: string[] = [];
  for (const f of (await readdir(outDir)).sort()) {
    const m = /^([^_]+)_[^_]+_([^_]+)\.deb$/.exec(f);
    if (!m || current.has(f) || !keys.has(`${m[1]}\0${m[2]}`)) continue;
    await unlink(join(outDir, f));
    removed.push(f);
  }
  return removed;
}
