// The leak scan over what users actually handle: the .deb packages `piinit packages` builds
// (owners and modes as dpkg will install them), a Debian root with them installed, and
// `piinit render`'s terminal output and written files, for a cluster with TLS and ACLs on.
import assert from 'node:assert/strict';
import { Command } from '@commander-js/extra-typings';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { init } from '../../../src/cli/init.ts';
import { register as registerRender } from '../../../src/cli/render.ts';
import { loadCluster } from '../../../src/cluster/load.ts';
import { generateSecrets } from '../../../src/cluster/secrets.ts';
import type { BuildResult } from '../../../src/deb/build.ts';
import { debianRoot } from '../../helpers/debian-root.ts';
import { installInto, ROOT_INCLUDE, roleDebs } from '../deb/tools.ts';
import { formatFindings, scanDeb, scanDirectory, scanText } from '../../../src/security/scan.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';
import { buildHostAmd64Debs } from '../deb/seed-cache.ts';

const cluster = fixtureCluster({ security: { tls: true, acl: true } });
cluster.nodes = cluster.nodes.map((n) => ({ ...n, board: 'amd64', arch: 'amd64' }));
cluster.secrets = generateSecrets(cluster);
let dir: string;
let built: BuildResult;
after(() => rm(dir, { recursive: true, force: true }));

test('no .deb of any role exposes a secret to other users', { timeout: 300_000 }, async () => {
  dir = await mkdtemp(join(tmpdir(), 'piinit-scan-debs-'));
  built = await buildHostAmd64Debs(cluster, { releases: join(dir, 'cache'), out: join(dir, 'out') }, 1764000000);
  assert.ok(built.packages.length > 0);
  const seen: string[] = [];
  for (const p of built.packages) {
    const findings = await scanDeb(p.path, cluster.secrets, { seen });
    assert.equal(formatFindings(findings), '', p.file);
  }
  // The scan met the secrets it looks for: gossip keys, tokens, TLS keys, the ACL bootstrap env.
  for (const f of ['/etc/consul.d/encrypt.json', '/etc/consul.d/acl.json', '/etc/consul.d/tls/server-key.pem', '/etc/piinit/consul-acl-bootstrap.env']) {
    assert.ok(seen.includes(f), `${f} was scanned (seen: ${[...new Set(seen)].join(' ')})`);
  }
});

test('a Debian root with the server and monitor packages installed (what an image carries) exposes no secret', { timeout: 600_000 }, async (t) => {
  assert.ok(built, 'the packages were built');
  for (const role of ['server', 'monitor'] as const) {
    const root = await debianRoot(t, { arch: 'amd64', include: ROOT_INCLUDE });
    await installInto(root, roleDebs(built, role, 'amd64'));
    const seen: string[] = [];
    // Owners resolved through the root's own passwd/group: the daemon users dpkg created.
    const findings = await scanDirectory(root, cluster.secrets, { accounts: 'tree', seen, where: `${role} root` });
    assert.equal(formatFindings(findings), '', role);
    assert.ok(seen.includes('/etc/consul.d/encrypt.json'), `${role}: the scan met the Consul gossip key`);
  }
});

test('piinit render prints no secret and writes secret files for their daemon only', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-scan-render-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  let output = '';
  const write = process.stdout.write;
  const ewrite = process.stderr.write;
  const capture = ((chunk: string | Uint8Array) => ((output += String(chunk)), true)) as typeof process.stdout.write;
  process.stdout.write = capture;
  process.stderr.write = capture;
  try {
    await init(dir, { force: false, clients: 1, secretsOnly: false });
    for (const args of [[], ['--json'], ['--node', 'core1'], ['--out', join(dir, 'out')]]) {
      const program = new Command().exitOverride();
      registerRender(program);
      await program.parseAsync(['node', 'piinit', 'render', join(dir, 'cluster.yaml'), ...args]);
    }
  } finally {
    process.stdout.write = write;
    process.stderr.write = ewrite;
  }
  const { cluster } = await loadCluster(join(dir, 'cluster.yaml'));
  assert.match(output, /core1/);
  assert.equal(formatFindings(scanText(output, cluster.secrets, 'piinit render output')), '');
  const seen: string[] = [];
  assert.equal(formatFindings(await scanDirectory(join(dir, 'out'), cluster.secrets, { seen })), '');
  assert.ok(seen.some((p) => p.endsWith('/etc/consul.d/encrypt.json')));
});
