// Ctrl-C (SIGINT), SIGTERM and a hangup (SIGHUP) for long commands: the first signal asks the
// work to stop at its next safe point (an AbortSignal), a second Ctrl-C or SIGTERM exits at
// once. Both say what happens. A hangup comes twice when a login shell loses its terminal
// (from the shell to its jobs, then from the kernel as the shell exits), and nobody is
// left to have meant a second one: it never exits at once.
import { noteHangup } from './hangup.ts';

export interface Interrupt {
  signal: AbortSignal;
  /** Removes the handlers: signals act as usual again. */
  dispose(): void;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export function onInterrupt(stopping: string, exitingNow: string): Interrupt {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (sig === 'SIGHUP') noteHangup();
    if (signals > 0 && sig === 'SIGHUP') return;
    if (++signals > 1) {
      process.stderr.write(`piinit: ${sig} again: exiting now; ${exitingNow}\n`);
      process.exit(130);
    }
    process.stderr.write(`\npiinit: ${sig}: ${stopping}\n`);
    controller.abort();
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const s of SIGNALS) process.off(s, onSignal);
    },
  };
}

/** For commands that lose nothing by ending at once (every write atomic, every part
 *  resumable): Ctrl-C or SIGTERM stops them there, but first `stop` shows the terminal's
 *  cursor again (progress bars hide it), and the user is told what happens next. Returns the
 *  function that removes the handlers. */
export function stopAtOnce(stop: () => void, next: string): () => void {
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const onSignal = (sig: NodeJS.Signals) => {
    stop();
    process.stderr.write(`\npiinit: ${sig}: stopped; ${next}\n`);
    process.exit(130);
  };
  for (const s of signals) process.on(s, onSignal);
  return () => {
    for (const s of signals) process.off(s, onSignal);
  };
}
