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
  /** IPv4 address. With addressing "dhcp" it is the address the router reserves for the
   *  MAC; with "static" the image configures it. Servers and the monitor always have one
   *  (retry_join and scrape targets need it); null only for a client on a dynamic lease. */
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

export interface KeyPair {
  /** PEM certificate (chain not included). */
  cert: string;
  /** PEM private key. Secret. */
  key: string;
}

/** Everything secret lives in one file (mode 0600), generated once by `piinit init`. */
export interface Secrets {
  /** 32 random bytes, base64. */
  consulGossipKey: string;
  /** 32 random bytes, base64 (Nomad server gossip). */
  nomadGossipKey: string;
  /** Cluster CA (ECDSA) and the certificates piinit issued from it. The server certificates
   *  are shared by all servers (one identical image per role), so their SANs name every
   *  server address. Absent until generated (security issue). */
  tls?: {
    ca: KeyPair;
    consulServer: KeyPair;
    nomadServer: KeyPair;
    nomadClient: KeyPair;
  };
  /** ACL tokens, as UUIDs (Consul SecretIDs / Nomad secret IDs). */
  tokens: {
    consulBootstrap?: string;
    consulAgent?: string;
    consulPrometheus?: string;
    consulOperator?: string;
    consulDns?: string;
    nomadBootstrap?: string;
    nomadOperator?: string;
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
