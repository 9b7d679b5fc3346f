import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HASHICORP_FINGERPRINT, HASHICORP_PUBLIC_KEY } from '../../../src/releases/hashicorp-key.ts';
import { hashicorpTrust, trustedKey } from '../../../src/releases/pgp.ts';
import { parseSha256Sums } from '../../../src/releases/sources/checksums.ts';
import { debianVersionMatches, parseRelease } from '../../../src/releases/sources/debian.ts';

test('Debian version prefix matching', () => {
  assert.ok(debianVersionMatches('1.8.7', '1.8.7+dfsg1-2+b3'));
  assert.ok(debianVersionMatches('1.5.0', '1.5.0-1+b6'));
  assert.ok(debianVersionMatches('2.24.1', '2.24.1+ds-1+b7'));
  assert.ok(debianVersionMatches('2.24.1', '1:2.24.1-1'));
  assert.ok(!debianVersionMatches('1.8.7', '1.8.70-1'));
  assert.ok(!debianVersionMatches('1.8.7', '1.8.6-1'));
});

test('parseSha256Sums reads sha256sum lines and refuses junk and contradictions', () => {
  const a = 'a'.repeat(64);
  const m = parseSha256Sums(`${a}  consul_1.8.7_linux_amd64.zip\n${'b'.repeat(64)} *x.tar.gz\n`, 'sums');
  assert.equal(m.get('consul_1.8.7_linux_amd64.zip'), a);
  assert.equal(m.get('x.tar.gz'), 'b'.repeat(64));
  assert.throws(() => parseSha256Sums('not a checksum line\n', 'sums'), /malformed/);
  assert.throws(() => parseSha256Sums(`${a}  f\n${'c'.repeat(64)}  f\n`, 'sums'), /two different checksums/);
});

test('parseRelease reads architectures, by-hash and the SHA256 list', () => {
  const r = parseRelease(
    `Origin: Debian\nArchitectures: all amd64 arm64\nComponents: main\nAcquire-By-Hash: yes\nSHA256:\n ${'d'.repeat(64)}  123 main/binary-amd64/Packages.xz\n`,
  );
  assert.deepEqual(r.architectures, ['all', 'amd64', 'arm64']);
  assert.equal(r.byHash, true);
  assert.deepEqual(r.sha256.get('main/binary-amd64/Packages.xz'), { hash: 'd'.repeat(64), size: 123 });
});

test('the embedded HashiCorp key has the pinned fingerprint and a signing subkey valid past 2026', async () => {
  const anchor = await hashicorpTrust();
  assert.equal(anchor.fingerprint, 'C874011F0AB405110D02105534365D9472D7468F');
  const signing = await anchor.key.getSigningKey(undefined, new Date('2027-06-01T00:00:00Z'));
  assert.equal(signing.getFingerprint().toUpperCase(), '374EC75B485913604A831CC7C820C6D5CD27AB87');
});

test('trustedKey refuses a key whose fingerprint is not the pinned one', async () => {
  await assert.rejects(
    trustedKey(HASHICORP_PUBLIC_KEY, HASHICORP_FINGERPRINT.replace(/^C/, 'D')),
    /does not match the pinned fingerprint/,
  );
  // Spaces and case in the pinned fingerprint do not matter.
  const ok = await trustedKey(HASHICORP_PUBLIC_KEY, 'c874 011f 0ab4 0511 0d02 1055 3436 5d94 72d7 468f');
  assert.equal(ok.fingerprint, HASHICORP_FINGERPRINT);
});
