import type { Command } from '@commander-js/extra-typings';
import { UserError } from '../errors.ts';

export function register(program: Command): void {
  program
    .command('status')
    .description('(not built yet)')
    .action(() => {
      throw new UserError('piinit status is not built yet');
    });
}
