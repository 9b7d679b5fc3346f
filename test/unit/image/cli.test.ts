import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const piinit = (...args: string[]) => spawnSync(process.execPath, ['bin/piinit.js', 'image', ...args], { encoding: 'utf8' });

test('piinit image --help names the options and the outputs', () => {
  const r = piinit('--help');
  assert.equal(r.status, 0, r.stderr);
  for (const o of ['--board', '--role', '--out', '--debs', '--cache', '--mirror', '--security-mirror', '--json', '.bmap', 'manifest']) assert.ok(r.stdout.includes(o), o);
});

test('piinit image refuses an unknown board or role with a plain message', () => {
  const r = piinit('cluster.yaml', '--board', 'pi9');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /unknown board "pi9"/);
  assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/);
  const r2 = piinit('cluster.yaml', '--role', 'router');
  assert.match(r2.stderr, /unknown role "router"/);
});
