// A FileTree is what a node (or a role's image) carries: absolute path → file.
// Render functions return FileTrees and do no I/O; writers live at the edges.

export interface FileEntry {
  content: string | Buffer;
  /** Unix mode, e.g. 0o644. Secrets are 0o600 or 0o640. */
  mode: number;
  owner: string;
  group: string;
  /** True when the content holds a secret: never printed, never world-readable. */
  secret?: boolean;
}

export interface SymlinkEntry {
  symlink: string;
}

export type FileTree = Map<string, FileEntry | SymlinkEntry>;

export function isSymlink(e: FileEntry | SymlinkEntry): e is SymlinkEntry {
  return 'symlink' in e;
}

export function file(
  content: string | Buffer,
  opts: { mode?: number; owner?: string; group?: string; secret?: boolean } = {},
): FileEntry {
  return {
    content,
    mode: opts.mode ?? 0o644,
    owner: opts.owner ?? 'root',
    group: opts.group ?? opts.owner ?? 'root',
    ...(opts.secret ? { secret: true } : {}),
  };
}

/** Merges trees left to right; a later tree may not silently replace a different file. */
export function mergeTrees(...trees: FileTree[]): FileTree {
  const out: FileTree = new Map();
  for (const t of trees) {
    for (const [path, entry] of t) {
      const prev = out.get(path);
      if (prev && JSON.stringify(prev) !== JSON.stringify(entry)) {
        throw new Error(`two renderers produced different content for ${path}`);
      }
      out.set(path, entry);
    }
  }
  return new Map([...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
