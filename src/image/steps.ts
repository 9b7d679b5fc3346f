// A build as named steps that a Ctrl-C stops between: the step under way ends (the terminal
// signals the whole process group, so its tools end too), the next one does not start, and
// the caller's finally removes the build's work.
import { UserError } from '../errors.ts';

export type Step = <T>(label: string, fn: () => Promise<T>) => Promise<T>;

/** Runs steps of the build `name`; each one's milliseconds go to timings. */
export function stepRunner(name: string, opts: { signal?: AbortSignal; onStep?: (step: string) => void }, timings: Record<string, number> = {}): Step {
  return async (label, fn) => {
    if (opts.signal?.aborted) throw new UserError(`${name}: interrupted before ${label}; the build's work directory was removed`, 130);
    opts.onStep?.(label);
    const t0 = performance.now();
    try {
      return await fn();
    } catch (err) {
      // The tools' failure is the interruption, not an error to show.
      if (opts.signal?.aborted) throw new UserError(`${name}: interrupted during ${label}; the build's work directory was removed`, 130);
      throw err;
    } finally {
      timings[label] = Math.round(performance.now() - t0);
    }
  };
}
