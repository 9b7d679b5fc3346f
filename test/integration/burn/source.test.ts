// What piinit burn refuses about the image itself, before it looks at any card: files that
// are not what their name says, compressions it cannot read, empty or broken images and
// block maps. Real files and the real xz; the only "card" is a file that must not appear.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { openSource } from '../../../src/burn/source.ts';
import { UserError } from '../../../src/errors.ts';
import { setup } from './helpers.ts';

function burn(image: string, target: string, env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, ['bin/piinit.js', 'burn', image, target, '--yes', '--allow-file'], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  });
}

const refused = (message: string | RegExp) => (err: unknown) => {
  assert.ok(err instanceof UserError, String(err));
  assert.equal(err.exitCode, 2, err.message);
  if (typeof message === 'string') assert.equal(err.message, message);
  else assert.match(err.message, message);
  return true;
};

test('an image named .xz that is not xz data (an HTML error page) is refused, not burned as a raw image', (t) => {
  const dir = setup(t, 'piinit-burn-source-');
  const img = join(dir, 'x.img.xz');
  writeFileSync(img, '<html>404 Not Found</html>\n');
  const out = join(dir, 'card');
  const r = burn(img, out);
  assert.equal(r.status, 2, r.stderr + r.stdout);
  assert.equal(r.stderr, `piinit: image ${img} is not xz data, though its name ends in .xz (27 bytes; a failed download?)\n`);
  assert.equal(existsSync(out), false, 'nothing was written');
});

test('gzip, bzip2, zstd and zip images are refused, by their name or by their first bytes', async (t) => {
  const dir = setup(t, 'piinit-burn-source-');
  const raw = randomBytes(8192);
  const cases: Array<[string, Buffer, string]> = [
    ['by-data.img', gzipSync(raw), 'gzip'],
    ['by-name.img.gz', raw, 'gzip'],
    ['by-data.bin', Buffer.concat([Buffer.from('BZh9'), raw]), 'bzip2'],
    ['by-name.img.bz2', raw, 'bzip2'],
    ['by-data.raw', Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), raw]), 'zstd'],
    ['by-name.img.zst', raw, 'zstd'],
    ['by-data.img', Buffer.concat([Buffer.from('PK\x03\x04'), raw]), 'zip'],
    ['by-name.img.zip', raw, 'zip'],
    ['gzip-named.img.xz', gzipSync(raw), 'xz'],
  ];
  for (const [name, data, kind] of cases) {
    const img = join(dir, name);
    writeFileSync(img, data);
    const expected =
      kind === 'xz'
        ? `image ${img} is not xz data, though its name ends in .xz (${data.length} bytes; a failed download?)`
        : `image ${img} is ${kind}-compressed, which burn does not support: decompress it, or burn the .img or .img.xz that piinit image wrote`;
    await assert.rejects(openSource(img), refused(expected), name);
  }
  const out = join(dir, 'card');
  const r = burn(join(dir, 'by-name.img.gz'), out);
  assert.equal(r.status, 2, r.stderr + r.stdout);
  assert.match(r.stderr, /is gzip-compressed, which burn does not support: decompress it/);
  assert.equal(existsSync(out), false, 'nothing was written');
});

test('an empty image is refused, raw or named .xz', (t) => {
  const dir = setup(t, 'piinit-burn-source-');
  for (const name of ['empty.img', 'empty.img.xz']) {
    const img = join(dir, name);
    writeFileSync(img, '');
    const out = join(dir, `card-${name}`);
    const r = burn(img, out);
    assert.equal(r.status, 2, r.stderr + r.stdout);
    assert.equal(r.stderr, `piinit: image ${img} is empty\n`);
    assert.equal(existsSync(out), false, 'nothing was written');
  }
});

