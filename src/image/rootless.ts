// piinit image without root: the whole build runs again in a user namespace where this
// user is root, with the user's subordinate IDs (/etc/subuid, /etc/subgid) for the image's
// other owners — what mmdebstrap's unshare mode does. Nothing in there is privileged on the
// host: no device nodes can be made (devnodes.ts), overlayfs renames fail (baseroot.ts
// unpacks instead), and files it writes belong to the user or to the subordinate IDs.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { constants, userInfo } from 'node:os';
import { join } from 'node:path';
import { noteHangup } from '../cli/hangup.ts';
import { UserError } from '../errors.ts';

/** True when uid_map (/proc/self/uid_map) is not the initial namespace's identity map. Pure. */
export function isUserNamespace(uidMap: string): boolean {
  return uidMap.trim().split(/\s+/).join(' ') !== '0 0 4294967295';
}

let cached: boolean | undefined;
export function inUserNamespace(): boolean {
  cached ??= isUserNamespace(readFileSync('/proc/self/uid_map', 'utf8'));
  return cached;
}

/** Whether /etc/subuid or /etc/subgid text gives the user (by name or uid) a range of at
 *  least 65536 IDs, enough for the image's system users. Pure. */
export function hasSubordinateIds(text: string, user: string, uid: number): boolean {
  return text.split('\n').some((line) => {
    const [who, , count] = line.trim().split(':');
    return (who === user || who === String(uid)) && Number(count) >= 65536;
  });
}

/** Why this user cannot build rootless (what to do instead), or null. Pure. */
export function rootlessProblem(user: string, uid: number, subuid: string | null, subgid: string | null, newuidmap: boolean): string | null {
  const fix =
    `install the uidmap package and give ${user} subordinate IDs (as root: usermod --add-subuids 100000-165535 ` +
    `--add-subgids 100000-165535 ${user}), or run it as root (sudo)`;
  if (!newuidmap) return `piinit image needs root, or for a rootless build newuidmap and newgidmap: ${fix}`;
  if (!subuid || !hasSubordinateIds(subuid, user, uid) || !subgid || !hasSubordinateIds(subgid, user, uid)) {
    return `piinit image needs root, or for a rootless build 65536 subordinate user and group IDs for ${user} in /etc/subuid and /etc/subgid: ${fix}`;
  }
  return null;
}

/** The command that runs argv again as root of a new user namespace, with its own mount
 *  namespace and PID namespace: everything started in there ends with argv, and the
 *  namespace may mount a /proc of its own where a program in the image needs one. /proc
 *  itself stays the host's, so PIDs in cache names are the host's (orphans.ts). */
export function rootlessCommand(argv: string[]): string[] {
  return ['unshare', '--map-auto', '--map-root-user', '--mount', '--pid', '--fork', '--propagation', 'private', '--', ...argv];
}

const readOrNull = (p: string) => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return null;
  }
};
const onPath = (cmd: string) => (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, cmd)));

/** Runs this piinit command again in a user namespace and exits with its status. Ctrl-C and
 *  a hangup reach the inner piinit too (same process group), which stops and cleans up. */
export async function reexecRootless(): Promise<never> {
  const { username, uid } = userInfo();
  const problem = rootlessProblem(username, uid, readOrNull('/etc/subuid'), readOrNull('/etc/subgid'), onPath('newuidmap') && onPath('newgidmap'));
  if (problem) throw new UserError(problem);
  const [cmd, ...args] = rootlessCommand([process.execPath, ...process.execArgv, ...process.argv.slice(1)]);
  // The inner piinit decides; this one waits for it.
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', noteHangup);
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(cmd!, args, { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (c, signal) => resolve(c ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
  process.exit(code);
}
