import type { Command } from '@commander-js/extra-typings';
import { loadCluster } from '../cluster/load.ts';
import { writeSecretsFile } from '../cluster/secrets.ts';
import type { Cluster, Secrets } from '../cluster/types.ts';
import { existsSync } from 'node:fs';
import { didYouMean } from '../cluster/yamlfile.ts';
import { UserError } from '../errors.ts';
import {
  checkSecrets,
  fillMissingSecrets,
  fillSecretFileGaps,
  renewCertificates,
  rotateConsulKeyring,
  rotateGossipKeys,
} from '../security/secrets-ops.ts';

interface Common {
  secrets?: string;
}

async function load(clusterPath: string, opts: Common): Promise<Cluster> {
  return (await loadCluster(clusterPath, { secretsPath: opts.secrets })).cluster;
}

async function save(cluster: Cluster, secrets: Secrets): Promise<void> {
  // Atomic replace, mode 0600; the previous content is gone, as intended.
  await writeSecretsFile(cluster.files.secrets, secrets, { force: true });
}

const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);

const SUBCOMMANDS = ['generate', 'check', 'renew-certs', 'rotate-gossip'];

/** generate is the default command, so a mistyped command ("secrets renew") arrives as its
 *  cluster file: a word that is no file and has no '.' or '/' is taken for a command. */
function checkGenerateArgs(args: string[]): void {
  const [first, ...rest] = args;
  if (first !== undefined && !/[./]/.test(first) && !existsSync(first)) {
    const hint = SUBCOMMANDS.find((c) => c.startsWith(first)) ?? didYouMean(first, SUBCOMMANDS);
    throw new UserError(`no such command: secrets ${first}${hint ? ` (did you mean "secrets ${hint}"?)` : ''}; the secrets commands are ${SUBCOMMANDS.join(', ')}`);
  }
  if (rest.length > 0) throw new UserError(`secrets generate takes one cluster file, not ${args.length} arguments`);
}

