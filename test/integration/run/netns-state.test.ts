// The record of a --netns cluster's network when the cluster is not running: `up` on
// loopback removes the old namespaces (and forgets them), and asking the health of a netns
// cluster whose namespaces are gone (a restart) says so. No daemon is started (no binaries):
// only the network and the state are at stake. Needs root, like CI.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import { localAuth, localTargets, upLocal } from '../../../src/run/local.ts';
import { listNamespaces } from '../../../src/run/netns.ts';
import { checkLocalHealth } from '../../../src/run/probe.ts';
import { readState } from '../../../src/run/state.ts';
import { cleanup, makeCluster } from './helpers.ts';

test('--netns, then loopback: the namespaces are removed and forgotten; gone namespaces are reported, not a crash', async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test needs root for network namespaces (CI runs as root)');
  const tc = await makeCluster({ name: 'netns-state' });
  t.after(() => cleanup(tc));
  const subnet = `10.213.${1 + Math.floor(Math.random() * 250)}.0/24`;
  const inNetns = () => upLocal(tc.cluster, { stateDir: tc.stateDir, binaries: {}, netns: true, subnet });

  const first = await inNetns();
  const net = first.state.network!;
  const ours = async () => (await listNamespaces()).filter((n) => [net.hub, ...net.namespaces].includes(n)).sort();
  assert.deepEqual(await ours(), [net.hub, ...net.namespaces].sort());

  const loopback = await upLocal(tc.cluster, { stateDir: tc.stateDir, binaries: {} });
  assert.equal(loopback.state.mode, 'loopback');
  assert.equal(loopback.state.network, undefined);
  assert.equal((await readState(tc.stateDir))?.network, undefined, 'the old network is not recorded');
  assert.deepEqual(await ours(), [], 'the old namespaces are removed');
  // Asked on loopback, not from inside a hub: every node unreachable, no exception.
  const h = await checkLocalHealth(loopback.state, localTargets(loopback.cluster, loopback.state), localAuth(loopback.cluster), 500);
  assert.equal(h.healthy, false);

  // In namespaces again, then they vanish as at a restart.
  const again = await inNetns();
  for (const ns of await ours()) execFileSync('ip', ['netns', 'delete', ns]);
  await assert.rejects(
    checkLocalHealth(again.state, localTargets(again.cluster, again.state), localAuth(again.cluster), 500),
    (err) => err instanceof UserError && /network namespaces of the local cluster are gone .*piinit up --netns/.test(err.message),
  );
  // up --netns makes them again.
  await inNetns();
  assert.deepEqual(await ours(), [net.hub, ...net.namespaces].sort());
});
