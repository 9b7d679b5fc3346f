// The leak scan over every generated artefact of a cluster with TLS and ACLs on: the file
// trees of every role's image, every node's local tree as written to disk, and .deb files.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROLES } from '../../../src/cluster/boards.ts';
import { generateSecrets } from '../../../src/cluster/secrets.ts';
import type { Cluster } from '../../../src/cluster/types.ts';
import { makeContext } from '../../../src/render/context.ts';
import { mergeTrees } from '../../../src/render/filetree.ts';
import { renderNode, renderRole } from '../../../src/render/index.ts';
import { writeTree } from '../../../src/render/write.ts';
import { renderAclBootstrap } from '../../../src/security/acl.ts';
import { formatFindings, scanDeb, scanDirectory, scanFileTree } from '../../../src/security/scan.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';

function secureCluster(): Cluster {
  const c = fixtureCluster({ security: { tls: true, acl: true } });
  c.secrets = generateSecrets(c);
  c.secrets.wifiPassphrase = 'correct horse battery staple';
  return c;
}

test('no image file tree of any role exposes a secret', () => {
  const c = secureCluster();
  for (const role of ROLES) {
    const tree = mergeTrees(renderRole(c, role), renderAclBootstrap(makeContext(c, role, 'image', null)));
    const findings = scanFileTree(tree, c.secrets, `${role} image`);
    assert.equal(formatFindings(findings), '', `${role}: ${formatFindings(findings)}`);
  }
});

test('no node of the local cluster exposes a secret, in its tree or written to disk', async (t) => {
  const c = secureCluster();
  const dir = await mkdtemp(join(tmpdir(), 'piinit-scan-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const [i, n] of c.nodes.entries()) {
    const node = { ...n, address: `127.0.99.${i + 1}` };
    const root = join(dir, n.name);
    const tree = mergeTrees(renderNode(c, node, { target: 'local', root }), renderAclBootstrap(makeContext(c, node.role, 'local', node, root)));
    assert.equal(formatFindings(scanFileTree(tree, c.secrets, n.name)), '');
    await writeTree(tree, '/');
  }
  // Written by this (root) process: owners are root; modes come from the tree.
  const findings = await scanDirectory(dir, c.secrets);
  assert.equal(formatFindings(findings), '');
  // And the scan does see a leak when there is one.
  await writeFile(join(dir, 'core1', 'leak.txt'), c.secrets.consulGossipKey, { mode: 0o644 });
  await chmod(join(dir, 'core1', 'leak.txt'), 0o644);
  assert.deepEqual((await scanDirectory(dir, c.secrets)).map((f) => [f.path, f.secret]), [['/core1/leak.txt', 'consulGossipKey']]);
});

test('scanDeb reads owners and modes from the package and finds a world-readable secret', async (t) => {
  const c = secureCluster();
  const dir = await mkdtemp(join(tmpdir(), 'piinit-scan-deb-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pkg = join(dir, 'pkg');
  await mkdir(join(pkg, 'DEBIAN'), { recursive: true });
  await mkdir(join(pkg, 'etc/consul.d'), { recursive: true });
  await writeFile(join(pkg, 'DEBIAN/control'), 'Package: leaktest\nVersion: 1\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: t\n');
  await writeFile(join(pkg, 'etc/consul.d/encrypt.json'), `{"encrypt":"${c.secrets.consulGossipKey}"}`);
  await chmod(join(pkg, 'etc/consul.d/encrypt.json'), 0o600);
  await writeFile(join(pkg, 'etc/consul.d/acl.json'), `{"acl":{"tokens":{"agent":"${c.secrets.tokens.consulAgent}"}}}`);
  await chmod(join(pkg, 'etc/consul.d/acl.json'), 0o644);
  const deb = join(dir, 'leaktest.deb');
  execFileSync('dpkg-deb', ['--root-owner-group', '--build', pkg, deb], { stdio: 'pipe' });
  const findings = await scanDeb(deb, c.secrets);
  assert.deepEqual(findings.map((f) => [f.path, f.secret, f.owner, f.mode]), [['/etc/consul.d/acl.json', 'tokens.consulAgent', 'root', 0o644]]);
});
