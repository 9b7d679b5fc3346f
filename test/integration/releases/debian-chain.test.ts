// The Debian source's chain of trust against a small archive made here and signed with a
// test key (given to the source as its keyring): every broken link is refused, nothing
// unverified reaches the cache.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test, type TestContext } from 'node:test';
import { ensureReleases, FetchVerificationError } from '../../../src/releases/fetch.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';
import { binaryKeyring, clearsign, debianRepo, makeDeb, releaseText } from '../../helpers/release-debian.ts';
import { generateTestKey, sha256, type TestKey } from '../../helpers/release-layout.ts';
import { startReleaseServer } from '../../helpers/release-server.ts';

const CONSUL = Buffer.from('#!/bin/sh\necho "Consul v1.8.7"\n');
const DEB = '/pool/main/c/consul/consul_1.8.7+dfsg1-2+b3_amd64.deb';
const PACKAGES = '/dists/bullseye/main/binary-amd64/Packages.xz';
const INRELEASE = '/dists/bullseye/InRelease';

let key: TestKey;
let other: TestKey;
let repo: Map<string, Buffer>;

before(async () => {
  key = await generateTestKey('test archive key');
  other = await generateTestKey('not the archive key');
  repo = await debianRepo('bullseye', 'amd64', [{ name: 'consul', version: '1.8.7+dfsg1-2+b3', files: { 'usr/bin/consul': CONSUL } }], key);
});

async function setup(t: TestContext, change?: (f: Map<string, Buffer>) => Promise<void> | void) {
  const files = new Map(repo);
  await change?.(files);
  const server = await startReleaseServer(files);
  const dir = await mkdtemp(join(tmpdir(), 'piinit-debian-'));
  t.after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  const keyring = join(dir, 'keyring.gpg');
  await writeFile(keyring, binaryKeyring(key));
  const cacheDir = join(dir, 'cache');
  const fetch = () =>
    ensureReleases({
      cluster: fixtureCluster(),
      arches: ['amd64'],
      components: ['consul'],
      cacheDir,
      debianMirror: server.url,
      debianKeyring: keyring,
    });
  return { server, cacheDir, fetch };
}

async function rejects(p: Promise<unknown>, re: RegExp) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof FetchVerificationError, `expected a verification error, got ${String(err)}`);
    assert.match(err.message, /consul amd64: /);
    assert.match(err.message, re);
    return true;
  });
}

/** No entry, no executable, no temp file: at most the verified Packages index is kept. */
async function assertNothingBad(cacheDir: string) {
  const entries = await readdir(join(cacheDir, 'entries'), { recursive: true }).catch(() => []);
  assert.deepEqual(entries.filter((e) => e.endsWith('.json')), []);
  const blobs = await readdir(join(cacheDir, 'blobs', 'sha256')).catch(() => []);
  assert.ok(blobs.every((b) => b === sha256(repo.get(PACKAGES)!)), `unexpected blobs: ${blobs.join(', ')}`);
  assert.deepEqual(await readdir(join(cacheDir, 'tmp')).catch(() => []), []);
}

test('a correctly signed archive yields the binary from the .deb', async (t) => {
  const { cacheDir, fetch } = await setup(t);
  const r = await fetch();
  assert.equal(r.entries.length, 1, JSON.stringify(r.unavailable));
  assert.equal(r.entries[0]!.sha256.consul, sha256(CONSUL));
  assert.match(r.entries[0]!.origin, /consul_1\.8\.7\+dfsg1-2\+b3_amd64\.deb$/);
  assert.deepEqual(await readdir(join(cacheDir, 'tmp')), []);
});

test('an InRelease signed by a key outside the keyring is refused', async (t) => {
  const { cacheDir, fetch } = await setup(t, async (f) => {
    f.set(INRELEASE, await clearsign(releaseText('bullseye', 'amd64', f.get(PACKAGES)!), other));
  });
  await rejects(fetch(), /InRelease .*no valid signature by a key in/);
  await assertNothingBad(cacheDir);
});

test('an InRelease changed after signing is refused', async (t) => {
  const { cacheDir, fetch } = await setup(t, (f) => {
    f.set(INRELEASE, Buffer.from(f.get(INRELEASE)!.toString().replace('Label: Debian', 'Label: Debiam')));
  });
  await rejects(fetch(), /no valid signature/);
  await assertNothingBad(cacheDir);
});

test("a signed InRelease of another suite does not pass for bullseye", async (t) => {
  const { cacheDir, fetch } = await setup(t, async (f) => {
    f.set(INRELEASE, await clearsign(releaseText('buster', 'amd64', f.get(PACKAGES)!), key));
  });
  await rejects(fetch(), /describes buster, not bullseye/);
  await assertNothingBad(cacheDir);
});

test('a Packages index that does not match InRelease is refused', async (t) => {
  const { cacheDir, fetch } = await setup(t, (f) => {
    const p = Buffer.from(f.get(PACKAGES)!);
    p[p.length - 20]! ^= 0x01;
    f.set(PACKAGES, p);
  });
  await rejects(fetch(), /Packages\.xz: SHA-256 mismatch/);
  await assertNothingBad(cacheDir);
});

test('a .deb with one flipped byte is refused', async (t) => {
  const { cacheDir, fetch } = await setup(t, (f) => {
    const d = Buffer.from(f.get(DEB)!);
    d[d.length - 100]! ^= 0x01;
    f.set(DEB, d);
  });
  await rejects(fetch(), /SHA-256 mismatch for http:\/\/127\.0\.0\.1:\d+\/pool\/main\/c\/consul\//);
  await assertNothingBad(cacheDir);
});

test('a .deb without the program is refused, not cached empty', async (t) => {
  const { cacheDir, fetch } = await setup(t, async (f) => {
    const repo2 = await debianRepo('bullseye', 'amd64', [{ name: 'consul', version: '1.8.7+dfsg1-2+b3', files: { 'usr/share/doc/consul/README': Buffer.from('x') } }], key);
    f.clear();
    for (const [p, b] of repo2) f.set(p, b);
  });
  await rejects(fetch(), /does not contain consul/);
  const blobs = await readdir(join(cacheDir, 'blobs', 'sha256'));
  assert.equal(blobs.length, 1, 'only the Packages index');
});

test('makeDeb output is a valid .deb for dpkg-deb', async () => {
  const { execFileSync } = await import('node:child_process');
  const dir = await mkdtemp(join(tmpdir(), 'piinit-deb-'));
  try {
    await writeFile(join(dir, 'x.deb'), await makeDeb('consul', '1.8.7', 'amd64', { 'usr/bin/consul': CONSUL }));
    assert.match(execFileSync('dpkg-deb', ['-c', join(dir, 'x.deb')], { encoding: 'utf8' }), /\.\/usr\/bin\/consul/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
