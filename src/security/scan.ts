// Proof that no secret leaks: look for every secret value in an artefact — a FileTree, a
// directory (a written render, an image's root tree), a .deb, or captured text (logs,
// stdout) — and report each place where someone other than its daemon could read it.
import { execa } from 'execa';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { extract } from 'tar-stream';
import type { Secrets } from '../cluster/types.ts';
import { type FileTree, isSymlink } from '../render/filetree.ts';

export interface SecretValue {
  /** Which secret, e.g. "tokens.consulAgent" or "tls.consulServer.key". Never the value. */
  name: string;
  /** What is searched for: the value, or for PEM keys one line of its base64 body (which
   *  survives JSON escaping of the newlines). */
  needle: string;
}

export interface Finding {
  /** The artefact and the path inside it (or "stdout", a log file name...). */
  where: string;
  path: string;
  secret: string;
  reason: string;
  mode?: number;
  owner?: string;
  group?: string;
}

export interface ScanPolicy {
  /** Users allowed to own a secret-bearing file (default: root and the daemons' users). */
  owners?: string[];
  /** Groups allowed to read one (mode & 0o040). Default: root and the daemons' groups. */
  groups?: string[];
  /** When given, receives the path of every file that holds a secret (leak or not): proof
   *  that a scan actually met the secrets it looks for. */
  seen?: string[];
}

export const DAEMON_ACCOUNTS = ['root', 'consul', 'nomad', 'prometheus', 'node_exporter', 'node-exporter'];

export function secretValues(s: Secrets): SecretValue[] {
  const out: SecretValue[] = [
    { name: 'consulGossipKey', needle: s.consulGossipKey },
    { name: 'nomadGossipKey', needle: s.nomadGossipKey },
  ];
  for (const [k, v] of Object.entries(s.tokens)) if (v) out.push({ name: `tokens.${k}`, needle: v });
  if (s.tls) {
    for (const [k, kp] of Object.entries(s.tls)) out.push({ name: `tls.${k}.key`, needle: pemBodyLine(kp.key) });
  }
  if (s.wifiPassphrase) out.push({ name: 'wifiPassphrase', needle: s.wifiPassphrase });
  if (s.wifiPsk) out.push({ name: 'wifiPsk', needle: s.wifiPsk });
  return out.filter((v) => v.needle.length >= 8);
}

function pemBodyLine(pem: string): string {
  const lines = pem.split('\n').filter((l) => l && !l.startsWith('-----'));
  // The longest line: a full 64-character base64 line of the key.
  return lines.reduce((a, b) => (b.length > a.length ? b : a), '');
}

function secretsIn(content: string | Buffer, values: SecretValue[]): SecretValue[] {
  const buf = typeof content === 'string' ? Buffer.from(content) : content;
  return values.filter((v) => buf.includes(v.needle));
}

/** The access rule for one file holding a secret; null when it is fine. */
export function accessProblem(mode: number, owner: string, group: string, policy: ScanPolicy = {}): string | null {
  const owners = policy.owners ?? DAEMON_ACCOUNTS;
  const groups = policy.groups ?? DAEMON_ACCOUNTS;
  if (mode & 0o007) return `readable or writable by others (mode 0${(mode & 0o777).toString(8)})`;
  if (mode & 0o070 && !groups.includes(group)) return `group ${group} can read it (mode 0${(mode & 0o777).toString(8)})`;
  if (!owners.includes(owner)) return `owned by ${owner}, not root or a daemon's user`;
  return null;
}

function check(where: string, path: string, content: string | Buffer, mode: number, owner: string, group: string, values: SecretValue[], policy: ScanPolicy): Finding[] {
  const found = secretsIn(content, values);
  if (found.length === 0) return [];
  policy.seen?.push(path);
  const reason = accessProblem(mode, owner, group, policy);
  return reason ? found.map((v) => ({ where, path, secret: v.name, reason, mode: mode & 0o7777, owner, group })) : [];
}

