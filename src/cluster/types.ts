// The typed cluster every later step works from. Produced by load.ts from cluster.yaml
// and the secrets file; nothing downstream reads YAML.
import type { Board, DebianArch, Role } from './boards.ts';

export const COMPONENTS = ['consul', 'nomad', 'prometheus', 'node_exporter'] as const;
export type ComponentName = (typeof COMPONENTS)[number];

export type SourceKind = 'hashicorp' | 'github' | 'debian' | 'mirror';

export interface ComponentSpec {
  name: ComponentName;
  version: string;
  source: SourceKind;
  /** source: debian — the suite to take the .deb from (e.g. bullseye) and the package name. */
  suite?: string;
  package?: string;
  /** source: mirror — a directory or http(s) URL with the HashiCorp / GitHub release layout. */
  mirror?: string;
}

export interface Node {
  name: string;
  role: Role;
  board: Board;
  arch: DebianArch;
  /** Lower-case, colon separated. */
  mac: string;
  /** Static IPv4 address, or null when the node takes its address from a DHCP reservation. */
  address: string | null;
}

export interface Network {
  cidr: string;
  /** Network address and prefix length, parsed from cidr. */
  networkAddress: string;
  prefixLength: number;
  gateway: string;
  dns: string[];
  /** dhcp: one identical image per role, hostname and address from DHCP by MAC.
   *  static: the image carries a MAC → hostname/address map. */
  addressing: 'dhcp' | 'static';
}

export interface Wifi {
  ssid: string;
  country: string;
  /** 64 hex digits, derived from the passphrase exactly as wpa_passphrase does (or given). Secret. */
  psk: string;
}

export interface Secrets {
  consulGossipKey: string;
  nomadGossipKey: string;
  /** PEM. Present once `piinit init` generated the CA (security issue). */
  ca?: { cert: string; key: string };
  /** ACL tokens (UUIDs). */
  tokens: {
    consulBootstrap?: string;
    consulAgent?: string;
    consulPrometheus?: string;
    consulOperator?: string;
    nomadBootstrap?: string;
  };
  wifiPassphrase?: string;
  wifiPsk?: string;
}

export interface Cluster {
  name: string;
  datacenter: string;
  /** Consul DNS domain, without dots at either end (default "consul"). */
  domain: string;
  network: Network;
  nodes: Node[];
  components: Record<ComponentName, ComponentSpec>;
  consul: {
    /** Raft timing multiplier (1 = fastest, 10 = most forgiving). */
    raftMultiplier: number;
  };
  wifi: Wifi | null;
  ssh: { authorizedKeys: string[] };
  security: { tls: boolean; acl: boolean };
  secrets: Secrets;
  /** Where the cluster came from, for messages. */
  files: { cluster: string; secrets: string };
}

export function servers(c: Cluster): Node[] {
  return c.nodes.filter((n) => n.role === 'server');
}

export function nodesWithRole(c: Cluster, role: Role): Node[] {
  return c.nodes.filter((n) => n.role === role);
}

export function archesNeeded(c: Cluster): DebianArch[] {
  return [...new Set(c.nodes.map((n) => n.arch))].sort();
}
