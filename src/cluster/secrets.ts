// The secrets file: generated once, mode 0600, never committed, never printed.
// In the file the keys are snake_case; in `Secrets` (types.ts) they are camelCase. To add a
// secret: add it to `Secrets`, to secretsFileSchema (schema.ts), and to generateSecrets.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import { UserError } from '../errors.ts';
import { FileExistsError, writeFileAtomic } from './atomic-write.ts';
import type { SecretsFile } from './schema.ts';
import type { Secrets } from './types.ts';
import { generateTlsMaterial, tlsNamesFromClusterData, type TlsNames } from '../security/pki.ts';

export const SECRETS_FILE_NAME = 'cluster.secrets.yaml';

/** With `names` (the cluster's name, datacenter, domain and server addresses) it also
 *  creates the cluster CA and the Consul/Nomad certificates (src/security/pki.ts). */
export function generateSecrets(names?: TlsNames): Secrets {
  const gossipKey = () => randomBytes(32).toString('base64');
  return {
    ...(names ? { tls: generateTlsMaterial(names) } : {}),
    consulGossipKey: gossipKey(),
    nomadGossipKey: gossipKey(),
    tokens: {
      consulBootstrap: randomUUID(),
      consulAgent: randomUUID(),
      consulPrometheus: randomUUID(),
      consulOperator: randomUUID(),
      consulDns: randomUUID(),
      nomadBootstrap: randomUUID(),
      nomadOperator: randomUUID(),
    },
  };
}

/** A field of `Secrets` as the file spells it: consulGossipKey → consul_gossip_key. */
export const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const camel = (k: string) => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function mapKeys(v: unknown, f: (k: string) => string): unknown {
  if (Array.isArray(v)) return v.map((x) => mapKeys(x, f));
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v)
        .filter(([, x]) => x !== undefined)
        .map(([k, x]) => [f(k), mapKeys(x, f)]),
    );
  }
  return v;
}

/** The parsed secrets file (snake_case) as `Secrets`. */
export function secretsFromFile(f: SecretsFile): Secrets {
  const s = mapKeys(f, camel) as Secrets;
  return { ...s, tokens: s.tokens ?? {} };
}

/** `Secrets` in the snake_case shape of the file. */
export function secretsToFile(s: Secrets): SecretsFile {
  return mapKeys(s, snake) as SecretsFile;
}

export function renderSecretsYaml(s: Secrets): string {
  const header = [
    '# piinit secrets: gossip keys, ACL tokens, TLS keys, the Wi-Fi passphrase.',
    '# NEVER commit this file or share it. Keep it mode 0600 (chmod 600 FILE);',
    '# piinit refuses to read it when group or others can.',
    '',
  ].join('\n');
  let body = stringify(secretsToFile(s), { lineWidth: 0 });
  if (s.wifiPassphrase === undefined && s.wifiPsk === undefined) {
    body +=
      '# With a wifi: section in cluster.yaml, add the passphrase (8-63 characters) or the\n' +
      '# 64-hex-digit PSK that wpa_passphrase prints:\n' +
      '# wifi_passphrase: "your Wi-Fi passphrase"\n';
  }
  return header + body;
}

/** Writes the secrets file atomically with mode 0600 (regardless of umask). Without force an
 *  existing file is never replaced (UserError). */
export async function writeSecretsFile(path: string, secrets: Secrets, opts: { force?: boolean } = {}): Promise<void> {
  // secrets_file: may name a directory of its own; only its owner may look into a new one.
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    await writeFileAtomic(path, renderSecretsYaml(secrets), { mode: 0o600, overwrite: opts.force === true });
  } catch (e) {
    if (e instanceof FileExistsError) {
      throw new UserError(`${path} already exists; not overwriting secrets (use --force to replace them)`);
    }
    throw e;
  }
}

/** Where the secrets file of clusterPath is: the override, else cluster.yaml's `secrets_file:`
 *  (relative to cluster.yaml), else cluster.secrets.yaml beside cluster.yaml. */
export function resolveSecretsPath(clusterPath: string, secretsFileKey: unknown, override?: string): string {
  if (override) return override;
  if (typeof secretsFileKey === 'string' && secretsFileKey !== '') {
    return isAbsolute(secretsFileKey) ? secretsFileKey : join(dirname(clusterPath), secretsFileKey);
  }
  return join(dirname(clusterPath), SECRETS_FILE_NAME);
}

/** Creates the secrets file of clusterPath with fresh secrets if (and only if) it is missing
 *  and the cluster file names what the certificates need (a mistyped or broken cluster file
 *  must not leave secrets without a CA behind). `piinit up` calls this so the demo runs in
 *  one command. */
export async function ensureSecretsFile(
  clusterPath: string,
  opts: { secretsPath?: string } = {},
): Promise<{ path: string; created: boolean }> {
  let key: unknown;
  let data: unknown;
  try {
    data = parseDocument(await readFile(clusterPath, 'utf8')).toJS();
    if (data !== null && typeof data === 'object') key = (data as Record<string, unknown>).secrets_file;
  } catch {
    // A missing or unreadable cluster file is reported by loadCluster.
  }
  const path = resolveSecretsPath(clusterPath, key, opts.secretsPath);
  const names = tlsNamesFromClusterData(data);
  if (!names) return { path, created: false };
  try {
    await writeSecretsFile(path, generateSecrets(names));
    return { path, created: true };
  } catch (e) {
    if (e instanceof UserError) return { path, created: false };
    throw e;
  }
}
