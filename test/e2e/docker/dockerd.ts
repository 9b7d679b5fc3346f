// A Docker daemon of the test's own: its socket, data root and exec root in a temp dir,
// no default bridge and no iptables rules (containers reach only each other and nothing
// outside), stopped by its PID. The docker CLI talks to it through DOCKER_HOST.
import { spawn } from 'node:child_process';
import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export interface Dockerd {
  host: string;
  env: Record<string, string>;
  pid: number;
  log: string;
  stop(): Promise<void>;
}

export async function startDockerd(dir: string, timeoutMs = 60_000): Promise<Dockerd> {
  await mkdir(dir, { recursive: true });
  const sock = join(dir, 'docker.sock');
  const host = `unix://${sock}`;
  const log = join(dir, 'dockerd.log');
  const out = await open(log, 'a');
  const child = spawn(
    'dockerd',
    ['--host', host, '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'docker.pid'), '--bridge=none', '--iptables=false'],
    { stdio: ['ignore', out.fd, out.fd], detached: true },
  );
  await out.close();
  const pid = child.pid!;
  let exited = false;
  const gone = new Promise<void>((resolve) => child.on('exit', () => ((exited = true), resolve())));
  const env = { DOCKER_HOST: host };
  const stop = async () => {
    if (exited) return;
    process.kill(pid, 'SIGTERM');
    const t = setTimeout(() => !exited && process.kill(pid, 'SIGKILL'), 30_000);
    await gone;
    clearTimeout(t);
    // dockerd makes its data root a private bind mount of itself; a dockerd that died
    // uncleanly leaves it behind, and the temp dir could not be removed.
    await execa('umount', [join(dir, 'data')], { reject: false });
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) throw new Error(`dockerd exited:\n${(await readFile(log, 'utf8')).slice(-4000)}`);
    const r = await execa('docker', ['version', '--format', '{{.Server.Version}}'], { env, reject: false });
    if (r.exitCode === 0) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`dockerd did not answer within ${timeoutMs} ms:\n${(await readFile(log, 'utf8')).slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return { host, env, pid, log, stop };
}

export async function docker(d: Dockerd, args: string[]): Promise<string> {
  const r = await execa('docker', args, { env: d.env, reject: false, all: true });
  if (r.exitCode !== 0) throw new Error(`docker ${args.join(' ')} failed (exit ${r.exitCode}):\n${r.all}`);
  return r.stdout;
}
