// TLS and ACLs on the local cluster. Certificates: the cluster's own CA, with server
// certificates re-issued once so they also name the local addresses (kept in the state
// directory, 0600, reused by every later `up` so nothing changes). ACLs: the servers'
// rendered bootstrap script — the same file the images run from a oneshot unit.
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Cluster } from '../cluster/types.ts';
import { writeFileAtomic } from '../cluster/atomic-write.ts';
import { UserError } from '../errors.ts';
import { consulAclBootstrapCommand, nomadAclBootstrapCommand } from '../security/acl.ts';
import { certificateNeedsRenewal, localClusterTls, type TlsMaterial } from '../security/pki.ts';
import { runInNamespace } from './netns.ts';
import { logTail } from './proc.ts';
import type { LocalNode } from './state.ts';
import { execFile } from 'node:child_process';

interface SavedTls {
  addresses: string[];
  tls: TlsMaterial;
}

export async function withLocalTls(local: Cluster, stateDir: string): Promise<Cluster> {
  if (!local.security.tls || !local.secrets.tls) return local;
  const path = join(stateDir, 'local-tls.json');
  const addresses = local.nodes.map((n) => n.address!).sort();
  let saved: SavedTls | null = null;
  try {
    saved = JSON.parse(await readFile(path, 'utf8')) as SavedTls;
  } catch {
    saved = null;
  }
  const usable =
    saved &&
    saved.tls.ca.cert === local.secrets.tls.ca.cert &&
    saved.addresses.join() === addresses.join() &&
    !certificateNeedsRenewal(saved.tls.consulServer.cert);
  let tls: TlsMaterial;
  if (usable) tls = saved!.tls;
  else {
    tls = localClusterTls(local, addresses);
    await writeFileAtomic(path, JSON.stringify({ addresses, tls } satisfies SavedTls), { mode: 0o600, overwrite: true });
  }
  return { ...local, secrets: { ...local.secrets, tls } };
}

/** Runs the first server's rendered Consul or Nomad ACL bootstrap script and waits for it
 *  (it waits for a leader itself, bounded by timeoutS). cacert: the CA for an HTTPS API
 *  (Nomad's, with TLS on). */
export async function runAclBootstrap(
  which: 'Consul' | 'Nomad',
  server: LocalNode,
  log: string,
  opts: { cacert?: string; timeoutS?: number } = {},
): Promise<void> {
  const timeoutS = opts.timeoutS ?? 120;
  const cmd = (which === 'Consul' ? consulAclBootstrapCommand : nomadAclBootstrapCommand)((p) => join(server.root, p));
  // A second between tries: on loopback the leader is there in seconds, and `up` waits on it.
  const env = {
    ...process.env,
    PIINIT_ACL_TIMEOUT: String(timeoutS),
    PIINIT_ACL_PAUSE_MAX: '1',
    ...(opts.cacert ? { PIINIT_ACL_CACERT: opts.cacert } : {}),
  };
  const fh = await open(log, 'a', 0o640);
  await fh.write(`\n--- piinit: ${which} ACL bootstrap at ${new Date().toISOString()}\n`);
  let code: number | null;
  let output: string;
  if (server.netns) {
    const r = await runInNamespace(server.netns, [cmd.program, ...cmd.args], { env, timeoutMs: (timeoutS + 30) * 1000 });
    code = r.code;
    output = r.stdout + r.stderr;
  } else {
    ({ code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      execFile(cmd.program, cmd.args, { env, timeout: (timeoutS + 30) * 1000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
      );
    }));
  }
  await fh.write(output);
  await fh.close();
  if (code !== 0) {
    throw new UserError(`the ${which} ACL bootstrap on ${server.name} failed (exit ${code}); the end of ${log}:\n${await logTail(log)}`);
  }
}

/** Agents that tried to register before the ACL bootstrap created their token wait for
 *  their next anti-entropy retry (15–30 s). Setting the agent token again through the API
 *  (the same token the config names) makes Consul run a full sync right away. */
export async function triggerAgentSync(local: Cluster, nodes: LocalNode[]): Promise<void> {
  const master = local.secrets.tokens.consulBootstrap;
  const agent = local.secrets.tokens.consulAgent;
  if (!master || !agent) return;
  await Promise.all(
    nodes.map(async (n) => {
      const url = `http://${n.address}:8500/v1/agent/token/agent`;
      const body = JSON.stringify({ Token: agent });
      // Best effort: a node that does not answer yet syncs on its own schedule.
      try {
        if (n.netns) {
          // Both tokens reach curl on stdin, as its config (-K -), never on its command line.
          await runInNamespace(n.netns, ['curl', '-sS', '--max-time', '5', '-o', '/dev/null', '-X', 'PUT', '-K', '-', url], {
            input: curlConfig({ header: `X-Consul-Token: ${master}`, 'data-binary': body }),
            timeoutMs: 10_000,
          });
        } else {
          await fetch(url, { method: 'PUT', body, headers: { 'X-Consul-Token': master }, signal: AbortSignal.timeout(5000) });
        }
      } catch {
        // ignored, see above
      }
    }),
  );
}

/** A curl config file (`curl -K`) for printable ASCII values: each double-quoted, with the backslash
 *  escapes curl reads there (the same as JSON's for \\ and \"). Pure. */
export function curlConfig(options: Record<string, string>): string {
  return Object.entries(options)
    .map(([k, v]) => `${k} = ${JSON.stringify(v)}\n`)
    .join('');
}
