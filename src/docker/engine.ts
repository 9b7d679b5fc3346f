// Talking to Docker: the docker CLI, against whatever DOCKER_HOST (or the default socket)
// says. A missing CLI or an unreachable daemon is a UserError that says so plainly.
import { execa } from 'execa';
import { UserError } from '../errors.ts';

const SUGGEST = 'run the cluster without Docker instead: piinit up (local processes)';

export async function checkDocker(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const r = await execa('docker', ['version', '--format', '{{.Server.Version}}'], { env, reject: false, all: true });
  if (r.exitCode === undefined) {
    // The command could not be started at all (ENOENT).
    throw new UserError(`Docker is not installed here (no \`docker\` command on PATH); ${SUGGEST}`);
  }
  if (r.exitCode !== 0) {
    const where = env.DOCKER_HOST ? `at ${env.DOCKER_HOST}` : 'at the default socket';
    const why = (r.all ?? '').split('\n').find((l) => /cannot connect|error|denied/i.test(l))?.trim() ?? `exit ${r.exitCode}`;
    throw new UserError(`the Docker daemon ${where} is not reachable (${why}); start Docker, or ${SUGGEST}`);
  }
  return r.stdout.trim();
}

export async function docker(args: string[], opts: { reject?: boolean } = {}): Promise<{ ok: boolean; out: string }> {
  const r = await execa('docker', args, { reject: false, all: true });
  if (r.exitCode !== 0 && opts.reject !== false) throw new Error(`docker ${args.join(' ')} failed (exit ${r.exitCode}):\n${r.all}`);
  return { ok: r.exitCode === 0, out: r.stdout };
}
