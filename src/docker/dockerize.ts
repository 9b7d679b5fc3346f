// A cluster moved into a Docker network: node i (cluster.yaml order) gets host .10+i of the
// network's subnet, and the cluster's CIDR becomes that subnet, so the rendered bind
// templates (go-sockaddr "GetPrivateInterfaces | include network CIDR") and retry_join
// match inside the containers. Docker itself takes host .1 as the bridge's gateway. Pure.
import type { Cluster } from '../cluster/types.ts';
import { localizeCluster } from '../run/localize.ts';

export const DEFAULT_DOCKER_SUBNET = '172.31.250.0/24';

export function dockerizeCluster(cluster: Cluster, subnet: string = DEFAULT_DOCKER_SUBNET): Cluster {
  return localizeCluster(cluster, subnet);
}
