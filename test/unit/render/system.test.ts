import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type FileEntry, isSymlink } from '../../../src/render/filetree.ts';
import { renderNode, renderRole } from '../../../src/render/index.ts';
import { wpaSsid } from '../../../src/render/system.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';

const text = (t: Map<string, unknown>, p: string) => String((t.get(p) as FileEntry | undefined)?.content ?? assert.fail(`missing ${p}`));

test('DHCP addressing: one wired .network taking the hostname from DHCP, no MAC map', () => {
  const tree = renderRole(fixtureCluster(), 'server');
  const net = text(tree, '/etc/systemd/network/20-piinit-wired.network');
  assert.match(net, /^DHCP=ipv4$/m);
  assert.match(net, /^UseHostname=yes$/m);
  assert.match(net, /^Name=en\* eth\*$/m);
  assert.ok(![...tree.keys()].some((p) => p.includes('hostname-from-mac')));
  assert.ok(![...tree.keys()].some((p) => p.includes('wpa_supplicant')));
  // The name itself is set from networkd's lease by a root oneshot before Consul starts.
  const unit = text(tree, '/usr/lib/systemd/system/piinit-hostname.service');
  assert.match(unit, /^ExecStart=\/usr\/lib\/piinit\/hostname-from-dhcp$/m);
  assert.match(unit, /^After=systemd-networkd\.service$/m);
  assert.match(unit, /^Before=consul\.service nomad\.service$/m);
  assert.ok(tree.has('/etc/systemd/system/multi-user.target.wants/piinit-hostname.service'));
});

test('the DHCP hostname script sets the first label of the lease HOSTNAME, and ignores junk', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-dhcp-hostname-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const tree = renderRole(fixtureCluster(), 'server');
  // The same script with its two system paths pointed into the test's directory.
  const script = text(tree, '/usr/lib/piinit/hostname-from-dhcp')
    .replaceAll('/run/systemd/netif/leases', join(dir, 'leases'))
    .replaceAll('/proc/sys/kernel/hostname', join(dir, 'hostname'))
    .replace('-lt 90', '-lt 2');
  await mkdir(join(dir, 'leases'));
  await writeFile(join(dir, 'leases', '2'), 'ADDRESS=10.0.0.11\nHOSTNAME=core1.lan\n');
  let r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(await readFile(join(dir, 'hostname'), 'utf8'), 'core1\n');
  await rm(join(dir, 'hostname'));
  await writeFile(join(dir, 'leases', '2'), 'ADDRESS=10.0.0.11\nHOSTNAME=bad;name\n');
  r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.match(r.stderr, /no DHCP lease names this machine/);
  await assert.rejects(readFile(join(dir, 'hostname')));
});

test('static addressing: a .network per MAC and the MAC → hostname map', () => {
  const c = fixtureCluster();
  c.network.addressing = 'static';
  const tree = renderRole(c, 'client');
  const core2 = text(tree, '/etc/systemd/network/10-piinit-core2.network');
  assert.match(core2, /^MACAddress=dc:a6:32:00:00:02$/m);
  assert.match(core2, /^Address=192\.168\.50\.12\/24$/m);
  assert.match(core2, /^Gateway=192\.168\.50\.1$/m);
  assert.match(core2, /^DNS=192\.168\.50\.1$/m);
  const script = tree.get('/usr/lib/piinit/hostname-from-mac') as FileEntry;
  assert.equal(script.mode, 0o755);
  assert.match(String(script.content), /dc:a6:32:00:00:05\) echo worker1 > \/proc\/sys\/kernel\/hostname/);
  assert.ok(tree.has('/etc/systemd/system/multi-user.target.wants/piinit-hostname.service'));
  const sh = spawnSync('sh', ['-n'], { input: String(script.content) });
  assert.equal(sh.status, 0, String(sh.stderr));
});

test('the .consul domain is forwarded to the local Consul DNS port through resolved', () => {
  const c = fixtureCluster({ domain: 'lab' });
  const conf = text(renderRole(c, 'monitor'), '/etc/systemd/resolved.conf.d/piinit-consul.conf');
  assert.match(conf, /^DNS=127\.0\.0\.1:8600$/m);
  assert.match(conf, /^Domains=~lab$/m);
});

test('Wi-Fi: wpa_supplicant-wlan0.conf 0600 with the PSK wpa_passphrase derives, and the unit enabled', () => {
  const r = spawnSync('wpa_passphrase', ['Home Net', 'correct horse battery'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const psk = /^\s*psk=([0-9a-f]{64})$/m.exec(r.stdout)![1]!;
  const c = fixtureCluster({ wifi: { ssid: 'Home Net', country: 'DE', psk } });
  const tree = renderRole(c, 'client');
  const e = tree.get('/etc/wpa_supplicant/wpa_supplicant-wlan0.conf') as FileEntry;
  assert.equal(e.mode, 0o600);
  assert.equal(e.secret, true);
  const conf = String(e.content);
  assert.match(conf, /^country=DE$/m);
  assert.match(conf, /^\tssid="Home Net"$/m);
  assert.ok(conf.includes(`\tpsk=${psk}\n`));
  assert.ok(!conf.includes('correct horse'));
  const link = tree.get('/etc/systemd/system/multi-user.target.wants/wpa_supplicant@wlan0.service')!;
  assert.ok(isSymlink(link));
  assert.ok(tree.has('/etc/systemd/network/30-piinit-wlan0.network'));
  assert.equal(wpaSsid('Café "1"'), Buffer.from('Café "1"').toString('hex'));
});

test('journald is sized for SD cards', () => {
  const conf = text(renderRole(fixtureCluster(), 'client'), '/etc/systemd/journald.conf.d/piinit.conf');
  assert.match(conf, /^Storage=volatile$/m);
  assert.match(conf, /^RuntimeMaxUse=/m);
});

test('SSH: admin user, keys and a keys-only sshd drop-in only when keys are given', () => {
  const none = renderRole(fixtureCluster(), 'server');
  assert.ok(![...none.keys()].some((p) => p.includes('ssh')));
  const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1 me@laptop';
  const tree = renderRole(fixtureCluster({ ssh: { authorizedKeys: [key] } }), 'server');
  assert.equal(text(tree, '/etc/ssh/authorized_keys/admin'), `${key}\n`);
  const sshd = text(tree, '/etc/ssh/sshd_config.d/piinit.conf');
  assert.match(sshd, /^PasswordAuthentication no$/m);
  assert.match(sshd, /^PermitRootLogin no$/m);
  assert.match(text(tree, '/usr/lib/sysusers.d/piinit-admin.conf'), /^u admin /m);
  assert.equal((tree.get('/etc/sudoers.d/piinit-admin') as FileEntry).mode, 0o440);
});

test('the local target carries no system files', () => {
  const c = fixtureCluster({ wifi: { ssid: 'x', country: 'DE', psk: 'a'.repeat(64) }, ssh: { authorizedKeys: ['ssh-ed25519 AAAA x'] } });
  const root = '/tmp/piinit-state/nodes/core1';
  const tree = renderNode(c, c.nodes[0]!, { target: 'local', root });
  for (const p of tree.keys()) {
    assert.ok(!/network|resolved|journald|wpa_supplicant|ssh|sysusers|tmpfiles|preset|\.wants/.test(p), p);
  }
});
