import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import type { DebEntry, DebPackage } from '../../../src/deb/model.ts';
import { buildDeb, writeDeb } from '../../../src/deb/writer.ts';
import { UserError } from '../../../src/errors.ts';

const dir = await mkdtemp(join(tmpdir(), 'piinit-deb-writer-'));
after(() => rm(dir, { recursive: true, force: true }));
const bigFile = join(dir, 'big.bin');
await writeFile(bigFile, Buffer.alloc(300_001, 7));

function demo(): DebPackage {
  return {
    name: 'piinit-demo',
    version: '1.0-1',
    arch: 'amd64',
    maintainer: 'piinit <packages@piinit.dev>',
    description: 'demo\nlonger text',
    files: new Map<string, DebEntry>([
      ['/usr/bin/demo', { source: bigFile, mode: 0o755, owner: 'root', group: 'root' }],
      ['/etc/demo/secret.json', { content: '{"k":1}\n', mode: 0o640, owner: 'root', group: 'demo' }],
      ['/etc/demo/link', { symlink: 'secret.json' }],
    ]),
    maintainerScripts: { postinst: '#!/bin/sh\nexit 0\n' },
  };
}

function readAr(buf: Buffer): Map<string, Buffer> {
  assert.equal(buf.subarray(0, 8).toString(), '!<arch>\n');
  const out = new Map<string, Buffer>();
  let off = 8;
  while (off < buf.length) {
    const h = buf.subarray(off, off + 60).toString('latin1');
    const size = Number(h.slice(48, 58).trim());
    out.set(h.slice(0, 16).trim(), buf.subarray(off + 60, off + 60 + size));
    off += 60 + size + (size % 2);
  }
  return out;
}

async function readTar(buf: Buffer): Promise<Map<string, { header: tar.Header; data: Buffer }>> {
  const ex = tar.extract();
  const out = new Map<string, { header: tar.Header; data: Buffer }>();
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      out.set(entry.header.name, { header: entry.header, data: Buffer.concat(chunks) });
    }
  })();
  ex.end(buf);
  await done;
  return out;
}

test('a gzip .deb has the three members, exact modes, names, one mtime and md5sums', async () => {
  const deb = Buffer.concat(await buildDeb(demo(), { mtime: 1700000000, compression: { kind: 'gzip', level: 6 } }));
  const ar = readAr(deb);
  assert.deepEqual([...ar.keys()], ['debian-binary', 'control.tar.gz', 'data.tar.gz']);
  assert.equal(ar.get('debian-binary')!.toString(), '2.0\n');
  const data = await readTar(gunzipSync(ar.get('data.tar.gz')!));
  assert.deepEqual([...data.keys()], ['./', './etc/', './etc/demo/', './etc/demo/link', './etc/demo/secret.json', './usr/', './usr/bin/', './usr/bin/demo']);
  const secret = data.get('./etc/demo/secret.json')!.header;
  assert.equal(secret.mode, 0o640);
  assert.equal(secret.uid, 0);
  assert.equal(secret.gname, 'demo');
  assert.equal(secret.mtime!.getTime(), 1700000000_000);
  assert.equal(data.get('./usr/bin/demo')!.data.length, 300_001);
  assert.equal(data.get('./etc/demo/link')!.header.linkname, 'secret.json');
  const control = await readTar(gunzipSync(ar.get('control.tar.gz')!));
  assert.equal(control.get('./conffiles')!.data.toString(), '/etc/demo/secret.json\n');
  assert.match(control.get('./md5sums')!.data.toString(), /^[0-9a-f]{32} {2}usr\/bin\/demo\n$/);
  assert.match(control.get('./control')!.data.toString(), /^Installed-Size: 300$/m);
  assert.equal(control.get('./postinst')!.header.mode, 0o755);
});

test('the same package and mtime give the same bytes (xz and gzip)', async () => {
  for (const kind of ['xz', 'gzip', 'none'] as const) {
    const a = Buffer.concat(await buildDeb(demo(), { mtime: 1, compression: { kind } }));
    const b = Buffer.concat(await buildDeb(demo(), { mtime: 1, compression: { kind } }));
    assert.ok(a.equals(b), kind);
  }
});

test('writeDeb names the file after the package and leaves nothing behind on failure', async () => {
  const w = await writeDeb(demo(), dir, { mtime: 1, compression: { kind: 'gzip' } });
  assert.equal(w.file, 'piinit-demo_1.0-1_amd64.deb');
  assert.equal((await readFile(w.path)).length, w.size);
  await assert.rejects(writeDeb(demo(), join(dir, 'missing'), { mtime: 1 }), (e: unknown) => e instanceof UserError && /does not exist/.test(e.message));
  const broken = demo();
  broken.files.set('/usr/bin/gone', { source: join(dir, 'no-such-file'), mode: 0o755, owner: 'root', group: 'root' });
  await assert.rejects(writeDeb(broken, dir, { mtime: 1 }));
  assert.deepEqual((await readdir(dir)).sort(), ['big.bin', 'piinit-demo_1.0-1_amd64.deb']);
});
