import type { Command } from '@commander-js/extra-typings';
import { ClusterValidationError, formatDiagnostic, type Diagnostic } from '../cluster/diagnostics.ts';
import { loadCluster } from '../cluster/load.ts';
import { nodesWithRole, type Cluster } from '../cluster/types.ts';
import { environmentError, hideUrlCredentials, UserError } from '../errors.ts';
import { checkSecrets, type CheckItem } from '../security/secrets-ops.ts';

export function register(program: Command): void {
  program
    .command('validate')
    .description('Check cluster.yaml and its secrets file; print a summary, or every problem with file:line:column')
    .argument('[cluster]', 'the cluster file', 'cluster.yaml')
    .option('--secrets <file>', 'the secrets file (default: secrets_file: in cluster.yaml, else cluster.secrets.yaml beside it)')
    .option('--json', 'print the cluster (without secrets) and warnings, or the diagnostics, as JSON')
    .addHelpText(
      'after',
      '\nExit status: 0 when valid (warnings allowed), 1 on any error in the files, or when the\n' +
        'secrets lack what the build needs (the CA with security.tls, a token with security.acl).\n' +
        'Secrets are never printed, nor passwords in URLs.',
    )
    .action(async (clusterPath, opts) => {
      const json = (v: object) => process.stdout.write(hideUrlCredentials(`${JSON.stringify(v, null, 2)}\n`));
      let loaded;
      try {
        loaded = await loadCluster(clusterPath, { secretsPath: opts.secrets });
      } catch (e) {
        // A diagnostic may quote a mirror URL with its password: json() hides it, and so does
        // main.ts for what goes to stderr.
        if (opts.json && e instanceof ClusterValidationError) {
          json({ ok: false, diagnostics: e.diagnostics });
          process.exitCode = 1;
          return;
        }
        // A file that cannot be read at all (missing, a directory, no permission): scripts
        // still get JSON on stdout; the message goes to stderr as always.
        const userError = e instanceof UserError ? e : environmentError(e);
        if (opts.json && userError) json({ ok: false, diagnostics: [], error: userError.message });
        throw userError ?? e;
      }
      const { cluster, warnings } = loaded;
      // What `piinit secrets check` finds: a certificate that no longer names a server after
      // an address change (the usual state right after init and editing the addresses:
      // listed, for renew-certs), a missing CA or token. Only what render, packages and image
      // refuse fails here: no CA with security.tls, a missing token with security.acl.
      const secrets = checkSecrets(cluster).filter((i) => i.severity !== 'ok');
      const problems = missingSecrets(secrets);
      const fixes = [...new Set(problems.flatMap((i) => /run: (piinit [a-z -]+)/.exec(i.detail)?.[1] ?? []))];
      const error = problems.length
        ? `${clusterPath} is valid, but the secrets in ${cluster.files.secrets} are not: ` +
          (fixes.length ? `run ${fixes.join(', then ')}` : 'see piinit secrets check')
        : undefined;
      if (opts.json) json({ ok: !error, cluster: publicView(cluster), warnings, secrets, ...(error ? { error } : {}) });
      else process.stdout.write(hideUrlCredentials(summary(cluster, warnings, secrets)));
      if (error) throw new UserError(error);
    });
}

/** The findings of checkSecrets that mean a secret the build needs is missing. Pure. */
function missingSecrets(items: CheckItem[]): CheckItem[] {
  return items.filter((i) => i.severity === 'error' && (i.what === 'TLS' || i.what === 'ACL tokens'));
}

/** The cluster without anything secret. */
export function publicView(c: Cluster): Omit<Cluster, 'secrets' | 'wifi'> & { wifi: { ssid: string; country: string } | null } {
  const { secrets: _secrets, wifi, ...rest } = c;
  return { ...rest, wifi: wifi ? { ssid: wifi.ssid, country: wifi.country } : null };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => `  ${r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')}`.trimEnd()).join('\n');
}

export function summary(c: Cluster, warnings: Diagnostic[], secrets: CheckItem[] = []): string {
  const lines: string[] = [];
  lines.push(`cluster   ${c.name} (datacenter ${c.datacenter}, Consul domain ${c.domain})`);
  lines.push(`files     ${c.files.cluster}, secrets in ${c.files.secrets}`);
  lines.push(
    `network   ${c.network.cidr}, gateway ${c.network.gateway}, DNS ${c.network.dns.join(' ')}, addressing ${c.network.addressing}`,
  );
  lines.push(`wifi      ${c.wifi ? `SSID "${c.wifi.ssid}", country ${c.wifi.country}` : 'none (wired)'}`);
  const keys = c.ssh.authorizedKeys.length;
  lines.push(`ssh       ${keys ? `${keys} authorized key${keys === 1 ? '' : 's'}` : 'no SSH server'}`);
  const certs = c.secrets.tls ? 'certificates in the secrets file' : 'no certificates yet: piinit secrets generate';
  lines.push(
    `security  TLS ${c.security.tls ? `on (${certs})` : 'off'}, ACLs ${c.security.acl ? 'on' : 'off'}; raft multiplier ${c.consul.raftMultiplier}`,
  );
  lines.push('', 'nodes');
  lines.push(
    table([
      ['NAME', 'ROLE', 'BOARD', 'ARCH', 'MAC', 'ADDRESS'],
      ...c.nodes.map((n) => [n.name, n.role, n.board, n.arch, n.mac, n.address ?? 'dhcp']),
    ]),
  );
  lines.push('', 'components');
  lines.push(
    table([
      ['NAME', 'VERSION', 'SOURCE'],
      ...Object.values(c.components).map((s) => {
        let src: string = s.source;
        if (s.source === 'debian') src += ` ${s.suite} (package ${s.package})`;
        if (s.source === 'mirror') src += ` ${s.mirror}`;
        return [s.name, s.version, src];
      }),
    ]),
  );
  if (warnings.length) {
    lines.push('', 'warnings');
    for (const w of warnings) lines.push(`  ${formatDiagnostic(w)}`);
  }
  if (secrets.length) {
    lines.push('', `secrets (${c.files.secrets}; piinit secrets check)`);
    for (const i of secrets) lines.push(`  ${i.severity === 'error' ? 'problem' : 'warning'}: ${i.what}: ${i.detail}`);
  }
  const count = (role: 'server' | 'client' | 'monitor', word: string) => {
    const n = nodesWithRole(c, role).length;
    return `${n} ${word}${n === 1 ? '' : 's'}`;
  };
  const problems = missingSecrets(secrets).length;
  lines.push(
    '',
    `${problems ? 'cluster file valid' : 'valid'}: ${count('server', 'server')}, ${count('monitor', 'monitor')}, ${count('client', 'client')}` +
      (warnings.length ? `, ${warnings.length} warning${warnings.length === 1 ? '' : 's'}` : '') +
      (problems ? `; ${problems} secrets problem${problems === 1 ? '' : 's'} above` : ''),
  );
  return `${lines.join('\n')}\n`;
}
