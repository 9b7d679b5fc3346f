// The device nodes a rootless build cannot make: what debugfs writes into an ext4 file
// system is what mke2fs -d copies from real nodes, and the listing a rootless build hashes
// for them is what the tree walk gives for real nodes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { extractBase } from '../../../src/image/baseroot.ts';
import { addDevNodes, DEV_NODES, devNodeListing } from '../../../src/image/devnodes.ts';
import { treeListing } from '../../../src/image/treehash.ts';

const EPOCH = 1704067200;
const sh = (cmd: string, args: string[], env: Record<string, string> = {}) => execFileSync(cmd, args, { stdio: 'pipe', env: { ...process.env, ...env } }).toString();

test('debugfs-made device nodes equal mke2fs -d copies of real ones; their listing equals the tree walk', async () => {
  assert.equal(process.getuid?.(), 0, 'mknod needs root (CI runs as root)');
  const work = await mkdtemp(join(tmpdir(), 'piinit-devnodes-'));
  try {
    const real = join(work, 'real');
    const empty = join(work, 'empty');
    await mkdir(join(real, 'dev'), { recursive: true });
    await mkdir(join(empty, 'dev'), { recursive: true });
    for (const d of DEV_NODES) {
      sh('mknod', ['-m', '0666', join(real, 'dev', d.name), 'c', String(d.major), String(d.minor)]);
      await utimes(join(real, 'dev', d.name), EPOCH, EPOCH);
    }
    for (const root of [real, empty]) {
      await utimes(join(root, 'dev'), EPOCH, EPOCH);
      await utimes(root, EPOCH, EPOCH);
    }
    assert.deepEqual(devNodeListing(EPOCH), (await treeListing(real)).filter((l) => /^\/dev\/\w+ c /.test(l)));

    const OFFSET = 1024 * 1024;
    const fs = async (name: string, dir: string) => {
      const img = join(work, name);
      await writeFile(img, '');
      await truncate(img, 32 * 1024 * 1024);
      sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-E', `offset=${OFFSET},root_owner=0:0`, '-d', dir, img, '16M'], { E2FSPROGS_FAKE_TIME: String(EPOCH) });
      return img;
    };
    const fromReal = await fs('real.img', real);
    const fromEmpty = await fs('empty.img', empty);
    await addDevNodes(fromEmpty, OFFSET, EPOCH);
    // Type, mode, owner, mtime, device number (atime and ctime: mke2fs -d copies them from the tree).
    const stats = (img: string) =>
      [...DEV_NODES.map((d) => `/dev/${d.name}`), '/dev'].map((p) =>
        sh('debugfs', ['-R', `stat ${p}`, `${img}?offset=${OFFSET}`])
          .split('\n')
          .filter((l) => /^(Inode:|User:|Device major| mtime:)/.test(l))
          .map((l) => l.replace(/^Inode: \d+\s+/, '').replace(/Flags: .*/, '').replace(/Size: \d+/, ''))
          .join('\n'),
      );
    const made = stats(fromEmpty);
    assert.deepEqual(made, stats(fromReal));
    assert.match(made[0]!, /Type: character special\s+Mode:\s+0666[\s\S]*User:\s+0\s+Group:\s+0[\s\S]*mtime: 0x65920080[\s\S]*Device major\/minor number: 05:01/);
    sh('e2fsck', ['-fn', `${fromEmpty}?offset=${OFFSET}`]);

    // debugfs reports failed commands but exits 0: a name it could not make is caught.
    sh('debugfs', ['-w', '-R', 'rm /dev/null', `${fromEmpty}?offset=${OFFSET}`]);
    sh('debugfs', ['-w', '-R', 'write /etc/hostname /dev/null', `${fromEmpty}?offset=${OFFSET}`]);
    await assert.rejects(addDevNodes(fromEmpty, OFFSET, EPOCH), /debugfs did not make \/dev\/null \(01:03, 0666, root\)/);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test('a base unpacked without device nodes keeps the rest of /dev', async () => {
  assert.equal(process.getuid?.(), 0, 'mknod needs root (CI runs as root)');
  const work = await mkdtemp(join(tmpdir(), 'piinit-devnodes-'));
  try {
    const src = join(work, 'src');
    await mkdir(join(src, 'dev', 'pts'), { recursive: true });
    for (const d of DEV_NODES) sh('mknod', ['-m', '0666', join(src, 'dev', d.name), 'c', String(d.major), String(d.minor)]);
    await symlink('/proc/self/fd', join(src, 'dev', 'fd'));
    await mkdir(join(src, 'etc'));
    await writeFile(join(src, 'etc', 'hostname'), 'x\n');
    const tarball = join(work, 'base.tar');
    sh('tar', ['--numeric-owner', '-cf', tarball, '-C', src, '.']);
    const out = join(work, 'out');
    await extractBase(tarball, out, { devNodes: false });
    assert.deepEqual((await readdir(join(out, 'dev'))).sort(), ['fd', 'pts']);
    assert.equal(await readFile(join(out, 'etc', 'hostname'), 'utf8'), 'x\n');
    const all = join(work, 'all');
    await extractBase(tarball, all);
    assert.deepEqual((await readdir(join(all, 'dev'))).sort(), [...DEV_NODES.map((d) => d.name), 'fd', 'pts'].sort());
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});
