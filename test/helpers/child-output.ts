// What a child process writes, collected as it comes, and a bounded wait for a text in it:
// the tests that act at a point of a running command (a signal, a swapped card, a lost
// terminal) wait for the line that says the command got there.
import type { ChildProcess } from 'node:child_process';

export interface ChildOutput {
  /** Everything the watched streams said so far. */
  readonly text: string;
  /** Resolves once `needle` is in the output; rejects, with the output, when the child
   *  closes without it or withinMs passes. `what` names the point in the message. */
  until(needle: string, withinMs: number, what?: string): Promise<void>;
}

export function watchOutput(child: ChildProcess, streams: readonly ('stdout' | 'stderr')[] = ['stdout', 'stderr']): ChildOutput {
  let text = '';
  let closed = false;
  const waiters = new Set<() => void>();
  const wake = () => [...waiters].forEach((w) => w());
  for (const s of streams) {
    const stream = child[s];
    if (!stream) throw new Error(`the child's ${s} is not a pipe`);
    stream.on('data', (d: Buffer) => {
      text += d.toString();
      wake();
    });
  }
  child.on('close', () => {
    closed = true;
    wake();
  });
  return {
    get text() {
      return text;
    },
    until(needle, withinMs, what = JSON.stringify(needle)) {
      return new Promise((resolve, reject) => {
        const settle = (f: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          f();
        };
        const check = () => {
          if (text.includes(needle)) settle(resolve);
          else if (closed) settle(() => reject(new Error(`the command exited before ${what}:\n${text}`)));
        };
        const timer = setTimeout(() => settle(() => reject(new Error(`no ${what} within ${withinMs / 1000} s:\n${text}`))), withinMs);
        waiters.add(check);
        check();
      });
    },
  };
}
