// The files that make an image immutable and identical for every node of a role: the root
// is mounted read-only, everything that changes lives on the data partition (grown to fill
// the card on first boot), the journal stays in memory, root has no password, and hostname
// and address come from DHCP by MAC. Pure: returns a FileTree, no I/O.
import { file, type FileTree } from '../render/filetree.ts';
import { unitText } from '../render/unit.ts';

export const ROOT_LABEL = 'piroot';
export const BOOT_LABEL = 'PIBOOT';
export const DATA_LABEL = 'pidata';
export const DATA_MOUNT = '/data';

/** Paths that must stay writable and survive reboots; each becomes a bind mount of
 *  /data<path>. The image's content at these paths is moved onto the data partition. */
export const PERSISTENT_PATHS = [
  '/opt/consul',
  '/opt/nomad',
  '/var/lib/prometheus',
  '/var/log',
  '/var/lib/systemd',
  '/var/lib/piinit',
] as const;

/** The marker line the boot report prints on the console; boot tests wait for it. */
export const BOOT_MARKER = 'PIINIT-BOOTED';

/** Units enabled in every image (chroot `systemctl enable`). */
export const ENABLED_UNITS = [
  'systemd-networkd.service',
  'systemd-resolved.service',
  'systemd-timesyncd.service',
  'piinit-grow-data.service',
  'piinit-machine-id.service',
  'piinit-boot-report.service',
];

export function fstab(bootMountable: boolean): string {
  const lines = [
    '# piinit: the root is read-only; state lives on the data partition.',
    `LABEL=${ROOT_LABEL} / ext4 ro,noatime 0 1`,
    `LABEL=${DATA_LABEL} ${DATA_MOUNT} ext4 rw,noatime 0 2`,
    // The FAT partition is only read by the firmware; mount it read-only and never fail the boot on it.
    ...(bootMountable ? [`LABEL=${BOOT_LABEL} /boot/firmware vfat ro,nofail,x-systemd.device-timeout=10s 0 0`] : []),
    'tmpfs /tmp tmpfs mode=1777,nosuid,nodev,size=25% 0 0',
    'tmpfs /var/tmp tmpfs mode=1777,nosuid,nodev,size=10% 0 0',
    ...PERSISTENT_PATHS.map((p) => `${DATA_MOUNT}${p} ${p} none bind 0 0`),
  ];
  return `${lines.join('\n')}\n`;
}

/** Kernel command line: root by label, read-only, plus role extras (Nomad clients need
 *  the memory cgroup). */
export function kernelCmdline(consoles: string[], extras: string[]): string {
  return [...consoles, `root=LABEL=${ROOT_LABEL}`, 'rootfstype=ext4', 'ro', 'rootwait', 'fsck.repair=yes', 'net.ifnames=0', ...extras]
    .filter((a, i, all) => all.indexOf(a) === i)
    .join(' ');
}

const GROW_DATA = `#!/bin/sh
# Grows the data partition (the last one) to the end of the disk, then its file system, while
# it is mounted (as growpart does for cloud roots): a mounted partition's device stays put
# while the partition table changes. Does nothing when there is no room left.
set -eu
part=$(readlink -f /dev/disk/by-label/${DATA_LABEL})
name=$(basename "$part")
disk=$(lsblk -no pkname "$part" | head -n1)
num=$(cat "/sys/class/block/$name/partition")
start=$(cat "/sys/class/block/$name/start")
size=$(cat "/sys/class/block/$name/size")
total=$(cat "/sys/class/block/$disk/size")
if [ $((start + size + 2048)) -lt "$total" ]; then
  echo "growing $part to the end of /dev/$disk"
  echo ', +' | sfdisk --no-reread --no-tell-kernel -N "$num" "/dev/$disk"
  partx -u -n "$num" "/dev/$disk"
fi
resize2fs "$part"
`;

const MACHINE_ID = `#!/bin/sh
# The root is read-only, so systemd starts with a transient machine ID. The first boot keeps
# it on the data partition; later boots put that one back in place.
set -eu
saved=${DATA_MOUNT}/etc/machine-id
mkdir -p ${DATA_MOUNT}/etc
if [ ! -s "$saved" ]; then
  cp /etc/machine-id "$saved.tmp" && mv "$saved.tmp" "$saved"
fi
mount --bind "$saved" /etc/machine-id
`;

const BOOT_REPORT = `#!/bin/sh
# One line on the console once the system is up: what the boot tests (and a person with a
# serial cable) look for.
ro=no; findmnt -no OPTIONS / | tr ',' '\\n' | grep -qx ro && ro=yes
data=no; findmnt -no SOURCE ${DATA_MOUNT} >/dev/null 2>&1 && data=yes
size=$(findmnt -bno SIZE ${DATA_MOUNT} 2>/dev/null || echo 0)
addr=$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $4}' | head -n1)
echo "${BOOT_MARKER} ro-root=$ro data=$data data-bytes=$size hostname=$(hostname) address=\${addr:-none} machine-id=$(cat /etc/machine-id) state=$(systemctl is-system-running 2>/dev/null)"
`;

