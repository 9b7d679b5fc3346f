// The Debian source against the real archive mirror named in the host's apt sources, driven
// through `piinit fetch` on the demo cluster: Consul 1.8.7 and Prometheus 2.24.1 from
// bullseye, node_exporter from bookworm, for amd64 and arm64; Nomad has no reachable source
// here and must be named as missing, with the reason.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateSecrets, writeSecretsFile } from '../../../src/cluster/secrets.ts';
import type { ReleaseEntry } from '../../../src/releases/cache.ts';
import { ensureReleases } from '../../../src/releases/fetch.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';

let dir: string;
let cacheDir: string;
let clusterFile: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'piinit-demo-'));
  cacheDir = join(dir, 'cache');
  clusterFile = join(dir, 'cluster.yaml');
  await copyFile('examples/demo/cluster.yaml', clusterFile);
  await writeSecretsFile(join(dir, 'cluster.secrets.yaml'), generateSecrets());
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function piinit(...args: string[]) {
  return spawnSync(process.execPath, ['bin/piinit.js', ...args], { encoding: 'utf8', timeout: 600_000 });
}

async function elfMachine(path: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(20);
    await fh.read(b, 0, 20, 0);
    assert.equal(b.toString('latin1', 0, 4), '\x7fELF');
    return b.readUInt16LE(18);
  } finally {
    await fh.close();
  }
}

test('piinit fetch on the demo cluster caches everything but Nomad and says exactly which and why', async () => {
  const r = piinit('fetch', clusterFile, '--cache', cacheDir, '--json');
  assert.equal(r.status, 2, r.stderr);
  const report = JSON.parse(r.stdout) as { ok: boolean; entries: (ReleaseEntry & {})[]; unavailable: { component: string; arch: string; reason: string }[] };
  assert.equal(report.ok, false);
  assert.deepEqual(
    report.entries.map((e) => `${e.component} ${e.arch}`),
    ['consul amd64', 'consul arm64', 'prometheus amd64', 'prometheus arm64', 'node_exporter amd64', 'node_exporter arm64'],
  );
  assert.deepEqual(
    report.unavailable.map((u) => `${u.component} ${u.arch}`),
    ['nomad amd64', 'nomad arm64'],
  );
  for (const u of report.unavailable) assert.match(u.reason, /releases\.hashicorp\.com is unreachable/);
  assert.match(r.stderr, /nomad amd64, nomad arm64: no reachable source; everything else is cached/);
  assert.match(r.stderr, /--allow-missing nomad/);

  const get = (c: string, a: string) => report.entries.find((e) => e.component === c && e.arch === a)!;
  const consul = get('consul', 'amd64');
  assert.equal(consul.source, 'debian');
  assert.match(consul.origin, /^http:\/\/.*\/pool\/main\/c\/consul\/consul_1\.8\.7[^/]*_amd64\.deb$/);
  assert.match(execFileSync(consul.binaries.consul!, ['version'], { encoding: 'utf8' }), /Consul v1\.8\.7/);
  const prom = spawnSync(get('prometheus', 'amd64').binaries.prometheus!, ['--version'], { encoding: 'utf8' });
  assert.match(prom.stdout + prom.stderr, /prometheus, version 2\.24\.1/);
  const promtool = spawnSync(get('prometheus', 'amd64').binaries.promtool!, ['--version'], { encoding: 'utf8' });
  assert.match(promtool.stdout + promtool.stderr, /promtool, version 2\.24\.1/);
  const ne = spawnSync(get('node_exporter', 'amd64').binaries.node_exporter!, ['--version'], { encoding: 'utf8' });
  assert.match(ne.stdout + ne.stderr, /node_exporter, version 1\.5\.0/);
  assert.match(get('node_exporter', 'amd64').origin, /\/prometheus-node-exporter_1\.5\.0[^/]*_amd64\.deb$/);
  // The arm64 binaries are arm64 executables (EM_AARCH64 = 183), the amd64 ones x86-64 (62).
  for (const c of ['consul', 'prometheus', 'node_exporter']) {
    for (const p of Object.values(get(c, 'arm64').binaries)) assert.equal(await elfMachine(p), 183, p);
    for (const p of Object.values(get(c, 'amd64').binaries)) assert.equal(await elfMachine(p), 62, p);
  }
  assert.deepEqual(await readdir(join(cacheDir, 'tmp')), []);
});

test('a second piinit fetch downloads nothing; --allow-missing nomad accepts the missing Nomad', () => {
  const r = piinit('fetch', clusterFile, '--cache', cacheDir, '--allow-missing', 'nomad');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /downloaded 0\.0 MiB/);
  assert.doesNotMatch(r.stdout, /^fetched/m);
  assert.equal(r.stdout.match(/^cached /gm)?.length, 6);
  assert.match(r.stdout, /^MISSING nomad amd64: releases\.hashicorp\.com is unreachable/m);
});

test('piinit fetch --offline with an empty cache names everything that is missing', async () => {
  const empty = join(dir, 'empty-cache');
  const r = piinit('fetch', clusterFile, '--cache', empty, '--offline', '--arch', 'amd64');
  assert.equal(r.status, 2);
  for (const c of ['consul', 'nomad', 'prometheus', 'node_exporter']) {
    assert.match(r.stdout, new RegExp(`^MISSING ${c} amd64: ${c} \\S+ for amd64 is not in the cache`, 'm'));
  }
  assert.match(r.stderr, /no reachable source in the cache \(offline\)/);
});

test('Debian source: a suite without the arch, and a version the suite does not have, are named', async () => {
  const c = fixtureCluster();
  const armel = await ensureReleases({ cluster: c, arches: ['armel'], components: ['consul'], cacheDir });
  assert.equal(armel.entries.length, 0);
  assert.match(armel.unavailable[0]!.reason, /^Debian bullseye on http\S+ has no armel packages \(it lists: all amd64 arm64 armhf i386\)$/);

  c.components.consul = { ...c.components.consul, version: '1.9.0' };
  const wrong = await ensureReleases({ cluster: c, arches: ['amd64'], components: ['consul'], cacheDir });
  assert.match(wrong.unavailable[0]!.reason, /^Debian bullseye has consul 1\.8\.7\S* for amd64, not 1\.9\.0$/);
  assert.equal(wrong.downloadedBytes, 0, 'the Packages index came from the cache');
});
