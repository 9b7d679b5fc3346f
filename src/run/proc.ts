// Background daemons we start, and only those we start, identified beyond the bare PID:
// a PID is recycled by the kernel, so before signalling we check that /proc/<pid> still
// shows the same start time and the same program we recorded.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';

export interface ProcessRecord {
  /** Which daemon this is, e.g. "consul", "node_exporter". */
  name: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat: clock ticks since boot; unique together with the PID. */
  startTicks: number;
  /** The program's absolute path (argv[0] after exec) and its arguments. */
  argv: string[];
  log: string;
  startedAt: string;
  /** Network namespace it runs in (null: the host's). */
  netns: string | null;
}

interface ProcStat {
  state: string;
  startTicks: number;
}

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may contain spaces or ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); field 22 is rest[19].
  const state = rest[0] ?? '?';
  const startTicks = Number(rest[19]);
  return { state, startTicks };
}

function readCmdline(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((_, i, a) => i < a.length - 1 || a[i] !== '');
  } catch {
    return null;
  }
}

export type Liveness = 'running' | 'exited' | 'replaced';

/** running: the very process we started is alive (zombies count as exited);
 *  replaced: the PID now belongs to another process. */
export function liveness(rec: ProcessRecord): Liveness {
  const st = readStat(rec.pid);
  if (!st) return 'exited';
  if (st.startTicks !== rec.startTicks) return 'replaced';
  if (st.state === 'Z' || st.state === 'X') return 'exited';
  const cmd = readCmdline(rec.pid);
  // Same start time but no command line: the process is exiting (its memory is already
  // released, it is not a zombie yet). Reading it as "replaced" made a kill look failed.
  if (cmd && cmd.length === 0) return 'exited';
  // Right after `ip netns exec` the process may still be `ip`; once exec'd it is our program.
  // A script shows its interpreter first and its own path second.
  const same = cmd && (cmd[0] === rec.argv[0] || cmd[1] === rec.argv[0] || (rec.netns && cmd[0] === 'ip'));
  if (!same) return 'replaced';
  return 'running';
}

export interface StartOptions {
  name: string;
  program: string;
  args: string[];
  log: string;
  cwd: string;
  env?: NodeJS.ProcessEnv;
  netns?: string | null;
}

/** Starts a daemon detached in its own process group, stdout and stderr appended to its log. */
export async function startDaemon(o: StartOptions): Promise<ProcessRecord> {
  const fd = openSync(o.log, 'a', 0o640);
  const header = `\n--- piinit: starting ${o.name} at ${new Date().toISOString()}\n`;
  const fh = await open(o.log, 'a');
  await fh.write(header);
  await fh.close();
  const [file, args] = o.netns ? ['ip', ['netns', 'exec', o.netns, o.program, ...o.args]] : [o.program, o.args];
  let child;
  try {
    child = spawn(file, args, { cwd: o.cwd, detached: true, stdio: ['ignore', fd, fd], env: o.env ?? process.env });
  } finally {
    closeSync(fd);
  }
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => resolve(child.pid!));
  });
  child.unref();
  const st = readStat(pid);
  if (!st) throw new Error(`${o.name} exited immediately; see ${o.log}`);
  return {
    name: o.name,
    pid,
    startTicks: st.startTicks,
    argv: [o.program, ...o.args],
    log: o.log,
    startedAt: new Date().toISOString(),
    netns: o.netns ?? null,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGTERM, then SIGKILL once graceMs passed. Returns what was done; never signals a
 *  process that is not the one recorded. */
export async function stopDaemon(rec: ProcessRecord, graceMs = 10_000): Promise<'stopped' | 'killed' | 'not-running'> {
  if (liveness(rec) !== 'running') return 'not-running';
  try {
    process.kill(rec.pid, 'SIGTERM');
  } catch {
    return 'not-running';
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (liveness(rec) !== 'running') return 'stopped';
    await sleep(50);
  }
  if (liveness(rec) === 'running') {
    try {
      process.kill(rec.pid, 'SIGKILL');
    } catch {
      return 'stopped';
    }
    const killDeadline = Date.now() + 5000;
    while (Date.now() < killDeadline && liveness(rec) === 'running') await sleep(20);
    return 'killed';
  }
  return 'stopped';
}

/** SIGKILL right away (fault tests: a crash, not a shutdown). */
export function killDaemon(rec: ProcessRecord): boolean {
  if (liveness(rec) !== 'running') return false;
  process.kill(rec.pid, 'SIGKILL');
  return true;
}

/** The last lines of a log, for reporting a daemon that died. */
export async function logTail(path: string, lines = 15): Promise<string> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, 16 * 1024);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    const all = buf.toString('utf8').split('\n');
    if (all.at(-1) === '') all.pop();
    return all.slice(-lines).join('\n');
  } finally {
    await fh.close();
  }
}
