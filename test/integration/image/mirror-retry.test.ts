// A base build that starts while the Debian mirror syncs fails in apt; piinit tries once
// more after a wait. Here with real processes that fail the way mmdebstrap does (apt's
// messages, as printed in a failed build on 2026-11-28).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { mirrorSyncing, retryOnMirrorSync } from '../../../src/image/base.ts';
import { run } from '../../../src/image/run.ts';

const UNEXPECTED_SIZE =
  'E: Failed to fetch http://deb.debian.org/debian-security/dists/bookworm-security/main/binary-armhf/Packages.xz  ' +
  'File has unexpected size (334084 != 354640). Mirror sync in progress? [IP: 151.101.2.132 80]';
const HASH_SUM = 'E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/main/binary-arm64/Packages.xz  Hash Sum mismatch';

test('mirrorSyncing knows apt\'s words for a mirror between two syncs, and only those', () => {
  assert.equal(mirrorSyncing(UNEXPECTED_SIZE), true);
  assert.equal(mirrorSyncing(HASH_SUM), true);
  assert.equal(mirrorSyncing('E: Unable to locate package consul'), false);
  assert.equal(mirrorSyncing('E: The repository does not have a Release file.'), false);
});

/** A tool that prints `messages[n]` and fails on its nth run, and succeeds when none is left. */
async function flakyTool(t: { after: (fn: () => Promise<void>) => void }, messages: string[]) {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-mirror-retry-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const count = join(dir, 'runs');
  const script = [
    `n=$(cat ${count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${count}`,
    ...messages.map((m, i) => `[ $n -eq ${i + 1} ] && { echo 'W: some warning first'; echo '${m}' >&2; exit 1; }`),
    'echo built; exit 0',
  ].join('\n');
  return {
    call: () => run('sh', ['-c', script]),
    runs: async () => Number((await readFile(count, 'utf8').catch(() => '0')).trim()),
  };
}

test('a build that fails on a syncing mirror is run once more, and the wait is said', async (t) => {
  const tool = await flakyTool(t, [UNEXPECTED_SIZE]);
  const notes: string[] = [];
  assert.equal(await retryOnMirrorSync(tool.call, { waitMs: 10, note: (m) => notes.push(m) }), 'built\n');
  assert.equal(await tool.runs(), 2);
  assert.deepEqual(notes, ['the Debian mirror is between two syncs (its indexes do not match its Release file yet); trying again in 0 s']);
});

test('other failures are not retried, and a mirror that stays inconsistent fails the second time', async (t) => {
  const other = await flakyTool(t, ['E: Unable to locate package consul']);
  await assert.rejects(retryOnMirrorSync(other.call, { waitMs: 10 }), /sh failed \(exit 1\):[\s\S]*Unable to locate package consul/);
  assert.equal(await other.runs(), 1);

  const stuck = await flakyTool(t, [HASH_SUM, HASH_SUM]);
  await assert.rejects(retryOnMirrorSync(stuck.call, { waitMs: 10 }), /Hash Sum mismatch/);
  assert.equal(await stuck.runs(), 2);
});

test('Ctrl-C during the wait ends it at once, without a second run', async (t) => {
  const tool = await flakyTool(t, [HASH_SUM]);
  const controller = new AbortController();
  const retried = retryOnMirrorSync(tool.call, { waitMs: 600_000, signal: controller.signal, note: () => controller.abort() });
  await assert.rejects(retried, { name: 'AbortError' });
  assert.equal(await tool.runs(), 1);
});
