// A long piinit command in miniature, for hangup.test.ts: the same interrupt handling, work
// that waits to be stopped, and a clean-up that still prints (to a terminal that is gone)
// before it leaves its mark. argv: the mark file.
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { onInterrupt } from '../../../src/cli/interrupt.ts';

const mark = process.argv[2]!;
const interrupt = onInterrupt('stopping and cleaning up...', 'nothing cleaned up');
process.stdout.write('piinit-test: working\n');
await sleep(60_000, undefined, { signal: interrupt.signal }).catch(() => undefined);
for (let i = 0; i < 20; i++) {
  process.stdout.write(`cleaning up ${i}\n`);
  process.stderr.write(`progress ${i}\r`);
  await sleep(50);
}
writeFileSync(mark, interrupt.signal.aborted ? 'cleaned up after the interrupt\n' : 'never interrupted\n');
interrupt.dispose();
process.exitCode = 130;
