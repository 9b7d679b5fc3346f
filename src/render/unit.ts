// systemd unit files as data → text, and the enablement that goes with them.
import type { RenderContext } from './context.ts';
import { file, type FileTree } from './filetree.ts';

export type UnitSection = [name: string, entries: [key: string, value: string | number][]];

export function unitText(sections: UnitSection[]): string {
  return `${sections
    .map(([name, entries]) => `[${name}]\n${entries.map(([k, v]) => `${k}=${v}`).join('\n')}\n`)
    .join('\n')}`;
}

/** Quote one ExecStart argument the way systemd splits command lines. */
export function execArg(a: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a)) return a;
  return `"${a.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export interface ServiceCommand {
  /** consul | nomad | prometheus | node_exporter — /usr/bin/<program> on images. */
  program: string;
  args: string[];
  user: string;
}

export function execStart(cmd: ServiceCommand): string {
  return [`/usr/bin/${cmd.program}`, ...cmd.args].map(execArg).join(' ');
}

/** The hardening every daemon here accepts (Go binaries; no privileged ports, no devices). */
export function hardening(readWritePaths: string[], overrides: Record<string, string> = {}): [string, string][] {
  const base: [string, string][] = [
    ['NoNewPrivileges', 'yes'],
    ['PrivateTmp', 'yes'],
    ['PrivateDevices', 'yes'],
    ['ProtectSystem', 'strict'],
    ['ReadWritePaths', readWritePaths.join(' ')],
    ['ProtectHome', 'yes'],
    ['ProtectKernelTunables', 'yes'],
    ['ProtectKernelModules', 'yes'],
    ['ProtectKernelLogs', 'yes'],
    ['ProtectControlGroups', 'yes'],
    ['ProtectClock', 'yes'],
    ['ProtectHostname', 'yes'],
    ['RestrictNamespaces', 'yes'],
    ['RestrictRealtime', 'yes'],
    ['RestrictSUIDSGID', 'yes'],
    ['LockPersonality', 'yes'],
    ['RestrictAddressFamilies', 'AF_UNIX AF_INET AF_INET6 AF_NETLINK'],
    ['CapabilityBoundingSet', ''],
    ['AmbientCapabilities', ''],
    ['UMask', '0027'],
  ];
  return base.map(([k, v]) => [k, overrides[k] ?? v]);
}

export const UNIT_DIR = '/usr/lib/systemd/system';
export const WANTS_DIR = '/etc/systemd/system/multi-user.target.wants';

/** A unit file plus, on images, its WantedBy symlink (enabled without a writable /etc). */
export function unitFiles(ctx: RenderContext, name: string, text: string): FileTree {
  const tree: FileTree = new Map([[ctx.p(`${UNIT_DIR}/${name}`), file(text)]]);
  if (ctx.target === 'image') tree.set(`${WANTS_DIR}/${name}`, { symlink: `${UNIT_DIR}/${name}` });
  return tree;
}

export function presetFile(units: string[]): FileTree {
  const lines = [...units].sort().map((u) => `enable ${u}`);
  return new Map([
    ['/usr/lib/systemd/system-preset/50-piinit.preset', file(`# Services piinit enables on every image of this role.\n${lines.join('\n')}\n`)],
  ]);
}

/** sysusers.d line for a system user with its own group and no login. */
export function sysusersFile(user: string, gecos: string, home: string): FileTree {
  return new Map([[`/usr/lib/sysusers.d/${user.replace(/_/g, '-')}.conf`, file(`u ${user} - "${gecos}" ${home} /usr/sbin/nologin\n`)]]);
}

export function tmpfilesFile(name: string, lines: string[]): FileTree {
  return new Map([[`/usr/lib/tmpfiles.d/${name}.conf`, file(`${lines.join('\n')}\n`)]]);
}
