// The HashiCorp source end to end against a local server with the releases.hashicorp.com
// layout, built from the Debian Consul binary and signed with a key made here, trusted by
// fingerprint through the same code path as HashiCorp's key. Every tampering case must be
// refused, and the cache must never hold a bad file.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, realpath, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test, type TestContext } from 'node:test';
import type { DebianArch } from '../../../src/cluster/boards.ts';
import type { ComponentName } from '../../../src/cluster/types.ts';
import { findRelease } from '../../../src/releases/cache.ts';
import { ensureReleases, FetchVerificationError, type ProgressEvent } from '../../../src/releases/fetch.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';
import { detachedSign, generateTestKey, githubLayout, hashicorpLayout, sha256, type TestKey, writeLayout } from '../../helpers/release-layout.ts';
import { type ReleaseServer, startReleaseServer } from '../../helpers/release-server.ts';

const DIR = '/consul/1.8.7';
const ZIP = `${DIR}/consul_1.8.7_linux_amd64.zip`;
const SUMS = `${DIR}/consul_1.8.7_SHA256SUMS`;

let key: TestKey;
let other: TestKey;
let consul: Buffer;
let layout: Map<string, Buffer>;

before(async () => {
  key = await generateTestKey();
  other = await generateTestKey('someone else');
  consul = await readFile(await realpath('/usr/local/bin/consul'));
  layout = await hashicorpLayout('consul', '1.8.7', { amd64: consul, arm64: consul }, key);
});

function cluster() {
  const c = fixtureCluster();
  c.components.consul = { name: 'consul', version: '1.8.7', source: 'hashicorp' };
  return c;
}

async function setup(t: TestContext, change?: (files: Map<string, Buffer>) => Promise<void> | void) {
  const files = new Map(layout);
  await change?.(files);
  const server = await startReleaseServer(files);
  const cacheDir = await mkdtemp(join(tmpdir(), 'piinit-fetch-'));
  t.after(async () => {
    await server.close();
    await rm(cacheDir, { recursive: true, force: true });
  });
  return { server, cacheDir };
}

function fetchConsul(
  server: ReleaseServer,
  cacheDir: string,
  extra: { arches?: DebianArch[]; offline?: boolean; fingerprint?: string; onProgress?: (ev: ProgressEvent) => void } = {},
) {
  return ensureReleases({
    cluster: cluster(),
    arches: extra.arches ?? ['amd64'],
    components: ['consul' as ComponentName],
    cacheDir,
    offline: extra.offline,
    hashicorpBase: server.url,
    hashicorpKey: { armoredKey: key.armoredPublic, fingerprint: extra.fingerprint ?? key.fingerprint },
    onProgress: extra.onProgress,
  });
}

async function list(dir: string): Promise<string[]> {
  return readdir(dir, { recursive: true }).catch(() => []);
}

/** Nothing half-done or unverified anywhere in the cache. */
async function assertCacheEmpty(cacheDir: string) {
  assert.deepEqual(await list(join(cacheDir, 'blobs')), []);
  assert.deepEqual((await list(join(cacheDir, 'entries'))).filter((f) => f.endsWith('.json')), []);
  assert.deepEqual(await list(join(cacheDir, 'tmp')), []);
}

async function rejects(p: Promise<unknown>, re: RegExp) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof FetchVerificationError, `expected a verification error, got ${String(err)}`);
    assert.match(err.message, re);
    assert.match(err.message, /consul amd64/);
    return true;
  });
}

test('fetches, verifies and caches Consul from a HashiCorp-layout server; a second run downloads nothing', async (t) => {
  const { server, cacheDir } = await setup(t);
  const r = await fetchConsul(server, cacheDir);
  assert.deepEqual(r.unavailable, []);
  assert.equal(r.entries.length, 1);
  const e = r.entries[0]!;
  assert.equal(e.source, 'hashicorp');
  assert.equal(e.origin, `${server.url}${ZIP}`);
  assert.equal(e.sha256.consul, sha256(consul));
  assert.match(execFileSync(e.binaries.consul!, ['version'], { encoding: 'utf8' }), /Consul v1\.8\.7/);
  // The signature named after our key's ID was the one checked.
  assert.ok(server.log.some((l) => l.path.endsWith(`.${key.fingerprint.slice(-8)}.sig`) && l.status === 200));
  assert.deepEqual(await list(join(cacheDir, 'tmp')), []);

  const requests = server.log.length;
  const again = await fetchConsul(server, cacheDir);
  assert.equal(again.downloadedBytes, 0);
  assert.deepEqual(again.fetched, []);
  assert.deepEqual(again.entries, r.entries);
  assert.equal(server.log.length, requests, 'a warm cache makes no requests');
});

