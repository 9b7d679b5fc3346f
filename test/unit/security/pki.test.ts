import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { test } from 'node:test';
import {
  certificateInfo,
  certificateNeedsRenewal,
  generateTlsMaterial,
  isIssuedBy,
  issueLeafCertificates,
  LEAF_LIFETIME_DAYS,
  localClusterTls,
} from '../../../src/security/pki.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';

const DAY = 24 * 3600 * 1000;

test('the CA is an ECDSA P-256 CA limited to issuing leaf certificates', () => {
  const tls = generateTlsMaterial(fixtureCluster());
  const ca = new X509Certificate(tls.ca.cert);
  assert.equal(ca.ca, true);
  assert.equal(createPublicKey(tls.ca.cert).asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.ok(ca.checkPrivateKey(createPrivateKey(tls.ca.key)));
  assert.ok(ca.verify(ca.publicKey), 'self-signed');
  const info = certificateInfo(tls.ca.cert);
  assert.ok(info.notAfter.getTime() - info.notBefore.getTime() > 9 * 365 * DAY);
});

test('server certificates name what Consul and Nomad check, and every server address', () => {
  const c = fixtureCluster();
  const tls = generateTlsMaterial(c);
  const consul = certificateInfo(tls.consulServer.cert);
  assert.deepEqual(consul.names, ['server.home.consul', 'localhost', '127.0.0.1', '192.168.50.11', '192.168.50.12', '192.168.50.13']);
  assert.equal(consul.isCa, false);
  assert.deepEqual(certificateInfo(tls.nomadServer.cert).names, ['server.global.nomad', 'localhost', '127.0.0.1', '192.168.50.11', '192.168.50.12', '192.168.50.13']);
  assert.deepEqual(certificateInfo(tls.nomadClient.cert).names, ['client.global.nomad', 'localhost', '127.0.0.1']);
  for (const kp of [tls.consulServer, tls.nomadServer, tls.nomadClient]) {
    const x = new X509Certificate(kp.cert);
    assert.ok(isIssuedBy(kp.cert, tls.ca.cert));
    assert.ok(x.checkPrivateKey(createPrivateKey(kp.key)), 'key matches certificate');
    assert.ok(x.checkHost('localhost'));
    // Consul uses the same certificate for outgoing RPC: both purposes must be there.
    assert.match(x.toLegacyObject().ext_key_usage?.join(' ') ?? '', /1\.3\.6\.1\.5\.5\.7\.3\.1.*1\.3\.6\.1\.5\.5\.7\.3\.2/);
  }
  assert.ok(new X509Certificate(tls.consulServer.cert).checkIP('192.168.50.12'));
  assert.equal(new X509Certificate(tls.consulServer.cert).checkIP('192.168.50.14'), undefined, 'the monitor is no server');
});

test('a certificate from another CA is not issued by ours', () => {
  const a = generateTlsMaterial(fixtureCluster());
  const b = generateTlsMaterial(fixtureCluster());
  assert.equal(isIssuedBy(b.consulServer.cert, a.ca.cert), false);
});

test('renewal is due in the last third of a lifetime, and re-issuing keeps the CA', () => {
  const c = fixtureCluster();
  const issued = new Date('2026-01-01T00:00:00Z');
  const tls = generateTlsMaterial(c, { now: issued });
  assert.equal(certificateNeedsRenewal(tls.consulServer.cert, new Date(issued.getTime() + 300 * DAY)), false);
  assert.equal(certificateNeedsRenewal(tls.consulServer.cert, new Date(issued.getTime() + 500 * DAY)), true);
  assert.equal(certificateNeedsRenewal(tls.consulServer.cert, new Date(issued.getTime() + (LEAF_LIFETIME_DAYS + 1) * DAY)), true);
  assert.equal(certificateNeedsRenewal(tls.ca.cert, new Date(issued.getTime() + 500 * DAY)), false);
  const renewed = issueLeafCertificates(tls.ca, c, { now: new Date(issued.getTime() + 500 * DAY) });
  assert.ok(isIssuedBy(renewed.consulServer.cert, tls.ca.cert));
  assert.equal(certificateNeedsRenewal(renewed.consulServer.cert, new Date(issued.getTime() + 500 * DAY)), false);
});

test('the local cluster gets the loopback addresses in its server certificates', () => {
  const c = fixtureCluster();
  c.secrets.tls = generateTlsMaterial(c);
  const local = localClusterTls(c, ['127.0.100.1', '127.0.100.2']);
  assert.equal(local.ca, c.secrets.tls.ca);
  const x = new X509Certificate(local.consulServer.cert);
  assert.ok(x.checkIP('127.0.100.2'));
  assert.ok(x.checkHost('server.home.consul'));
  assert.ok(isIssuedBy(local.nomadServer.cert, c.secrets.tls.ca.cert));
});
