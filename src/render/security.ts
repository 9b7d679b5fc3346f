// Reads the TLS material and ACL tokens the security step generated into the secrets, and
// says plainly what to run when the flags are on but the material is missing.
import type { Cluster, KeyPair, Secrets } from '../cluster/types.ts';
import { UserError } from '../errors.ts';

export type TlsMaterial = NonNullable<Secrets['tls']>;

function missing(cluster: Cluster, what: string): UserError {
  return new UserError(
    `${cluster.files.cluster}: security.${what === 'TLS certificates' ? 'tls' : 'acl'} is on but ${cluster.files.secrets} has no ${what}; ` +
      'run `piinit secrets` (or `piinit init` for a new cluster) to generate them',
  );
}

export function tlsMaterial(cluster: Cluster): TlsMaterial | null {
  if (!cluster.security.tls) return null;
  const t = cluster.secrets.tls;
  const ok = (k: KeyPair | undefined) => !!k && !!k.cert && !!k.key;
  if (!t || !ok(t.ca) || !ok(t.consulServer) || !ok(t.nomadServer) || !ok(t.nomadClient)) {
    throw missing(cluster, 'TLS certificates');
  }
  return t;
}

export interface AclTokens {
  consulBootstrap: string;
  consulAgent: string;
  consulPrometheus: string;
  consulDns?: string;
}

export function aclTokens(cluster: Cluster): AclTokens | null {
  if (!cluster.security.acl) return null;
  const t = cluster.secrets.tokens;
  if (!t.consulBootstrap || !t.consulAgent || !t.consulPrometheus) throw missing(cluster, 'ACL tokens');
  return {
    consulBootstrap: t.consulBootstrap,
    consulAgent: t.consulAgent,
    consulPrometheus: t.consulPrometheus,
    ...(t.consulDns ? { consulDns: t.consulDns } : {}),
  };
}