test('a truncated or corrupt .img.xz is refused with xz\'s own reason; "is xz installed?" only when xz is missing', async (t) => {
  const dir = setup(t, 'piinit-burn-source-');
  const img = join(dir, 'disk.img');
  writeFileSync(img, randomBytes(256 * 1024));
  execFileSync('xz', ['-T1', '-0', '-k', img]);
  const whole = readFileSync(`${img}.xz`);

  const truncated = join(dir, 'truncated.img.xz');
  writeFileSync(truncated, whole.subarray(0, whole.length >> 1));
  const reason = /(Compressed data is corrupt|Unexpected end of input|File format not recognized)/;
  await assert.rejects(openSource(truncated), refused(new RegExp(`^xz cannot read image ${truncated}: ${reason.source}`)));
  const r = burn(truncated, join(dir, 'card'));
  assert.equal(r.status, 2, r.stderr + r.stdout);
  assert.match(r.stderr, reason);
  assert.doesNotMatch(r.stderr, /is xz installed|Command failed/);

  // Damage in the middle leaves the index xz --list reads intact: xz -dc finds it while streaming.
  const corrupt = join(dir, 'corrupt.img.xz');
  const damaged = Buffer.from(whole);
  damaged.fill(0x55, damaged.length >> 1, (damaged.length >> 1) + 64);
  writeFileSync(corrupt, damaged);
  const source = await openSource(corrupt);
  await assert.rejects(
    (async () => {
      for await (const _ of source.chunks(1024 * 1024));
    })(),
    (err: unknown) => {
      assert.ok(err instanceof UserError, String(err));
      assert.match(err.message, new RegExp(`^xz cannot unpack image ${corrupt}: Compressed data is corrupt$`));
      return true;
    },
  );

  // No xz on the PATH at all.
  const emptyBin = join(dir, 'bin');
  mkdirSync(emptyBin);
  const out = join(dir, 'card');
  const noXz = burn(`${img}.xz`, out, { PATH: emptyBin });
  assert.equal(noXz.status, 2, noXz.stderr + noXz.stdout);
  assert.equal(noXz.stderr, `piinit: cannot read ${img}.xz: the xz command was not found; is xz installed?\n`);
  assert.equal(existsSync(out), false, 'nothing was written');
});

test('a damaged block map is refused naming its file, also one burn found next to the image', async (t) => {
  const dir = setup(t, 'piinit-burn-source-');
  const img = join(dir, 'disk.img');
  writeFileSync(img, randomBytes(64 * 1024));
  writeFileSync(`${img}.bmap`, '<not a block map/>');
  await assert.rejects(
    openSource(img),
    refused(`block map ${img}.bmap: not a bmap file (no <bmap version="...">) (found next to the image; --no-bmap ignores it)`),
  );
  const out = join(dir, 'card');
  const r = burn(img, out);
  assert.equal(r.status, 2, r.stderr + r.stdout);
  assert.equal(
    r.stderr,
    `piinit: block map ${img}.bmap: not a bmap file (no <bmap version="...">) (found next to the image; --no-bmap ignores it)\n`,
  );
  assert.equal(existsSync(out), false, 'nothing was written');

  const junk = join(dir, 'other.bmap');
  writeFileSync(junk, '<bmap version="1.4"></bmap>');
  await assert.rejects(
    openSource(img, { bmap: junk }),
    refused(`block map ${junk}: format version 1.4 is not supported (only 2.x, as bmaptool 3 writes)`),
  );
  assert.equal((await openSource(img, { bmap: null })).mapOrigin, 'allocation', '--no-bmap ignores the damaged one');
  for (const both of [['--no-bmap', '--bmap', junk], [`--bmap=${junk}`, '--no-bmap']]) {
    const r2 = spawnSync(process.execPath, ['bin/piinit.js', 'burn', img, out, '--yes', '--allow-file', ...both], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r2.status, 2, both.join(' '));
    assert.equal(r2.stderr, 'piinit: --bmap and --no-bmap exclude each other\n');
  }
  assert.equal(existsSync(out), false, 'nothing was written');
});
