import { Command, CommanderError } from '@commander-js/extra-typings';
import { ClusterValidationError } from '../cluster/diagnostics.ts';
import { environmentError, hideUrlCredentials, UserError } from '../errors.ts';
import { registerCommands } from './commands.ts';

const program = new Command()
  .name('piinit')
  .description(
    'One cluster.yaml → verified releases, Debian packages and immutable OS images for a ' +
      'Consul + Nomad + Prometheus cluster on Raspberry Pis and x86-64 boxes.',
  )
  .version('0.1.0')
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) })
  // Usage errors are thrown (and inherited by every command registered below), so that a
  // --json run gets its JSON for them too.
  .exitOverride();

registerCommands(program);

// A script that asked for --json gets JSON on stdout even when the command fails before it
// printed any: { "ok": false, "error": … } (and the message on stderr as always).
let jsonOnFailure = false;
program.hook('preAction', (_program, action) => {
  if ((action.opts() as { json?: unknown }).json === true) {
    jsonOnFailure = true;
    const write = process.stdout.write.bind(process.stdout) as (...a: unknown[]) => boolean;
    process.stdout.write = ((...args: unknown[]) => {
      jsonOnFailure = false;
      return write(...args);
    }) as typeof process.stdout.write;
  }
  // `--node "$NODE"` with NODE unset: no option means anything when empty, and read as absent
  // it would widen the work (every node, every arch) or change it (a listing for no --out).
  for (const o of action.options) {
    if (action.getOptionValue(o.attributeName()) === '') throw new UserError(`${o.long ?? o.flags}: empty value (give one, or leave the option out)`);
  }
});

try {
  await program.parseAsync(process.argv);
} catch (caught) {
  if (caught instanceof CommanderError) usageError(caught);
  else failed(caught);
}

/** Commander has printed the message (and help, if asked for). */
function usageError(err: CommanderError): void {
  process.exitCode = err.exitCode;
  if (err.exitCode !== 0 && process.argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify({ ok: false, error: err.message.replace(/^error: /, '') }, null, 2)}\n`);
  }
}

function failed(caught: unknown): void {
  const err = environmentError(caught) ?? caught;
  // A message may quote a mirror URL from cluster.yaml, password and all.
  if (jsonOnFailure) {
    const message = err instanceof UserError ? err.message : `internal error: ${err instanceof Error ? err.message : String(err)}`;
    const diagnostics = err instanceof ClusterValidationError ? { diagnostics: err.diagnostics } : {};
    process.stdout.write(hideUrlCredentials(`${JSON.stringify({ ok: false, error: message, ...diagnostics }, null, 2)}\n`));
  }
  if (err instanceof UserError) {
    process.stderr.write(`piinit: ${hideUrlCredentials(err.message)}\n`);
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write('piinit: internal error (a bug in piinit, please report it):\n');
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 70;
  }
}
