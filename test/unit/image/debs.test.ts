import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dependNames, installOrder, type DebInfo } from '../../../src/image/debs.ts';

test('Depends fields give bare package names (first alternative, no versions or arch qualifiers)', () => {
  assert.deepEqual(dependNames('libc6 (>= 2.34), piinit-x-users (= 1.0) | foo, bar:any'), ['libc6', 'piinit-x-users', 'bar']);
  assert.deepEqual(dependNames(''), []);
});

test('install order: the role package last, its dependencies first, other roles and arches left out', () => {
  const d = (name: string, arch: string, depends: string[] = []): DebInfo => ({ path: `/p/${name}_${arch}.deb`, name, arch, depends });
  const debs = [
    d('piinit-c-server', 'all', ['piinit-c-consul-server', 'piinit-consul', 'piinit-node-exporter']),
    d('piinit-c-client', 'all', ['piinit-c-nomad-client']),
    d('piinit-c-nomad-client', 'all'),
    d('piinit-c-consul-server', 'all', ['piinit-c-users']),
    d('piinit-c-users', 'all'),
    d('piinit-consul', 'arm64', ['libc6']),
    d('piinit-consul', 'amd64', ['libc6']),
    d('piinit-node-exporter', 'arm64'),
  ];
  const order = installOrder(debs, ['piinit-c-server'], 'arm64').map((x) => x.path);
  assert.deepEqual(order, [
    '/p/piinit-c-users_all.deb',
    '/p/piinit-c-consul-server_all.deb',
    '/p/piinit-consul_arm64.deb',
    '/p/piinit-node-exporter_arm64.deb',
    '/p/piinit-c-server_all.deb',
  ]);
  assert.throws(() => installOrder(debs, ['piinit-c-monitor'], 'arm64'), /piinit packages/);
});
