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
