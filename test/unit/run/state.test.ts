import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readDockerState } from '../../../src/docker/cluster.ts';
import { defaultStateDir, foreignEntries, lockState, purgeStateDir, readState, STATE_VERSION, statePaths, writeState } from '../../../src/run/state.ts';
import { downLocal, upLocal } from '../../../src/run/local.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';
import { UserError } from '../../../src/errors.ts';

test('state.json round-trips, written atomically and not world-readable', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-state-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.equal(await readState(dir), null);
  const s = {
    version: STATE_VERSION,
    cluster: { name: 'demo', file: '/x/cluster.yaml' },
    mode: 'loopback' as const,
    subnet: '127.0.100.0/24',
    nodes: [],
    processes: {},
    unavailable: [{ component: 'nomad', reason: 'no binary' }],
    raftMultiplier: 3,
  };
  await writeState(dir, s);
  assert.deepEqual(await readState(dir), s);
  assert.equal((await stat(statePaths(dir).file)).mode & 0o007, 0);
});

test('one up/down at a time; a lock of a dead process is taken over', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-state-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const release = await lockState(dir);
  await assert.rejects(lockState(dir), /another piinit \(pid \d+\) is starting or stopping/);
  await release();
  const again = await lockState(dir);
  await again();
  // Another user's running process (PID 1: init) holds it as much as ours would.
  await writeFile(statePaths(dir).lock, '1');
  await assert.rejects(lockState(dir), /another piinit \(pid 1\) is starting or stopping/);
  // PID 2^22 + 1 is above the kernel's pid_max default: certainly not running.
  await writeFile(statePaths(dir).lock, String(4194305));
  const taken = await lockState(dir);
  await taken();
  // Empty: another piinit has just taken it and is writing its PID; empty and old: gone.
  await writeFile(statePaths(dir).lock, '');
  await assert.rejects(lockState(dir), /^UserError: another piinit is starting or stopping/);
  const old = new Date(Date.now() - 60_000);
  await utimes(statePaths(dir).lock, old, old);
  await (await lockState(dir))();
});

test('default state dir follows XDG_STATE_HOME', () => {
  assert.equal(defaultStateDir('demo', { XDG_STATE_HOME: '/s', HOME: '/h' }), '/s/piinit/demo');
  assert.equal(defaultStateDir('demo', { HOME: '/h' }), '/h/.local/state/piinit/demo');
});

