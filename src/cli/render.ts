import { type Command, Option } from '@commander-js/extra-typings';
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROLES, type Role } from '../cluster/boards.ts';
import { formatDiagnostic } from '../cluster/diagnostics.ts';
import { loadCluster } from '../cluster/load.ts';
import type { Cluster } from '../cluster/types.ts';
import { UserError } from '../errors.ts';
import type { FileTree } from '../render/filetree.ts';
import { bootCmdlineExtras, renderNode, renderRole } from '../render/index.ts';
import { type ManifestEntry, manifestOf, writeTree } from '../render/write.ts';

export const MANIFEST_SUFFIX = '.manifest.json';

interface Rendered {
  /** Node name, or the role for --role. */
  name: string;
  kind: 'node' | 'role';
  role: Role;
  bootCmdlineExtras: string[];
  tree: FileTree;
}

export function register(program: Command): void {
  program
    .command('render')
    .description('Show or write the files each node carries (Consul, Nomad, Prometheus, units, system files)')
    .argument('[cluster]', 'the cluster file', 'cluster.yaml')
    .option('--secrets <file>', 'the secrets file (default: secrets_file: in cluster.yaml, else cluster.secrets.yaml beside it)')
    .option('--node <name>', 'only this node')
    .addOption(new Option('--role <role>', "the image of one role (what every node of that role carries)").choices(ROLES))
    .option('--out <dir>', 'write DIR/<node>/<path> (and DIR/<node>.manifest.json with owners) instead of listing')
    .option('--json', 'print the listing (or what was written) as JSON')
    .addHelpText(
      'after',
      '\nWithout --out, lists every file with its mode, owner and size; contents of secret files\n' +
        '(gossip keys, TLS keys, tokens, Wi-Fi PSK) are never printed. With --out, each node\'s\n' +
        'directory is replaced atomically; owners are not applied (that needs root and the users):\n' +
        'they are in the manifest. The output is deterministic: the same inputs give the same bytes.',
    )
    .action(async (clusterPath, opts) => {
      if (opts.node && opts.role) throw new UserError('--node and --role exclude each other: a node carries its role\'s image');
      const { cluster, warnings } = await loadCluster(clusterPath, { secretsPath: opts.secrets });
      for (const w of warnings) process.stderr.write(`${formatDiagnostic(w)}\n`);
      const rendered = renderSelection(cluster, { node: opts.node, role: opts.role });
      if (opts.out) {
        const written = await writeRendered(rendered, opts.out);
        if (opts.json) process.stdout.write(`${JSON.stringify({ out: opts.out, written }, null, 2)}\n`);
        else for (const w of written) process.stdout.write(`${w.dir}  (${w.files} files, manifest ${w.manifest})\n`);
        return;
      }
      if (opts.json) {
        const out = rendered.map((r) => ({
          [r.kind]: r.name,
          role: r.role,
          bootCmdlineExtras: r.bootCmdlineExtras,
          files: manifestOf(r.tree),
        }));
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        return;
      }
      process.stdout.write(listing(rendered));
    });
}

export function renderSelection(cluster: Cluster, sel: { node?: string; role?: Role }): Rendered[] {
  if (sel.role) {
    return [{ name: sel.role, kind: 'role', role: sel.role, bootCmdlineExtras: bootCmdlineExtras(cluster, sel.role), tree: renderRole(cluster, sel.role) }];
  }
  let nodes = cluster.nodes;
  if (sel.node) {
    nodes = nodes.filter((n) => n.name === sel.node);
    if (nodes.length === 0) {
      throw new UserError(`--node ${sel.node}: no such node in ${cluster.files.cluster} (nodes: ${cluster.nodes.map((n) => n.name).join(', ')})`);
    }
  }
  // Images are per role: render each role once and share the tree between its nodes.
  const byRole = new Map<Role, FileTree>();
  return nodes.map((n) => {
    let tree = byRole.get(n.role);
    if (!tree) byRole.set(n.role, (tree = renderNode(cluster, n)));
    return { name: n.name, kind: 'node', role: n.role, bootCmdlineExtras: bootCmdlineExtras(cluster, n.role), tree };
  });
}

function fmtEntry(e: ManifestEntry): string[] {
  if (e.type === 'symlink') return ['l', '', '', `${e.path} -> ${e.target}`];
  return [e.mode!, `${e.owner}:${e.group}`, String(e.size), `${e.path}${e.secret ? '  (secret)' : ''}`];
}

export function listing(rendered: Rendered[]): string {
  const out: string[] = [];
  for (const r of rendered) {
    out.push(`${r.kind} ${r.name} (${r.role})${r.bootCmdlineExtras.length ? `, kernel command line + ${r.bootCmdlineExtras.join(' ')}` : ''}`);
    const rows = manifestOf(r.tree).map(fmtEntry);
    const w = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length)));
    for (const row of rows) out.push(`  ${row[0]!.padEnd(w[0]!)}  ${row[1]!.padEnd(w[1]!)}  ${row[2]!.padStart(w[2]!)}  ${row[3]}`);
    out.push('');
  }
  return out.join('\n');
}

/** Writes each tree to a temp dir beside its final place, then swaps it in. */
export async function writeRendered(rendered: Rendered[], outDir: string): Promise<{ dir: string; files: number; manifest: string }[]> {
  await mkdir(outDir, { recursive: true, mode: 0o700 });
  const result: { dir: string; files: number; manifest: string }[] = [];
  for (const r of rendered) {
    const final = join(outDir, r.name);
    const tmp = join(outDir, `.${r.name}.${randomBytes(6).toString('hex')}.tmp`);
    const old = `${tmp}.old`;
    try {
      await mkdir(tmp, { mode: 0o755 });
      await writeTree(r.tree, tmp);
      await rename(final, old).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
      await rename(tmp, final);
    } finally {
      await rm(tmp, { recursive: true, force: true });
      await rm(old, { recursive: true, force: true });
    }
    const manifest = join(outDir, `${r.name}${MANIFEST_SUFFIX}`);
    const mtmp = `${manifest}.${randomBytes(6).toString('hex')}.tmp`;
    const body = { [r.kind]: r.name, role: r.role, bootCmdlineExtras: r.bootCmdlineExtras, files: manifestOf(r.tree) };
    await writeFile(mtmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o644 });
    await rename(mtmp, manifest);
    result.push({ dir: final, files: r.tree.size, manifest });
  }
  return result;
}
