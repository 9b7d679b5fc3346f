// The state directory of a local cluster: what `up` started (state.json), each node's
// rendered files and data (nodes/<name>/), daemon logs (logs/). It survives `down`;
// `down --purge` removes it.
import { mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { holderName, takePidLock } from '../pid-lock.ts';
import type { ProcessRecord } from './proc.ts';

export const STATE_VERSION = 1;

export interface LocalNode {
  name: string;
  role: string;
  address: string;
  /** Where the node's on-Pi paths are relocated to. */
  root: string;
  /** Network namespace (netns mode) or null. */
  netns: string | null;
}

export interface LocalState {
  version: number;
  cluster: { name: string; file: string };
  mode: 'loopback' | 'netns';
  subnet: string;
  nodes: LocalNode[];
  /** Daemons currently recorded as started by us, keyed "<node>/<daemon>". */
  processes: Record<string, ProcessRecord>;
  /** Components that could not be obtained for this machine, with the reason. */
  unavailable: { component: string; reason: string }[];
  /** The raft timing the servers run with (for reports and the benchmark). */
  raftMultiplier: number;
  /** netns mode: the bridge and the namespaces we created, to remove on down. */
  network?: { bridge: string; hub: string; namespaces: string[] };
}

/** $XDG_STATE_HOME/piinit/<cluster name>, ~/.local/state/piinit/<cluster name> by default. */
export function defaultStateDir(clusterName: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state');
  return join(base, 'piinit', clusterName);
}

export const statePaths = (dir: string) => ({
  file: join(dir, 'state.json'),
  nodes: join(dir, 'nodes'),
  logs: join(dir, 'logs'),
  lock: join(dir, 'lock'),
});

/** A state file's JSON, or null when there is none. One that is not what piinit writes (cut
 *  short by a power loss, edited, from another version) is a UserError saying how to clean
 *  up by hand: nobody can tell any more what was started. */
export async function readStateFile<T>(file: string, shapeProblem: (v: Record<string, unknown>) => string | null, howToStop: string): Promise<T | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let v: unknown;
  let why: string | null;
  try {
    v = JSON.parse(text);
    why = v !== null && typeof v === 'object' && !Array.isArray(v) ? shapeProblem(v as Record<string, unknown>) : 'not a JSON object';
  } catch {
    why = text.trim() === '' ? 'empty' : 'not JSON';
  }
  if (why) throw new UserError(`${file} is damaged (${why}), so piinit cannot tell what it started: ${howToStop}, then remove ${file} (the cluster's data stays for the next piinit up)`);
  return v as T;
}

export async function readState(dir: string): Promise<LocalState | null> {
  const file = statePaths(dir).file;
  const s = await readStateFile<LocalState>(
    file,
    (v) => (v.version === STATE_VERSION && (v.processes === null || typeof v.processes !== 'object' || !Array.isArray(v.nodes)) ? 'no processes or nodes' : null),
    'stop the consul, nomad, prometheus and node_exporter processes it started by hand if any still run (with --netns also its namespaces and bridge: ip netns list)',
  );
  if (s && s.version !== STATE_VERSION) {
    throw new UserError(`${file} was written by another piinit version (state version ${JSON.stringify(s.version)}; this one reads ${STATE_VERSION}): stop that cluster with the piinit that started it`);
  }
  return s;
}

export async function writeState(dir: string, s: LocalState): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o750 });
  const p = statePaths(dir).file;
  const tmp = `${p}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o640 });
  await rename(tmp, p);
}

/** What `up` and `up --docker` keep in a state directory. */
const STATE_ENTRIES = ['state.json', 'nodes', 'logs', 'lock', 'lock.break', 'local-tls.json', 'docker.json', 'images'];
/** The temp files they are written through: writeState's `state.json.<pid>.tmp`, and
 *  writeFileAtomic's `.<name>.<hex>.tmp`, left behind by a run that was killed mid-write. */
const STATE_TEMP = /^(state\.json\.\d+\.tmp|\.(state|docker|local-tls)\.json\.[0-9a-f]+\.tmp)$/;

/** The names in a state directory that piinit does not make. Pure. */
export function foreignEntries(names: string[]): string[] {
  return names.filter((n) => !STATE_ENTRIES.includes(n) && !STATE_TEMP.test(n));
}

/** The names in dir; none when it does not exist. */
async function entriesOf(dir: string): Promise<string[]> {
  return readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
}

/** UserError for a --state that is no piinit state directory and holds files piinit did not
 *  make (a typo such as --state ~): up would litter it and down --purge empty it. One with
 *  piinit's state in it is ours, whatever else was put beside it (a purge keeps that). */
export async function checkStateDir(dir: string): Promise<void> {
  const names = await entriesOf(dir);
  if (names.includes('state.json') || names.includes('docker.json')) return;
  const foreign = foreignEntries(names).sort();
  if (foreign.length > 0) {
    const listed = foreign.slice(0, 3).join(', ') + (foreign.length > 3 ? `, … (${foreign.length} in all)` : '');
    throw new UserError(`${dir} is not a piinit state directory: it holds ${listed}, which piinit does not make; give another --state`);
  }
}

/** Removes piinit's entries of a state directory, then the directory when nothing else is in
 *  it; returns the names it kept. Without state.json or docker.json nothing shows that a
 *  nodes/, logs/ or images/ there is piinit's (a user's own images/ beside a mistyped
 *  --state), so then only locks and temp files go. The state file goes last: a purge cut
 *  short can be run again. */
export async function purgeStateDir(dir: string): Promise<string[]> {
  const withState = (await entriesOf(dir)).some((n) => n === 'state.json' || n === 'docker.json');
  // An up --docker stopped before docker.json leaves its role images (with the cluster's
  // keys in them) in images/: piinit's by their names, whatever else is there.
  if (!withState) {
    const images = join(dir, 'images');
    for (const n of await entriesOf(images).catch(() => [])) if (/\.oci\.tar(\.tmp-\d+)?$/.test(n)) await rm(join(images, n), { force: true });
    await rmdir(images).catch(() => undefined); // only if that left it empty
  }
  const names = await entriesOf(dir);
  const ours = (n: string) => foreignEntries([n]).length === 0 && (withState || n === 'lock' || n === 'lock.break' || STATE_TEMP.test(n));
  const last = (n: string) => n === 'state.json' || n === 'docker.json';
  for (const n of [...names.filter((x) => !last(x)), ...names.filter(last)]) if (ours(n)) await rm(join(dir, n), { recursive: true, force: true });
  const kept = names.filter((n) => !ours(n)).sort();
  if (kept.length === 0) await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  return kept;
}

/** One `up` or `down` at a time per state directory. A lock left by a process that is gone
 *  is taken over. Returns the release function. */
export async function lockState(dir: string): Promise<() => Promise<void>> {
  await checkStateDir(dir);
  await mkdir(dir, { recursive: true, mode: 0o750 });
  return takePidLock(statePaths(dir).lock, 0o640, (pid) => new UserError(`${holderName(pid)} is starting or stopping the local cluster in ${dir}; wait for it to finish`));
}
