import assert from 'node:assert/strict';
import { test } from 'node:test';
import { conffilesOf, controlFile, installedSizeKiB, md5sumsFile, validatePackage } from '../../../src/deb/control.ts';
import type { DebEntry, DebPackage } from '../../../src/deb/model.ts';
import { withParents } from '../../../src/deb/tar.ts';

const own = { mode: 0o644, owner: 'root', group: 'root' };
function pkg(files: [string, DebEntry][], extra: Partial<DebPackage> = {}): DebPackage {
  return {
    name: 'demo',
    version: '1.0-1',
    arch: 'amd64',
    maintainer: 'piinit <packages@piinit.dev>',
    description: 'a demo\nsecond line\n\nafter a blank line',
    files: new Map(files),
    ...extra,
  };
}

test('the control file lists the fields in order and folds the description', () => {
  const text = controlFile(pkg([], { depends: ['libc6', 'foo (>= 1)'], preDepends: ['bar'] }), 12);
  assert.equal(
    text,
    'Package: demo\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: piinit <packages@piinit.dev>\n' +
      'Installed-Size: 12\nPre-Depends: bar\nDepends: libc6, foo (>= 1)\n' +
      'Description: a demo\n second line\n .\n after a blank line\n',
  );
});

test('every regular file under /etc is a conffile by default, symlinks are not', () => {
  const p = pkg([
    ['/etc/a.conf', { content: 'x', ...own }],
    ['/etc/link', { symlink: '/etc/a.conf' }],
    ['/usr/bin/x', { content: 'y', ...own }],
  ]);
  assert.deepEqual(conffilesOf(p), ['/etc/a.conf']);
});

test('Installed-Size counts files rounded up to KiB and one KiB per directory or symlink', () => {
  const entries = withParents(
    new Map<string, DebEntry>([
      ['/usr/bin/x', { content: 'x', ...own }],
      ['/usr/share/l', { symlink: 'x' }],
    ]),
  );
  // dirs: / /usr /usr/bin /usr/share = 4, symlink 1, file 2049 bytes = 3
  assert.equal(installedSizeKiB(entries, new Map([['/usr/bin/x', 2049]])), 8);
});

test('md5sums leaves out conffiles and strips the leading slash', () => {
  const text = md5sumsFile(new Map([['/usr/bin/x', 'aa'], ['/etc/c', 'bb']]), new Set(['/etc/c']));
  assert.equal(text, 'aa  usr/bin/x\n');
});

test('invalid names, versions, owners and conffiles are refused', () => {
  assert.throws(() => validatePackage(pkg([], { name: 'Bad_Name' })), /package name/);
  assert.throws(() => validatePackage(pkg([], { version: 'v1' })), /version/);
  assert.throws(() => validatePackage(pkg([['/etc/x', { content: '', mode: 0o644, owner: 'Root!', group: 'root' }]])), /owner/);
  assert.throws(() => validatePackage(pkg([], { conffiles: ['/etc/missing'] })), /conffile/);
});

test('parent directories are added and paths sorted, bad paths refused', () => {
  const e = withParents(new Map<string, DebEntry>([['/b/c', { content: '', ...own }], ['/a', { content: '', ...own }]]));
  assert.deepEqual(
    e.map(([p]) => p),
    ['/', '/a', '/b', '/b/c'],
  );
  assert.throws(() => withParents(new Map([['relative', { content: '', ...own }]])), /absolute/);
  assert.throws(() => withParents(new Map([['/x/../y', { content: '', ...own }]])), /absolute/);
});
