// Our .deb writer against `dpkg-deb --build` on the same package trees with the same
// compression (xz -6): every package piinit builds for one arch (amd64), from the host's
// real Consul/Prometheus/node_exporter binaries. dpkg-deb gets its trees already on disk
// (with DEBIAN/control, md5sums, conffiles, scripts); only the archive building is timed.
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { preparePackages } from '../src/deb/build.ts';
import { conffilesOf, controlFile, md5sumsFile } from '../src/deb/control.ts';
import { type DebPackage, isContentEntry, isDirectoryEntry, isSourceEntry, isSymlinkEntry } from '../src/deb/model.ts';
import { buildTar, withParents } from '../src/deb/tar.ts';
import { writeDeb } from '../src/deb/writer.ts';
import { fixtureCluster } from '../test/helpers/cluster-fixture.ts';
import { seedHostAmd64 } from '../test/integration/deb/seed-cache.ts';

const exec = promisify(execFile);
const EPOCH = 1764000000;

/** The package as a directory tree for dpkg-deb (control files computed by our code). */
async function materialize(p: DebPackage, root: string): Promise<void> {
  for (const [path, e] of withParents(p.files)) {
    const abs = join(root, path);
    if (isDirectoryEntry(e)) await mkdir(abs, { recursive: true, mode: e.mode });
    else if (isSymlinkEntry(e)) {
      await mkdir(dirname(abs), { recursive: true });
      await symlink(e.symlink, abs);
    } else {
      await mkdir(dirname(abs), { recursive: true });
      if (isContentEntry(e)) await writeFile(abs, e.content);
      else if (isSourceEntry(e)) await copyFile(e.source, abs);
      await chmod(abs, e.mode);
    }
  }
  // md5sums/Installed-Size as our writer computes them (an uncompressed tar pass).
  const data = await buildTar(withParents(p.files), { kind: 'none' }, new Date(EPOCH * 1000));
  const conffiles = conffilesOf(p);
  const ctl = join(root, 'DEBIAN');
  await mkdir(ctl, { recursive: true });
  let kib = 0;
  for (const [path, e] of withParents(p.files)) kib += isContentEntry(e) || isSourceEntry(e) ? Math.ceil((data.sizes.get(path) ?? 0) / 1024) : 1;
  await writeFile(join(ctl, 'control'), controlFile(p, kib));
  await writeFile(join(ctl, 'md5sums'), md5sumsFile(data.md5, new Set(conffiles)));
  if (conffiles.length) await writeFile(join(ctl, 'conffiles'), conffiles.map((c) => `${c}\n`).join(''));
  for (const [name, body] of Object.entries(p.maintainerScripts ?? {})) {
    await writeFile(join(ctl, name), body ?? '', { mode: 0o755 });
  }
}

export default async function (): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'piinit-bench-deb-'));
  try {
    const cluster = fixtureCluster();
    cluster.nodes.push({ ...cluster.nodes[4]!, name: 'worker2', board: 'amd64', arch: 'amd64' });
    await seedHostAmd64(join(work, 'cache'), cluster.components);
    const { set } = await preparePackages({ cluster, arches: ['amd64'], cacheDir: join(work, 'cache'), epoch: EPOCH });
    const pkgs = [...set.config, ...set.binary];
    for (const [i, p] of pkgs.entries()) await materialize(p, join(work, 'trees', String(i)));
    await mkdir(join(work, 'ours'));
    await mkdir(join(work, 'dpkg'));

    const t0 = performance.now();
    for (const p of pkgs) await writeDeb(p, join(work, 'ours'), { mtime: EPOCH, compression: { kind: 'xz', level: 6 } });
    const ours = performance.now() - t0;

    const t1 = performance.now();
    for (const [i, p] of pkgs.entries()) {
      await exec(
        'dpkg-deb',
        ['--root-owner-group', '-Zxz', '-z6', '--build', join(work, 'trees', String(i)), join(work, 'dpkg', `${p.name}_${p.arch}.deb`)],
        { env: { ...process.env, SOURCE_DATE_EPOCH: String(EPOCH) } },
      );
    }
    const dpkg = performance.now() - t1;

    console.log(`packages: ${pkgs.length} for amd64 (${set.binary.length} binary, ${set.config.length} config), xz -6`);
    console.log(`piinit writer:     ${(ours / 1000).toFixed(2)} s`);
    console.log(`dpkg-deb --build:  ${(dpkg / 1000).toFixed(2)} s`);
    console.log(`ratio dpkg-deb / piinit: ${(dpkg / ours).toFixed(2)} (above 1: ours is faster)`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