function unit(lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

export function systemTree(opts: { bootMountable: boolean }): FileTree {
  const t: FileTree = new Map();
  const exe = (s: string) => file(s, { mode: 0o755 });
  t.set('/etc/fstab', file(fstab(opts.bootMountable)));
  t.set('/etc/systemd/journald.conf.d/50-piinit.conf', file('[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\nForwardToConsole=no\n'));
  // Any wired interface, DHCP by MAC (the router's reservation gives address and hostname).
  t.set(
    '/etc/systemd/network/90-piinit-wired.network',
    file('[Match]\nName=eth* en*\n\n[Network]\nDHCP=ipv4\n\n[DHCPv4]\nClientIdentifier=mac\nUseHostname=yes\nUseDomains=yes\n'),
  );
  t.set('/etc/hosts', file('127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n'));
  t.set('/usr/lib/piinit/grow-data', exe(GROW_DATA));
  t.set('/usr/lib/piinit/machine-id', exe(MACHINE_ID));
  t.set('/usr/lib/piinit/boot-report', exe(BOOT_REPORT));
  t.set(
    '/etc/systemd/system/piinit-grow-data.service',
    file(
      unit([
        '[Unit]',
        'Description=Grow the data partition to fill the disk',
        'DefaultDependencies=no',
        'Requires=data.mount',
        'After=data.mount',
        'Before=local-fs.target',
        '',
        '[Service]',
        'Type=oneshot',
        'RemainAfterExit=yes',
        'ExecStart=/usr/lib/piinit/grow-data',
        '',
        '[Install]',
        'WantedBy=local-fs.target',
      ]),
    ),
  );
  t.set(
    '/etc/systemd/system/piinit-machine-id.service',
    file(
      unit([
        '[Unit]',
        'Description=Keep the machine ID on the data partition',
        'DefaultDependencies=no',
        'RequiresMountsFor=/data',
        // After systemd's commit of a transient ID has looked at /etc/machine-id: where /etc is
        // writable (a container) and our bind mount came first, it tried to commit the ID on
        // /data, refused it as "not on a temporary file system" and failed the boot's state.
        'After=local-fs.target systemd-machine-id-commit.service',
        'Before=sysinit.target systemd-networkd.service',
        '',
        '[Service]',
        'Type=oneshot',
        'RemainAfterExit=yes',
        'ExecStart=/usr/lib/piinit/machine-id',
        '',
        '[Install]',
        'WantedBy=sysinit.target',
      ]),
    ),
  );
  t.set(
    '/etc/systemd/system/piinit-boot-report.service',
    file(
      unit([
        '[Unit]',
        'Description=Report the boot on the console',
        'After=multi-user.target network-online.target',
        'Wants=network-online.target',
        '',
        '[Service]',
        'Type=oneshot',
        'ExecStart=/usr/lib/piinit/boot-report',
        'StandardOutput=journal+console',
        '',
        '[Install]',
        'WantedBy=multi-user.target',
      ]),
    ),
  );
  // DHCP may be slow; do not hold the boot forever on it.
  t.set(
    '/etc/systemd/system/systemd-networkd-wait-online.service.d/50-piinit.conf',
    file('[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=30\n'),
  );
  return t;
}

/** With SSH (the cluster gives authorized keys; the rendered files configure sshd and the
 *  admin user): host keys live on the data partition, generated on first boot, so identical
 *  images still get distinct host keys and the read-only root holds none. */
export function sshHostKeyTree(enabled: boolean): FileTree {
  const t: FileTree = new Map();
  if (!enabled) return t;
  const dir = '/var/lib/piinit/ssh';
  // ed25519 only: an RSA key takes a Pi Zero long enough to risk the start time-out, and
  // every OpenSSH client since 6.5 (2014) speaks ed25519.
  t.set('/etc/ssh/sshd_config.d/50-piinit-hostkeys.conf', file(`HostKey ${dir}/ssh_host_ed25519_key\n`));
  // Debian's ssh.service starts with `sshd -t`, which fails while the host key does not
  // exist: the list of ExecStartPre is started over so the key is made first.
  t.set(
    '/etc/systemd/system/ssh.service.d/50-piinit-hostkeys.conf',
    file(
      unitText([
        ['Unit', [['RequiresMountsFor', '/var/lib/piinit']]],
        [
          'Service',
          [
            ['ExecStartPre', ''],
            ['ExecStartPre', `/bin/sh -c 'mkdir -p ${dir} && { [ -s ${dir}/ssh_host_ed25519_key ] || ssh-keygen -q -N "" -t ed25519 -f ${dir}/ssh_host_ed25519_key; }'`],
            ['ExecStartPre', '/usr/sbin/sshd -t'],
          ],
        ],
      ]),
    ),
  );
  return t;
}

/** Packages the base needs for the cluster's options (part of the base cache key). */
export function optionalPackages(opts: { ssh: boolean; wifi: boolean; raspi: boolean }): string[] {
  return [
    ...(opts.ssh ? ['openssh-server', 'sudo'] : []),
    ...(opts.wifi ? ['wpasupplicant', 'iw', ...(opts.raspi ? ['firmware-brcm80211'] : [])] : []),
  ];
}
