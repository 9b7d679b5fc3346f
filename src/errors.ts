// Errors a user can act on. The CLI prints their message (never a stack trace) and exits
// with their exit code; any other exception is a bug in piinit and is shown in full.

export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** What the machine refused, not a bug: a full disk, a read-only or forbidden path. */
const ENVIRONMENT_ERRORS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'a directory where a file was expected',
};

/** A UserError naming the path and the reason for a system error the user can act on, or
 *  null for anything else. Pure. */
export function environmentError(err: unknown): UserError | null {
  if (!(err instanceof Error)) return null;
  const { code, path, syscall } = err as NodeJS.ErrnoException;
  const reason = code === 'EEXIST' && syscall === 'mkdir' ? 'a file is there, not a directory' : code ? ENVIRONMENT_ERRORS[code] : undefined;
  if (!reason) return null;
  return new UserError(`${path ? `${path}: ` : ''}${reason} (${code}${syscall ? ` in ${syscall}` : ''})`);
}

/** URLs in text with the password (or a lone user name, often a token) replaced by ***. Pure. */
export function hideUrlCredentials(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#]*)@/gi, (_, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return `${scheme}${colon < 0 ? '***' : `${userinfo.slice(0, colon)}:***`}@`;
  });
}
