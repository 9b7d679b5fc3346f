import { Command } from '@commander-js/extra-typings';
import { environmentError, UserError } from '../errors.ts';
import { registerCommands } from './commands.ts';

const program = new Command()
  .name('piinit')
  .description(
    'One cluster.yaml → verified releases, Debian packages and immutable OS images for a ' +
      'Consul + Nomad + Prometheus cluster on Raspberry Pis and x86-64 boxes.',
  )
  .version('0.1.0')
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) });

registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (caught) {
  const err = environmentError(caught) ?? caught;
  if (err instanceof UserError) {
    process.stderr.write(`piinit: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write('piinit: internal error (a bug in piinit, please report it):\n');
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 70;
  }
}
