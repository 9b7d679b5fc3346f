// The cluster's own certificate authority and the certificates piinit issues from it.
// Everything here is computed from its arguments (plus fresh randomness for keys and
// serials); nothing touches the disk or the network.
import 'reflect-metadata';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn1X509 from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import { X509Certificate as NodeX509, createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { isIP } from 'node:net';
import type { Cluster, KeyPair, Node, Secrets } from '../cluster/types.ts';

export type TlsMaterial = NonNullable<Secrets['tls']>;

/** What the certificates name. A `Cluster` fits; so does the parsed cluster.yaml before the
 *  secrets file exists (piinit init). */
export interface TlsNames {
  name: string;
  datacenter: string;
  domain: string;
  nodes: Pick<Node, 'role' | 'address'>[];
}

/** TlsNames from a parsed (not yet validated) cluster.yaml, with the loader's defaults;
 *  undefined when the file is unusable (loading it later reports why). */
export function tlsNamesFromClusterData(data: unknown): TlsNames | undefined {
  if (data === null || typeof data !== 'object') return undefined;
  const d = data as Record<string, unknown>;
  if (typeof d.name !== 'string' || !Array.isArray(d.nodes)) return undefined;
  const str = (v: unknown, dflt: string) => (typeof v === 'string' && v !== '' ? v : dflt);
  return {
    name: d.name,
    datacenter: str(d.datacenter, 'dc1'),
    domain: str(d.domain, 'consul'),
    nodes: d.nodes.flatMap((n: unknown) => {
      if (n === null || typeof n !== 'object') return [];
      const { role, address } = n as Record<string, unknown>;
      if (role !== 'server' && role !== 'client' && role !== 'monitor') return [];
      return [{ role, address: typeof address === 'string' && isIP(address) === 4 ? address : null }];
    }),
  };
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** The CA outlives many leaf renewals; replacing it means re-imaging every node. */
export const CA_LIFETIME_DAYS = 3650;
/** Leaf certificates: long enough for an SD-card cluster that is rarely touched, short
 *  enough that a leaked key stops working. `piinit secrets check` warns well before. */
export const LEAF_LIFETIME_DAYS = 730;
/** Renew when less than this share of a certificate's lifetime is left (~8 months of 2 years). */
export const RENEW_WHEN_REMAINING = 1 / 3;

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

export interface IssueOptions {
  /** Issue time (default: now). Certificates are valid from one hour before, for clock skew. */
  now?: Date;
  /** Extra IP addresses for the server certificates, e.g. the loopback addresses the local
   *  cluster binds its nodes to (`piinit up`). */
  extraAddresses?: string[];
}

/** The names Consul agents check (verify_server_hostname) plus the ways people reach it. */
export function consulServerNames(c: TlsNames, extraAddresses: string[] = []): string[] {
  return uniq([`server.${c.datacenter}.${c.domain}`, 'localhost', '127.0.0.1', ...serverAddresses(c), ...extraAddresses]);
}

/** Nomad checks `server.<region>.nomad`; piinit uses the default region "global". */
export function nomadServerNames(c: TlsNames, extraAddresses: string[] = []): string[] {
  return uniq(['server.global.nomad', 'localhost', '127.0.0.1', ...serverAddresses(c), ...extraAddresses]);
}

export function nomadClientNames(): string[] {
  return ['client.global.nomad', 'localhost', '127.0.0.1'];
}

/** A new CA and every certificate the cluster needs. Called once, by `piinit init`. */
export function generateTlsMaterial(c: TlsNames, opts: IssueOptions = {}): TlsMaterial {
  const ca = createCa(c, opts.now ?? new Date());
  return { ca, ...issueLeafCertificates(ca, c, opts) };
}

/** Re-issues the leaf certificates from an existing CA: after servers were added or
 *  re-addressed, before expiry (`piinit secrets renew-certs`), or with the local cluster's
 *  loopback addresses added (pass them as extraAddresses). */
export function issueLeafCertificates(ca: KeyPair, c: TlsNames, opts: IssueOptions = {}): Omit<TlsMaterial, 'ca'> {
  const now = opts.now ?? new Date();
  const extra = opts.extraAddresses ?? [];
  return {
    consulServer: issueLeaf(ca, `server.${c.datacenter}.${c.domain}`, consulServerNames(c, extra), now),
    nomadServer: issueLeaf(ca, 'server.global.nomad', nomadServerNames(c, extra), now),
    nomadClient: issueLeaf(ca, 'client.global.nomad', nomadClientNames(), now),
  };
}

/** For `piinit up`: the cluster's TLS material with the server certificates re-issued so
 *  that they also name the loopback addresses the local nodes bind to (HTTPS clients that
 *  connect by IP check them). Same CA, so the secrets file is unchanged. */
export function localClusterTls(cluster: Cluster, loopbackAddresses: string[], now = new Date()): TlsMaterial {
  const tls = cluster.secrets.tls;
  if (!tls) throw new Error('the secrets have no TLS material (run piinit secrets renew-certs)');
  return { ca: tls.ca, ...issueLeafCertificates(tls.ca, cluster, { now, extraAddresses: loopbackAddresses }) };
}

function createCa(names: TlsNames, now: Date): KeyPair {
  const { spki, key } = newKeyPair();
  const subject = `CN=piinit ${dnEscape(names.name)} CA, O=piinit`;
  return {
    cert: signCertificate({
      subject,
      issuer: subject,
      notBefore: new Date(now.getTime() - 60 * 60 * 1000),
      notAfter: new Date(now.getTime() + CA_LIFETIME_DAYS * DAY_MS),
      spki,
      signingKey: key,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
        new x509.SubjectKeyIdentifierExtension(keyId(spki)),
      ],
    }),
    key,
  };
}

function issueLeaf(ca: KeyPair, commonName: string, names: string[], now: Date): KeyPair {
  const caCert = new x509.X509Certificate(ca.cert);
  const caKeyId = caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const { spki, key } = newKeyPair();
  const cert = signCertificate({
    subject: `CN=${dnEscape(commonName)}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - 60 * 60 * 1000),
    notAfter: new Date(now.getTime() + LEAF_LIFETIME_DAYS * DAY_MS),
    spki,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      // Consul and Nomad use the same certificate for incoming and outgoing RPC.
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => (isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n }))),
      new x509.SubjectKeyIdentifierExtension(keyId(spki)),
      ...(caKeyId ? [new x509.AuthorityKeyIdentifierExtension(caKeyId)] : []),
    ],
  });
  return { cert, key };
}

// Synchronous on purpose: @peculiar/x509's generator signs through WebCrypto (async), which
// would force every caller of generateSecrets() to become async. The ASN.1 structures are
// built with the same library; node:crypto signs (ECDSA signatures in DER are exactly
// what X.509 carries).
interface CertificateParams {
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  signingKey: string;
  extensions: x509.Extension[];
}

function signCertificate(p: CertificateParams): string {
  const alg = new asn1X509.AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 });
  const tbs = new asn1X509.TBSCertificate({
    version: asn1X509.Version.v3,
    serialNumber: toArrayBuffer(serial()),
    signature: alg,
    issuer: AsnConvert.parse(new x509.Name(p.issuer).toArrayBuffer(), asn1X509.Name),
    subject: AsnConvert.parse(new x509.Name(p.subject).toArrayBuffer(), asn1X509.Name),
    validity: new asn1X509.Validity({ notBefore: p.notBefore, notAfter: p.notAfter }),
    subjectPublicKeyInfo: AsnConvert.parse(toArrayBuffer(p.spki), asn1X509.SubjectPublicKeyInfo),
    extensions: new asn1X509.Extensions(p.extensions.map((e) => AsnConvert.parse(e.rawData, asn1X509.Extension))),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = sign('sha256', tbsDer, { key: createPrivateKey(p.signingKey), dsaEncoding: 'der' });
  const cert = new asn1X509.Certificate({ tbsCertificate: tbs, signatureAlgorithm: alg, signatureValue: toArrayBuffer(signature) });
  const der = Buffer.from(AsnConvert.serialize(cert));
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
}

function newKeyPair(): { spki: Buffer; key: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { spki: publicKey, key: privateKey };
}

/** RFC 5280 method 1: SHA-1 of the subjectPublicKey bits. */
function keyId(spki: Buffer): string {
  const info = AsnConvert.parse(toArrayBuffer(spki), asn1X509.SubjectPublicKeyInfo);
  return createHash('sha1').update(Buffer.from(info.subjectPublicKey)).digest('hex');
}

function toArrayBuffer(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

export interface CertificateInfo {
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  /** DNS names and IP addresses from the subjectAltName extension. */
  names: string[];
  isCa: boolean;
}

export function certificateInfo(pem: string): CertificateInfo {
  const c = new NodeX509(pem);
  const names = (c.subjectAltName ?? '')
    .split(', ')
    .filter(Boolean)
    .map((s) => s.replace(/^(DNS|IP Address):/, ''));
  return {
    subject: c.subject.replace(/\n/g, ', '),
    issuer: c.issuer.replace(/\n/g, ', '),
    notBefore: new Date(c.validFrom),
    notAfter: new Date(c.validTo),
    names,
    isCa: c.ca,
  };
}

/** True when the certificate has expired or less than a third of its lifetime is left. */
export function certificateNeedsRenewal(pem: string, now = new Date()): boolean {
  const { notBefore, notAfter } = certificateInfo(pem);
  const lifetime = notAfter.getTime() - notBefore.getTime();
  return notAfter.getTime() - now.getTime() < lifetime * RENEW_WHEN_REMAINING;
}

/** True when `cert` was signed by `ca` (checked with Node's own X.509 code). */
export function isIssuedBy(certPem: string, caPem: string): boolean {
  const cert = new NodeX509(certPem);
  const ca = new NodeX509(caPem);
  return cert.checkIssued(ca) && cert.verify(ca.publicKey);
}

function serverAddresses(c: TlsNames): string[] {
  return c.nodes.flatMap((n) => (n.role === 'server' && n.address ? [n.address] : []));
}

function serial(): Buffer {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01; // positive, and no leading zero byte
  return b;
}

function dnEscape(s: string): string {
  return s.replace(/([,+"\\<>;=])/g, '\\$1');
}

function uniq(xs: string[]): string[] {
  return [...new Set(xs)];
}
