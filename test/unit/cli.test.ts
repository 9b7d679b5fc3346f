import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

test('piinit --help lists the commands', () => {
  const r = spawnSync(process.execPath, ['bin/piinit.js', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const c of ['init', 'validate', 'render', 'fetch', 'packages', 'image', 'burn', 'up', 'down', 'status']) {
    assert.match(r.stdout, new RegExp(`^\\s+${c}\\b`, 'm'), `missing ${c}`);
  }
});
