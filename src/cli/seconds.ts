// Options that take a number of seconds (--timeout, --grace).
import { UserError } from '../errors.ts';

/** A day: longer waits are typos, and Node's timers cannot hold much more (24.8 days). */
export const MAX_SECONDS = 24 * 3600;

/** The option's value in seconds; UserError unless it is a number from `min` (exclusive when
 *  0 is not allowed) up to a day. Pure. */
export function secondsOption(option: string, value: string, opts: { allowZero?: boolean } = {}): number {
  const s = value.trim() === '' ? Number.NaN : Number(value);
  const low = opts.allowZero ? s >= 0 : s > 0;
  if (!Number.isFinite(s) || !low || s > MAX_SECONDS) {
    throw new UserError(`${option} ${value}: expected a number of seconds, ${opts.allowZero ? 'from 0' : 'above 0'} up to ${MAX_SECONDS} (a day)`);
  }
  return s;
}
