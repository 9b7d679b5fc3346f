// --netns: each node in its own network namespace, all joined by a bridge that lives in a
// "hub" namespace. The private range (10.213.0.0/24 by default) exists only inside these
// namespaces, never on the host's interfaces; piinit reaches the nodes from the hub
// (health probes run there). Cutting a node's cable (its veth in the hub) is a partition.
// Needs root (CAP_NET_ADMIN) and iproute2.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { UserError } from '../errors.ts';
import { gatewayOf } from './localize.ts';
import type { LocalNode, LocalState } from './state.ts';

const exec = promisify(execFile);

async function ip(args: string[]): Promise<string> {
  try {
    const { stdout } = await exec('ip', args, { timeout: 10_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; code?: string | number; message: string };
    if (e.code === 'ENOENT') throw new UserError('--netns needs the `ip` command (iproute2)');
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`);
  }
}

export async function listNamespaces(): Promise<string[]> {
  const out = await ip(['netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
}

/** Interface on the hub's bridge that carries node i. */
export const vethOf = (ns: string) => `${ns}v`;

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new UserError('--netns creates network namespaces and needs root (run with sudo)');
}

/** The names of the network for these nodes (pure): what `up` records before making it, so
 *  that `down` removes it even after an `up` that stopped half-way. */
export function networkOf(nodes: LocalNode[]): NonNullable<LocalState['network']> {
  const first = nodes[0]?.netns;
  if (!first) throw new Error('networkOf: nodes have no namespaces');
  const prefix = first.replace(/\d+$/, '');
  return { bridge: `${prefix}br`, hub: `${prefix}h`, namespaces: nodes.map((n) => n.netns!) };
}

/** Whether `ip -n ns ARGS` prints `want` (false when it fails). */
async function shows(ns: string, args: string[], want: string): Promise<boolean> {
  return (await ip(['-n', ns, ...args]).catch(() => '')).includes(want);
}

/** Creates what is missing (idempotent): a namespace left half-made by an interrupted `up`
 *  is made again; a complete one (its daemons may run) is left as it is. */
export async function setupNetwork(nodes: LocalNode[], subnet: string): Promise<NonNullable<LocalState['network']>> {
  requireRoot();
  const net = networkOf(nodes);
  const { hub, bridge } = net;
  const plen = subnet.split('/')[1];
  const gateway = gatewayOf(subnet);
  const existing = new Set(await listNamespaces());
  let hubMade = false;
  if (existing.has(hub) && !(await shows(hub, ['addr', 'show', 'dev', bridge, 'up'], `${gateway}/${plen}`))) {
    await ip(['netns', 'delete', hub]);
    existing.delete(hub);
  }
  if (!existing.has(hub)) {
    await ip(['netns', 'add', hub]);
    await ip(['-n', hub, 'link', 'set', 'lo', 'up']);
    await ip(['-n', hub, 'link', 'add', bridge, 'type', 'bridge']);
    await ip(['-n', hub, 'addr', 'add', `${gateway}/${plen}`, 'dev', bridge]);
    await ip(['-n', hub, 'link', 'set', bridge, 'up']);
    hubMade = true;
  }
  for (const n of nodes) {
    const ns = n.netns!;
    const veth = vethOf(ns);
    if (existing.has(ns)) {
      // A new hub has no cable to it; a half-made namespace lacks its address or route.
      const complete =
        !hubMade &&
        (await shows(hub, ['link', 'show', veth], `master ${bridge}`)) &&
        (await shows(ns, ['addr', 'show', 'dev', 'eth0'], `${n.address}/${plen}`)) &&
        (await shows(ns, ['route', 'show', 'default'], `via ${gateway}`));
      if (complete) continue;
      await ip(['netns', 'delete', ns]);
      if (!hubMade) await ip(['-n', hub, 'link', 'delete', veth]).catch(() => '');
    }
    await ip(['netns', 'add', ns]);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    await ip(['-n', hub, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await ip(['-n', hub, 'link', 'set', veth, 'master', bridge]);
    await ip(['-n', hub, 'link', 'set', veth, 'up']);
    await ip(['-n', ns, 'addr', 'add', `${n.address}/${plen}`, 'dev', 'eth0']);
    await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    await ip(['-n', ns, 'route', 'add', 'default', 'via', gateway]);
  }
  return net;
}

export async function teardownNetwork(net: NonNullable<LocalState['network']>): Promise<void> {
  const existing = new Set(await listNamespaces());
  // Deleting a namespace deletes its veth end, and with it the peer on the bridge.
  for (const ns of [...net.namespaces, net.hub]) if (existing.has(ns)) await ip(['netns', 'delete', ns]);
}

/** Cuts (or restores) the node's only link to the others. */
export async function setLink(net: NonNullable<LocalState['network']>, ns: string, up: boolean): Promise<void> {
  await ip(['-n', net.hub, 'link', 'set', vethOf(ns), up ? 'up' : 'down']);
}

/** Runs a command inside a namespace, collecting its output (bounded in time). */
export function runInNamespace(
  ns: string,
  argv: string[],
  opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}
