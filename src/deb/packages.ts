// Which packages piinit builds, as plain data (DebPackage). Pure: the caller supplies the
// rendered trees and the release binaries; writing is writer.ts's job.
//
//   piinit-consul, piinit-nomad, piinit-prometheus, piinit-node-exporter   (per arch)
//       the upstream binaries in /usr/bin, version <upstream>-1
//   piinit-<cluster>-users                 sysusers.d for every daemon (Pre-Depended on)
//   piinit-<cluster>-consul-server|client, -nomad-server|client, -prometheus, -node-exporter
//       configs, units, tmpfiles, WantedBy symlinks of one daemon (Architecture: all)
//   piinit-<cluster>-base                  system files every role shares
//   piinit-<cluster>-server|client|monitor one per role: the preset, depends on the rest
// Config packages share one version that grows with every change of the cluster.
import { gzipSync } from 'node:zlib';
import type { DebianArch, Role } from '../cluster/boards.ts';
import type { Cluster, ComponentName } from '../cluster/types.ts';
import { type FileTree, isSymlink } from '../render/filetree.ts';
import type { DebEntry, DebPackage } from './model.ts';
import { conffilesOf } from './control.ts';
import { inferDepends } from './depends.ts';
import { type Part, partOf } from './split.ts';

export const MAINTAINER = 'piinit <packages@piinit.dev>';
const HOMEPAGE = 'https://github.com/piinit/piinit';

/** The control fields every configuration package shares. */
function configHeader(name: string, version: string) {
  return { name, version, arch: 'all' as const, maintainer: MAINTAINER, section: 'admin', priority: 'optional', homepage: HOMEPAGE };
}

export const BINARY_PACKAGE: Record<ComponentName, string> = {
  consul: 'piinit-consul',
  nomad: 'piinit-nomad',
  prometheus: 'piinit-prometheus',
  node_exporter: 'piinit-node-exporter',
};

/** The Debian packages shipping the same programs or the same service (ports, unit names). */
const DEBIAN_COUNTERPART: Record<ComponentName, { name: string; sameFiles: boolean }> = {
  consul: { name: 'consul', sameFiles: true },
  nomad: { name: 'nomad', sameFiles: true },
  prometheus: { name: 'prometheus', sameFiles: true },
  node_exporter: { name: 'prometheus-node-exporter', sameFiles: false },
};

const UPSTREAM: Record<ComponentName, { title: string; url: string; copyright: string }> = {
  consul: { title: 'HashiCorp Consul', url: 'https://github.com/hashicorp/consul', copyright: '2013 HashiCorp, Inc.' },
  nomad: { title: 'HashiCorp Nomad', url: 'https://github.com/hashicorp/nomad', copyright: '2015 HashiCorp, Inc.' },
  prometheus: { title: 'Prometheus', url: 'https://github.com/prometheus/prometheus', copyright: '2012 The Prometheus Authors' },
  node_exporter: { title: 'Prometheus node_exporter', url: 'https://github.com/prometheus/node_exporter', copyright: '2015 The Prometheus Authors' },
};

export interface BinaryInput {
  component: ComponentName;
  /** Upstream version, e.g. 1.8.7. */
  version: string;
  arch: DebianArch;
  /** Where the verified binaries came from (URL), for the description. */
  origin: string;
  /** program → absolute path of the verified executable. */
  binaries: Record<string, string>;
  /** True when an executable is dynamically linked (needs libc6). */
  dynamic: boolean;
}

/** Upstream version → Debian version of a binary package: "1.8.7" → "1.8.7-1". */
export function binaryVersion(upstream: string): string {
  // A pre-release (1.7.0-beta.1) sorts before its release in Debian only with "~".
  const v = upstream
    .replace(/^v/, '')
    .replace(/^([0-9][0-9.]*)-/, '$1~')
    .replace(/[^A-Za-z0-9.+~]/g, '+');
  if (!/^[0-9]/.test(v)) throw new Error(`upstream version "${upstream}" does not start with a digit`);
  return `${v}-1`;
}

/** Config package version: UTC date and time of the cluster change (SOURCE_DATE_EPOCH),
 *  then a digest of all rendered files, so two different clusters never share a version:
 *  1763938301 + abcdef… → "20251123.225141+abcdef0123". */
