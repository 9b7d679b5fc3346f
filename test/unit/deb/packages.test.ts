import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import type { Role } from '../../../src/cluster/boards.ts';
import { treeDigest } from '../../../src/deb/build.ts';
import { conffilesOf } from '../../../src/deb/control.ts';
import { type DebPackage, isContentEntry, isDirectoryEntry, isSymlinkEntry } from '../../../src/deb/model.ts';
import { type BinaryInput, binaryVersion, configVersion, definePackages } from '../../../src/deb/packages.ts';
import type { FileTree } from '../../../src/render/filetree.ts';
import { renderRole } from '../../../src/render/index.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';

const cluster = fixtureCluster({ wifi: { ssid: 'home', country: 'DE', psk: 'a'.repeat(64) } });
const roles: Role[] = ['server', 'client', 'monitor'];
const trees = new Map<Role, FileTree>(roles.map((r) => [r, renderRole(cluster, r)]));
const bin = (component: BinaryInput['component'], programs: string[], arch: BinaryInput['arch'] = 'arm64'): BinaryInput => ({
  component,
  version: cluster.components[component].version,
  arch,
  origin: 'https://example.invalid/',
  binaries: Object.fromEntries(programs.map((p) => [p, `/cache/${p}`])),
  dynamic: component === 'consul',
});
const binaries = [bin('consul', ['consul']), bin('nomad', ['nomad']), bin('prometheus', ['prometheus', 'promtool']), bin('node_exporter', ['node_exporter'])];
const set = definePackages({ cluster, roleTrees: trees, binaries, epoch: 1764000000, digest: treeDigest(cluster.name, trees) });
const byName = new Map<string, DebPackage>([...set.config, ...set.binary].map((p) => [p.name, p]));

test('the package set: binaries per arch, configs per daemon variant, base, users and one per role', () => {
  assert.deepEqual(
    set.binary.map((p) => `${p.name}_${p.version}_${p.arch}`),
    ['piinit-consul_1.8.7-1_arm64', 'piinit-node-exporter_1.5.0-1_arm64', 'piinit-nomad_1.6.5-1_arm64', 'piinit-prometheus_2.24.1-1_arm64'],
  );
  for (const name of [
    'piinit-homelab-users',
    'piinit-homelab-base',
    'piinit-homelab-consul-server',
    'piinit-homelab-consul-client',
    'piinit-homelab-nomad-server',
    'piinit-homelab-nomad-client',
    'piinit-homelab-prometheus',
    'piinit-homelab-node-exporter',
    'piinit-homelab-server',
    'piinit-homelab-client',
    'piinit-homelab-monitor',
  ]) {
    const p = byName.get(name);
    assert.ok(p, `missing ${name}`);
    assert.equal(p.arch, 'all');
    assert.equal(p.version, set.configVersion);
  }
  assert.equal(set.rolePackage.get('server'), 'piinit-homelab-server');
});

