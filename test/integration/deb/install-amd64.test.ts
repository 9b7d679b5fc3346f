// The fixture cluster's packages for amd64, checked by the real tools: dpkg-deb, lintian,
// and dpkg -i into a fresh Debian bookworm root (mmdebstrap, cached), after which the
// users exist, the secrets belong to them, systemd-analyze verify passes for the units,
// the presets enable the services and Consul accepts its configuration.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { lstat, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, type TestContext, test } from 'node:test';
import type { Role } from '../../../src/cluster/boards.ts';
import type { BuildResult } from '../../../src/deb/build.ts';
import { debianRoot, inRoot } from '../../helpers/debian-root.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';
import { buildHostAmd64Debs } from './seed-cache.ts';
import { consulValidate, assertLintianClean, installInto, ROOT_INCLUDE, roleDebs, run } from './tools.ts';

const cluster = fixtureCluster({ wifi: { ssid: 'home', country: 'DE', psk: 'ab'.repeat(32) } });
// A worker on amd64 too, so the package set is the one an amd64 image needs.
cluster.nodes.push({ ...cluster.nodes[4]!, name: 'worker2', board: 'amd64', arch: 'amd64', mac: 'dc:a6:32:00:00:06' });

let built: BuildResult;
let dir: string;
after(() => rm(dir, { recursive: true, force: true }));

