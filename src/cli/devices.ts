import type { Command } from '@commander-js/extra-typings';
import { UserError } from '../errors.ts';

export function register(program: Command): void {
  program
    .command('devices')
    .description('(not built yet)')
    .action(() => {
      throw new UserError('piinit devices is not built yet');
    });
}
