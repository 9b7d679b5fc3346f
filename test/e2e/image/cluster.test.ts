// Three copies of the same amd64 server image and the monitor image boot side by side on a
// bridge in a network namespace this test creates, where dnsmasq hands out hostnames and
// addresses by MAC (like the router reservations of a real cluster). They must form a
// TLS + ACL Consul cluster with three voters, and the monitor's Prometheus must scrape every
// node_exporter — checked with checkHealth from inside the namespace, and with
// `piinit status --target cluster`.
//
// Without KVM the four VMs are emulated (TCG) on what may be two host cores: every deadline
// here is generous, the guests boot with mitigations=off (an emulated CPU does not speculate,
// and the kernel's barriers cost emulated instructions on every syscall) on `-cpu max` (AES-NI
// for Go's TLS and gossip crypto), and Consul runs with its slowest raft timing. Nothing is
// timed; the test waits, bounded, for a healthy cluster.
//
// The packages are the cluster's real ones built by buildPackages from a seeded release
// cache: Consul 1.8.7, Prometheus 2.24.1 and node_exporter are this host's binaries; Nomad
// has no reachable source here, so /usr/bin/true stands in for it (as in the deb tests) and
// Nomad's health is excused.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { loadCluster } from '../../../src/cluster/load.ts';
import { ensureSecretsFile } from '../../../src/cluster/secrets.ts';
import type { Cluster } from '../../../src/cluster/types.ts';
import { buildPackages } from '../../../src/deb/build.ts';
import type { HealthReport } from '../../../src/health/report.ts';
import { targetsFromCluster } from '../../../src/health/report.ts';
import { buildImage, type ImageResult } from '../../../src/image/build.ts';
import { externalDepends, roleDebs } from '../../../src/image/debs.ts';
import { BOOT_MARKER, optionalPackages } from '../../../src/image/system.ts';
import { bootCmdlineExtras } from '../../../src/render/index.ts';
import { runInNamespace } from '../../../src/run/netns.ts';
import { testCacheDir } from '../../helpers/debian-root.ts';
import { HOST_COMPONENTS_YAML, seedHostAmd64 } from '../../integration/deb/seed-cache.ts';
import { startVm, type Vm } from './vm.ts';

const NS = `piinit-vmc-${process.pid}`;
const SUBNET = '10.231.0';
const NOMAD_STANDIN = 'Nomad has no reachable release here; /usr/bin/true stands in for it in the packages';
const NODES = [
  { name: 'core1', role: 'server', mac: '52:54:00:e7:00:11', address: `${SUBNET}.11` },
  { name: 'core2', role: 'server', mac: '52:54:00:e7:00:12', address: `${SUBNET}.12` },
  { name: 'core3', role: 'server', mac: '52:54:00:e7:00:13', address: `${SUBNET}.13` },
  { name: 'monitor', role: 'monitor', mac: '52:54:00:e7:00:20', address: `${SUBNET}.20` },
] as const;

const CLUSTER_YAML = `name: vmtest
datacenter: vmtest
domain: consul
network:
  cidr: ${SUBNET}.0/24
  gateway: ${SUBNET}.1
  dns: [${SUBNET}.1]
  addressing: dhcp
nodes:
${NODES.map((n) => `  - { name: ${n.name}, role: ${n.role}, board: amd64, mac: "${n.mac}", address: ${n.address} }`).join('\n')}
${HOST_COMPONENTS_YAML}
ssh:
  authorized_keys: []
security:
  tls: true
  acl: true
# Four emulated VMs share two host cores: slower than any Pi, so the slowest raft timing.
consul:
  raft_multiplier: 10
`;

let work: string;
let cache: string;
let nsCreated = false;
let dnsmasq: ChildProcess | null = null;
const vms = new Map<string, Vm>();

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe' }).toString();

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'piinit-vmcluster-'));
  cache = process.env.PIINIT_IMAGE_TEST_CACHE ?? join(testCacheDir(), 'images');
  await mkdir(cache, { recursive: true });
});

after(async () => {
  for (const vm of vms.values()) await vm.kill();
  if (dnsmasq && dnsmasq.exitCode === null && dnsmasq.signalCode === null && dnsmasq.pid) {
    const gone = new Promise<void>((r) => dnsmasq!.once('exit', () => r()));
    process.kill(dnsmasq.pid, 'SIGKILL');
    await gone;
  }
  if (nsCreated) sh('ip', ['netns', 'delete', NS]);
  await rm(work, { recursive: true, force: true });
});

