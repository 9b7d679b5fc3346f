// `systemd-analyze verify` on every unit of every role's image, in a root where the
// ExecStart binaries exist (stand-ins) and the host's targets give the dependencies.
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROLES } from '../../../src/cluster/boards.ts';
import { isSymlink } from '../../../src/render/filetree.ts';
import { renderRole } from '../../../src/render/index.ts';
import { writeTree } from '../../../src/render/write.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';
import { run, tempDir } from './tools.ts';

async function prepareRoot(root: string): Promise<void> {
  const units = join(root, 'usr/lib/systemd/system');
  await mkdir(units, { recursive: true });
  for (const f of await readdir('/usr/lib/systemd/system')) {
    if (!/\.(target|slice|socket)$/.test(f) || existsSync(join(units, f))) continue;
    await copyFile(join('/usr/lib/systemd/system', f), join(units, f)).catch(() => undefined);
  }
  for (const dir of ['usr/bin', 'bin', 'usr/sbin']) await mkdir(join(root, dir), { recursive: true });
  for (const b of ['usr/bin/consul', 'usr/bin/nomad', 'usr/bin/prometheus', 'usr/bin/node_exporter', 'bin/kill', 'usr/sbin/wpa_supplicant']) {
    await writeFile(join(root, b), '#!/bin/sh\n');
    await chmod(join(root, b), 0o755);
  }
}

const pair = { cert: '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n', key: 'k' };
const uuid = (i: number) => `4a3e0d6c-6f1f-4a2b-9a8e-0b5c2c6d7e0${i}`;

for (const [role, secure] of ROLES.flatMap((r) => [[r, false], [r, true]] as const)) {
  test(`systemd-analyze verify: every unit of the ${role} image${secure ? ' with TLS and ACLs' : ''}`, async (t) => {
    const root = await tempDir(t);
    const c = fixtureCluster({
      ssh: { authorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1 admin@test'] },
      security: { tls: secure, acl: secure },
      wifi: secure ? { ssid: 'home', country: 'DE', psk: 'ab'.repeat(32) } : null,
    });
    c.network.addressing = secure ? 'dhcp' : 'static';
    if (secure) {
      c.secrets.tls = { ca: pair, consulServer: pair, nomadServer: pair, nomadClient: pair };
      c.secrets.tokens = { consulBootstrap: uuid(1), consulAgent: uuid(2), consulPrometheus: uuid(3), consulDns: uuid(4), nomadBootstrap: uuid(5) };
    }
    const tree = renderRole(c, role);
    await writeTree(tree, root);
    await prepareRoot(root);
    const units = [...tree].filter(([p, e]) => !isSymlink(e) && /^\/usr\/lib\/systemd\/system\/[^/]+\.service$/.test(p)).map(([p]) => p);
    assert.ok(units.length >= 3, `${role}: ${units.join(' ')}`);
    const r = run('systemd-analyze', ['verify', '--man=no', `--root=${root}`, ...units], { cwd: root });
    assert.equal(r.status, 0, r.out);
    assert.equal(r.out.trim(), '', `${role}: warnings:\n${r.out}`);
  });
}
