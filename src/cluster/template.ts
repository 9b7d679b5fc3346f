// The commented cluster.yaml that `piinit init` writes: a typical home cluster.
import { DEFAULT_RAFT_MULTIPLIER } from './load.ts';
import { SECRETS_FILE_NAME } from './secrets.ts';

export interface InitOptions {
  name?: string;
  /** Nomad client nodes (0 or more). */
  clients: number;
}

/** Upstream versions init suggests (all published for linux arm, arm64 and amd64). */
export const INIT_VERSIONS = {
  consul: '1.18.2',
  nomad: '1.6.5',
  prometheus: '2.53.1',
  node_exporter: '1.8.2',
} as const;

export function renderInitClusterYaml(opts: InitOptions): string {
  const name = opts.name ?? 'homelab';
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  const mac = (i: number) => `dc:a6:32:00:${hex(i >> 8)}:${hex(i & 0xff)}`; // up to 999 clients: two bytes
  const node = (n: string, role: string, board: string, i: number, address: string) =>
    `  - name: ${n}\n    role: ${role}\n    board: ${board}\n    mac: "${mac(i)}"   # REPLACE with this board's MAC\n    address: ${address}\n`;
  let nodes = '';
  for (let i = 1; i <= 3; i++) nodes += node(`core${i}`, 'server', 'pi4', 0x10 + i, `192.168.1.${10 + i}`);
  nodes += node('monitor', 'monitor', 'pi4', 0x20, '192.168.1.20');
  for (let i = 1; i <= opts.clients; i++) nodes += node(`worker${i}`, 'client', 'pi4', 0x30 + i, 'dhcp');

  return `# piinit cluster file. \`piinit validate\` checks it; \`piinit render\` shows what each
# node will carry. Secrets (gossip keys, ACL tokens, Wi-Fi passphrase) are NOT here: they
# are in ${SECRETS_FILE_NAME} beside this file (mode 0600, never commit it).

# Cluster name (a host name label) and the Consul/Nomad datacenter.
name: ${name}
datacenter: home
# Consul DNS domain: services resolve as NAME.service.<domain>.
domain: consul
# Where the secrets are, relative to this file (this is the default):
# secrets_file: ${SECRETS_FILE_NAME}

network:
  cidr: 192.168.1.0/24
  gateway: 192.168.1.1
  # DNS servers for names outside .consul (default: the gateway).
  dns: [192.168.1.1]
  # dhcp:   one identical image per role; each node gets its hostname and address by
  #         DHCP. Reserve the addresses below for the MACs in your router.
  # static: the image carries a MAC -> name/address map and configures it itself.
  addressing: dhcp

# Roles: server (Consul + Nomad server; 3 or 5 of them), monitor (Prometheus),
# client (Nomad client: runs your jobs). Boards: pi-zero, pi1, pi2, pi3, pi4, pi5, amd64.
# Pi Zero/1 can only be clients; Pi 2 cannot be the monitor.
# address: an IPv4 address inside network.cidr, or dhcp (clients only: servers and the
# monitor need a fixed one, the other nodes find them by it).
nodes:
${nodes}
# Where each release comes from:
#   hashicorp  releases.hashicorp.com (consul, nomad), checked with SHA256SUMS + HashiCorp's key
#   github     GitHub releases (prometheus, node_exporter), checked with sha256sums.txt
#   debian     a Debian package: add suite: (e.g. bookworm) and package: (default: the usual name)
#   mirror     a directory or http(s) URL with the same layout: add mirror: PATH-OR-URL
components:
  consul:
    version: ${INIT_VERSIONS.consul}
    source: hashicorp
  nomad:
    version: ${INIT_VERSIONS.nomad}
    source: hashicorp
  prometheus:
    version: ${INIT_VERSIONS.prometheus}
    source: github
  node_exporter:
    version: ${INIT_VERSIONS.node_exporter}
    source: github

consul:
  # Raft timing, 1 (fastest) to 10 (most forgiving). 1 elects a leader fastest, but SD-card
  # write stalls on a Pi then trigger needless elections; Consul's default of 5 took up to
  # 12 s to fail over. ${DEFAULT_RAFT_MULTIPLIER} keeps leader election and fail-over under 10 s.
  raft_multiplier: ${DEFAULT_RAFT_MULTIPLIER}
  # An even number of servers halves fault tolerance; piinit refuses it unless this is true.
  allow_even_servers: false

# Wi-Fi instead of (or besides) Ethernet: uncomment, and put wifi_passphrase (or the
# 64-hex-digit wifi_psk) into the secrets file.
# wifi:
#   ssid: "My Network"
#   country: DE

# SSH public keys allowed to log in. Empty: no SSH server at all.
ssh:
  authorized_keys: []
  # - ssh-ed25519 AAAA... you@laptop

# TLS between agents and ACLs (default-deny) for Consul and Nomad.
security:
  tls: true
  acl: true
`;
}