test('a --state that is no piinit state directory and holds other files is refused; a purge keeps what is not ours', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-state-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.deepEqual(
    foreignEntries(['state.json', 'state.json.123.tmp', '.docker.json.a1b2c3d4e5f6.tmp', '.local-tls.json.0f0f0f0f0f0f.tmp', 'nodes', 'logs', 'lock', 'images', 'notes.txt', '.bashrc']),
    ['notes.txt', '.bashrc'],
  );

  // A typo such as --state ~: nothing is stopped, locked or removed.
  const home = join(dir, 'home');
  await mkdir(home);
  await writeFile(join(home, 'thesis.tex'), 'years of work');
  const refused = (err: unknown) => err instanceof UserError && err.message === `${home} is not a piinit state directory: it holds thesis.tex, which piinit does not make; give another --state`;
  await assert.rejects(downLocal(home, { purge: true }), refused);
  await assert.rejects(lockState(home), refused);
  assert.deepEqual(await readdir(home), ['thesis.tex']);

  // A state directory (state.json in it) someone put a file of theirs into: still ours to
  // stop and purge, and the purge leaves their file and the directory.
  const state = join(dir, 'state');
  await mkdir(join(state, 'nodes', 'core1'), { recursive: true });
  await mkdir(join(state, 'logs'));
  await writeFile(join(state, 'local-tls.json'), '{}');
  await writeFile(join(state, '.local-tls.json.0a1b2c3d4e5f.tmp'), '{}'); // a killed up's
  // Without state.json nothing shows these are piinit's (a user's own images/ and logs/ under a
  // mistyped --state): only the temp file and locks go.
  await mkdir(join(state, 'images'));
  await writeFile(join(state, 'images', 'my.img'), 'a card image of theirs');
  await writeFile(join(state, 'lock'), '999999999');
  assert.deepEqual(await purgeStateDir(state), ['images', 'local-tls.json', 'logs', 'nodes']);
  assert.deepEqual((await readdir(state)).sort(), ['images', 'local-tls.json', 'logs', 'nodes']);
  assert.deepEqual(await readdir(join(state, 'images')), ['my.img']);
  // An up --docker stopped before docker.json: its role images (keys inside) go by their names.
  await writeFile(join(state, 'images', 'demo-server.oci.tar'), 'keys');
  await writeFile(join(state, 'images', 'demo-client.oci.tar.tmp-4242'), 'keys');
  await purgeStateDir(state);
  assert.deepEqual(await readdir(join(state, 'images')), ['my.img']);
  await rm(join(state, 'images', 'my.img'));
  await writeFile(join(state, 'images', 'demo-server.oci.tar'), 'keys');
  assert.deepEqual(await purgeStateDir(state), ['local-tls.json', 'logs', 'nodes'], 'images/ held only those: gone');
  await writeFile(join(state, 'state.json'), '{}');
  assert.deepEqual(await purgeStateDir(state), []);
  await assert.rejects(stat(state), { code: 'ENOENT' }, 'with the state file, all ours: the directory goes');
  await mkdir(join(state, 'logs'), { recursive: true });
  await writeState(state, { version: STATE_VERSION, cluster: { name: 'demo', file: '/x/cluster.yaml' }, mode: 'loopback', subnet: '127.0.100.0/24', nodes: [], processes: {}, unavailable: [], raftMultiplier: 3 });
  await writeFile(join(state, 'keep.txt'), 'mine');
  const release = await lockState(state);
  await release();
  const down = await downLocal(state, { purge: true });
  assert.deepEqual([down.purged, down.kept], [true, ['keep.txt']]);
  assert.deepEqual(await readdir(state), ['keep.txt']);
});

test('a damaged state.json or docker.json is a UserError saying how to clean up by hand, never a crash', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-state-damaged-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = statePaths(dir).file;
  for (const [text, why] of [
    ['{ broken', 'not JSON'],
    ['', 'empty'],
    ['[]', 'not a JSON object'],
    ['{"version":1}', 'no processes or nodes'],
  ]) {
    await writeFile(file, text!);
    await assert.rejects(
      readState(dir),
      (e: Error) =>
        e instanceof UserError &&
        e.message ===
          `${file} is damaged (${why}), so piinit cannot tell what it started: stop the consul, nomad, prometheus and node_exporter processes it started by hand if any still run (with --netns also its namespaces and bridge: ip netns list), then remove ${file} (the cluster's data stays for the next piinit up)`,
      text,
    );
  }
  // Not damaged: another version's. Its own down knows what it started.
  await writeFile(file, '{"version":99}');
  await assert.rejects(readState(dir), (e: Error) => e instanceof UserError && e.message === `${file} was written by another piinit version (state version 99; this one reads 1): stop that cluster with the piinit that started it`);
  await rm(file);
  await writeFile(join(dir, 'docker.json'), '{"mode":"docker"}');
  await assert.rejects(readDockerState(dir), (e: Error) => e instanceof UserError && e.message.startsWith(`${join(dir, 'docker.json')} is damaged (no docker network or nodes)`));
});

test('an up that fails on its options writes nothing into a new state directory; down there has nothing to stop', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-state-up-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const stateDir = join(dir, 'state');
  await assert.rejects(upLocal(fixtureCluster(), { stateDir, binaries: {}, subnet: 'garbage' }), /garbage/);
  assert.deepEqual(await readdir(stateDir), [], 'no logs/ or nodes/ without a state.json beside them');
  const r = spawnSync(process.execPath, ['bin/piinit.js', 'down', 'examples/demo/cluster.yaml', '--state', join(dir, 'none')], { encoding: 'utf8' });
  // The demo has no secrets file in the checkout: down needs only the cluster's name.
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `no local cluster state in ${join(dir, 'none')}: nothing to stop\n`);
});
