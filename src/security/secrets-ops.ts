// What `piinit secrets` does to the secrets of a cluster: fill in what is missing, report
// expiry and coverage, re-issue certificates, rotate gossip keys (and, for a running
// cluster, walk Consul's keyring through install → use → remove). Values never leave
// through return values meant for printing.
import { randomBytes, randomUUID } from 'node:crypto';
import { Agent, fetch } from 'undici';
import { caKeyPair } from '../cluster/schema.ts';
import { snake } from '../cluster/secrets.ts';
import type { Cluster, KeyPair, Secrets } from '../cluster/types.ts';
import { UserError } from '../errors.ts';
import {
  certificateInfo,
  certificateNeedsRenewal,
  consulServerNames,
  generateTlsMaterial,
  isIssuedBy,
  issueLeafCertificates,
  nomadServerNames,
  tlsNamesFromClusterData,
} from './pki.ts';

export const TOKEN_KEYS = ['consulBootstrap', 'consulAgent', 'consulPrometheus', 'consulOperator', 'consulDns', 'nomadBootstrap', 'nomadOperator'] as const;

export function newGossipKey(): string {
  return randomBytes(32).toString('base64');
}

const absent = (v: unknown) => v === undefined || v === null || v === '';

/**
 * What a secrets file must have but the loader would refuse it without: the gossip keys and,
 * when it has a cluster CA, each certificate. Fills them into the parsed file (raw, snake_case,
 * not yet validated; `cluster` is cluster.yaml, validated) and returns their names. A damaged
 * CA is left for the loader to report: a certificate needs a CA to come from.
 */
export function fillSecretFileGaps(raw: Record<string, unknown>, cluster: unknown, now = new Date()): string[] {
  const added: string[] = [];
  for (const k of ['consul_gossip_key', 'nomad_gossip_key']) {
    if (absent(raw[k])) {
      raw[k] = newGossipKey();
      added.push(k);
    }
  }
  // "tls:" or "tokens:" with nothing under them: fillMissingSecrets creates them whole.
  for (const k of ['tls', 'tokens']) if (raw[k] === null) delete raw[k];
  const tls = raw.tls;
  const names = tlsNamesFromClusterData(cluster);
  if (tls === null || typeof tls !== 'object' || Array.isArray(tls) || !names) return added;
  const t = tls as Record<string, unknown>;
  const missing = ['consul_server', 'nomad_server', 'nomad_client'].filter((k) => absent(t[k]));
  const ca = caKeyPair.safeParse(t.ca);
  if (missing.length === 0 || !ca.success) return added;
  let issued;
  try {
    issued = issueLeafCertificates(ca.data, names, { now });
  } catch {
    return added; // a key pair that cannot sign; validation says what is wrong with it
  }
  const leaves: Record<string, KeyPair> = { consul_server: issued.consulServer, nomad_server: issued.nomadServer, nomad_client: issued.nomadClient };
  for (const k of missing) {
    t[k] = leaves[k];
    added.push(`tls.${k} (new certificate from the cluster CA)`);
  }
  return added;
}

/** Adds whatever is missing (tokens, the CA and certificates), keeping every existing value.
 *  Returns the new secrets and the names of what was added (as the file spells them). */
export function fillMissingSecrets(cluster: Cluster, now = new Date()): { secrets: Secrets; added: string[] } {
  const s: Secrets = { ...cluster.secrets, tokens: { ...cluster.secrets.tokens } };
  const added: string[] = [];
  for (const k of TOKEN_KEYS) {
    if (!s.tokens[k]) {
      s.tokens[k] = randomUUID();
      added.push(`tokens.${snake(k)}`);
    }
  }
  if (!s.tls) {
    s.tls = generateTlsMaterial(cluster, { now });
    added.push('tls (new cluster CA and certificates)');
  }
  return { secrets: s, added };
}

/** New leaf certificates from the existing CA, for the servers cluster.yaml names now. */
export function renewCertificates(cluster: Cluster, now = new Date()): Secrets {
  const tls = cluster.secrets.tls;
  if (!tls) throw new UserError(`${cluster.files.secrets} has no cluster CA yet; run: piinit secrets generate`);
  return { ...cluster.secrets, tls: { ca: tls.ca, ...issueLeafCertificates(tls.ca, cluster, { now }) } };
}

export function rotateGossipKeys(secrets: Secrets, which: 'consul' | 'nomad' | 'both'): Secrets {
  return {
    ...secrets,
    ...(which !== 'nomad' ? { consulGossipKey: newGossipKey() } : {}),
    ...(which !== 'consul' ? { nomadGossipKey: newGossipKey() } : {}),
  };
}

export type Severity = 'ok' | 'warn' | 'error';

export interface CheckItem {
  what: string;
  severity: Severity;
  detail: string;
  /** Certificates only. */
  notAfter?: string;
  daysLeft?: number;
}

const DAY_MS = 86_400_000;

