// The example clusters validate cleanly (with a secrets file the test generates).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCluster } from '../../../src/cluster/load.ts';
import { generateSecrets, writeSecretsFile } from '../../../src/cluster/secrets.ts';
import { wpaPsk } from '../../../src/cluster/wifi.ts';

async function withSecrets<T>(extra: object, f: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-examples-'));
  try {
    const path = join(dir, 'secrets.yaml');
    await writeSecretsFile(path, { ...generateSecrets(), ...extra });
    return await f(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('examples/demo: 3 pi4 servers, a pi4 monitor, an amd64 client; Debian-sourced consul and prometheus', async () => {
  await withSecrets({}, async (secretsPath) => {
    const { cluster, warnings } = await loadCluster('examples/demo/cluster.yaml', { secretsPath });
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      cluster.nodes.map((n) => `${n.name} ${n.role} ${n.board} ${n.arch} ${n.address ?? 'dhcp'}`),
      [
        'core1 server pi4 arm64 192.168.50.11',
        'core2 server pi4 arm64 192.168.50.12',
        'core3 server pi4 arm64 192.168.50.13',
        'monitor monitor pi4 arm64 192.168.50.20',
        'worker1 client amd64 amd64 dhcp',
      ],
    );
    assert.deepEqual(cluster.components, {
      consul: { name: 'consul', version: '1.8.7', source: 'debian', suite: 'bullseye', package: 'consul' },
      nomad: { name: 'nomad', version: '1.6.5', source: 'hashicorp' },
      prometheus: { name: 'prometheus', version: '2.24.1', source: 'debian', suite: 'bullseye', package: 'prometheus' },
      node_exporter: {
        name: 'node_exporter',
        version: '1.5.0',
        source: 'debian',
        suite: 'bookworm',
        package: 'prometheus-node-exporter',
      },
    });
    assert.equal(cluster.consul.raftMultiplier, 3);
    assert.deepEqual(cluster.security, { tls: true, acl: true });
  });
});

test('examples/homelab: every feature, upstream sources, static addressing and Wi-Fi', async () => {
  await withSecrets({ wifiPassphrase: 'correct horse battery' }, async (secretsPath) => {
    const { cluster, warnings } = await loadCluster('examples/homelab/cluster.yaml', { secretsPath });
    assert.deepEqual(warnings, []);
    assert.equal(cluster.network.addressing, 'static');
    assert.deepEqual([...new Set(cluster.nodes.map((n) => n.board))].sort(), ['amd64', 'pi-zero', 'pi2', 'pi4']);
    assert.deepEqual([...new Set(cluster.nodes.map((n) => n.arch))].sort(), ['amd64', 'arm64', 'armel', 'armhf']);
    assert.ok(cluster.nodes.every((n) => n.address !== null));
    assert.deepEqual(
      Object.values(cluster.components).map((c) => c.source),
      ['hashicorp', 'hashicorp', 'github', 'github'],
    );
    assert.deepEqual(cluster.wifi, { ssid: 'Home Lab 2.4', country: 'DE', psk: wpaPsk('Home Lab 2.4', 'correct horse battery') });
    assert.equal(cluster.ssh.authorizedKeys.length, 1);
    assert.equal(cluster.domain, 'home.arpa');
  });
});
