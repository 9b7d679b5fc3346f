// A cached base stays what Debian was the day it was built: the updates since, security
// fixes among them, reach an image only when its base is built again (--refresh-base).
// A build that uses a base older than a week says so, so that this does not go unnoticed.
import { stat } from 'node:fs/promises';

export const OLD_BASE_DAYS = 7;
const DAY_MS = 24 * 60 * 60 * 1000;

/** When a file was made (the base tarball: when its build wrote it), or null where the file
 *  system does not record it. */
export async function birthTime(path: string): Promise<Date | null> {
  const s = await stat(path);
  return s.birthtimeMs > 0 ? s.birthtime : null;
}

/** The note for an image built on a base from builtAt (ISO 8601, as results report it), or
 *  null for a recent one or an unknown date. Pure. */
export function oldBaseNote(image: string, builtAt: string | null, nowMs: number): string | null {
  if (!builtAt) return null;
  const days = Math.floor((nowMs - Date.parse(builtAt)) / DAY_MS);
  if (days < OLD_BASE_DAYS) return null;
  return (
    `note: ${image} is built on a cached base from ${builtAt.slice(0, 10)} (${days} days ago); ` +
    "Debian's updates since then, security fixes among them, are not in it: --refresh-base builds the base again"
  );
}
