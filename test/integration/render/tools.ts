// Shared by the render integration tests: write a tree under a temp dir and run real tools.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function tempDir(t: { after(fn: () => Promise<void>): void }, prefix = 'piinit-render-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

export function run(cmd: string, args: string[], opts: { cwd?: string } = {}): { status: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd, timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}
