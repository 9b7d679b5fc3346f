// Ctrl-C (SIGINT) and SIGTERM for long commands: the first signal asks the work to stop at
// its next safe point (an AbortSignal), a second one exits at once. Both say what happens.
export interface Interrupt {
  signal: AbortSignal;
  /** Removes the handlers: signals act as usual again. */
  dispose(): void;
}

export function onInterrupt(stopping: string, exitingNow: string): Interrupt {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) {
      process.stderr.write(`piinit: ${sig} again: exiting now; ${exitingNow}\n`);
      process.exit(130);
    }
    process.stderr.write(`\npiinit: ${sig}: ${stopping}\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