export function configVersion(epoch: number, digest: string): string {
  const d = new Date(epoch * 1000).toISOString(); // 2025-11-23T22:51:41.000Z
  const date = d.slice(0, 10).replace(/-/g, '');
  const time = d.slice(11, 19).replace(/:/g, '');
  return `${date}.${time}+${digest.slice(0, 10)}`;
}

export function clusterPrefix(cluster: Cluster): string {
  const slug = cluster.name
    .toLowerCase()
    .replace(/[^a-z0-9+.-]+/g, '-')
    .replace(/^[^a-z0-9]+|-+$/g, '');
  return `piinit-${slug || 'cluster'}`;
}

function changelog(name: string, version: string, epoch: number, lines: string[]): Buffer {
  const date = new Date(epoch * 1000).toUTCString().replace('GMT', '+0000');
  const text =
    `${name} (${version}) piinit; urgency=medium\n\n` +
    lines.map((l) => `  * ${l}\n`).join('') +
    `\n -- ${MAINTAINER}  ${date}\n`;
  // gzip -9n: maximum compression, no name, no timestamp (what lintian and reproducibility want).
  return gzipSync(Buffer.from(text), { level: 9 });
}

function docFiles(name: string, version: string, epoch: number, copyright: string, changes: string[], native: boolean): [string, DebEntry][] {
  const own = { mode: 0o644, owner: 'root', group: 'root' };
  return [
    [`/usr/share/doc/${name}/copyright`, { content: copyright, ...own }],
    [`/usr/share/doc/${name}/${native ? 'changelog.gz' : 'changelog.Debian.gz'}`, { content: changelog(name, version, epoch, changes), ...own }],
  ];
}

/** HashiCorp moved Consul ≥ 1.17 and Nomad ≥ 1.7 to the Business Source License. */
function licenseOf(component: ComponentName, version: string): { name: string; text: string } {
  const [maj = 0, min = 0] = version.split('.').map((n) => Number.parseInt(n, 10));
  const busl = (component === 'consul' && (maj > 1 || min >= 17)) || (component === 'nomad' && (maj > 1 || min >= 7));
  if (busl) return { name: 'BUSL-1.1', text: 'Business Source License 1.1; the full text ships with the upstream release\nand is at https://www.hashicorp.com/bsl.' };
  if (component === 'consul' || component === 'nomad') return { name: 'MPL-2.0', text: 'Mozilla Public License 2.0; see /usr/share/common-licenses/MPL-2.0.' };
  return { name: 'Apache-2.0', text: 'Apache License 2.0; see /usr/share/common-licenses/Apache-2.0.' };
}

export function binaryPackage(b: BinaryInput, epoch: number): DebPackage {
  const name = BINARY_PACKAGE[b.component];
  const version = binaryVersion(b.version);
  const up = UPSTREAM[b.component];
  const lic = licenseOf(b.component, b.version);
  const files = new Map<string, DebEntry>();
  for (const [program, path] of Object.entries(b.binaries).sort(([a], [c]) => a.localeCompare(c))) {
    files.set(`/usr/bin/${program}`, { source: path, mode: 0o755, owner: 'root', group: 'root' });
  }
  const copyright =
    `${up.title} ${b.version}, packaged by piinit.\n\nUpstream: ${up.url}\nBinaries from: ${b.origin}\n\n` +
    `Copyright ${up.copyright}\n\nLicense: ${lic.name}\n${lic.text}\n`;
  for (const [p, e] of docFiles(name, version, epoch, copyright, [`Upstream ${up.title} ${b.version} for ${b.arch}.`], false)) files.set(p, e);
  const counterpart = DEBIAN_COUNTERPART[b.component];
  return {
    name,
    version,
    arch: b.arch,
    maintainer: MAINTAINER,
    section: 'admin',
    priority: 'optional',
    homepage: up.url,
    depends: b.dynamic ? ['libc6'] : [],
    // Debian's own package ships the same /usr/bin paths (or the same service on the same
    // port): only one of the two can be installed. Provides only where the programs match.
    conflicts: [counterpart.name],
    ...(counterpart.sameFiles ? { replaces: [counterpart.name], provides: [`${counterpart.name} (= ${version})`] } : {}),
    description:
      `${up.title} ${b.version} (upstream binaries)\n` +
      `The ${Object.keys(b.binaries).sort().join(', ')} program(s) of ${up.title} ${b.version}\n` +
      `as released upstream, verified by piinit before packaging. Configuration,\n` +
      `system user and systemd unit come from the piinit config packages of a cluster.`,
    files,
  };
}

