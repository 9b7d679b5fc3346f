// After a hangup (SIGHUP: the terminal or ssh session is gone) the terminal is gone for Node
// too: writes to it fail with EIO, unhandled errors that would end piinit in the middle of
// its clean-up, and at exit Node 20 fails to restore the terminal's settings and aborts
// (status 134 and a core dump instead of the command's status). So once a hangup is noted,
// output errors are dropped (nobody can read it) and, when the work is cleaned up, piinit
// ends as a program without a handler would have ended at once: by SIGHUP (status 129).
let noted = false;

export function noteHangup(): void {
  if (noted) return;
  noted = true;
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  process.once('exit', () => {
    process.removeAllListeners('SIGHUP'); // back to the default action: the process ends
    process.kill(process.pid, 'SIGHUP');
  });
}
