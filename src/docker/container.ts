// What changes between the amd64 root file system of an image and the same root run as a
// Docker container. Pure: one FileTree and a few lists, all written down in docs/docker.md.
// Everything else — packages, rendered configs, units, users — is the image's own.
import { file, type FileTree } from '../render/filetree.ts';
import { DATA_MOUNT, PERSISTENT_PATHS } from '../image/system.ts';
import type { ImageConfig } from './oci.ts';

/** Units that touch partitions, the kernel or the network Docker already configured. */
export const CONTAINER_MASKED_UNITS = [
  // Docker gives eth0 its address and /etc/resolv.conf; networkd/resolved would fight it.
  'systemd-networkd.service',
  'systemd-networkd.socket',
  'systemd-networkd-wait-online.service',
  'systemd-resolved.service',
  // No data partition to grow, no clock to set, no console to log in on.
  'piinit-grow-data.service',
  // Docker names the container (--hostname); no DHCP lease or MAC of the map to wait for.
  'piinit-hostname.service',
  'systemd-timesyncd.service',
  'getty@tty1.service',
  'serial-getty@ttyS0.service',
] as const;

/** Paths removed from the container's root: the kernel, its modules and the boot files
 *  (a container runs on the host's kernel). The packages stay recorded as installed. */
export const CONTAINER_REMOVED_PATHS = ['/boot', '/usr/lib/modules', '/usr/lib/firmware'] as const;

/** fstab with only the bind mounts of the persistent paths onto /data (a named volume in
 *  the container, pre-populated by Docker from the image's /data). No LABEL= partitions. */
export function containerFstab(): string {
  return [
    '# piinit (container): /data is a Docker volume; state paths are bind mounts into it.',
    ...PERSISTENT_PATHS.map((p) => `${DATA_MOUNT}${p} ${p} none bind 0 0`),
    '',
  ].join('\n');
}

export function containerTree(): FileTree {
  const t: FileTree = new Map();
  t.set('/etc/fstab', file(containerFstab()));
  // Docker bind-mounts its own resolv.conf onto a regular file (the image has a symlink
  // into systemd-resolved's runtime directory).
  t.set('/etc/resolv.conf', file(''));
  for (const u of CONTAINER_MASKED_UNITS) t.set(`/etc/systemd/system/${u}`, { symlink: '/dev/null' });
  return t;
}

/** The image config: systemd as PID 1, stopped the way systemd wants (SIGRTMIN+3). */
export function containerImageConfig(tag: string, created: number, labels: Record<string, string>): ImageConfig {
  return { tag, created, cmd: ['/sbin/init'], env: ['container=docker'], stopSignal: 'SIGRTMIN+3', labels };
}

/** `docker run` arguments systemd needs as PID 1 (cgroup v1 host: the cgroup tree read-only). */
export const SYSTEMD_RUN_ARGS = ['--tmpfs', '/run', '--tmpfs', '/run/lock', '--tmpfs', '/tmp', '-v', '/sys/fs/cgroup:/sys/fs/cgroup:ro', '--cap-add', 'SYS_ADMIN'];
