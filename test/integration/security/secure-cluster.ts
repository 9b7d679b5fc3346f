// A TLS + ACL + gossip-encrypted Consul 1.8.7 cluster on loopback addresses, started from
// the files piinit renders for the local target (the same ones the images carry) and the
// rendered ACL bootstrap script. Processes are ended by PID in `stop`, which tests register
// with after() before anything can fail.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { generateSecrets } from '../../../src/cluster/secrets.ts';
import type { Cluster, Node } from '../../../src/cluster/types.ts';
import { makeContext } from '../../../src/render/context.ts';
import { mergeTrees } from '../../../src/render/filetree.ts';
import { renderNode } from '../../../src/render/index.ts';
import { writeTree } from '../../../src/render/write.ts';
import { renderAclBootstrap } from '../../../src/security/acl.ts';
import { localClusterTls } from '../../../src/security/pki.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';

export const CONSUL = '/usr/local/bin/consul';

export interface SecureCluster {
  dir: string;
  cluster: Cluster;
  servers: Node[];
  /** node name → the directory its files were written under (the local target's root). */
  roots: Map<string, string>;
  procs: Map<string, ChildProcess>;
  https: Agent;
  start(node: Node): ChildProcess;
  stopNode(name: string): Promise<void>;
  stop(): Promise<void>;
  /** The Consul logs of one node, or of all. */
  logs(name?: string): Promise<string>;
}

/** Three servers at `${prefix}.1-3` and a client at `${prefix}.4` (not started). */
export async function secureCluster(prefix: string): Promise<SecureCluster> {
  if (!existsSync(CONSUL)) throw new Error(`${CONSUL} is missing: run scripts/setup-test-host.sh`);
  const dir = await mkdtemp(join(tmpdir(), 'piinit-secure-'));
  // Secrets are generated for the "real" addresses, as piinit init does; the local cluster
  // then gets its server certificates re-issued for the loopback addresses.
  const real = fixtureCluster({ security: { tls: true, acl: true }, consul: { raftMultiplier: 1 } });
  real.secrets = generateSecrets(real);
  const nodes: Node[] = [
    ...real.nodes.filter((n) => n.role === 'server').map((n, i) => ({ ...n, address: `${prefix}.${i + 1}` })),
    { ...real.nodes.find((n) => n.role === 'client')!, name: 'worker1', address: `${prefix}.4` },
  ];
  const cluster: Cluster = { ...real, nodes };
  cluster.secrets = { ...real.secrets, tls: localClusterTls(real, nodes.map((n) => n.address!)) };
  const roots = new Map<string, string>();
  for (const n of nodes) {
    const root = join(dir, n.name);
    roots.set(n.name, root);
    const tree = mergeTrees(renderNode(cluster, n, { target: 'local', root }), renderAclBootstrap(makeContext(cluster, n.role, 'local', n, root)));
    await writeTree(tree, '/');
  }
  const procs = new Map<string, ChildProcess>();
  const https = new Agent({ connect: { ca: cluster.secrets.tls!.ca.cert } });
  const sc: SecureCluster = {
    dir,
    cluster,
    servers: nodes.filter((n) => n.role === 'server'),
    roots,
    procs,
    https,
    start(node) {
      const root = roots.get(node.name)!;
      const p = spawn(CONSUL, ['agent', `-config-dir=${join(root, 'etc/consul.d')}`, `-log-file=${join(dir, `${node.name}.log`)}`], {
        stdio: 'ignore',
      });
      procs.set(node.name, p);
      return p;
    },
    async stopNode(name) {
      const p = procs.get(name);
      procs.delete(name);
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
    async stop() {
      await Promise.all([...procs.keys()].map((n) => sc.stopNode(n)));
      await https.close();
      await rm(dir, { recursive: true, force: true });
    },
    async logs(name) {
      let all = '';
      for (const n of nodes.filter((x) => !name || x.name === name)) {
        // -log-file=X.log may write X-<timestamp>.log; read whatever is there.
        for (const f of (await readdir(dir)).filter((f) => f.startsWith(n.name) && f.endsWith('.log'))) {
          all += await readFile(join(dir, f), 'utf8');
        }
      }
      return all;
    },
  };
  return sc;
}

/** GET over HTTPS (verified against the cluster CA), with an optional token. */
export async function consulGet(sc: SecureCluster, addr: string, path: string, token?: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`https://${addr}:8501${path}`, {
    dispatcher: sc.https,
    headers: token ? { 'X-Consul-Token': token } : {},
    signal: AbortSignal.timeout(10_000),
  });
  return { status: r.status, body: await r.text() };
}

/** Polls until fn returns a value (not undefined), at most `tries` times, `ms` apart. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined>, tries = 60, ms = 1000): Promise<T> {
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, ms));
  }
  throw new Error(`gave up waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