/** A namespace with a bridge at .1, one tap per VM, and dnsmasq giving each MAC its name and address. */
async function startNetwork(): Promise<void> {
  sh('ip', ['netns', 'add', NS]);
  nsCreated = true;
  const ipn = (...a: string[]) => sh('ip', ['-n', NS, ...a]);
  ipn('link', 'set', 'lo', 'up');
  ipn('link', 'add', 'br0', 'type', 'bridge');
  ipn('addr', 'add', `${SUBNET}.1/24`, 'dev', 'br0');
  ipn('link', 'set', 'br0', 'up');
  for (const [i] of NODES.entries()) {
    ipn('tuntap', 'add', 'dev', `tap${i}`, 'mode', 'tap');
    ipn('link', 'set', `tap${i}`, 'master', 'br0');
    ipn('link', 'set', `tap${i}`, 'up');
  }
  const args = [
    'netns', 'exec', NS, 'dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--interface=br0', '--bind-interfaces',
    `--dhcp-range=${SUBNET}.100,${SUBNET}.200,1h`, `--dhcp-leasefile=${join(work, 'dnsmasq.leases')}`, '--log-dhcp',
    ...NODES.map((n) => `--dhcp-host=${n.mac},${n.name},${n.address}`),
  ];
  let log = '';
  dnsmasq = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  dnsmasq.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  dnsmasq.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(dnsmasq.exitCode, null, `dnsmasq exited: ${log}`);
}

async function probe(cluster: Cluster): Promise<HealthReport> {
  const targets = targetsFromCluster(cluster, { nomadUnavailable: NOMAD_STANDIN });
  const auth = {
    ca: cluster.secrets.tls!.ca.cert,
    consulToken: cluster.secrets.tokens.consulOperator!,
    serverNames: [`server.${cluster.datacenter}.${cluster.domain}`, 'server.global.nomad'],
  };
  const script = fileURLToPath(new URL('../../../src/health/probe-stdin.ts', import.meta.url));
  const r = await runInNamespace(NS, [process.execPath, '--import', import.meta.resolve('tsx/esm'), script], {
    input: JSON.stringify({ targets, auth, timeoutMs: 30_000 }),
    timeoutMs: 180_000,
  });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as HealthReport;
}

const tails = () => [...vms.entries()].map(([n, vm]) => `--- ${n}\n${vm.tail(30)}`).join('\n');

/** Probes until the cluster is healthy (bounded); fails with the last problems and the consoles. */
async function waitHealthy(cluster: Cluster, withinMs: number, since: number): Promise<HealthReport> {
  const deadline = Date.now() + withinMs;
  let report: HealthReport | null = null;
  let lastProblems = '';
  while (Date.now() < deadline) {
    report = await probe(cluster);
    if (report.healthy) return report;
    const problems = report.problems.join('; ');
    if (problems !== lastProblems) console.log(`# ${((Date.now() - since) / 1000).toFixed(0)} s: ${problems}`);
    lastProblems = problems;
    // Every probe scrapes each node_exporter and asks Consul: not too often on starved guests.
    await new Promise((r) => setTimeout(r, 30_000));
  }
  assert.ok(report, 'probed at least once');
  assert.fail(`not healthy:\n${report.problems.join('\n')}\n${tails()}`);
}

const MARKER_RE = new RegExp(`${BOOT_MARKER} ([^\n]*)\n`);
const fields = (line: string) => Object.fromEntries(line.trim().split(/\s+/).map((kv) => kv.split('=', 2) as [string, string]));

