import { Option, type Command } from '@commander-js/extra-typings';
import { existsSync, lstatSync, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { linkTarget, writeFileAtomic } from '../cluster/atomic-write.ts';
import { generateSecrets, resolveSecretsPath, SECRETS_FILE_NAME, writeSecretsFile } from '../cluster/secrets.ts';
import { renderInitClusterYaml } from '../cluster/template.ts';
import { formatDiagnostic } from '../cluster/diagnostics.ts';
import { YamlFile } from '../cluster/yamlfile.ts';
import { UserError } from '../errors.ts';
import { tlsNamesFromClusterData } from '../security/pki.ts';

export function register(program: Command): void {
  program
    .command('init')
    .description('Write a commented cluster.yaml for a home cluster and its secrets file (mode 0600)')
    .argument('[dir]', 'where to write them', '.')
    .option('--force', 'replace existing files (the old secrets are lost)')
    .addOption(
      new Option('--clients <n>', 'number of Nomad client nodes').default(1).argParser((v) => {
        if (!/^\d{1,3}$/.test(v)) throw new UserError(`--clients: "${v}" is not a number from 0 to 999`);
        return Number(v);
      }),
    )
    .option('--secrets-only', 'only create the secrets file of an existing cluster.yaml')
    .addHelpText(
      'after',
      '\nWrites DIR/cluster.yaml (3 servers and 1 monitor on Raspberry Pi 4, N clients) and\n' +
        `DIR/${SECRETS_FILE_NAME} (fresh gossip keys, ACL tokens, the cluster CA and the\n` +
        'certificates), and adds the secrets file to DIR/.gitignore. Nothing is overwritten\n' +
        'without --force. Secrets are never printed.',
    )
    .action(async (dir, opts) => {
      await init(dir, { force: opts.force === true, clients: opts.clients, secretsOnly: opts.secretsOnly === true });
    });
}

export async function init(dir: string, opts: { force: boolean; clients: number; secretsOnly: boolean }): Promise<void> {
  if (dir === '') throw new UserError('init needs a directory name (. for this one)');
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UserError(`${dir} is a file, not a directory`);
  const clusterPath = join(dir, 'cluster.yaml');
  let secretsPath = join(dir, SECRETS_FILE_NAME);
  if (opts.secretsOnly) {
    if (!existsSync(clusterPath)) throw new UserError(`--secrets-only: ${clusterPath} does not exist`);
    secretsPath = resolveSecretsPath(clusterPath, (await clusterData(clusterPath)).secrets_file);
  }
  const targets = opts.secretsOnly ? [secretsPath] : [clusterPath, secretsPath];
  // Check every target before writing anything: never half an init. A directory cannot be
  // replaced, not even with --force (stat: also one at the end of a symlink).
  const folder = targets.find((p) => statSync(p, { throwIfNoEntry: false })?.isDirectory());
  if (folder) throw new UserError(`${folder} is a directory, not a file; nothing written`);
  // lstat, not existsSync: a dangling symlink (secrets kept elsewhere) exists too.
  const existing = targets.filter((p) => lstatSync(p, { throwIfNoEntry: false }));
  if (existing.length && !opts.force) {
    throw new UserError(`${existing.join(' and ')} already exist${existing.length === 1 ? 's' : ''}; nothing written (use --force to replace)`);
  }
  // --force writes through a symlink: its target's folder must be there for both files.
  for (const p of existing) {
    const target = await linkTarget(p);
    if (target !== p && !statSync(dirname(target), { throwIfNoEntry: false })?.isDirectory()) {
      throw new UserError(`${p} is a link to ${target}, whose folder does not exist; nothing written`);
    }
  }
  const ignore = await gitignoreWithSecrets(dir, secretsPath);
  await mkdir(dir, { recursive: true });
  const wrote: string[] = [];
  if (!opts.secretsOnly) {
    await writeFileAtomic(clusterPath, renderInitClusterYaml({ clients: opts.clients }), { mode: 0o644, overwrite: opts.force });
    wrote.push(`wrote ${clusterPath}  (the cluster: edit the MACs and addresses)`);
  }
  // The certificates name the servers' addresses: read them from the cluster file just written.
  const tlsNames = tlsNamesFromClusterData(await clusterData(clusterPath));
  await writeSecretsFile(secretsPath, generateSecrets(tlsNames), { force: opts.force });
  wrote.push(`wrote ${secretsPath}  (gossip keys, ACL tokens, cluster CA and certificates; mode 0600, never commit it)`);
  if (ignore) {
    await writeFileAtomic(ignore.file, ignore.text, { mode: 0o644, overwrite: true });
    wrote.push(`added ${ignore.entry} to ${ignore.file}`);
  }

  const steps = dir === '.' ? [] : [`cd ${dir}`];
  if (opts.secretsOnly) steps.push('piinit validate');
  else {
    steps.push(
      "edit cluster.yaml: each board's MAC, and the addresses your router reserves for them",
      'piinit secrets renew-certs   (the certificates name the servers\' addresses: after editing them)',
      'piinit validate',
      'piinit render      (the files each node will carry)',
      'piinit fetch, piinit packages, piinit image, then piinit burn',
    );
  }
  process.stdout.write(
    `${wrote.join('\n')}\n\nnext steps:\n${steps.map((st, i) => `  ${i + 1}. ${st}\n`).join('')}` +
      (opts.secretsOnly ? '' : 'or try the demo cluster on this machine first: piinit up\n'),
  );
}

/** The cluster file's data, or a UserError with its syntax errors. */
async function clusterData(clusterPath: string): Promise<Record<string, unknown>> {
  const f = new YamlFile(clusterPath, await readFile(clusterPath, 'utf8'));
  if (!f.ok) throw new UserError(`fix ${clusterPath} first:\n${f.syntax.map(formatDiagnostic).join('\n')}`);
  return f.data !== null && typeof f.data === 'object' ? (f.data as Record<string, unknown>) : {};
}

/** DIR/.gitignore with a line for the secrets file, or null when a line already names it (or
 *  the file is outside DIR). Read before anything is written, so a .gitignore that cannot be
 *  read stops init with nothing written. */
async function gitignoreWithSecrets(dir: string, secretsPath: string): Promise<{ file: string; text: string; entry: string } | null> {
  const entry = relative(dir, secretsPath);
  if (entry.startsWith('..')) return null;
  const file = join(dir, '.gitignore');
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw new UserError(`${file} is a directory, not a file; nothing written`);
    if (code !== 'ENOENT') throw e;
  }
  const lines = text.split('\n').map((l) => l.trim());
  if (lines.includes(entry) || lines.includes(`/${entry}`)) return null;
  const sep = text === '' || text.endsWith('\n') ? '' : '\n';
  return { file, text: `${text}${sep}/${entry}\n`, entry: `/${entry}` };
}
