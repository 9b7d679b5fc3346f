// What the machine refuses (a read-only directory, a full disk) is the user's to fix, not a
// bug: the CLI names the path and the reason, without a stack trace.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { environmentError, UserError } from '../../../src/errors.ts';

test('system errors a user can act on become UserErrors naming path and reason; others stay bugs', () => {
  const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write', path: '/out/x.img.xz.tmp' });
  const e = environmentError(full);
  assert.ok(e instanceof UserError);
  assert.equal(e.message, '/out/x.img.xz.tmp: no space left on the device (ENOSPC in write)');
  assert.equal(environmentError(Object.assign(new Error('x'), { code: 'EACCES' }))?.message, 'permission denied (EACCES)');
  assert.equal(environmentError(Object.assign(new Error('x'), { code: 'ENOENT', path: '/a' })), null, 'a missing file is for the caller to explain');
  assert.equal(environmentError(new TypeError('undefined is not a function')), null);
  assert.equal(environmentError('EROFS'), null);
});

test('piinit init --secrets-only in a read-only directory: the path and "read-only file system", exit 1, no stack', async () => {
  assert.equal(process.getuid?.(), 0, 'mounts a read-only bind (CI runs as root)');
  const dir = await mkdtemp(join(tmpdir(), 'piinit-ro-'));
  await copyFile('examples/demo/cluster.yaml', join(dir, 'cluster.yaml'));
  execFileSync('mount', ['--bind', '-o', 'ro', dir, dir]);
  try {
    const r = spawnSync(process.execPath, ['bin/piinit.js', 'init', dir, '--secrets-only'], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^piinit: ${dir}/\\S+: read-only file system \\(EROFS in open\\)\\n$`));
    assert.deepEqual(await readdir(dir), ['cluster.yaml']);
  } finally {
    execFileSync('umount', [dir]);
    await rm(dir, { recursive: true, force: true });
  }
});

/** The demo cluster with its secrets in a temp dir, and an empty regular file `name` beside
 *  it where a command will want a directory. */
async function demoWithFileAt(t: TestContext, name: string): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-notdir-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, name);
  await writeFile(file, '');
  await copyFile('examples/demo/cluster.yaml', join(dir, 'cluster.yaml'));
  execFileSync(process.execPath, ['bin/piinit.js', 'init', dir, '--secrets-only']);
  return { dir, file };
}

test('piinit fetch --cache naming a file: the path and "not a directory", exit 1, no stack', async (t) => {
  const { dir, file } = await demoWithFileAt(t, 'cache');
  const r = spawnSync(process.execPath, ['bin/piinit.js', 'fetch', join(dir, 'cluster.yaml'), '--offline', '--cache', file], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^piinit: ${file}/tmp: a part of the path is a file, not a directory \\(ENOTDIR in mkdir\\)\\n$`));
});

test('piinit image --out naming a file: said at once (before any base build), exit 1, no stack', async (t) => {
  const { dir, file } = await demoWithFileAt(t, 'out');
  const cache = join(dir, 'cache');
  const r = spawnSync(process.execPath, ['bin/piinit.js', 'image', join(dir, 'cluster.yaml'), '--out', file, '--cache', cache], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^piinit: ${file}: a file is there, not a directory \\(EEXIST in mkdir\\)\\n$`));
  assert.equal(existsSync(cache), false, 'no build was started');
});
