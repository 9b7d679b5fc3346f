// A hand-built Cluster for tests of code downstream of the loader. Tests of the loader
// itself use YAML files; everything else can start from this.
import type { Cluster, Node } from '../../src/cluster/types.ts';

export function fixtureCluster(overrides: Partial<Cluster> = {}): Cluster {
  const node = (name: string, role: Node['role'], board: Node['board'], i: number): Node => ({
    name,
    role,
    board,
    arch: board === 'amd64' ? 'amd64' : board === 'pi2' ? 'armhf' : board === 'pi-zero' || board === 'pi1' ? 'armel' : 'arm64',
    mac: `dc:a6:32:00:00:${i.toString(16).padStart(2, '0')}`,
    address: `192.168.50.${10 + i}`,
  });
  return {
    name: 'homelab',
    datacenter: 'home',
    domain: 'consul',
    network: {
      cidr: '192.168.50.0/24',
      networkAddress: '192.168.50.0',
      prefixLength: 24,
      gateway: '192.168.50.1',
      dns: ['192.168.50.1'],
      addressing: 'dhcp',
    },
    nodes: [
      node('core1', 'server', 'pi4', 1),
      node('core2', 'server', 'pi4', 2),
      node('core3', 'server', 'pi3', 3),
      node('monitor', 'monitor', 'pi4', 4),
      node('worker1', 'client', 'pi-zero', 5),
    ],
    components: {
      consul: { name: 'consul', version: '1.8.7', source: 'debian', suite: 'bullseye', package: 'consul' },
      nomad: { name: 'nomad', version: '1.6.5', source: 'hashicorp' },
      prometheus: { name: 'prometheus', version: '2.24.1', source: 'debian', suite: 'bullseye', package: 'prometheus' },
      node_exporter: { name: 'node_exporter', version: '1.5.0', source: 'debian', suite: 'bookworm', package: 'prometheus-node-exporter' },
    },
    consul: { raftMultiplier: 3 },
    wifi: null,
    ssh: { authorizedKeys: [] },
    security: { tls: false, acl: false },
    secrets: {
      consulGossipKey: 'pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=',
      nomadGossipKey: 'L0Kx0oBuxOV1CBXUGTNtf36d/x4WYKUPwS6+zn8DYQ8=',
      tokens: {},
    },
    files: { cluster: 'cluster.yaml', secrets: 'cluster.secrets.yaml' },
    ...overrides,
  };
}