/** The expiry and coverage report of `piinit secrets check`. Never contains a secret. */
export function checkSecrets(cluster: Cluster, now = new Date()): CheckItem[] {
  const s = cluster.secrets;
  const items: CheckItem[] = [];
  items.push({ what: 'gossip keys', severity: 'ok', detail: 'Consul and Nomad keys present (32 bytes)' });
  const missingTokens = TOKEN_KEYS.filter((k) => !s.tokens[k]);
  items.push(
    missingTokens.length
      ? { what: 'ACL tokens', severity: cluster.security.acl ? 'error' : 'warn', detail: `missing: ${missingTokens.map((k) => `tokens.${snake(k)}`).join(', ')} (run: piinit secrets generate)` }
      : { what: 'ACL tokens', severity: 'ok', detail: `${TOKEN_KEYS.length} tokens present` },
  );
  if (!s.tls) {
    items.push({ what: 'TLS', severity: cluster.security.tls ? 'error' : 'warn', detail: 'no cluster CA (run: piinit secrets generate)' });
    return items;
  }
  const certs: [string, string, string[] | null][] = [
    ['cluster CA', s.tls.ca.cert, null],
    ['Consul server certificate', s.tls.consulServer.cert, consulServerNames(cluster)],
    ['Nomad server certificate', s.tls.nomadServer.cert, nomadServerNames(cluster)],
    ['Nomad client certificate', s.tls.nomadClient.cert, null],
  ];
  for (const [what, pem, wanted] of certs) {
    const info = certificateInfo(pem);
    const daysLeft = Math.floor((info.notAfter.getTime() - now.getTime()) / DAY_MS);
    const base = { what, notAfter: info.notAfter.toISOString(), daysLeft };
    const problems: [Severity, string][] = [];
    if (daysLeft < 0) problems.push(['error', 'expired']);
    else if (certificateNeedsRenewal(pem, now)) problems.push(['warn', `renew soon (${what === 'cluster CA' ? 'a new CA means re-imaging every node' : 'piinit secrets renew-certs'})`]);
    if (what !== 'cluster CA' && !isIssuedBy(pem, s.tls.ca.cert)) problems.push(['error', 'not issued by the cluster CA (run: piinit secrets renew-certs)']);
    const missing = wanted ? wanted.filter((n) => !info.names.includes(n)) : [];
    if (missing.length) problems.push(['error', `does not name ${missing.join(', ')} (servers changed? run: piinit secrets renew-certs)`]);
    const severity: Severity = problems.some(([sv]) => sv === 'error') ? 'error' : problems.length ? 'warn' : 'ok';
    items.push({ ...base, severity, detail: problems.length ? problems.map(([, d]) => d).join('; ') : `valid until ${info.notAfter.toISOString().slice(0, 10)} (${daysLeft} days)` });
  }
  return items;
}

export interface KeyringTarget {
  /** A Consul agent's HTTP(S) API, e.g. https://192.168.1.11:8501 or http://127.0.0.2:8500. */
  url: string;
  /** A token with keyring write (the bootstrap/management token). */
  token: string;
  /** PEM CA for https URLs. */
  ca?: string;
}

/**
 * Consul's rolling gossip-key rotation on a running cluster, through one agent's API:
 * install the new key on every member, make it the primary, then remove the old one.
 * Each step is cluster-wide (Consul fans it out over gossip) and refused by Consul if any
 * member did not take it, so a failure leaves the cluster on a working key.
 */
export async function rotateConsulKeyring(target: KeyringTarget, oldKey: string, newKey: string): Promise<void> {
  const dispatcher = target.url.startsWith('https:') ? new Agent({ connect: { ca: target.ca } }) : undefined;
  const call = async (method: string, body: unknown, step: string) => {
    let r;
    try {
      r = await fetch(`${target.url.replace(/\/$/, '')}/v1/operator/keyring`, {
        method,
        dispatcher,
        headers: { 'X-Consul-Token': target.token, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (e) {
      throw new UserError(`gossip key rotation: cannot reach Consul at ${target.url} (${(e as Error).message})`);
    }
    // Consul's error text names members and steps, never key material.
    if (r.status !== 200) throw new UserError(`gossip key rotation failed at "${step}": HTTP ${r.status} ${(await r.text()).slice(0, 300).trim()}`);
    return r;
  };
  try {
    await call('POST', { Key: newKey }, 'install the new key');
    await call('PUT', { Key: newKey }, 'use the new key');
    if (oldKey !== newKey) await call('DELETE', { Key: oldKey }, 'remove the old key');
  } finally {
    await dispatcher?.close();
  }
}

/** Every key any keyring of the cluster holds (secret values: compare, never print). */
export async function consulKeyringKeys(target: KeyringTarget): Promise<Set<string>> {
  const dispatcher = target.url.startsWith('https:') ? new Agent({ connect: { ca: target.ca } }) : undefined;
  try {
    const r = await fetch(`${target.url.replace(/\/$/, '')}/v1/operator/keyring`, {
      dispatcher,
      headers: { 'X-Consul-Token': target.token },
      signal: AbortSignal.timeout(10_000),
    });
    if (r.status !== 200) throw new UserError(`cannot list the Consul keyring at ${target.url}: HTTP ${r.status}`);
    const rings = (await r.json()) as { Keys: Record<string, number> }[];
    return new Set(rings.flatMap((x) => Object.keys(x.Keys)));
  } finally {
    await dispatcher?.close();
  }
}
