// base.ts nativeDebHook: the host's dpkg-deb, copied with its loader and libraries into a
// new root, runs there by the command its wrapper execs, in a root that has none of the
// host's libraries (as an emulated root has none), and gives dpkg what the host's own
// dpkg-deb gives; apt's PATH for dpkg finds the wrapper first; the build's clean-up takes
// all of it out again.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BUILD_PATH_HEAD, NATIVE_CLEANUP, nativeDebHook } from '../../../src/image/base.ts';

const BIG = { maxBuffer: 1 << 26 };

test("the host's dpkg-deb runs inside a root without the host's libraries and unpacks as on the host", async () => {
  const work = await mkdtemp(join(tmpdir(), 'piinit-native-deb-'));
  try {
    const root = join(work, 'root');
    await mkdir(join(root, 'etc/apt/apt.conf.d'), { recursive: true });
    await writeFile(join(work, 'hook.sh'), nativeDebHook());
    execFileSync('sh', [join(work, 'hook.sh'), root]);

    const wrapper = await readFile(join(root, BUILD_PATH_HEAD, 'dpkg-deb'), 'utf8');
    const exec = /^#!\/bin\/sh\nexec (\S+( \S+)*) "\$@"\n$/.exec(wrapper);
    assert.ok(exec, wrapper);
    const argv = exec[1]!.split(' ');
    assert.equal(await readFile(join(root, 'etc/apt/apt.conf.d/00piinit-dpkg-path'), 'utf8'), `DPkg::Path "${BUILD_PATH_HEAD}:/usr/sbin:/usr/bin:/sbin:/bin";\n`);
    assert.deepEqual((await readdir(root)).sort(), ['etc', 'tmp', 'usr'], 'no /lib, /usr/lib: nothing of the host to load from');

    const pkg = join(work, 'pkg');
    await mkdir(join(pkg, 'DEBIAN'), { recursive: true });
    await mkdir(join(pkg, 'usr/share/piinit-test'), { recursive: true });
    await writeFile(join(pkg, 'DEBIAN/control'), 'Package: piinit-native-test\nVersion: 1\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: t\n');
    await writeFile(join(pkg, 'usr/share/piinit-test/data'), randomBytes(2 << 20));
    execFileSync('dpkg-deb', ['-Zxz', '--root-owner-group', '--build', pkg, join(root, 'p.deb')], BIG);

    const inRoot = execFileSync('chroot', [root, ...argv, '--fsys-tarfile', '/p.deb'], BIG);
    const onHost = execFileSync('dpkg-deb', ['--fsys-tarfile', join(root, 'p.deb')], BIG);
    assert.ok(inRoot.length > 2 << 20, `${inRoot.length} bytes`);
    assert.ok(inRoot.equals(onHost), 'the same tar stream');

    await rm(join(root, 'p.deb'));
    execFileSync('sh', ['-c', NATIVE_CLEANUP, 'sh', root]);
    assert.equal(execFileSync('find', [root, '-mindepth', '1', '!', '-type', 'd'], { encoding: 'utf8' }), '', 'the clean-up left files');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});
