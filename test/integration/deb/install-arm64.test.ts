// The client role's packages for arm64, installed with the root's own (arm64) dpkg into a
// fresh arm64 bookworm root through qemu-user-static: the binaries are the real arm64
// Consul and node_exporter from Debian, fetched once by piinit's release code.
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildPackages } from '../../../src/deb/build.ts';
import { findRelease } from '../../../src/releases/cache.ts';
import { ensureReleases } from '../../../src/releases/fetch.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';
import { debianMirror, debianRoot, inRoot, testCacheDir } from '../../helpers/debian-root.ts';
import { seedRelease } from './seed-cache.ts';
import { consulValidate, installInto, ROOT_INCLUDE, roleDebs, run } from './tools.ts';

test('dpkg -i the client role into an arm64 root (qemu-user-static)', async (t) => {
  const base = fixtureCluster();
  // Servers and a Pi 4 worker: everything arm64, no monitor (no arm64 Prometheus needed).
  const cluster = fixtureCluster({
    nodes: base.nodes.filter((n) => n.role === 'server').concat({ ...base.nodes[4]!, board: 'pi4', arch: 'arm64' }),
  });
  const root = await debianRoot(t, { arch: 'arm64', include: ROOT_INCLUDE });
  const arch = await inRoot(root, ['dpkg', '--print-architecture']);
  assert.equal(arch.out.trim(), 'arm64');

  // Real arm64 Consul and node_exporter from the Debian archive, kept in the test cache.
  const releases = join(testCacheDir(), 'releases');
  const report = await ensureReleases({
    cluster,
    arches: ['arm64'],
    cacheDir: releases,
    components: ['consul', 'node_exporter'],
    debianMirror: await debianMirror(),
  });
  assert.deepEqual(report.unavailable, []);
  const work = await mkdtemp(join(tmpdir(), 'piinit-deb-arm64-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const cache = join(work, 'cache');
  for (const c of ['consul', 'node_exporter'] as const) {
    const e = await findRelease(releases, cluster.components[c], 'arm64');
    assert.ok(e, `${c} arm64 in the release cache`);
    await seedRelease(cache, cluster.components[c], 'arm64', e.binaries);
  }
  // No Nomad binary exists here: a real arm64 executable of the root stands in.
  await seedRelease(cache, cluster.components.nomad, 'arm64', { nomad: join(root, 'usr/bin/true') });

  const built = await buildPackages({
    cluster,
    arches: ['arm64'],
    outDir: join(work, 'out'),
    cacheDir: cache,
    epoch: 1764000000,
    compression: { kind: 'gzip', level: 1 },
  });
  await installInto(root, roleDebs(built, 'client', 'arm64'));

  const version = await inRoot(root, ['consul', 'version']);
  assert.match(version.out, /Consul v1\.8\.7/, version.out);
  const ne = await inRoot(root, ['node_exporter', '--version']);
  assert.match(ne.out, /node_exporter, version 1\.5/, ne.out);
  for (const user of ['consul', 'nomad', 'node_exporter']) {
    const r = await inRoot(root, ['getent', 'passwd', user]);
    assert.equal(r.status, 0, `${user} missing: ${r.out}`);
  }
  const gid = Number((await inRoot(root, ['getent', 'group', 'consul'])).out.split(':')[2]);
  const st = await stat(join(root, 'etc/consul.d/encrypt.json'));
  assert.equal(st.gid, gid);
  assert.equal(st.mode & 0o777, 0o640);
  const verify = await inRoot(root, ['dpkg', '--verify']);
  assert.equal(verify.out.trim(), '', verify.out);
  const analyze = await run(
    'systemd-analyze',
    ['verify', '--man=no', `--root=${root}`, ...['consul', 'nomad', 'node_exporter'].map((u) => `/usr/lib/systemd/system/${u}.service`)],
    { cwd: root },
  );
  assert.equal(analyze.status, 0, analyze.out);
  const validate = await consulValidate(join(root, 'etc/consul.d'), '192.168.50.11/24');
  assert.equal(validate.status, 0, validate.out);
});
