import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasSubordinateIds, isUserNamespace, rootlessCommand, rootlessProblem } from '../../../src/image/rootless.ts';

test('user namespace: anything but the initial identity map of /proc/self/uid_map', () => {
  assert.equal(isUserNamespace('         0          0 4294967295\n'), false);
  assert.equal(isUserNamespace('         0       1000          1\n         1     100000      65536\n'), true);
  assert.equal(isUserNamespace('         0     300000      65536\n'), true);
});

test('subordinate IDs: the user by name or uid, with at least 65536 of them', () => {
  const text = 'alice:100000:65536\n1001:165536:65536\nsmall:231072:1000\n';
  assert.equal(hasSubordinateIds(text, 'alice', 1000), true);
  assert.equal(hasSubordinateIds(text, 'bob', 1001), true, 'by uid');
  assert.equal(hasSubordinateIds(text, 'small', 1002), false, 'too few for the image users');
  assert.equal(hasSubordinateIds(text, 'carol', 1003), false);
  assert.equal(hasSubordinateIds('', 'alice', 1000), false);
});

test('rootless problems name what to install and configure, or sudo', () => {
  const ok = 'alice:100000:65536\n';
  assert.equal(rootlessProblem('alice', 1000, ok, ok, true), null);
  assert.match(rootlessProblem('alice', 1000, ok, ok, false) ?? '', /^piinit image needs root, or for a rootless build newuidmap and newgidmap: install the uidmap package .* or run it as root \(sudo\)$/);
  assert.match(rootlessProblem('alice', 1000, null, ok, true) ?? '', /65536 subordinate user and group IDs for alice in \/etc\/subuid and \/etc\/subgid: .*usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice/);
  assert.match(rootlessProblem('alice', 1000, ok, '', true) ?? '', /subordinate/);
});

test('the rootless command: a user namespace with the subordinate IDs, own mounts and PIDs, the host\'s /proc', () => {
  assert.deepEqual(rootlessCommand(['/usr/bin/node', 'bin/piinit.js', 'image']), [
    'unshare', '--map-auto', '--map-root-user', '--mount', '--pid', '--fork', '--propagation', 'private', '--',
    '/usr/bin/node', 'bin/piinit.js', 'image',
  ]);
});