export interface PackageSetInput {
  cluster: Cluster;
  /** The roles to build for, with the FileTree renderRole gives for each. */
  roleTrees: Map<Role, FileTree>;
  /** Binaries per arch; only arches listed here get binary packages. */
  binaries: BinaryInput[];
  /** Seconds since the epoch (SOURCE_DATE_EPOCH) for versions, changelogs and mtimes. */
  epoch: number;
  /** Digest of everything the config packages carry (see treeDigest in build.ts). */
  digest: string;
}

export interface PackageSet {
  configVersion: string;
  /** Arch "all": users, base, per-daemon configs, per-role packages. */
  config: DebPackage[];
  /** Per arch. */
  binary: DebPackage[];
  /** Role → the per-role package to install (it depends on everything else). */
  rolePackage: Map<Role, string>;
}

function variantName(prefix: string, part: Part, role: Role): string {
  switch (part) {
    case 'consul':
    case 'nomad':
      return `${prefix}-${part}-${role === 'server' ? 'server' : 'client'}`;
    case 'prometheus':
      return `${prefix}-prometheus`;
    case 'node_exporter':
      return `${prefix}-node-exporter`;
    case 'users':
      return `${prefix}-users`;
    case 'base':
      return `${prefix}-base`;
    case 'role':
      return `${prefix}-${role}`;
  }
}

function treeKey(t: FileTree): string {
  return JSON.stringify(
    [...t.entries()].map(([p, e]) => [p, isSymlink(e) ? { s: e.symlink } : { ...e, content: Buffer.from(e.content).toString('base64') }]),
  );
}

function toDebEntry(path: string, e: FileTree extends Map<string, infer V> ? V : never, pkg: string): DebEntry {
  if (isSymlink(e)) return { symlink: e.symlink };
  if (e.secret && (e.mode & 0o007) !== 0) throw new Error(`secret ${path} in ${pkg} would be world-readable (mode ${e.mode.toString(8)})`);
  return { content: e.content, mode: e.mode, owner: e.owner, group: e.group };
}

const WANTS_LINK = /^\/etc\/systemd\/system\/[^/]+\.(?:wants|requires)\/([^/@]+)(?:@([^/]*))?(\.[a-z]+)$/;

/**
 * A package's files. WantedBy symlinks under /etc/systemd/system (what `systemctl enable`
 * makes) are not shipped: that directory belongs to the administrator, and lintian rejects
 * units there. Each becomes a line of a preset file the package ships instead, applied by
 * `systemctl preset-all` when the image is built (and by systemd on a first boot).
 */
export function packageFiles(tree: FileTree, pkg: string): Map<string, DebEntry> {
  const files = new Map<string, DebEntry>();
  const enable: string[] = [];
  for (const [p, e] of tree) {
    const m = WANTS_LINK.exec(p);
    if (m && isSymlink(e)) {
      const [, unit, instance, suffix] = m;
      enable.push(instance !== undefined ? `enable ${unit}@${suffix} ${instance}` : `enable ${unit}${suffix}`);
      continue;
    }
    files.set(p, toDebEntry(p, e, pkg));
  }
  if (enable.length) {
    files.set(`/usr/lib/systemd/system-preset/40-${pkg}.preset`, {
      content: `# Services the package ${pkg} enables (systemctl preset).\n${[...new Set(enable)].sort().join('\n')}\n`,
      mode: 0o644,
      owner: 'root',
      group: 'root',
    });
  }
  return files;
}

const PART_TEXT: Record<Part, string> = {
  consul: 'Consul agent config',
  nomad: 'Nomad agent config',
  prometheus: 'Prometheus config',
  node_exporter: 'node_exporter service',
  users: 'system users',
  base: 'base system config',
  role: 'role',
};

/** Debian wants the synopsis under 80 characters. */
function synopsis(s: string): string {
  return s.length <= 79 ? s : `${s.slice(0, 76)}...`;
}

interface Group {
  name: string;
  part: Part;
  roles: Role[];
  tree: FileTree;
}

