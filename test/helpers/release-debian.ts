// A tiny signed Debian archive for tests of the Debian source's verification chain:
// dists/<suite>/InRelease (clear-signed with a test key) → main/binary-<arch>/Packages.xz →
// pool/.../*.deb (ar: debian-binary, control.tar.gz, data.tar.xz).
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import { sha256, tarBytes, type TestKey } from './release-layout.ts';

export function xz(data: Buffer): Buffer {
  return execFileSync('xz', ['-c', '-1'], { input: data, maxBuffer: 1 << 30 });
}

export function ar(members: { name: string; data: Buffer }[]): Buffer {
  const parts: Buffer[] = [Buffer.from('!<arch>\n')];
  for (const m of members) {
    const h =
      m.name.padEnd(16) + '0'.padEnd(12) + '0'.padEnd(6) + '0'.padEnd(6) + '100644'.padEnd(8) + String(m.data.length).padEnd(10) + '`\n';
    parts.push(Buffer.from(h, 'latin1'), m.data);
    if (m.data.length % 2) parts.push(Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

/** A .deb with the given files (paths like usr/bin/consul) in data.tar.xz. */
export async function makeDeb(pkg: string, version: string, arch: string, files: Record<string, Buffer>): Promise<Buffer> {
  const control = `Package: ${pkg}\nVersion: ${version}\nArchitecture: ${arch}\nMaintainer: test <t@example.invalid>\nDescription: test\n`;
  const controlTar = gzipSync(await tarBytes([{ name: './control', data: Buffer.from(control) }]));
  const dirs = new Set<string>();
  for (const p of Object.keys(files)) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(`./${parts.slice(0, i).join('/')}/`);
  }
  const dataTar = xz(
    await tarBytes([
      ...[...dirs].sort().map((name) => ({ name, type: 'directory' as const })),
      ...Object.entries(files).map(([p, data]) => ({ name: `./${p}`, data })),
    ]),
  );
  return ar([
    { name: 'debian-binary', data: Buffer.from('2.0\n') },
    { name: 'control.tar.gz', data: controlTar },
    { name: 'data.tar.xz', data: dataTar },
  ]);
}

export interface DebianRepoPackage {
  name: string;
  version: string;
  files: Record<string, Buffer>;
}

export async function clearsign(text: string, key: TestKey): Promise<Buffer> {
  const signed = await openpgp.sign({ message: await openpgp.createCleartextMessage({ text }), signingKeys: key.privateKey });
  return Buffer.from(signed as string);
}

export function releaseText(suite: string, arch: string, packagesXz: Buffer): string {
  return (
    `Origin: Debian\nLabel: Debian\nSuite: ${suite}\nCodename: ${suite}\nArchitectures: all ${arch}\n` +
    `Components: main\nAcquire-By-Hash: no\nSHA256:\n ${sha256(packagesXz)} ${packagesXz.length} main/binary-${arch}/Packages.xz\n`
  );
}

/** path → bytes of a one-suite, one-arch archive signed by `key`. */
export async function debianRepo(suite: string, arch: string, packages: DebianRepoPackage[], key: TestKey): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const stanzas: string[] = [];
  for (const p of packages) {
    const deb = await makeDeb(p.name, p.version, arch, p.files);
    const filename = `pool/main/${p.name[0]}/${p.name}/${p.name}_${p.version}_${arch}.deb`;
    files.set(`/${filename}`, deb);
    stanzas.push(
      `Package: ${p.name}\nVersion: ${p.version}\nArchitecture: ${arch}\nFilename: ${filename}\nSize: ${deb.length}\nSHA256: ${sha256(deb)}\nDescription: test\n`,
    );
  }
  const packagesXz = xz(Buffer.from(`${stanzas.join('\n')}\n`));
  files.set(`/dists/${suite}/main/binary-${arch}/Packages.xz`, packagesXz);
  files.set(`/dists/${suite}/InRelease`, await clearsign(releaseText(suite, arch, packagesXz), key));
  return files;
}

/** The key as a binary keyring file (what /usr/share/keyrings/*.gpg holds). */
export function binaryKeyring(key: TestKey): Buffer {
  return Buffer.from(key.privateKey.toPublic().write());
}
