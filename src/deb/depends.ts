// Debian packages a config package needs at run time, read from what it ships: commands its
// units and scripts run, and the programs whose configuration directories it fills.
// Pure. Everything here is in Debian; binaries of ours are added by packages.ts.
import { type DebEntry, isContentEntry, isSymlinkEntry } from './model.ts';

/** Absolute commands in Exec*= lines → package. Anything in /usr/bin of "essential"
 *  packages (coreutils, bash, util-linux's mount …) needs no dependency. */
const EXEC_COMMANDS: Record<string, string> = {
  '/bin/kill': 'procps',
  '/usr/bin/kill': 'procps',
  '/usr/bin/curl': 'curl',
  '/usr/bin/jq': 'jq',
  '/sbin/ip': 'iproute2',
  '/usr/sbin/ip': 'iproute2',
  '/usr/bin/ip': 'iproute2',
};

/** Commands called by name in shell scripts → package. */
const SCRIPT_COMMANDS: Record<string, string> = { curl: 'curl', jq: 'jq', ip: 'iproute2', kill: 'procps' };

/** Directories whose files only mean something to one program. */
const CONFIG_DIRS: [RegExp, string][] = [
  [/^\/etc\/systemd\/resolved\.conf\.d\//, 'systemd-resolved'],
  [/^\/etc\/wpa_supplicant\//, 'wpasupplicant'],
  [/^\/etc\/ssh\/sshd_config\.d\//, 'openssh-server'],
  [/^\/etc\/sudoers\.d\//, 'sudo'],
];

/** Units other packages ship that a preset line enables → package. */
const FOREIGN_UNITS: Record<string, string> = { 'wpa_supplicant@.service': 'wpasupplicant', 'ssh.service': 'openssh-server' };

export function inferDepends(files: Map<string, DebEntry>): string[] {
  const deps = new Set<string>();
  for (const [path, e] of files) {
    for (const [re, pkg] of CONFIG_DIRS) if (re.test(path)) deps.add(pkg);
    if (isSymlinkEntry(e) || !isContentEntry(e)) continue;
    const text = Buffer.isBuffer(e.content) ? e.content.toString('utf8') : e.content;
    if (/\.(service|socket|timer|path|mount)$/.test(path)) {
      for (const m of text.matchAll(/^Exec[A-Za-z]*=[-@:+!]*(\S+)/gm)) {
        const pkg = EXEC_COMMANDS[m[1]!];
        if (pkg) deps.add(pkg);
      }
    } else if (/\.preset$/.test(path)) {
      for (const m of text.matchAll(/^enable\s+(\S+)/gm)) {
        const pkg = FOREIGN_UNITS[m[1]!];
        if (pkg) deps.add(pkg);
      }
    } else if ((e.mode & 0o111) !== 0 && text.startsWith('#!')) {
      for (const [cmd, pkg] of Object.entries(SCRIPT_COMMANDS)) {
        // A command word: at a line start, after a pipe/;/&&/(/$( or whitespace.
        if (new RegExp(`(^|[\\s|;&($])${cmd}(\\s|$)`, 'm').test(text)) deps.add(pkg);
      }
    }
  }
  return [...deps].sort();
}