export function definePackages(input: PackageSetInput): PackageSet {
  const { cluster, epoch } = input;
  const prefix = clusterPrefix(cluster);
  const version = configVersion(epoch, input.digest);

  // 1. Split every role's tree into parts; the same part of two roles is one package when
  //    the files are identical, and one package per role (name-<role>) when they differ.
  const byName = new Map<string, { part: Part; perRole: Map<Role, FileTree> }>();
  for (const [role, tree] of input.roleTrees) {
    const parts = new Map<Part, FileTree>();
    for (const [path, e] of tree) {
      const part = partOf(path);
      if (!parts.has(part)) parts.set(part, new Map());
      parts.get(part)!.set(path, e);
    }
    for (const [part, t] of parts) {
      const name = variantName(prefix, part, role);
      if (!byName.has(name)) byName.set(name, { part, perRole: new Map() });
      byName.get(name)!.perRole.set(role, t);
    }
  }
  const groups: Group[] = [];
  for (const [name, { part, perRole }] of byName) {
    const keys = new Map<string, Role[]>();
    for (const [role, t] of perRole) {
      const k = treeKey(t);
      keys.set(k, [...(keys.get(k) ?? []), role]);
    }
    if (part === 'users') {
      // Users of all roles go into one package: merge (identical paths must agree).
      const merged: FileTree = new Map();
      for (const t of perRole.values()) for (const [p, e] of t) merged.set(p, e);
      groups.push({ name, part, roles: [...perRole.keys()], tree: merged });
    } else if (keys.size === 1) {
      groups.push({ name, part, roles: [...perRole.keys()], tree: perRole.values().next().value! });
    } else {
      for (const [role, t] of perRole) groups.push({ name: `${name}-${role}`, part, roles: [role], tree: t });
    }
  }

  // The daemon's configuration is written for the version in cluster.yaml (keys differ
  // between versions): a config package needs exactly that binary package.
  const binaryDepends = (c: ComponentName) => `${BINARY_PACKAGE[c]} (= ${binaryVersion(cluster.components[c].version)})`;

  // 2. DebPackages for the groups.
  const usersName = `${prefix}-users`;
  const hasUsers = groups.some((g) => g.name === usersName);
  const config: DebPackage[] = [];
  const rolePackage = new Map<Role, string>();
  const sorted = groups.sort((a, b) => a.name.localeCompare(b.name));
  for (const g of sorted) {
    if (g.part === 'role') continue;
    const files = packageFiles(g.tree, g.name);
    const depends: string[] = [];
    const component = g.part === 'users' || g.part === 'base' ? null : g.part;
    if (component) depends.push(binaryDepends(component));
    depends.push(...inferDepends(files));
    // Packages of the same daemon with other variants ship the same paths.
    const conflicts = sorted
      .filter((o) => o !== g && o.part === g.part && o.part !== 'role')
      .map((o) => o.name);
    addDocs(files, g.name, version, epoch, cluster);
    const roles = g.roles.join(', ');
    config.push({
      ...configHeader(g.name, version),
      ...(hasUsers && g.name !== usersName ? { preDepends: [`${usersName} (>= ${version})`] } : {}),
      depends,
      ...(conflicts.length ? { conflicts } : {}),
      description:
        `${synopsis(`${PART_TEXT[g.part]} of the piinit cluster ${cluster.name}`)}\n` +
        `Generated by piinit from the cluster definition, for the role${g.roles.length > 1 ? 's' : ''}\n${roles}.\n` +
        `Files in /etc are conffiles; secrets in it are readable only by the\n` +
        `daemon's user.`,
      files,
      ...scriptsFor(g.part, files),
    });
  }

  // 3. One package per role: its preset, depending on everything the role runs.
  for (const role of input.roleTrees.keys()) {
    const name = `${prefix}-${role}`;
    const own = sorted.filter((g) => g.roles.includes(role) && g.part !== 'role');
    const preset = sorted.find((g) => g.part === 'role' && g.roles.includes(role));
    const files = preset ? packageFiles(preset.tree, name) : new Map<string, DebEntry>();
    addDocs(files, name, version, epoch, cluster);
    const binaries = [...new Set(own.map((g) => g.part))]
      .filter((p): p is ComponentName => p in BINARY_PACKAGE)
      .map(binaryDepends);
    const otherRoles = [...input.roleTrees.keys()].filter((r) => r !== role).map((r) => `${prefix}-${r}`);
    config.push({
      ...configHeader(name, version),
      depends: [...own.map((g) => `${g.name} (= ${version})`), ...binaries],
      ...(otherRoles.length ? { conflicts: otherRoles } : {}),
      description:
        `${synopsis(`piinit ${role} of the cluster ${cluster.name}`)}\n` +
        `Installs everything a ${role} of the cluster ${cluster.name} runs: the daemons,\n` +
        `their configuration and the base system configuration, and enables the\n` +
        `services through a systemd preset.`,
      files,
    });
    rolePackage.set(role, name);
  }
  config.sort((a, b) => a.name.localeCompare(b.name));

  const binary = input.binaries
    .map((b) => binaryPackage(b, epoch))
    .sort((a, b) => a.name.localeCompare(b.name) || a.arch.localeCompare(b.arch));

  const names = new Set<string>();
  for (const p of [...config, ...binary]) {
    const key = `${p.name}/${p.arch}`;
    if (names.has(key) || (p.arch === 'all' && Object.values(BINARY_PACKAGE).includes(p.name))) {
      throw new Error(`two packages named ${p.name} (${p.arch})`);
    }
    names.add(key);
  }
  return { configVersion: version, config, binary, rolePackage };
}