test('a zip with one flipped byte is refused and nothing is cached', async (t) => {
  const { server, cacheDir } = await setup(t, (f) => {
    const zip = Buffer.from(f.get(ZIP)!);
    zip[Math.floor(zip.length / 2)]! ^= 0x01;
    f.set(ZIP, zip);
  });
  await rejects(fetchConsul(server, cacheDir), /SHA-256 mismatch/);
  await assertCacheEmpty(cacheDir);
});

test('a wrong checksum line (signed by the trusted key) is refused', async (t) => {
  const { server, cacheDir } = await setup(t, async (f) => {
    const sums = f.get(SUMS)!.toString().replace(/^[0-9a-f]{64}(?=  consul_1\.8\.7_linux_amd64\.zip)/m, 'f'.repeat(64));
    f.set(SUMS, Buffer.from(sums));
    const sig = await detachedSign(Buffer.from(sums), key);
    for (const p of [...f.keys()].filter((p) => p.endsWith('.sig'))) f.set(p, sig);
  });
  await rejects(fetchConsul(server, cacheDir), /SHA-256 mismatch/);
  await assertCacheEmpty(cacheDir);
});

test('a checksum list changed after signing is refused', async (t) => {
  const { server, cacheDir } = await setup(t, (f) => {
    f.set(SUMS, Buffer.from(f.get(SUMS)!.toString().replace(/^[0-9a-f]/m, (c) => (c === '0' ? '1' : '0'))));
  });
  await rejects(fetchConsul(server, cacheDir), /signature check failed/);
  await assertCacheEmpty(cacheDir);
});

test('a checksum list signed by another key is refused', async (t) => {
  const { server, cacheDir } = await setup(t, async (f) => {
    const sig = await detachedSign(f.get(SUMS)!, other);
    for (const p of [...f.keys()].filter((p) => p.endsWith('.sig'))) f.set(p, sig);
  });
  await rejects(fetchConsul(server, cacheDir), /signature check failed/);
  await assertCacheEmpty(cacheDir);
});

test('a trust key that does not match the pinned fingerprint is refused', async (t) => {
  const { server, cacheDir } = await setup(t);
  await rejects(fetchConsul(server, cacheDir, { fingerprint: other.fingerprint }), /does not match the pinned fingerprint/);
  await assertCacheEmpty(cacheDir);
});

test('a truncated download is refused', async (t) => {
  const { server, cacheDir } = await setup(t, (f) => {
    const zip = f.get(ZIP)!;
    f.set(ZIP, zip.subarray(0, zip.length - 4096));
  });
  await rejects(fetchConsul(server, cacheDir), /SHA-256 mismatch/);
  await assertCacheEmpty(cacheDir);
});

test('a connection dropped mid-file is resumed with a Range request', async (t) => {
  const { server, cacheDir } = await setup(t);
  server.dropConnection(ZIP, 4 * 1024 * 1024, 2);
  const r = await fetchConsul(server, cacheDir);
  assert.equal(r.entries.length, 1);
  assert.equal(r.entries[0]!.sha256.consul, sha256(consul));
  const zipRequests = server.log.filter((l) => l.path === ZIP);
  assert.equal(zipRequests.length, 3, JSON.stringify(zipRequests));
  assert.equal(zipRequests[0]!.range, undefined);
  for (const l of zipRequests.slice(1)) {
    assert.match(l.range ?? '', /^bytes=[1-9]\d*-$/);
    assert.equal(l.status, 206);
  }
  assert.deepEqual(await list(join(cacheDir, 'tmp')), []);
});

