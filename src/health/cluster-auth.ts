// Credentials for asking a real cluster for its health (`piinit status cluster` or URLs).
import type { Cluster } from '../cluster/types.ts';
import type { HttpAuth } from './http.ts';

/** The cluster CA, Consul's read-only operator token, and for Nomad the bootstrap token: the
 *  Nomad operator token is not created in Nomad (docs/security.md, gaps), so Nomad would
 *  refuse it. Pure. */
export function clusterAuth(cluster: Cluster): HttpAuth {
  const t = cluster.secrets.tokens;
  const nomadToken = t.nomadBootstrap ?? t.nomadOperator;
  return {
    ...(cluster.secrets.tls ? { ca: cluster.secrets.tls.ca.cert } : {}),
    ...(t.consulOperator ? { consulToken: t.consulOperator } : {}),
    ...(nomadToken ? { nomadToken } : {}),
    serverNames: [`server.${cluster.datacenter}.${cluster.domain}`, 'server.global.nomad'],
  };
}