function addDocs(files: Map<string, DebEntry>, name: string, version: string, epoch: number, cluster: Cluster): void {
  const year = new Date(epoch * 1000).getUTCFullYear();
  const copyright =
    `Configuration generated by piinit for the cluster ${cluster.name}.\n\n` +
    `Copyright ${year} the operators of the cluster ${cluster.name}\n\nLicense: MPL-2.0\nSee /usr/share/common-licenses/MPL-2.0.\n`;
  for (const [p, e] of docFiles(name, version, epoch, copyright, [`Generated from the definition of the cluster ${cluster.name}.`], true)) {
    files.set(p, e);
  }
}

/** Removes this package's conffiles that its new version no longer ships: dpkg keeps them
 *  ("obsolete"), and the daemons would go on reading them (an acl.json after ACLs were
 *  turned off, the key file of a revoked SSH key). */
const REMOVE_OBSOLETE_CONFFILES =
  'if [ "$1" = configure ]; then\n' +
  "\tdpkg-query -W -f='${Conffiles}\\n' \"$DPKG_MAINTSCRIPT_PACKAGE\" | while read -r f _sum flag; do\n" +
  '\t\t# unless another package ships it now\n' +
  '\t\towners=$(dpkg-query -S "$f" 2>/dev/null | sed \'s/: .*//\')\n' +
  '\t\tif [ "$flag" = obsolete ] && [ "$owners" = "$DPKG_MAINTSCRIPT_PACKAGE" ]; then rm -f "$f"; fi\n' +
  '\tdone\n' +
  'fi\n';

/**
 * The only maintainer scripts (postinst), and only for installs on a running system (an
 * image build applies sysusers/tmpfiles itself, and systemd does at every boot; an image
 * installs every package fresh): create the users right away (so the daemons' config files
 * get their owners at unpack time, see docs/packages.md) and the data directories, as
 * debhelper's dh_installsysusers / dh_installtmpfiles generate; and remove the conffiles an
 * upgrade no longer ships.
 */
function scriptsFor(part: Part, files: Map<string, DebEntry>): Pick<DebPackage, 'maintainerScripts'> | Record<string, never> {
  const confs = (dir: string) =>
    [...files.keys()].filter((p) => p.startsWith(dir) && p.endsWith('.conf')).map((p) => p.slice(dir.length));
  const steps: string[] = [];
  const sysusers = part === 'users' ? confs('/usr/lib/sysusers.d/') : [];
  if (sysusers.length) {
    steps.push(`if [ "$1" = configure ] && command -v systemd-sysusers >/dev/null; then\n\tsystemd-sysusers ${sysusers.join(' ')}\nfi\n`);
  }
  const tmpfiles = part === 'users' ? [] : confs('/usr/lib/tmpfiles.d/');
  if (tmpfiles.length) {
    steps.push(`if [ "$1" = configure ] && command -v systemd-tmpfiles >/dev/null; then\n\tsystemd-tmpfiles --create ${tmpfiles.join(' ')} || true\nfi\n`);
  }
  if (conffilesOf({ files } as DebPackage).length) steps.push(REMOVE_OBSOLETE_CONFFILES);
  return steps.length ? { maintainerScripts: { postinst: `#!/bin/sh\nset -e\n${steps.join('')}` } } : {};
}
