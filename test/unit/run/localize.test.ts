import assert from 'node:assert/strict';
import { test } from 'node:test';
import { localizeCluster } from '../../../src/run/localize.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';

test('localizeCluster gives every node its own address in the local range', () => {
  const c = fixtureCluster();
  c.nodes[4]!.address = null; // a DHCP client with no reserved address still gets one locally
  const l = localizeCluster(c, '127.0.100.0/24');
  assert.deepEqual(
    l.nodes.map((n) => n.address),
    ['127.0.100.10', '127.0.100.11', '127.0.100.12', '127.0.100.13', '127.0.100.14'],
  );
  assert.equal(l.network.cidr, '127.0.100.0/24');
  assert.equal(l.network.prefixLength, 24);
  assert.equal(l.network.addressing, 'static');
  // the input is not modified
  assert.equal(c.nodes[0]!.address, '192.168.50.11');
  assert.deepEqual(l.nodes.map((n) => n.name), c.nodes.map((n) => n.name));
});

test('localizeCluster refuses a range that is not a network', () => {
  assert.throws(() => localizeCluster(fixtureCluster(), '127.0.100.5/24'), /host bits/);
  assert.throws(() => localizeCluster(fixtureCluster(), '127.0.100.0/28'), /24 or larger/);
});
