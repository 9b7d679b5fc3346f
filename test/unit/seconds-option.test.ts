import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { MAX_SECONDS, secondsOption } from '../../src/cli/seconds.ts';
import { UserError } from '../../src/errors.ts';

test('secondsOption: a number of seconds above 0 (or from 0) up to a day; anything else is refused by name', () => {
  assert.equal(secondsOption('--timeout', '3'), 3);
  assert.equal(secondsOption('--timeout', '0.5'), 0.5);
  assert.equal(secondsOption('--timeout', String(MAX_SECONDS)), MAX_SECONDS);
  assert.equal(secondsOption('--grace', '0', { allowZero: true }), 0);
  for (const bad of ['0', '-1', 'abc', '', ' ', '1e9', 'Infinity', 'NaN', String(MAX_SECONDS + 1)]) {
    assert.throws(() => secondsOption('--timeout', bad), (err) => err instanceof UserError && err.message === `--timeout ${bad}: expected a number of seconds, above 0 up to 86400 (a day)`, bad);
  }
  assert.throws(() => secondsOption('--grace', '-5', { allowZero: true }), /--grace -5: expected a number of seconds, from 0 up to 86400/);
});

test('piinit down --grace abc: refused before anything is looked at, without a stack trace', () => {
  const r = spawnSync(process.execPath, ['bin/piinit.js', 'down', 'no-such-cluster.yaml', '--grace', 'abc'], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'piinit: --grace abc: expected a number of seconds, from 0 up to 86400 (a day)\n');
});
