// piinit image refuses a selection with a board no image boots (the Pi 5) before it builds
// anything, and says how to build the rest.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { editLine, tempCluster } from '../../unit/cluster/valid-cluster.ts';

test('piinit image with a pi5 node: refused with the reason and the --board that builds the rest; nothing built', async () => {
  assert.equal(process.getuid?.(), 0, 'piinit image checks for root first (CI runs as root)');
  const t = await tempCluster(editLine(12, '    board: pi5'));
  try {
    const out = join(t.dir, 'images');
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ['bin/piinit.js', 'image', t.cluster, '--out', out, '--cache', join(t.dir, 'cache'), ...args], { encoding: 'utf8' });
    const r = run();
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /no image boots a pi5 \(core1\): Debian bookworm cannot boot a Raspberry Pi 5/);
    assert.match(r.stderr, /Build the other images with --board pi4,pi3,pi-zero\./);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/);
    assert.equal(r.stdout, '');
    assert.equal(existsSync(out), false);
    assert.equal(existsSync(join(t.dir, 'cache')), false);

    const json = run('--json');
    assert.equal(json.status, 1);
    assert.equal(json.stdout, '');
    assert.match(json.stderr, /no image boots a pi5/);
  } finally {
    await t.cleanup();
  }
});
