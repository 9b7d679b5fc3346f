// The GitHub source over HTTP: release assets under /<owner>/<repo>/releases/download/v<ver>/,
// served through a redirect as github.com does, checked against sha256sums.txt.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ensureReleases, FetchVerificationError } from '../../../src/releases/fetch.ts';
import { extractName } from '../../../src/releases/extract.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';
import { githubLayout, sha256, tarGz } from '../../helpers/release-layout.ts';
import { startReleaseServer } from '../../helpers/release-server.ts';

test('node_exporter from a GitHub-style release (redirected download, binary in a sub-directory); a tarball without it is refused', async (t) => {
  const bin = await readFile('/usr/bin/prometheus-node-exporter');
  const layout = await githubLayout('node_exporter', '1.5.0', { amd64: { node_exporter: bin } });
  const files = new Map<string, Buffer>();
  const release = '/prometheus/node_exporter/releases/download/v1.5.0';
  for (const [p, b] of layout) files.set(p.replace('/node_exporter/1.5.0', release), b);
  // armv7 (armhf): a tarball that has no node_exporter in it, listed correctly in sha256sums.txt.
  const empty = await tarGz([{ name: 'node_exporter-1.5.0.linux-armv7/LICENSE', data: Buffer.from('x') }]);
  files.set(`${release}/node_exporter-1.5.0.linux-armv7.tar.gz`, empty);
  files.set(`${release}/sha256sums.txt`, Buffer.from(`${files.get(`${release}/sha256sums.txt`)!}${sha256(empty)}  node_exporter-1.5.0.linux-armv7.tar.gz\n`));
  const server = await startReleaseServer(files);
  const asset = `${release}/node_exporter-1.5.0.linux-amd64.tar.gz`;
  files.set('/objects/amd64.tar.gz', files.get(asset)!);
  server.redirect(asset, `${server.url}/objects/amd64.tar.gz`);
  const cacheDir = await mkdtemp(join(tmpdir(), 'piinit-fetch-'));
  t.after(async () => {
    await server.close();
    await rm(cacheDir, { recursive: true, force: true });
  });
  const cluster = fixtureCluster();
  cluster.components.node_exporter = { name: 'node_exporter', version: '1.5.0', source: 'github' };
  const opts = { cluster, cacheDir, components: ['node_exporter' as const], githubBase: server.url };

  const r = await ensureReleases({ ...opts, arches: ['amd64', 'arm64'] });
  assert.deepEqual(r.entries.map((e) => e.arch), ['amd64']);
  assert.equal(r.entries[0]!.sha256.node_exporter, sha256(bin));
  assert.equal(r.entries[0]!.origin, `${server.url}${asset}`);
  const v = spawnSync(r.entries[0]!.binaries.node_exporter!, ['--version'], { encoding: 'utf8' });
  assert.match(v.stdout + v.stderr, /node_exporter, version 1\.5\.0/);
  assert.ok(server.log.some((l) => l.path === '/objects/amd64.tar.gz' && l.status === 200));
  assert.match(r.unavailable[0]!.reason, /lists no node_exporter-1\.5\.0\.linux-arm64\.tar\.gz: .*no linux-arm64 build \(needed for arm64\)/);

  await assert.rejects(ensureReleases({ ...opts, arches: ['armhf'] }), (err: unknown) => {
    assert.ok(err instanceof FetchVerificationError);
    assert.match(err.message, /node_exporter armhf: node_exporter-1\.5\.0\.linux-armv7\.tar\.gz does not contain node_exporter/);
    return true;
  });
});

test('an archive that breaks off after the binary: nothing extracted is left in the cache, and a killed run leaves nothing for long', async (t) => {
  const bin = await readFile('/usr/bin/prometheus-node-exporter');
  const whole = await tarGz([
    { name: 'node_exporter-1.5.0.linux-amd64/node_exporter', data: bin },
    { name: 'node_exporter-1.5.0.linux-amd64/NOTICE', data: randomBytes(2 * 1024 * 1024) },
  ]);
  const cut = whole.subarray(0, whole.length - 1024 * 1024); // inside NOTICE, after the binary
  const release = '/prometheus/node_exporter/releases/download/v1.5.0';
  const files = new Map<string, Buffer>([
    [`${release}/node_exporter-1.5.0.linux-amd64.tar.gz`, cut],
    [`${release}/sha256sums.txt`, Buffer.from(`${sha256(cut)}  node_exporter-1.5.0.linux-amd64.tar.gz\n`)],
  ]);
  const server = await startReleaseServer(files);
  const cacheDir = await mkdtemp(join(tmpdir(), 'piinit-fetch-'));
  t.after(async () => {
    await server.close();
    await rm(cacheDir, { recursive: true, force: true });
  });
  // What a run killed while extracting left, and what this one is extracting (our PID).
  const tmp = join(cacheDir, 'tmp');
  await mkdir(tmp, { recursive: true });
  const dead = Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());
  const killed = extractName('consul', dead);
  const ours = extractName('nomad');
  await writeFile(join(tmp, killed), 'half a binary');
  await writeFile(join(tmp, ours), 'being written');

  const cluster = fixtureCluster();
  cluster.components.node_exporter = { name: 'node_exporter', version: '1.5.0', source: 'github' };
  await assert.rejects(ensureReleases({ cluster, cacheDir, components: ['node_exporter'], arches: ['amd64'], githubBase: server.url }), (err: unknown) => {
    assert.ok(err instanceof FetchVerificationError);
    assert.match(err.message, /node_exporter amd64: node_exporter-1\.5\.0\.linux-amd64\.tar\.gz: cannot unpack/);
    return true;
  });
  assert.deepEqual(await readdir(tmp), [ours], 'the killed run\'s file is gone, and so is the binary extracted before the archive broke off');
});
