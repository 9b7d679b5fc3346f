import type { Command } from '@commander-js/extra-typings';
import { UserError } from '../errors.ts';

export function register(program: Command): void {
  program
    .command('up')
    .description('(not built yet)')
    .action(() => {
      throw new UserError('piinit up is not built yet');
    });
}
