// The pure parts of the Docker twin: the container adjustments and the dockerized cluster.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONTAINER_MASKED_UNITS, containerFstab, containerImageConfig, containerTree } from '../../../src/docker/container.ts';
import { DEFAULT_DOCKER_SUBNET, dockerizeCluster } from '../../../src/docker/dockerize.ts';
import { PERSISTENT_PATHS } from '../../../src/image/system.ts';
import { renderRole } from '../../../src/render/index.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';

test('the container fstab has only the /data bind mounts, no partitions', () => {
  const fstab = containerFstab();
  assert.doesNotMatch(fstab, /LABEL=/);
  for (const p of PERSISTENT_PATHS) assert.match(fstab, new RegExp(`^/data${p} ${p} none bind 0 0$`, 'm'));
});

test('networkd, resolved and the partition grower are masked; resolv.conf is a plain file for Docker', () => {
  const t = containerTree();
  for (const u of ['systemd-networkd.service', 'systemd-resolved.service', 'piinit-grow-data.service']) {
    assert.ok((CONTAINER_MASKED_UNITS as readonly string[]).includes(u));
    assert.deepEqual(t.get(`/etc/systemd/system/${u}`), { symlink: '/dev/null' });
  }
  const resolv = t.get('/etc/resolv.conf');
  assert.ok(resolv && 'content' in resolv);
});

test('the image config runs systemd and stops it with SIGRTMIN+3', () => {
  const c = containerImageConfig('piinit/x-server:abc', 1704067200, { 'piinit.cluster': 'x' });
  assert.deepEqual(c.cmd, ['/sbin/init']);
  assert.deepEqual(c.env, ['container=docker']);
  assert.equal(c.stopSignal, 'SIGRTMIN+3');
});

test('dockerize: node addresses and the CIDR move into the Docker subnet, so the bind templates match', () => {
  const cluster = fixtureCluster();
  const d = dockerizeCluster(cluster);
  assert.equal(d.network.cidr, DEFAULT_DOCKER_SUBNET);
  assert.deepEqual(
    d.nodes.map((n) => n.address),
    cluster.nodes.map((_, i) => `172.31.250.${10 + i}`),
  );
  const server = renderRole(d, 'server');
  const text = [...server.values()].map((e) => ('content' in e ? Buffer.from(e.content).toString() : '')).join('\n');
  assert.match(text, /172\.31\.250\.0\/24/);
  assert.doesNotMatch(text, /192\.168\.50\./);
});
