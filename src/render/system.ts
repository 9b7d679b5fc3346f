// System files of an image (never on the local target): systemd-networkd (DHCP with the
// hostname from DHCP, or static addresses per MAC plus a hostname from the MAC map),
// .<domain> DNS forwarding to Consul through systemd-resolved, Wi-Fi through wpa_supplicant,
// journald sized for SD cards, and SSH for an admin user when keys are given.
import type { Cluster } from '../cluster/types.ts';
import { CONSUL_DNS_PORT } from './consul.ts';
import type { RenderContext } from './context.ts';
import { type FileEntry, file, type FileTree, type SymlinkEntry } from './filetree.ts';
import { tmpfilesFile, UNIT_DIR, unitText, WANTS_DIR } from './unit.ts';

export const ADMIN_USER = 'admin';
const NET = '/etc/systemd/network';

function ini(sections: [string, [string, string | number][]][]): string {
  return unitText(sections);
}

/** Wired interfaces by name (en*, eth*): veth/bridges made by Nomad or Docker stay unmanaged. */
function dhcpNetwork(match: [string, string][], comment: string): string {
  return `# ${comment}\n${ini([
    ['Match', match],
    ['Network', [['DHCP', 'ipv4']]],
    // The router names the machine (one identical image per role).
    // Client identifier = MAC, so routers reserve addresses by the MAC in cluster.yaml.
    ['DHCPv4', [['ClientIdentifier', 'mac'], ['UseHostname', 'yes'], ['UseDNS', 'yes'], ['UseDomains', 'yes']]],
  ])}`;
}

export function networkFiles(c: Cluster): FileTree {
  const tree: FileTree = new Map();
  if (c.network.addressing === 'static') {
    for (const n of c.nodes) {
      if (!n.address) continue;
      tree.set(
        `${NET}/10-piinit-${n.name}.network`,
        file(
          `# ${n.name}: static address, matched by MAC.\n${ini([
            ['Match', [['MACAddress', n.mac]]],
            [
              'Network',
              [
                ['Address', `${n.address}/${c.network.prefixLength}`],
                ['Gateway', c.network.gateway],
                ...c.network.dns.map((d): [string, string] => ['DNS', d]),
              ],
            ],
          ])}`,
        ),
      );
    }
    tree.set('/usr/lib/piinit/hostname-from-mac', file(hostnameScript(c), { mode: 0o755 }));
    tree.set(
      `${UNIT_DIR}/piinit-hostname.service`,
      file(
        hostnameUnit('Set the hostname from the MAC address map of the cluster', '/usr/lib/piinit/hostname-from-mac', [
          ['DefaultDependencies', 'no'],
          ['After', 'systemd-udev-trigger.service local-fs.target'],
          ['Wants', 'network-pre.target'],
          ['Before', 'network-pre.target consul.service nomad.service'],
        ]),
      ),
    );
  } else {
    tree.set('/usr/lib/piinit/hostname-from-dhcp', file(DHCP_HOSTNAME_SCRIPT, { mode: 0o755 }));
    tree.set(
      `${UNIT_DIR}/piinit-hostname.service`,
      file(
        hostnameUnit('Set the hostname the DHCP server gives', '/usr/lib/piinit/hostname-from-dhcp', [
          ['After', 'systemd-networkd.service'],
          ['Before', 'consul.service nomad.service'],
        ]),
      ),
    );
  }
  tree.set(`${WANTS_DIR}/piinit-hostname.service`, { symlink: `${UNIT_DIR}/piinit-hostname.service` });
  // DHCP (and, with static addressing, the fallback for a machine not in the map).
  tree.set(
    `${NET}/20-piinit-wired.network`,
    file(dhcpNetwork([['Type', 'ether'], ['Name', 'en* eth*']], 'Wired network: address and hostname from DHCP.')),
  );
  if (c.wifi) {
    tree.set(`${NET}/30-piinit-wlan0.network`, file(dhcpNetwork([['Name', 'wlan0']], 'Wi-Fi (wpa_supplicant@wlan0): address and hostname from DHCP.')));
  }
  return tree;
}

function hostnameUnit(description: string, script: string, order: [string, string][]): string {
  return ini([
    ['Unit', [['Description', description], ...order]],
    [
      'Service',
      [
        ['Type', 'oneshot'],
        ['RemainAfterExit', 'yes'],
        ['ExecStart', script],
        ['TimeoutStartSec', '120'],
      ],
    ],
    ['Install', [['WantedBy', 'multi-user.target']]],
  ]);
}

/** POSIX sh. networkd's UseHostname= hands the DHCP hostname to hostnamed, which refuses it
 *  to networkd's unprivileged user unless polkit allows it — and the image carries no polkit.
 *  So this root oneshot takes the name from networkd's saved lease, before Consul starts
 *  (Consul names its node after the hostname; every server boots the same image). */