test('binary packages carry only the programs (0755 in /usr/bin) and docs, never a secret', () => {
  const consul = byName.get('piinit-consul')!;
  const e = consul.files.get('/usr/bin/consul');
  assert.ok(e && 'source' in e && e.mode === 0o755 && e.owner === 'root');
  for (const p of set.binary) {
    for (const path of p.files.keys()) assert.match(path, /^\/usr\/(bin|share\/doc)\//, `${p.name}: ${path}`);
  }
  assert.deepEqual(consul.depends, ['libc6']); // dynamically linked
  assert.deepEqual(byName.get('piinit-nomad')!.depends, []);
  assert.deepEqual(consul.conflicts, ['consul']);
  assert.deepEqual(consul.provides, ['consul (= 1.8.7-1)']);
  assert.deepEqual(byName.get('piinit-node-exporter')!.conflicts, ['prometheus-node-exporter']);
  assert.equal(byName.get('piinit-node-exporter')!.provides, undefined);
});

test('secrets are owner-only and only in the config packages; every /etc file is a conffile', () => {
  const secretPaths = new Set<string>();
  for (const t of trees.values()) for (const [p, e] of t) if (!('symlink' in e) && e.secret) secretPaths.add(p);
  assert.ok(secretPaths.has('/etc/consul.d/encrypt.json'));
  for (const p of set.config) {
    for (const [path, e] of p.files) {
      if (secretPaths.has(path)) {
        assert.ok(isContentEntry(e));
        assert.equal(e.mode & 0o007, 0, `${p.name}: ${path} is world-readable`);
      }
      assert.ok(!path.startsWith('/etc/systemd/system/'), `${p.name} ships ${path}`);
      if (path.startsWith('/etc/') && !isSymlinkEntry(e) && !isDirectoryEntry(e)) assert.ok(conffilesOf(p).includes(path));
    }
  }
});

test('users come first: config packages Pre-Depend on the users package, which creates them', () => {
  const users = byName.get('piinit-homelab-users')!;
  assert.ok([...users.files.keys()].includes('/usr/lib/sysusers.d/consul.conf'));
  assert.match(users.maintainerScripts?.postinst ?? '', /systemd-sysusers consul\.conf/);
  assert.deepEqual(byName.get('piinit-homelab-consul-server')!.preDepends, [`piinit-homelab-users (>= ${set.configVersion})`]);
  assert.ok(byName.get('piinit-homelab-consul-server')!.depends!.includes(`piinit-consul (= ${binaryVersion(cluster.components.consul.version)})`));
  assert.ok(byName.get('piinit-homelab-consul-server')!.conflicts!.includes('piinit-homelab-consul-client'));
});

test('WantedBy links become preset lines; the role package depends on the exact config version', () => {
  const consul = byName.get('piinit-homelab-consul-server')!;
  const preset = consul.files.get('/usr/lib/systemd/system-preset/40-piinit-homelab-consul-server.preset');
  assert.ok(preset && isContentEntry(preset));
  assert.match(String(preset.content), /^enable consul\.service$/m);
  const base = byName.get('piinit-homelab-base')!;
  const wifi = base.files.get('/usr/lib/systemd/system-preset/40-piinit-homelab-base.preset');
  assert.ok(wifi && isContentEntry(wifi));
  assert.match(String(wifi.content), /^enable wpa_supplicant@\.service wlan0$/m);
  const server = byName.get('piinit-homelab-server')!;
  assert.ok(server.depends!.includes(`piinit-homelab-consul-server (= ${set.configVersion})`));
  assert.ok(server.depends!.includes(`piinit-consul (= ${binaryVersion(cluster.components.consul.version)})`), 'the binary its config was written for');
  assert.ok(!server.depends!.some((d) => d.startsWith('piinit-prometheus')));
  assert.ok(byName.get('piinit-homelab-monitor')!.depends!.includes(`piinit-prometheus (= ${binaryVersion(cluster.components.prometheus.version)})`));
});

test('config versions grow with the cluster change time; the digest separates equal times', () => {
  assert.equal(configVersion(1764000000, 'abcdef0123456789'), '20251124.160000+abcdef0123');
  const cmp = (a: string, b: string) => a.localeCompare(b);
  assert.ok(cmp(configVersion(1764000001, 'ff'), configVersion(1764000000, 'ff')) > 0);
  assert.equal(binaryVersion('1.8.7'), '1.8.7-1');
  assert.equal(binaryVersion('v2.24.1'), '2.24.1-1');
  assert.equal(binaryVersion('1.16.0+ent'), '1.16.0+ent-1');
  // A pre-release sorts before its release, as dpkg compares them.
  assert.equal(binaryVersion('1.7.0-beta.1'), '1.7.0~beta.1-1');
  for (const [older, newer] of [['1.7.0-beta.1', '1.7.0'], ['1.7.0-rc1', '1.7.0'], ['1.7.0', '1.7.1-beta.1']]) {
    const r = spawnSync('dpkg', ['--compare-versions', binaryVersion(older!), 'lt', binaryVersion(newer!)]);
    assert.equal(r.status, 0, `${older} < ${newer}`);
  }
  const other = new Map(trees);
  other.set('client', new Map([...trees.get('client')!, ['/etc/extra', { content: 'x', mode: 0o644, owner: 'root', group: 'root' }]]));
  assert.notEqual(treeDigest(cluster.name, other), treeDigest(cluster.name, trees));
});

test('a secret that would be world-readable is refused', () => {
  const bad = new Map(trees);
  bad.set('server', new Map([...trees.get('server')!, ['/etc/consul.d/leak.json', { content: '{}', mode: 0o644, owner: 'root', group: 'root', secret: true }]]));
  assert.throws(() => definePackages({ cluster, roleTrees: bad, binaries, epoch: 1764000000, digest: 'x' }), /world-readable/);
});
