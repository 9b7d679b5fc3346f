// How a failing tool is reported: a missing one as not installed, one ended by a signal (the
// OOM killer, a crash under qemu-user) as such, with the last lines of its output.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import { run } from '../../../src/image/run.ts';

test('a missing tool is "not installed"; a killed one names its signal and output; a failing one its exit code', async () => {
  await assert.rejects(run('piinit-no-such-tool', []), (e: Error) => e instanceof UserError && /piinit-no-such-tool is not installed/.test(e.message));
  await assert.rejects(
    run('sh', ['-c', 'echo unpacking foo; kill -KILL $$']),
    (e: Error) => e instanceof UserError && /^sh was ended by SIGKILL:\nunpacking foo/.test(e.message) && !/not installed/.test(e.message),
  );
  await assert.rejects(run('sh', ['-c', 'echo bad >&2; exit 3']), (e: Error) => e instanceof UserError && /^sh failed \(exit 3\):\nbad/.test(e.message));
  assert.equal(await run('sh', ['-c', 'echo ok']), 'ok\n');
});