test('a download interrupted in one run continues in the next', async (t) => {
  const { server, cacheDir } = await setup(t);
  server.dropConnection(ZIP, 1024 * 1024, 100);
  const first = await fetchConsul(server, cacheDir);
  assert.equal(first.entries.length, 0);
  assert.match(first.unavailable[0]?.reason ?? '', /connection broke while downloading/);
  // Only the resumable part is left, never a blob or an entry.
  assert.deepEqual(await list(join(cacheDir, 'blobs')), []);
  const parts = await list(join(cacheDir, 'tmp'));
  assert.equal(parts.length, 1);
  assert.match(parts[0]!, /\.part$/);

  server.dropConnection(ZIP, 0, 0);
  const before = server.log.length;
  const second = await fetchConsul(server, cacheDir);
  assert.equal(second.entries.length, 1);
  const resumed = server.log.slice(before).filter((l) => l.path === ZIP);
  assert.equal(resumed.length, 1);
  assert.match(resumed[0]!.range ?? '', /^bytes=[1-9]\d*-$/);
  assert.ok(second.downloadedBytes < layout.get(ZIP)!.length);
  assert.deepEqual(await list(join(cacheDir, 'tmp')), []);
});

test('a part of a file that has changed upstream since is downloaded again from the start, in the same run', async (t) => {
  const { server, cacheDir } = await setup(t);
  server.dropConnection(ZIP, 1024 * 1024, 100);
  assert.equal((await fetchConsul(server, cacheDir)).entries.length, 0);
  server.dropConnection(ZIP, 0, 0);
  const [part] = await list(join(cacheDir, 'tmp'));
  assert.match(part ?? '', /\.part$/);
  // Its bytes are not the start of the file the server has now.
  const path = join(cacheDir, 'tmp', part!);
  await writeFile(path, Buffer.alloc((await stat(path)).size, 0x5a));

  const before = server.log.length;
  const r = await fetchConsul(server, cacheDir);
  assert.equal(r.entries[0]?.sha256.consul, sha256(consul));
  assert.deepEqual(
    server.log.slice(before).filter((l) => l.path === ZIP).map((l) => l.status),
    [206, 200],
    'resumed, failed its check, then fetched whole',
  );
  assert.deepEqual(await list(join(cacheDir, 'tmp')), []);
});

