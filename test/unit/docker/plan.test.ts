// The containers `piinit up --docker` runs: names, addresses, labels, volumes, and UI ports
// published on 127.0.0.1 only. Pure.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { plan, routeConflict } from '../../../src/docker/cluster.ts';
import { dockerizeCluster } from '../../../src/docker/dockerize.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';

test('one labelled container per node with its hostname, address and volume; UIs only on 127.0.0.1', () => {
  const c = dockerizeCluster(fixtureCluster(), '172.31.99.0/24');
  const images = new Map(['server', 'monitor', 'client'].map((r) => [r, `piinit/${c.name}-${r}:abc`]));
  const p = plan(c, images);
  assert.equal(p.network, `piinit-${c.name}`);
  assert.equal(p.nodes.length, c.nodes.length);
  for (const [i, n] of p.nodes.entries()) {
    const node = c.nodes[i]!;
    assert.equal(n.address, `172.31.99.${10 + i}`);
    assert.equal(n.container, `${c.name}-${node.name}`);
    const args = n.args.join(' ');
    assert.match(args, new RegExp(`--hostname ${node.name} --network ${p.network} --ip ${n.address} `));
    assert.match(args, new RegExp(`--label piinit\\.cluster=${c.name}`));
    assert.match(args, new RegExp(`-v ${n.volume}:/data `));
    assert.equal(n.args.at(-1), images.get(node.role));
    for (const [j, a] of n.args.entries()) if (a === '-p') assert.match(n.args[j + 1]!, /^127\.0\.0\.1::\d+$/);
  }
  const published = p.nodes.filter((n) => n.args.includes('-p')).map((n) => n.role).sort();
  assert.deepEqual(published, c.nodes.some((n) => n.role === 'monitor') ? ['monitor', 'server'] : ['server']);
});

test('a Docker subnet that overlaps a route of the host is found; other routes are not', () => {
  const routes = [
    { dst: 'default', dev: 'eth0' },
    { dst: '192.168.1.0/24', dev: 'eth0' },
    { dst: '172.31.0.0/16', dev: 'br-old' },
    { dst: '10.8.0.5', dev: 'tun0' },
  ];
  assert.deepEqual(routeConflict('172.31.250.0/24', routes), { dst: '172.31.0.0/16', dev: 'br-old' });
  assert.deepEqual(routeConflict('10.8.0.0/29', routes), { dst: '10.8.0.5', dev: 'tun0' });
  assert.equal(routeConflict('10.9.0.0/24', routes), null);
  assert.equal(routeConflict('192.168.2.0/24', routes), null);
  assert.throws(() => routeConflict('10.9.0.1/24', routes), /host bits/);
});