test('three copies of the server image and the monitor image form a healthy TLS + ACL cluster', { timeout: 50 * 60_000 }, async () => {
  const t0 = Date.now();
  const clusterPath = join(work, 'cluster.yaml');
  await writeFile(clusterPath, CLUSTER_YAML);
  await ensureSecretsFile(clusterPath);
  const { cluster } = await loadCluster(clusterPath);
  assert.ok(cluster.secrets.tls && cluster.secrets.tokens.consulOperator, 'secrets with the cluster CA and the operator token');

  // The cluster's packages, from host binaries seeded into a release cache.
  await seedHostAmd64(join(work, 'releases'), cluster.components);
  const debDir = join(work, 'debs');
  await buildPackages({ cluster, arches: ['amd64'], outDir: debDir, cacheDir: join(work, 'releases'), compression: { kind: 'gzip', level: 1 } });
  const debs = { server: await roleDebs(debDir, cluster.name, 'server', 'amd64'), monitor: await roleDebs(debDir, cluster.name, 'monitor', 'amd64') };
  // One base for both roles: the union of what their .debs need from Debian.
  const extraPackages = [...optionalPackages({ ssh: false, wifi: false, raspi: false }), ...(await externalDepends([...debs.server, ...debs.monitor]))];
  const images: Record<'server' | 'monitor', ImageResult> = {} as never;
  for (const role of ['server', 'monitor'] as const) {
    images[role] = await buildImage(
      { cluster: cluster.name, board: 'amd64', role, debs: debs[role], cmdlineExtras: [...bootCmdlineExtras(cluster, role), 'mitigations=off'], extraPackages },
      { cacheDir: cache, outDir: join(work, 'images'), xz: false },
    );
  }
  const tBuilt = Date.now();
  console.log(`# packages and images built in ${((tBuilt - t0) / 1000).toFixed(0)} s`);

  await startNetwork();
  for (const [i, n] of NODES.entries()) {
    const dir = join(work, `vm-${n.name}`);
    await mkdir(dir);
    const disk = join(dir, 'disk.img');
    // Each VM its own copy of the one image (sparse).
    sh('cp', ['--sparse=always', images[n.role].files.raw, disk]);
    vms.set(n.name, await startVm({ arch: 'amd64', image: disk, workDir: dir, memMiB: 1024, cpus: 1, cpuModel: 'max', tap: { ifname: `tap${i}`, mac: n.mac }, netns: NS }));
  }

  // Every VM boots and gets its name and address from dnsmasq by MAC.
  const machineIds = new Map<string, string>();
  const bootDeadline = Date.now() + 12 * 60_000;
  for (const n of NODES) {
    const vm = vms.get(n.name)!;
    const report = fields((await vm.waitFor(MARKER_RE, Math.max(1000, bootDeadline - Date.now())))[1]!);
    assert.equal(report['ro-root'], 'yes', vm.tail());
    assert.equal(report.data, 'yes', vm.tail());
    machineIds.set(n.name, report['machine-id']!);
    assert.equal(report.hostname, n.name, `${n.name}: hostname from DHCP\n${vm.tail()}`);
    assert.equal(report.address, `${n.address}/24`, `${n.name}: address from DHCP\n${vm.tail()}`);
  }
  assert.equal(new Set(machineIds.values()).size, NODES.length, `each copy of the one image made its own machine ID: ${[...machineIds.values()]}`);
  console.log(`# all four VMs booted in ${((Date.now() - tBuilt) / 1000).toFixed(0)} s`);

  // Consul (leader, three voters, members, node_exporter in the catalog) and Prometheus.
  const report = await waitHealthy(cluster, 20 * 60_000, tBuilt);
  assert.ok(report.consul.leader, 'a Consul leader');
  assert.deepEqual(report.consul.peers.filter((p) => p.voter).map((p) => p.node).sort(), ['core1', 'core2', 'core3']);
  assert.deepEqual(report.consul.members.map((m) => m.name).sort(), ['core1', 'core2', 'core3', 'monitor']);
  // The monitor's Prometheus found every node_exporter and Consul server through Consul and scraped them.
  const up = report.prometheus.targets.filter((t) => t.health === 'up');
  for (const n of NODES) {
    assert.ok(up.some((t) => t.job === 'node' && t.instance === n.name && t.scrapeUrl.startsWith(`http://${n.address}:9100/`)), `node_exporter of ${n.name} scraped up: ${JSON.stringify(report.prometheus.targets)}`);
  }
  for (const n of NODES.filter((x) => x.role === 'server')) {
    assert.ok(up.some((t) => t.job === 'consul' && t.instance === n.name), `Consul on ${n.name} scraped up: ${JSON.stringify(report.prometheus.targets)}`);
  }
  console.log(`# healthy ${((Date.now() - tBuilt) / 1000).toFixed(0)} s after the VMs started`);

  // The CLI against the real addresses, from inside the namespace: Consul's part is healthy.
  const bin = fileURLToPath(new URL('../../../bin/piinit.js', import.meta.url));
  // The starved guests' cluster flaps (a slow answer, a server briefly unhealthy in
  // autopilot): asked again, bounded, until the CLI sees Consul healthy too.
  let cli = { code: null as number | null, stdout: '', stderr: '' };
  let status: HealthReport | null = null;
  const cliDeadline = Date.now() + 10 * 60_000;
  for (let i = 0; Date.now() < cliDeadline; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 30_000));
    cli = await runInNamespace(NS, [process.execPath, bin, 'status', clusterPath, '--target', 'cluster', '--json', '--timeout', '30'], { timeoutMs: 180_000 });
    status = JSON.parse(cli.stdout) as HealthReport;
    if (status.consul.problems.length === 0) break;
  }
  assert.ok(status);
  // Not healthy overall: the Nomad stand-in is not a Nomad, and a real cluster has no excuse.
  assert.equal(cli.code, 1, cli.stderr);
  assert.deepEqual(status.consul.problems, [], cli.stdout);
  assert.equal(status.consul.peers.filter((p) => p.voter).length, 3);
  assert.ok(status.problems.every((p) => /nomad/i.test(p)), `only Nomad's problems: ${status.problems.join('\n')}`);
});
