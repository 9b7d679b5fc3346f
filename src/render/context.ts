// What every renderer needs to know besides the cluster: which role, which target, where
// paths live and which address the daemons use. Built once by index.ts.
import { isAbsolute, join } from 'node:path';
import type { Role } from '../cluster/boards.ts';
import type { Cluster, Node } from '../cluster/types.ts';

export type Target = 'image' | 'local';

export interface RenderContext {
  cluster: Cluster;
  role: Role;
  target: Target;
  /** The node, on the local target; null for an image (identical for every node of the role). */
  node: Node | null;
  /** Where an on-Pi absolute path lives for this target (relocated under root on local). */
  p(path: string): string;
  /** Address to bind and advertise: a go-sockaddr template on images, the node's address locally. */
  bindAddr: string;
  /** Address(es) the HTTP APIs and Consul DNS listen on (space separated, may be templates). */
  clientAddr: string;
  /** How a daemon on this node reaches the local Consul agent's HTTP(S) API. */
  localAgent: string;
  /** Address other nodes' daemons use to reach this node's services (literal or null on images). */
  nodeExporterListen: string;
}

/** go-sockaddr template that picks this machine's address inside the cluster network. */
export function cidrAddressTemplate(cidr: string): string {
  return `{{ GetAllInterfaces | include "network" "${cidr}" | sort "address" | limit 1 | attr "address" }}`;
}

export function makeContext(cluster: Cluster, role: Role, target: Target, node: Node | null, root?: string): RenderContext {
  if (target === 'local') {
    if (!node) throw new Error('the local target renders one node');
    if (!root || !isAbsolute(root)) throw new Error(`render: the local target needs an absolute root, got ${String(root)}`);
    if (!node.address) throw new Error(`render: node ${node.name} has no address for the local target`);
    const a = node.address;
    return {
      cluster,
      role,
      target,
      node,
      p: (path) => join(root, path),
      bindAddr: a,
      clientAddr: a,
      localAgent: a,
      nodeExporterListen: `${a}:9100`,
    };
  }
  const tmpl = cidrAddressTemplate(cluster.network.cidr);
  return {
    cluster,
    role,
    target,
    node: null,
    p: (path) => path,
    bindAddr: tmpl,
    clientAddr: `127.0.0.1 ${tmpl}`,
    localAgent: '127.0.0.1',
    nodeExporterListen: ':9100',
  };
}

export function runsNomadServer(role: Role): boolean {
  return role === 'server';
}

/** Nomad clients run on every node that is not a core server: workers and the monitor. */
export function runsNomadClient(role: Role): boolean {
  return role === 'client' || role === 'monitor';
}