export function register(program: Command): void {
  const cmd = program
    .command('secrets')
    .description('Manage the secrets file: fill in missing secrets, check certificates, renew them, rotate gossip keys')
    .addHelpText(
      'after',
      '\nThe secrets file (mode 0600) holds the gossip keys, the ACL tokens, the cluster CA and\n' +
        'the certificates. Nothing here ever prints a secret. After a change, rebuild the\n' +
        'packages and images (or run `piinit up` again locally) so the nodes carry it.',
    );

  cmd
    .command('generate', { isDefault: true })
    .description('Add whatever the secrets file lacks (gossip keys, ACL tokens, cluster CA and certificates); never replaces a value')
    .argument('[cluster]', 'the cluster file', 'cluster.yaml')
    .option('--secrets <file>', 'the secrets file (default: from cluster.yaml)')
    .allowExcessArguments(true)
    .action(async (clusterPath, opts, command) => {
      checkGenerateArgs(command.args);
      const { cluster, filled } = await loadCluster(clusterPath, { secretsPath: opts.secrets, fillSecrets: fillSecretFileGaps });
      const { secrets, added: more } = fillMissingSecrets(cluster);
      const added = [...filled, ...more];
      if (added.length === 0) {
        out(`${cluster.files.secrets}: nothing missing`);
        return;
      }
      await save(cluster, secrets);
      out(`${cluster.files.secrets}: added ${added.join(', ')}`);
    });

  cmd
    .command('check')
    .description('Report certificate expiry, coverage of the current servers, and missing secrets')
    .argument('[cluster]', 'the cluster file', 'cluster.yaml')
    .option('--secrets <file>', 'the secrets file (default: from cluster.yaml)')
    .option('--json', 'machine-readable report')
    .addHelpText('after', '\nExit status: 0 when nothing needs doing, 1 on an error, 2 when something should be renewed soon.')
    .action(async (clusterPath, opts) => {
      const cluster = await load(clusterPath, opts);
      const items = checkSecrets(cluster);
      if (opts.json) out(JSON.stringify({ secretsFile: cluster.files.secrets, items }, null, 2));
      else {
        const w = Math.max(...items.map((i) => i.what.length));
        out(items.map((i) => `${i.severity.toUpperCase().padEnd(5)} ${i.what.padEnd(w)}  ${i.detail}`).join('\n'));
      }
      process.exitCode = items.some((i) => i.severity === 'error') ? 1 : items.some((i) => i.severity === 'warn') ? 2 : 0;
    });

  cmd
    .command('renew-certs')
    .description('Re-issue the Consul and Nomad certificates from the same cluster CA (for the servers cluster.yaml names now)')
    .argument('[cluster]', 'the cluster file', 'cluster.yaml')
    .option('--secrets <file>', 'the secrets file (default: from cluster.yaml)')
    .addHelpText(
      'after',
      '\nUse it before the certificates expire (`piinit secrets check` says when) and whenever\n' +
        'servers are added or re-addressed. The CA stays, so nodes with the old certificates\n' +
        'keep talking to nodes with the new ones while you roll the new images out.',
    )
    .action(async (clusterPath, opts) => {
      const cluster = await load(clusterPath, opts);
      await save(cluster, renewCertificates(cluster));
      out(`${cluster.files.secrets}: new server and client certificates from the existing CA; rebuild the images (or piinit up) to deploy them`);
    });

  cmd
    .command('rotate-gossip')
    .description('Generate new gossip keys; with --apply, switch a running Consul cluster to the new key first')
    .argument('[cluster]', 'the cluster file', 'cluster.yaml')
    .option('--secrets <file>', 'the secrets file (default: from cluster.yaml)')
    .option('--only <which>', 'consul or nomad (default: both)')
    .option('--apply <url>', "a running Consul agent's API (e.g. https://192.168.1.11:8501): install, use, then remove the key cluster-wide")
    .addHelpText(
      'after',
      '\nWithout --apply only the secrets file changes: nodes built from it afterwards use the\n' +
        'new key and cannot join a running cluster still on the old one. With --apply (needs the\n' +
        "bootstrap token from the secrets file and, for https, the cluster CA) Consul's keyring\n" +
        'is rotated live: `install` on every member, `use`, then `remove` the old key; only then is\n' +
        'the new key saved. Running agents keep their keyring in their data directory, so they\n' +
        "stay on the new key across restarts. Nomad's keyring rotation is manual (see docs/security.md).",
    )
    .action(async (clusterPath, opts) => {
      const cluster = await load(clusterPath, opts);
      const which = (opts.only ?? 'both') as 'consul' | 'nomad' | 'both';
      if (!['consul', 'nomad', 'both'].includes(which)) throw new UserError(`--only: "${opts.only}" is not consul or nomad`);
      const next = rotateGossipKeys(cluster.secrets, which);
      if (opts.apply) {
        if (which === 'nomad') throw new UserError('--apply rotates Consul\'s keyring; use it without --only nomad');
        const token = cluster.secrets.tokens.consulBootstrap;
        if (!token) throw new UserError(`${cluster.files.secrets} has no consul_bootstrap token to authorise the keyring change`);
        await rotateConsulKeyring({ url: opts.apply, token, ca: cluster.secrets.tls?.ca.cert }, cluster.secrets.consulGossipKey, next.consulGossipKey);
      }
      await save(cluster, next);
      const what = which === 'both' ? 'Consul and Nomad gossip keys' : `${which === 'consul' ? 'Consul' : 'Nomad'} gossip key`;
      out(
        `${cluster.files.secrets}: new ${what}` +
          (opts.apply
            ? `; the running Consul cluster (via ${opts.apply}) now uses only the new key`
            : `; not applied to any running cluster (see piinit secrets rotate-gossip --help)`),
      );
      if (which !== 'consul') {
        out('Nomad: rotate its keyring on a running cluster by hand (docs/security.md), then rebuild the images.');
      }
    });
}
