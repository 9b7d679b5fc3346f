// A lost terminal (an ssh session that drops) during a long command: piinit gets SIGHUP,
// twice, and every write to the terminal fails from then on. It must still clean up, and
// end by SIGHUP rather than crash. A real terminal from script(1), really hung up.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { watchOutput } from '../../helpers/child-output.ts';

const readOr = (path: string) => readFile(path, 'utf8').catch(() => '');

test('after a hangup a command cleans up although its terminal is gone, then ends by SIGHUP (status 129)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-hangup-'));
  const mark = join(dir, 'mark');
  const status = join(dir, 'status');
  const shellPid = join(dir, 'shell.pid');
  const fixture = join(import.meta.dirname, 'hangup-fixture.ts');
  // The shell in the terminal does what a login shell and the kernel do when its terminal is
  // lost: SIGHUP to its job, and again as the shell exits. This one stays to write the
  // job's exit status.
  const inner =
    `echo $$ > ${shellPid}; ${process.execPath} --import tsx ${fixture} ${mark} & job=$!; ` +
    `trap 'kill -HUP $job; sleep 0.2; kill -HUP $job' HUP; wait $job; wait $job; echo $? > ${status}`;
  const script = spawn('script', ['-qec', inner, '/dev/null'], { env: { ...process.env, SHELL: '/bin/sh' }, stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(async () => {
    if (script.exitCode === null && script.signalCode === null) script.kill('SIGKILL');
    const sh = (await readOr(shellPid)).trim(); // the fixture, should it still run: the shell's child
    for (const pid of (await readOr(`/proc/${sh}/task/${sh}/children`)).split(/\s+/).filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  await watchOutput(script, ['stdout']).until('piinit-test: working', 60_000, 'the start of the command');
  script.kill('SIGKILL'); // the terminal is gone

  let code = '';
  for (let i = 0; i < 300 && !code; i++) {
    await sleep(100);
    code = (await readOr(status)).trim();
  }
  // Without the handler: 129 and no mark. Dying on a failed write: 1. Node's abort at exit
  // on the lost terminal: 134. Exiting at the second SIGHUP: 130 and no mark.
  assert.equal(await readOr(mark), 'cleaned up after the interrupt\n', `the clean-up ran to its end (status ${code})`);
  assert.equal(code, '129', 'ended by SIGHUP');
});
