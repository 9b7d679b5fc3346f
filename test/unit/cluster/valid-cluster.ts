// A valid cluster.yaml (line numbers matter: the error tests edit single lines of it) and a
// temp-dir helper that writes it with a fresh secrets file.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { generateSecrets, renderSecretsYaml } from '../../../src/cluster/secrets.ts';
import type { Secrets } from '../../../src/cluster/types.ts';
import { tlsNamesFromClusterData } from '../../../src/security/pki.ts';

export const VALID = `name: lab
datacenter: home
domain: consul
network:
  cidr: 192.168.1.0/24
  gateway: 192.168.1.1
  dns: [192.168.1.1]
  addressing: dhcp
nodes:
  - name: core1
    role: server
    board: pi4
    mac: "dc:a6:32:00:00:01"
    address: 192.168.1.11
  - name: core2
    role: server
    board: pi4
    mac: "dc:a6:32:00:00:02"
    address: 192.168.1.12
  - name: core3
    role: server
    board: pi3
    mac: "dc:a6:32:00:00:03"
    address: 192.168.1.13
  - name: monitor
    role: monitor
    board: pi4
    mac: "dc:a6:32:00:00:04"
    address: 192.168.1.20
  - name: worker1
    role: client
    board: pi-zero
    mac: "b8:27:eb:00:00:05"
    address: dhcp
components:
  consul: { version: 1.8.7, source: debian, suite: bullseye }
  nomad: { version: 1.6.5 }
  prometheus: { version: 2.24.1, source: debian, suite: bullseye }
  node_exporter: { version: 1.5.0, source: github }
consul:
  raft_multiplier: 3
ssh:
  authorized_keys: []
`;

/** VALID with line n (1-based) replaced by text (which may hold several lines, or none). */
export function editLine(n: number, text: string | null, base = VALID): string {
  const lines = base.split('\n');
  if (text === null) lines.splice(n - 1, 1);
  else lines[n - 1] = text;
  return lines.join('\n');
}

export interface TempCluster {
  dir: string;
  cluster: string;
  secrets: string;
  cleanup(): Promise<void>;
}

/** Writes cluster.yaml (and cluster.secrets.yaml, mode 0600) into a fresh temp dir.
 *  tls: with a CA and certificates for yaml's servers, as `piinit init` writes (validate fails without). */
export async function tempCluster(
  yaml: string,
  opts: { secrets?: Partial<Secrets>; secretsText?: string; tls?: boolean } = {},
): Promise<TempCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-cluster-'));
  const cluster = join(dir, 'cluster.yaml');
  const secrets = join(dir, 'cluster.secrets.yaml');
  await writeFile(cluster, yaml);
  const text = opts.secretsText ?? renderSecretsYaml({ ...generateSecrets(opts.tls ? tlsNamesFromClusterData(parse(yaml)) : undefined), ...opts.secrets });
  await writeFile(secrets, text, { mode: 0o600 });
  return { dir, cluster, secrets, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
