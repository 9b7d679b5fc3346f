// Builds release layouts for tests: HashiCorp (index.json, zips, signed SHA256SUMS) and GitHub
// (tarballs, sha256sums.txt), as path → bytes maps a release server or a directory can hold.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import * as tar from 'tar-stream';
import { makeZip } from './release-zip.ts';

export interface TestKey {
  armoredPublic: string;
  fingerprint: string;
  privateKey: openpgp.PrivateKey;
}

export async function generateTestKey(name = 'piinit test releases'): Promise<TestKey> {
  const { privateKey, publicKey } = await openpgp.generateKey({ userIDs: [{ name }], format: 'object' });
  return { armoredPublic: publicKey.armor(), fingerprint: publicKey.getFingerprint().toUpperCase(), privateKey };
}

export async function detachedSign(data: Buffer, key: TestKey): Promise<Buffer> {
  const sig = await openpgp.sign({
    message: await openpgp.createMessage({ binary: data }),
    signingKeys: key.privateKey,
    detached: true,
    format: 'binary',
  });
  return Buffer.from(sig as Uint8Array);
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// Zipping Consul takes seconds: the same binary (often used for several arches) is zipped once.
const zips = new WeakMap<Buffer, Map<string, Buffer>>();
function zipOf(name: string, bin: Buffer): Buffer {
  let byName = zips.get(bin);
  if (!byName) zips.set(bin, (byName = new Map()));
  let zip = byName.get(name);
  if (!zip) byName.set(name, (zip = makeZip([{ name, data: bin }])));
  return zip;
}

/** HashiCorp's layout under /<name>/<version>/. `builds` maps HashiCorp arch names (amd64, arm64, arm) to the binary. */
export async function hashicorpLayout(
  name: string,
  version: string,
  builds: Record<string, Buffer>,
  key: TestKey,
): Promise<Map<string, Buffer>> {
  const dir = `/${name}/${version}`;
  const files = new Map<string, Buffer>();
  const sums: string[] = [];
  const index = {
    name,
    version,
    shasums: `${name}_${version}_SHA256SUMS`,
    shasums_signature: `${name}_${version}_SHA256SUMS.sig`,
    shasums_signatures: [`${name}_${version}_SHA256SUMS.${key.fingerprint.slice(-8)}.sig`, `${name}_${version}_SHA256SUMS.sig`],
    builds: [] as { name: string; version: string; os: string; arch: string; filename: string; url: string }[],
  };
  for (const [arch, bin] of Object.entries(builds)) {
    const filename = `${name}_${version}_linux_${arch}.zip`;
    const zip = zipOf(name, bin);
    files.set(`${dir}/${filename}`, zip);
    sums.push(`${sha256(zip)}  ${filename}`);
    index.builds.push({ name, version, os: 'linux', arch, filename, url: `https://releases.hashicorp.com${dir}/${filename}` });
  }
  const sumsFile = Buffer.from(`${sums.sort().join('\n')}\n`);
  files.set(`${dir}/${index.shasums}`, sumsFile);
  const sig = await detachedSign(sumsFile, key);
  for (const s of index.shasums_signatures) files.set(`${dir}/${s}`, sig);
  files.set(`${dir}/index.json`, Buffer.from(JSON.stringify(index, null, 2)));
  return files;
}

export async function tarGz(entries: { name: string; data: Buffer }[]): Promise<Buffer> {
  return gzipSync(await tarBytes(entries), { level: 1 });
}

/** An uncompressed tar of files (mode 0755) and directories, every time stamp 0. */
export async function tarBytes(entries: { name: string; data?: Buffer; type?: 'directory' }[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((res, rej) => {
    pack.on('end', res);
    pack.on('error', rej);
  });
  for (const e of entries) {
    await new Promise<void>((res, rej) => {
      const header = { name: e.name, type: e.type ?? ('file' as const), mode: 0o755, mtime: new Date(0) };
      const cb = (err?: Error | null) => (err ? rej(err) : res());
      if (e.data) pack.entry(header, e.data, cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A GitHub-style release (tarball with the binaries in a sub-directory, sha256sums.txt) under /<name>/<version>/ (the mirror layout). */
export async function githubLayout(
  name: string,
  version: string,
  builds: Record<string, Record<string, Buffer>>,
): Promise<Map<string, Buffer>> {
  const dir = `/${name}/${version}`;
  const files = new Map<string, Buffer>();
  const sums: string[] = [];
  for (const [arch, programs] of Object.entries(builds)) {
    const top = `${name}-${version}.linux-${arch}`;
    const tgz = await tarGz([
      { name: `${top}/LICENSE`, data: Buffer.from('Apache-2.0\n') },
      ...Object.entries(programs).map(([p, data]) => ({ name: `${top}/${p}`, data })),
    ]);
    files.set(`${dir}/${top}.tar.gz`, tgz);
    sums.push(`${sha256(tgz)}  ${top}.tar.gz`);
  }
  files.set(`${dir}/sha256sums.txt`, Buffer.from(`${sums.join('\n')}\n`));
  return files;
}

export async function writeLayout(root: string, files: Map<string, Buffer>): Promise<void> {
  for (const [p, data] of files) {
    const dest = join(root, p);
    await mkdir(dirname(dest), { recursive: true });
    await writeFile(dest, data);
  }
}
