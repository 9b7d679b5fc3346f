// piinit image refuses what it cannot build well before it builds anything: a board no image
// boots (the Pi 5), and an archive option that is not a URL.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { editLine, tempCluster, VALID } from '../../unit/cluster/valid-cluster.ts';

async function refused(yaml: string, args: string[], expect: RegExp[]): Promise<void> {
  assert.equal(process.getuid?.(), 0, 'piinit image checks for root first (CI runs as root)');
  const t = await tempCluster(yaml);
  try {
    const out = join(t.dir, 'images');
    const run = (...more: string[]) =>
      spawnSync(process.execPath, ['bin/piinit.js', 'image', t.cluster, '--out', out, '--cache', join(t.dir, 'cache'), ...args, ...more], { encoding: 'utf8' });
    for (const json of [false, true]) {
      const r = json ? run('--json') : run();
      assert.equal(r.status, 1, r.stderr);
      for (const e of expect) assert.match(r.stderr, e);
      assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/);
      if (json) {
        const j = JSON.parse(r.stdout) as { ok: boolean; error: string };
        assert.equal(j.ok, false);
        for (const e of expect) assert.match(j.error, e);
      } else assert.equal(r.stdout, '');
      assert.equal(existsSync(out), false, 'nothing in --out');
      assert.equal(existsSync(join(t.dir, 'cache')), false, 'nothing in --cache');
    }
  } finally {
    await t.cleanup();
  }
}

test('piinit image with a pi5 node: refused with the reason and the --board that builds the rest', async () => {
  await refused(editLine(12, '    board: pi5'), [], [
    /no image boots a pi5 \(core1\): Debian bookworm cannot boot a Raspberry Pi 5/,
    /Build the other images with --board pi4,pi3,pi-zero\./,
  ]);
});

test('piinit image --mirror or --security-mirror that is not a URL: refused, naming the option', async () => {
  await refused(VALID, ['--mirror', 'deb.debian.org/debian'], [/--mirror "deb\.debian\.org\/debian": expected an http:\/\/, https:\/\/ or file:\/\/ URL/]);
  await refused(VALID, ['--security-mirror', 'security.debian.org'], [/--security-mirror "security\.debian\.org": expected/]);
});