test('two runs sharing one cache never write one part together: the second waits its turn', async (t) => {
  const { server, cacheDir } = await setup(t);
  // The first 2 MiB in 64 KiB steps, 20 ms apart: the second run starts mid-file.
  server.throttle(ZIP, 2 * 1024 * 1024, 64 * 1024, 20);
  const tmp = join(cacheDir, 'tmp');
  const partHasBytes = async () => {
    for (const f of (await list(tmp)).filter((n) => n.endsWith('.part'))) if ((await stat(join(tmp, f)).catch(() => null))?.size) return true;
    return false;
  };
  const first = fetchConsul(server, cacheDir);
  for (let i = 0; i < 400 && !(await partHasBytes()); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(await partHasBytes(), 'the first run is downloading');
  const waits: ProgressEvent[] = [];
  const [a, b] = await Promise.all([first, fetchConsul(server, cacheDir, { onProgress: (ev) => ev.phase === 'waiting' && waits.push(ev) })]);
  assert.deepEqual(
    waits.map((w) => [w.file, w.holder]),
    [[ZIP.split('/').pop(), process.pid]],
    'the second said once that it waits, and for whom',
  );
  for (const r of [a, b]) {
    assert.deepEqual(r.unavailable, []);
    assert.equal(r.entries[0]?.sha256.consul, sha256(consul));
    assert.equal(sha256(await readFile(r.entries[0]!.binaries.consul!)), sha256(consul));
  }
  // The second did not resume the first's part: it downloaded the whole file once its turn came.
  assert.deepEqual(
    server.log.filter((l) => l.path === ZIP).map((l) => l.range ?? 'whole'),
    ['whole', 'whole'],
  );
  assert.deepEqual(await list(tmp), []);
});

test('the lock of a download whose run was killed does not hold the next run', async (t) => {
  const { server, cacheDir } = await setup(t);
  server.dropConnection(ZIP, 1024 * 1024, 100);
  assert.equal((await fetchConsul(server, cacheDir)).entries.length, 0);
  server.dropConnection(ZIP, 0, 0);
  const tmp = join(cacheDir, 'tmp');
  const [part] = await list(tmp);
  await writeFile(join(tmp, `${part}.lock`), String(spawnSync('true').pid)); // exited by now
  const r = await fetchConsul(server, cacheDir);
  assert.equal(r.entries[0]?.sha256.consul, sha256(consul));
  assert.deepEqual(await list(tmp), []);
});

test('a full disk, while downloading or while unpacking, is said as such: not a broken connection, not a bad archive', async (t) => {
  assert.equal(process.getuid?.(), 0, 'mounts a small tmpfs (CI runs as root)');
  const { server } = await setup(t);
  const zipSize = layout.get(ZIP)!.length;
  // Too small for the zip; then room for the zip but not for Consul unpacked from it.
  for (const [what, bytes] of [['download', 1 << 20], ['unpack', zipSize + (1 << 20)]] as const) {
    const cacheDir = await mkdtemp(join(tmpdir(), 'piinit-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil(bytes / 4096) * 4}k`, 'piinit-full', cacheDir]);
    try {
      await assert.rejects(fetchConsul(server, cacheDir), (err: NodeJS.ErrnoException) => {
        assert.equal(err.code, 'ENOSPC', `${what}: ${String(err)}`);
        return true;
      });
    } finally {
      execFileSync('umount', [cacheDir]);
      await rm(cacheDir, { recursive: true, force: true });
    }
  }
});

test('a corrupted cache entry is detected, removed and fetched again', async (t) => {
  const { server, cacheDir } = await setup(t);
  const [e] = (await fetchConsul(server, cacheDir)).entries;
  const blob = e!.binaries.consul!;
  const bytes = await readFile(blob);
  bytes[1000]! ^= 0xff;
  await writeFile(blob, bytes);
  assert.equal(await findRelease(cacheDir, cluster().components.consul, 'amd64'), null);
  assert.deepEqual(await list(join(cacheDir, 'blobs')), ['sha256']);
  assert.deepEqual(await list(join(cacheDir, 'entries', 'consul')), []);
  const r = await fetchConsul(server, cacheDir);
  assert.deepEqual(r.fetched, [{ component: 'consul', arch: 'amd64' }]);
  assert.equal(sha256(await readFile(r.entries[0]!.binaries.consul!)), sha256(consul));

  // ensureReleases skips the hash of a blob unchanged since it was hashed; a write is still
  // caught even when the modification time is put back (the change time moves).
  const st = await stat(blob);
  const again = await readFile(blob);
  again[2000]! ^= 0xff;
  await writeFile(blob, again);
  await utimes(blob, st.atime, st.mtime);
  const r2 = await fetchConsul(server, cacheDir);
  assert.deepEqual(r2.fetched, [{ component: 'consul', arch: 'amd64' }]);
  assert.equal(sha256(await readFile(r2.entries[0]!.binaries.consul!)), sha256(consul));
});

test('--offline uses only the cache and names what is missing', async (t) => {
  const { server, cacheDir } = await setup(t);
  const r = await fetchConsul(server, cacheDir, { offline: true, arches: ['amd64', 'arm64'] });
  assert.deepEqual(r.entries, []);
  assert.deepEqual(
    r.unavailable.map((u) => [u.component, u.arch]),
    [
      ['consul', 'amd64'],
      ['consul', 'arm64'],
    ],
  );
  assert.match(r.unavailable[0]!.reason, /consul 1\.8\.7 for amd64 is not in the cache .* \(offline/);
  assert.equal(server.log.length, 0);
  await fetchConsul(server, cacheDir, { arches: ['amd64'] });
  const r2 = await fetchConsul(server, cacheDir, { offline: true, arches: ['amd64'] });
  assert.equal(r2.entries.length, 1);
});

test('an arch the release has no build for is reported, the others are fetched', async (t) => {
  const { server, cacheDir } = await setup(t);
  const r = await fetchConsul(server, cacheDir, { arches: ['armel', 'arm64'] });
  assert.deepEqual(
    r.entries.map((e) => e.arch),
    ['arm64'],
  );
  assert.equal(r.unavailable.length, 1);
  assert.equal(r.unavailable[0]!.arch, 'armel');
  assert.match(r.unavailable[0]!.reason, /no linux_arm build of consul 1\.8\.7 \(needed for armel/);
});

test("armel and armhf both take HashiCorp's linux_arm build: downloaded once, cached for both", async (t) => {
  const { server, cacheDir } = await setup(t, async (f) => {
    const withArm = await hashicorpLayout('consul', '1.8.7', { amd64: consul, arm: consul }, key);
    f.clear();
    for (const [p, b] of withArm) f.set(p, b);
  });
  const r = await fetchConsul(server, cacheDir, { arches: ['armel', 'armhf'] });
  assert.deepEqual(r.entries.map((e) => e.arch), ['armel', 'armhf']);
  assert.equal(r.entries[0]!.sha256.consul, r.entries[1]!.sha256.consul);
  assert.equal(server.log.filter((l) => l.path.endsWith('_linux_arm.zip')).length, 1);
  assert.ok(r.downloadedBytes < 2 * server.files.get(`${DIR}/consul_1.8.7_linux_arm.zip`)!.length);
  assert.deepEqual(await list(join(cacheDir, 'tmp')), []);
});

test('the unsigned index.json cannot choose the file; a mirror without index.json works', async (t) => {
  const { server, cacheDir } = await setup(t, (f) => {
    const index = JSON.parse(f.get(`${DIR}/index.json`)!.toString());
    for (const b of index.builds) b.filename = 'consul_1.8.7_linux_arm64.zip';
    f.set(`${DIR}/index.json`, Buffer.from(JSON.stringify(index)));
  });
  const r = await fetchConsul(server, cacheDir);
  assert.equal(r.entries[0]!.origin, `${server.url}${ZIP}`);
  assert.ok(!server.log.some((l) => l.path.endsWith('_linux_arm64.zip')));

  server.files.delete(`${DIR}/index.json`);
  const r2 = await fetchConsul(server, cacheDir, { arches: ['arm64'] });
  assert.deepEqual(r2.fetched, [{ component: 'consul', arch: 'arm64' }]);
  assert.ok(server.log.some((l) => l.path === `${DIR}/index.json` && l.status === 404));
});

test('a directory mirror: HashiCorp layout for Consul, GitHub layout for Prometheus (binaries found in a sub-directory)', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'piinit-mirror-'));
  const cacheDir = await mkdtemp(join(tmpdir(), 'piinit-fetch-'));
  t.after(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(cacheDir, { recursive: true, force: true });
  });
  const prometheus = await readFile(await realpath('/usr/local/bin/prometheus'));
  const promtool = await readFile(await realpath('/usr/local/bin/promtool'));
  await writeLayout(root, layout);
  await writeLayout(root, await githubLayout('prometheus', '2.24.1', { amd64: { prometheus, promtool }, arm64: { prometheus } }));
  const c = fixtureCluster();
  c.components.consul = { name: 'consul', version: '1.8.7', source: 'mirror', mirror: root };
  c.components.prometheus = { name: 'prometheus', version: '2.24.1', source: 'mirror', mirror: root };
  const opts = {
    cluster: c,
    cacheDir,
    components: ['consul', 'prometheus'] as ComponentName[],
    hashicorpKey: { armoredKey: key.armoredPublic, fingerprint: key.fingerprint },
  };
  const r = await ensureReleases({ ...opts, arches: ['amd64'] });
  assert.deepEqual(
    r.entries.map((e) => [e.component, Object.keys(e.binaries).sort()]),
    [
      ['consul', ['consul']],
      ['prometheus', ['prometheus', 'promtool']],
    ],
  );
  assert.equal(r.entries[1]!.sha256.promtool, sha256(promtool));
  const v = spawnSync(r.entries[1]!.binaries.promtool!, ['--version'], { encoding: 'utf8' });
  assert.match(v.stdout + v.stderr, /promtool, version 2\.24\.1/);

  // The arm64 tarball lacks promtool: refused, never cached as an incomplete release.
  await assert.rejects(ensureReleases({ ...opts, components: ['prometheus'], arches: ['arm64'] }), (err: unknown) => {
    assert.ok(err instanceof FetchVerificationError);
    assert.match(err.message, /prometheus arm64: .*does not contain promtool/);
    return true;
  });
  assert.equal(await findRelease(cacheDir, c.components.prometheus, 'arm64'), null);
});
