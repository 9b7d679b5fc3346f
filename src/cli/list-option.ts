import { UserError } from '../errors.ts';

/** A comma-separated option value ("arm64,armhf") as known names; null when the option is
 *  not given. An empty value is refused, not read as "all": an unset shell variable in
 *  `--arch "$ARCH"` must not quietly widen (or empty) the work. */
export function listOption<T extends string>(value: string | undefined, allowed: readonly T[], option: string, what: string): T[] | null {
  if (value === undefined) return null;
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const i of items) {
    if (!allowed.includes(i as T)) throw new UserError(`${option}: unknown ${what} "${i}" (known: ${allowed.join(', ')})`);
  }
  if (items.length === 0) throw new UserError(`${option} needs at least one ${what} (known: ${allowed.join(', ')})`);
  return items as T[];
}
