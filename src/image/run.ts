// Running the external tools an image build needs, with their output kept for the error
// message when they fail (a failed mmdebstrap run is only debuggable from its log).
import { execa } from 'execa';
import { UserError } from '../errors.ts';

export interface RunOptions {
  env?: Record<string, string>;
  input?: string | Buffer;
  cwd?: string;
  /** Called with each line of output (progress display). */
  onLine?: (line: string) => void;
}

export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const child = execa(cmd, args, {
    env: { ...opts.env },
    input: opts.input,
    cwd: opts.cwd,
    reject: false,
    all: true,
    stripFinalNewline: false,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (opts.onLine && child.all) {
    let pending = '';
    child.all.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) opts.onLine?.(l);
    });
  }
  const r = await child;
  if ((r as { code?: string }).code === 'ENOENT') {
    throw new UserError(`${cmd} is not installed (scripts/setup-test-host.sh lists what image building needs)`);
  }
  const out = () => String(r.all ?? '').split('\n').slice(-40).join('\n');
  // Ended by a signal: the OOM killer, a crash under qemu-user, a Ctrl-C aimed at it.
  if (r.signal) throw new UserError(`${cmd} was ended by ${r.signal}:\n${out()}`);
  if (r.exitCode === undefined) throw new UserError(`${cmd} could not be started: ${r.shortMessage}`);
  if (r.exitCode !== 0) throw new UserError(`${cmd} failed (exit ${r.exitCode}):\n${out()}`);
  return String(r.stdout);
}
