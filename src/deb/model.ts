// A Debian binary package as plain data. The writer knows nothing about Consul: whoever
// builds a DebPackage decides names, files, dependencies and scripts.

export interface Owned {
  /** Unix permission bits, e.g. 0o644. */
  mode: number;
  /** User and group *names* stored in the tar; the numeric ids are always 0, so dpkg falls
   *  back to root when a name does not exist at unpack time. */
  owner: string;
  group: string;
}

/** A regular file with its content in memory. */
export interface DebContentFile extends Owned {
  content: string | Buffer;
}

/** A regular file copied from disk while the archive is written (large binaries). */
export interface DebSourceFile extends Owned {
  source: string;
}

export interface DebSymlink {
  symlink: string;
}

export interface DebDirectory extends Owned {
  directory: true;
}

export type DebEntry = DebContentFile | DebSourceFile | DebSymlink | DebDirectory;

export type MaintainerScript = 'preinst' | 'postinst' | 'prerm' | 'postrm';

export interface DebPackage {
  name: string;
  /** Debian version, e.g. 1.8.7-1. */
  version: string;
  /** Debian architecture or "all". */
  arch: string;
  maintainer: string;
  /** First line: the synopsis; further lines: the extended description (plain text,
   *  blank lines become " ."). */
  description: string;
  section?: string;
  priority?: string;
  homepage?: string;
  depends?: string[];
  preDepends?: string[];
  conflicts?: string[];
  replaces?: string[];
  provides?: string[];
  breaks?: string[];
  /** Absolute path (e.g. /usr/bin/consul) → entry. Parent directories are added as
   *  root-owned 0755 unless listed. */
  files: Map<string, DebEntry>;
  /** Absolute paths of conffiles. Default: every regular file under /etc. */
  conffiles?: string[];
  maintainerScripts?: Partial<Record<MaintainerScript, string>>;
}

export type CompressionKind = 'xz' | 'gzip' | 'none';

export interface Compression {
  kind: CompressionKind;
  /** 0–9; default 6 (dpkg-deb's default for xz; for gzip dpkg-deb uses 9). */
  level?: number;
}

export function isSymlinkEntry(e: DebEntry): e is DebSymlink {
  return 'symlink' in e;
}
export function isDirectoryEntry(e: DebEntry): e is DebDirectory {
  return 'directory' in e;
}
export function isSourceEntry(e: DebEntry): e is DebSourceFile {
  return 'source' in e;
}
export function isContentEntry(e: DebEntry): e is DebContentFile {
  return 'content' in e;
}

/** Debian package name rules (Policy 5.6.1). */
export const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
/** Debian version rules (Policy 5.6.12), without checking ordering. */
export const PACKAGE_VERSION = /^(?:\d+:)?[0-9][A-Za-z0-9.+~-]*$/;

export function debFileName(p: Pick<DebPackage, 'name' | 'version' | 'arch'>): string {
  // The epoch is not part of file names (as dpkg-name does it).
  return `${p.name}_${p.version.replace(/^\d+:/, '')}_${p.arch}.deb`;
}
