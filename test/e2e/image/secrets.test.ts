// The finished disk image leaks no secret: a TLS + ACL cluster's real server packages
// (Consul 1.8.7, Prometheus 2.24.1 and node_exporter are this host's binaries seeded into a
// release cache; /usr/bin/true stands in for Nomad, which has no reachable release here)
// built into the amd64 server image the way `piinit image` builds it; then the image's root
// and data file systems are copied out with owners and modes (debugfs rdump, no mounts) and
// scanned: no secret of the cluster may be readable by another user.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadCluster } from '../../../src/cluster/load.ts';
import { ensureSecretsFile } from '../../../src/cluster/secrets.ts';
import { buildImage } from '../../../src/image/build.ts';
import { externalDepends, roleDebs } from '../../../src/image/debs.ts';
import { optionalPackages } from '../../../src/image/system.ts';
import { bootCmdlineExtras } from '../../../src/render/index.ts';
import { formatFindings, scanDirectory } from '../../../src/security/scan.ts';
import { testCacheDir } from '../../helpers/debian-root.ts';
import { buildHostAmd64Debs, HOST_COMPONENTS_YAML } from '../../integration/deb/seed-cache.ts';

const CLUSTER_YAML = `name: scantest
datacenter: scantest
domain: consul
network:
  cidr: 10.232.0.0/24
  gateway: 10.232.0.1
  dns: [10.232.0.1]
  addressing: dhcp
nodes:
  - { name: core1, role: server, board: amd64, mac: "52:54:00:e8:00:11", address: 10.232.0.11 }
  - { name: core2, role: server, board: amd64, mac: "52:54:00:e8:00:12", address: 10.232.0.12 }
  - { name: core3, role: server, board: amd64, mac: "52:54:00:e8:00:13", address: 10.232.0.13 }
  - { name: monitor, role: monitor, board: amd64, mac: "52:54:00:e8:00:20", address: 10.232.0.20 }
${HOST_COMPONENTS_YAML}
ssh:
  authorized_keys: []
security:
  tls: true
  acl: true
`;

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'piinit-imgscan-'));
});
after(() => rm(work, { recursive: true, force: true }));

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe' }).toString();

test('no secret is readable by other users in the finished server image', { timeout: 60 * 60_000 }, async () => {
  const clusterPath = join(work, 'cluster.yaml');
  await writeFile(clusterPath, CLUSTER_YAML);
  await ensureSecretsFile(clusterPath);
  const { cluster } = await loadCluster(clusterPath);
  assert.ok(cluster.secrets.tls && cluster.secrets.tokens.consulBootstrap, 'secrets with the cluster CA and the ACL tokens');

  const debDir = join(work, 'debs');
  await buildHostAmd64Debs(cluster, { releases: join(work, 'releases'), out: debDir });
  const debs = await roleDebs(debDir, cluster.name, 'server', 'amd64');
  const cache = process.env.PIINIT_IMAGE_TEST_CACHE ?? join(testCacheDir(), 'images');
  await mkdir(cache, { recursive: true });
  const image = await buildImage(
    {
      cluster: cluster.name,
      board: 'amd64',
      role: 'server',
      debs,
      cmdlineExtras: bootCmdlineExtras(cluster, 'server'),
      extraPackages: [...optionalPackages({ ssh: false, wifi: false, raspi: false }), ...(await externalDepends(debs))],
    },
    { cacheDir: cache, outDir: join(work, 'images'), xz: false },
  );

  const pt = JSON.parse(sh('sfdisk', ['--json', image.files.raw])) as { partitiontable: { partitions: Array<{ start: number; size: number }> } };
  // The root file system, with the data partition's contents where they are mounted.
  const tree = join(work, 'tree');
  for (const [index, under] of [[1, ''], [2, 'data']] as const) {
    const p = pt.partitiontable.partitions[index]!;
    const part = join(work, `part${index}.ext4`);
    sh('dd', [`if=${image.files.raw}`, `of=${part}`, 'bs=512', `skip=${p.start}`, `count=${p.size}`, 'conv=sparse', 'status=none']);
    await mkdir(join(tree, under), { recursive: true });
    // rdump keeps owners and modes.
    sh('debugfs', ['-R', `rdump / ${join(tree, under)}`, part]);
    await rm(part);
  }
  const findings = await scanDirectory(tree, cluster.secrets, { accounts: 'tree', where: 'server image' });
  assert.equal(formatFindings(findings), '', formatFindings(findings));
  // The scan looked where the secrets are: the gossip key, the TLS key and the ACL env file.
  const found = sh('find', [join(tree, 'etc'), '-name', 'encrypt.json', '-o', '-name', 'server-key.pem', '-o', '-name', '*acl*.env']);
  assert.match(found, /encrypt\.json/);
  assert.match(found, /\.pem/);
  assert.match(found, /acl.*\.env/);
  // Nor does the image carry the build's package downloads or apt's caches (262 MB on arm64 once).
  assert.equal(sh('find', [join(tree, 'var/cache/apt'), '-name', '*.deb', '-o', '-name', '*.bin']), '');
  // Nor manual pages or translations (about 50 MB); the copyright files stay, the config
  // layer's packages' too, and dpkg keeps the rule for packages installed later.
  assert.equal(sh('find', [join(tree, 'usr/share/man'), join(tree, 'usr/share/locale'), '-type', 'f', '!', '-name', 'locale.alias']), '');
  assert.equal(sh('find', [join(tree, 'usr/share/doc'), '-mindepth', '2', '-type', 'f', '!', '-name', 'copyright', '!', '-name', 'changelog.Debian.*']), '');
  assert.ok(existsSync(join(tree, 'usr/share/doc/systemd/copyright')));
  for (const deb of debs) assert.ok(existsSync(join(tree, 'usr/share/doc', basename(deb).split('_')[0]!, 'copyright')), deb);
  assert.match(readFileSync(join(tree, 'etc/dpkg/dpkg.cfg.d/piinit-nodoc'), 'utf8'), /^path-exclude=\/usr\/share\/man\/\*$/m);
});