test('build every package for amd64, inspect them with dpkg-deb, lint them', async () => {
  dir = await mkdtemp(join(tmpdir(), 'piinit-deb-amd64-'));
  built = await buildHostAmd64Debs(cluster, { releases: join(dir, 'cache'), out: join(dir, 'out') }, 1764000000);
  for (const p of built.packages) {
    const info = await run('dpkg-deb', ['--info', p.path]);
    assert.equal(info.status, 0, info.out);
    assert.match(info.stdout, new RegExp(`^ Package: ${p.name}$`, 'm'));
    assert.match(info.stdout, new RegExp(`^ Architecture: ${p.arch}$`, 'm'));
    assert.match(info.stdout, /^ Installed-Size: \d+$/m);
    const contents = await run('dpkg-deb', ['--contents', p.path]);
    assert.equal(contents.status, 0, contents.out);
    if (p.kind === 'binary') assert.doesNotMatch(contents.stdout, /\.\/etc\//, `${p.name} ships /etc`);
  }
  const consulServer = built.packages.find((p) => p.name === 'piinit-homelab-consul-server')!;
  const listing = (await run('dpkg-deb', ['--contents', consulServer.path])).stdout;
  assert.match(listing, /^-rw-r----- root\/consul .* \.\/etc\/consul\.d\/encrypt\.json$/m);
  const conffiles = (await run('dpkg-deb', ['--info', consulServer.path, 'conffiles'])).stdout;
  assert.match(conffiles, /^\/etc\/consul\.d\/encrypt\.json$/m);
  const base = built.packages.find((p) => p.name === 'piinit-homelab-base')!;
  assert.match((await run('dpkg-deb', ['--contents', base.path])).stdout, /^-rw------- root\/root .* \.\/etc\/wpa_supplicant\//m);

  // lintian: every config package and the Consul and Nomad binary packages (the large
  // Prometheus binaries add minutes and nothing new to check).
  await assertLintianClean(built.packages.filter((p) => p.kind === 'config' || p.name === 'piinit-consul' || p.name === 'piinit-nomad').map((p) => p.path));
});

async function installAndCheck(t: TestContext, role: Role): Promise<string> {
  assert.ok(built, 'the build test ran first');
  const root = await debianRoot(t, { arch: 'amd64', include: ROOT_INCLUDE });
  await installInto(root, roleDebs(built, role, 'amd64'));

  // Users exist (made by the users package's postinst) and sysusers agrees.
  for (const user of ['consul', 'node_exporter', ...(role === 'monitor' ? ['prometheus'] : [])]) {
    const r = await inRoot(root, ['getent', 'passwd', user]);
    assert.equal(r.status, 0, `${user} missing: ${r.out}`);
  }
  const sysusers = await run('systemd-sysusers', [`--root=${root}`]);
  assert.equal(sysusers.status, 0, sysusers.out);

  // The secret was unpacked with the daemon's group, owner-only.
  const groupLine = (await inRoot(root, ['getent', 'group', 'consul'])).out;
  const gid = Number(groupLine.split(':')[2]);
  const st = await stat(join(root, 'etc/consul.d/encrypt.json'));
  assert.equal(st.mode & 0o777, 0o640);
  assert.equal(st.uid, 0);
  assert.equal(st.gid, gid);

  // dpkg's own record of the files matches (md5sums, conffiles).
  const verify = await inRoot(root, ['dpkg', '--verify']);
  assert.equal(verify.out.trim(), '', verify.out);

  // Units verify; presets enable the services.
  const units = ['consul.service', 'nomad.service', 'node_exporter.service', ...(role === 'monitor' ? ['prometheus.service'] : [])];
  const analyze = await run('systemd-analyze', ['verify', '--man=no', `--root=${root}`, ...units.map((u) => `/usr/lib/systemd/system/${u}`)], { cwd: root });
  assert.equal(analyze.status, 0, analyze.out);
  const preset = await run('systemctl', [`--root=${root}`, 'preset-all']);
  assert.equal(preset.status, 0, preset.out);
  for (const u of units) {
    assert.ok((await lstat(join(root, 'etc/systemd/system/multi-user.target.wants', u))).isSymbolicLink(), `${u} not enabled`);
  }

  // Consul accepts the configuration from the package, and the packaged binary runs.
  const validate = await consulValidate(join(root, 'etc/consul.d'), '192.168.50.11/24');
  assert.equal(validate.status, 0, validate.out);
  const version = await inRoot(root, ['consul', 'version']);
  assert.match(version.out, /Consul v1\.8\.7/);
  return root;
}

test('dpkg -i the server role into a fresh bookworm root', async (t) => {
  await installAndCheck(t, 'server');
});

test('dpkg -i the monitor role: Prometheus config passes promtool', async (t) => {
  const root = await installAndCheck(t, 'monitor');
  const yml = join(root, 'etc/prometheus/prometheus.yml');
  assert.ok((await readFile(yml, 'utf8')).length > 0);
  const check = await run('/usr/local/bin/promtool', ['check', 'config', yml]);
  assert.equal(check.status, 0, check.out);
});

test('an upgrade that no longer ships a file removes it: a Wi-Fi key dropped from the cluster is gone', async (t) => {
  assert.ok(built, 'the build test ran first');
  const root = await debianRoot(t, { arch: 'amd64', include: ROOT_INCLUDE });
  await installInto(root, roleDebs(built, 'server', 'amd64'));
  const wifi = (await run('dpkg-deb', ['--contents', built.packages.find((p) => p.name === 'piinit-homelab-base')!.path])).stdout
    .split('\n')
    .map((l) => /\.(\/etc\/wpa_supplicant\/\S+)$/.exec(l)?.[1])
    .find((p) => p !== undefined);
  assert.ok(wifi, 'the first build ships a Wi-Fi file');
  assert.ok(existsSync(join(root, wifi)));

  // The same cluster without Wi-Fi, built later: a higher version, one file fewer.
  const without = structuredClone(cluster);
  without.wifi = null;
  const later = await buildHostAmd64Debs(without, { releases: join(dir, 'cache'), out: join(dir, 'out-later') }, 1764000100);
  await installInto(root, roleDebs(later, 'server', 'amd64'));
  assert.equal(existsSync(join(root, wifi)), false, `${wifi} was left behind`);
  assert.ok(existsSync(join(root, 'etc/consul.d/encrypt.json')), 'what is still shipped stays');
  // dpkg still lists the dropped files (as obsolete conffiles, now missing) until the next
  // upgrade forgets them; nothing else differs from its record.
  const verify = (await inRoot(root, ['dpkg', '--verify'])).out.trim().split('\n').filter(Boolean);
  assert.ok(verify.includes(`missing   c ${wifi}`), verify.join('\n'));
  assert.deepEqual(verify.filter((l) => !/^missing {3}c \/etc\/(wpa_supplicant|systemd\/network)\/\S*wlan0\S*$/.test(l)), []);
});
