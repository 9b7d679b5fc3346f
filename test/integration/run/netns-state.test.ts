// The record of a --netns cluster's network when the cluster is not running: `up` on
// loopback removes the old namespaces (and forgets them); asking the health of a netns
// cluster whose namespaces are gone (a restart) says so; an `up` that fails half-way through
// making the network leaves it recorded (`down` removes it) and the next `up` completes the
// half-made namespace. No daemon is started (no binaries): only the network and the state are
// at stake. Needs root, like CI.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import { downLocal, localAuth, localTargets, upLocal } from '../../../src/run/local.ts';
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

test('an up --netns that fails while making the network leaves it recorded; the next up completes it; down removes it', async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test needs root for network namespaces (CI runs as root)');
  const tc = await makeCluster({ name: 'netns-half' });
  t.after(() => cleanup(tc));
  const subnet = `10.213.${1 + Math.floor(Math.random() * 250)}.0/24`;
  const inNetns = () => upLocal(tc.cluster, { stateDir: tc.stateDir, binaries: {}, netns: true, subnet });
  // The real ip, but "route add" fails: the first node's namespace is left without its route.
  const fake = await mkdtemp(join(tmpdir(), 'piinit-ip-'));
  t.after(() => rm(fake, { recursive: true, force: true }));
  const realIp = execFileSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).trim();
  await writeFile(join(fake, 'ip'), `#!/bin/sh\ncase "$*" in *"route add"*) echo "RTNETLINK answers: injected" >&2; exit 2;; esac\nexec ${realIp} "$@"\n`);
  await chmod(join(fake, 'ip'), 0o755);
  const path = process.env.PATH;
  process.env.PATH = `${fake}:${path}`;
  try {
    await assert.rejects(inNetns(), /injected/);
  } finally {
    process.env.PATH = path;
  }
  const net = (await readState(tc.stateDir))?.network;
  assert.ok(net, 'the network is recorded before it is made');
  const ours = async () => (await listNamespaces()).filter((n) => [net.hub, ...net.namespaces].includes(n)).sort();
  assert.deepEqual(await ours(), [net.hub, net.namespaces[0]!].sort(), 'the hub and the half-made namespace');

  const up = await inNetns();
  for (const n of up.state.nodes) {
    assert.match(execFileSync('ip', ['-n', n.netns!, 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' }), new RegExp(` ${n.address.replace(/\./g, '\\.')}/24 `), n.name);
    assert.match(execFileSync('ip', ['-n', n.netns!, 'route', 'show', 'default'], { encoding: 'utf8' }), /^default via /, `${n.name} has its route`);
  }
  await downLocal(tc.stateDir);
  assert.deepEqual(await ours(), []);
});