export const DHCP_HOSTNAME_SCRIPT = `#!/bin/sh
# Rendered by piinit: the hostname the DHCP server gives (the router's reservation by MAC),
# taken from systemd-networkd's lease. Waits up to 90 s for a lease that carries one.
set -u
i=0
while [ "$i" -lt 90 ]; do
  for f in /run/systemd/netif/leases/*; do
    [ -r "$f" ] || continue
    name=$(sed -n 's/^HOSTNAME=//p' "$f" | head -n 1)
    name=\${name%%.*}
    case "$name" in
      ''|*[!A-Za-z0-9-]*) ;;
      *) echo "$name" > /proc/sys/kernel/hostname; echo "piinit: hostname $name from DHCP"; exit 0 ;;
    esac
  done
  i=$((i + 1))
  sleep 1
done
echo "piinit: no DHCP lease names this machine; hostname unchanged" >&2
exit 0
`;

/** POSIX sh: waits (bounded) for an interface whose MAC is in the map, then sets the hostname. */
export function hostnameScript(c: Cluster): string {
  const cases = c.nodes
    .map((n) => `      ${n.mac.toLowerCase()}) echo ${n.name} > /proc/sys/kernel/hostname; exit 0 ;;`)
    .join('\n');
  return `#!/bin/sh
# Rendered by piinit: static addressing has no DHCP server to name the machine, so the
# hostname comes from the cluster's MAC map. USB network adapters can appear late: wait up to 60 s.
set -u
i=0
while [ "$i" -lt 60 ]; do
  for f in /sys/class/net/*/address; do
    [ -r "$f" ] || continue
    case "$(cat "$f")" in
${cases}
    esac
  done
  i=$((i + 1))
  sleep 1
done
echo "piinit: no network interface has a MAC address from the cluster's map; hostname unchanged" >&2
exit 0
`;
}

export function resolvedFiles(c: Cluster): FileTree {
  return new Map([
    [
      '/etc/systemd/resolved.conf.d/piinit-consul.conf',
      file(
        `# Names under .${c.domain} go to the local Consul agent's DNS interface.\n${ini([
          ['Resolve', [['DNS', `127.0.0.1:${CONSUL_DNS_PORT}`], ['DNSSEC', 'false'], ['Domains', `~${c.domain}`]]],
        ])}`,
      ),
    ],
  ]);
}

/** SSIDs in quotes when plain printable ASCII, otherwise hex (as wpa_supplicant accepts). */
export function wpaSsid(ssid: string): string {
  if (/^[\x20-\x7e]+$/.test(ssid) && !ssid.includes('"')) return `"${ssid}"`;
  return Buffer.from(ssid, 'utf8').toString('hex');
}

export function wifiFiles(c: Cluster): FileTree {
  if (!c.wifi) return new Map();
  const w = c.wifi;
  if (!/^[0-9a-f]{64}$/i.test(w.psk)) throw new Error('wifi.psk must be 64 hex digits (the loader derives it)');
  const conf = `# Rendered by piinit. The PSK is derived from the passphrase as wpa_passphrase does.
ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev
update_config=0
country=${w.country}

network={
\tssid=${wpaSsid(w.ssid)}
\tpsk=${w.psk.toLowerCase()}
\tkey_mgmt=WPA-PSK
}
`;
  return new Map<string, FileEntry | SymlinkEntry>([
    ['/etc/wpa_supplicant/wpa_supplicant-wlan0.conf', file(conf, { mode: 0o600, secret: true })],
    [`${WANTS_DIR}/wpa_supplicant@wlan0.service`, { symlink: `${UNIT_DIR}/wpa_supplicant@.service` }],
  ]);
}

export function journaldFiles(): FileTree {
  return new Map([
    [
      '/etc/systemd/journald.conf.d/piinit.conf',
      file(
        `# SD cards wear out: keep the journal in RAM, bounded.\n${ini([
          ['Journal', [['Storage', 'volatile'], ['RuntimeMaxUse', '48M'], ['RuntimeMaxFileSize', '8M'], ['ForwardToSyslog', 'no']]],
        ])}`,
      ),
    ],
  ]);
}

export function sshFiles(c: Cluster): FileTree {
  const keys = c.ssh.authorizedKeys.map((k) => k.trim()).filter((k) => k.length > 0);
  if (keys.length === 0) return new Map();
  const home = `/home/${ADMIN_USER}`;
  const tree: FileTree = new Map([
    [
      `/usr/lib/sysusers.d/piinit-${ADMIN_USER}.conf`,
      file(`u ${ADMIN_USER} - "piinit administrator" ${home} /bin/bash\nm ${ADMIN_USER} sudo\n`),
    ],
    ...tmpfilesFile(`piinit-${ADMIN_USER}`, [`d ${home} 0750 ${ADMIN_USER} ${ADMIN_USER} -`]),
    // Keys live under /etc (part of the immutable image), not in the home directory.
    [`/etc/ssh/authorized_keys/${ADMIN_USER}`, file(`${keys.join('\n')}\n`)],
    [
      '/etc/ssh/sshd_config.d/piinit.conf',
      file(`# Rendered by piinit: keys only, no passwords, no root logins.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/authorized_keys/%u
`),
    ],
    [`/etc/sudoers.d/piinit-${ADMIN_USER}`, file(`${ADMIN_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n`, { mode: 0o440 })],
  ]);
  return tree;
}

export function renderSystem(ctx: RenderContext): FileTree {
  if (ctx.target !== 'image') return new Map();
  const c = ctx.cluster;
  return new Map([...networkFiles(c), ...resolvedFiles(c), ...wifiFiles(c), ...journaldFiles(), ...sshFiles(c)]);
}

