// How old a cached base is, and when a build says so.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { birthTime, OLD_BASE_DAYS, oldBaseNote } from '../../../src/image/base-age.ts';
import { markUsed } from '../../../src/image/prune.ts';

const DAY = 24 * 60 * 60 * 1000;
const NOW = Date.parse('2026-11-29T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

test('a base younger than a week gets no note; an older one names its date, its age and --refresh-base', () => {
  assert.equal(oldBaseNote('x.img', iso(NOW - (OLD_BASE_DAYS * DAY - 1)), NOW), null);
  assert.equal(oldBaseNote('x.img', null, NOW), null, 'unknown age: nothing to say');
  assert.equal(
    oldBaseNote('homelab-rpi-arm64-server.img', iso(NOW - 9 * DAY), NOW),
    "note: homelab-rpi-arm64-server.img is built on a cached base from 2026-11-20 (9 days ago); Debian's updates since then, security fixes among them, are not in it: --refresh-base builds the base again",
  );
  assert.match(oldBaseNote('x.img', iso(NOW - OLD_BASE_DAYS * DAY), NOW) ?? '', /\(7 days ago\)/);
});

test("a base's age is its tarball's birth time, which marking it used leaves alone", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-base-age-'));
  try {
    const tarball = join(dir, 'bookworm-amd64-0123456789abcdef.tar');
    const before = Date.now();
    await writeFile(tarball, 'tar');
    const born = await birthTime(tarball);
    assert.ok(born, 'this file system records birth times');
    assert.ok(born.getTime() >= before - 1000 && born.getTime() <= Date.now() + 1000, born.toISOString());
    await new Promise((r) => setTimeout(r, 20));
    await markUsed(tarball);
    assert.deepEqual(await birthTime(tarball), born);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
