import type { Command } from '@commander-js/extra-typings';
import { UserError } from '../errors.ts';

export function register(program: Command): void {
  program
    .command('fetch')
    .description('(not built yet)')
    .action(() => {
      throw new UserError('piinit fetch is not built yet');
    });
}