/** A rendered FileTree: owners and modes as the tree says. Files that hold a secret but are
 *  not marked `secret` are reported too (they would be printed by tools that show content). */
export function scanFileTree(tree: FileTree, secrets: Secrets, where = 'file tree', policy: ScanPolicy = {}): Finding[] {
  const values = secretValues(secrets);
  const out: Finding[] = [];
  for (const [path, e] of tree) {
    if (isSymlink(e)) continue;
    out.push(...check(where, path, e.content, e.mode, e.owner, e.group, values, policy));
    if (!e.secret) {
      for (const v of secretsIn(e.content, values)) out.push({ where, path, secret: v.name, reason: 'holds a secret but is not marked secret' });
    }
  }
  return out;
}

/** Captured text (a log, a command's stdout/stderr): any secret in it is a leak. */
export function scanText(text: string | Buffer, secrets: Secrets, where: string): Finding[] {
  return secretsIn(text, secretValues(secrets)).map((v) => ({ where, path: '-', secret: v.name, reason: 'secret in output' }));
}

/** A directory tree on disk (a written render, an image's unpacked root). Owners are
 *  resolved through the tree's own etc/passwd and etc/group when it has them (an image),
 *  else through this machine's. Files bigger than maxBytes are not read. */
export async function scanDirectory(
  dir: string,
  secrets: Secrets,
  opts: ScanPolicy & { where?: string; maxBytes?: number; accounts?: 'tree' | 'host' } = {},
): Promise<Finding[]> {
  const values = secretValues(secrets);
  const maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
  const names = await accountNames(opts.accounts === 'tree' ? dir : '/');
  const out: Finding[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const ent of await readdir(d, { withFileTypes: true })) {
      const p = join(d, ent.name);
      if (ent.isDirectory()) await walk(p);
      else if (ent.isFile()) {
        const st = await lstat(p);
        if (st.size > maxBytes) continue;
        const owner = names.users.get(st.uid) ?? String(st.uid);
        const group = names.groups.get(st.gid) ?? String(st.gid);
        out.push(...check(opts.where ?? dir, `/${relative(dir, p)}`, await readFile(p), st.mode, owner, group, values, opts));
      }
    }
  };
  await walk(dir);
  return out;
}

/** A .deb: its data archive, with the owners and modes dpkg will give the files. */
export async function scanDeb(debPath: string, secrets: Secrets, policy: ScanPolicy = {}): Promise<Finding[]> {
  const values = secretValues(secrets);
  const tar = execa('dpkg-deb', ['--fsys-tarfile', debPath], { encoding: 'buffer', buffer: false });
  const ex = extract();
  const out: Finding[] = [];
  ex.on('entry', (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('end', () => {
      if (h.type === 'file') {
        const path = h.name.replace(/^\.\//, '/');
        out.push(...check(debPath, path, Buffer.concat(chunks), h.mode ?? 0, h.uname || String(h.uid ?? '?'), h.gname || String(h.gid ?? '?'), values, policy));
      }
      next();
    });
    stream.resume();
  });
  const done = new Promise<void>((resolve, reject) => {
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  tar.stdout!.pipe(ex);
  await Promise.all([tar, done]);
  return out;
}

async function accountNames(root: string): Promise<{ users: Map<number, string>; groups: Map<number, string> }> {
  const parse = async (file: string) => {
    const m = new Map<number, string>();
    try {
      for (const line of (await readFile(join(root, file), 'utf8')).split('\n')) {
        const f = line.split(':');
        if (f.length >= 3 && /^\d+$/.test(f[2]!)) m.set(Number(f[2]), f[0]!);
      }
    } catch {
      // No account database: numeric ids are reported as they are.
    }
    return m;
  };
  return { users: await parse('etc/passwd'), groups: await parse('etc/group') };
}

/** One line per finding, naming the secret but never showing it. */
export function formatFindings(findings: Finding[]): string {
  return findings.map((f) => `${f.where}: ${f.path}: ${f.secret}: ${f.reason}`).join('\n');
}
