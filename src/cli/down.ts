import type { Command } from '@commander-js/extra-typings';
import { UserError } from '../errors.ts';

export function register(program: Command): void {
  program
    .command('down')
    .description('(not built yet)')
    .action(() => {
      throw new UserError('piinit down is not built yet');
    });
}
