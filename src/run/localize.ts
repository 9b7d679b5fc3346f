// A cluster moved onto one machine: every node gets its own address in a local range —
// 127.x.y.0/24 on the loopback interface (Linux routes all of 127/8 to lo, no root needed),
// or a private range that only exists inside network namespaces piinit made. Pure.
import { formatIPv4, parseCidr } from '../cluster/net.ts';
import type { Cluster } from '../cluster/types.ts';
import { UserError } from '../errors.ts';

export const DEFAULT_LOOPBACK_SUBNET = '127.0.100.0/24';
export const DEFAULT_NETNS_SUBNET = '10.213.0.0/24';
/** Node i (in cluster.yaml order) gets host number FIRST_HOST + i. */
export const FIRST_HOST = 10;

export function localizeCluster(cluster: Cluster, subnet: string): Cluster {
  const parsed = parseCidr(subnet);
  if (!parsed.ok) throw new UserError(`local subnet ${subnet} ${parsed.reason}`);
  const { network, prefixLength } = parsed.cidr;
  if (prefixLength > 24) throw new UserError(`local subnet ${subnet}: use a /24 or larger`);
  if (cluster.nodes.length > 200) throw new UserError('a local cluster is limited to 200 nodes');
  const addr = (host: number) => formatIPv4((network + host) >>> 0);
  return {
    ...cluster,
    network: {
      ...cluster.network,
      cidr: subnet,
      networkAddress: formatIPv4(network),
      prefixLength,
      gateway: addr(1),
      dns: [addr(1)],
      addressing: 'static',
    },
    nodes: cluster.nodes.map((n, i) => ({ ...n, address: addr(FIRST_HOST + i) })),
  };
}

/** The address that the bridge (netns mode) or nothing (loopback) has: host .1. */
export function gatewayOf(subnet: string): string {
  const parsed = parseCidr(subnet);
  if (!parsed.ok) throw new UserError(`local subnet ${subnet} ${parsed.reason}`);
  return formatIPv4((parsed.cidr.network + 1) >>> 0);
}
