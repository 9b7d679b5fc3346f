import type { Command } from '@commander-js/extra-typings';
import { resolve } from 'node:path';
import { loadCluster } from '../cluster/load.ts';
import { downLocal } from '../run/local.ts';
import { defaultStateDir } from '../run/state.ts';

export function register(program: Command): void {
  program
    .command('down')
    .description('Stop the local cluster `piinit up` started (exactly its processes); --purge also deletes its data')
    .argument('[cluster]', 'cluster file', 'cluster.yaml')
    .option('--state <dir>', 'state directory (default: ~/.local/state/piinit/<cluster name>)')
    .option('--purge', 'also remove the state directory: data, logs, rendered files')
    .option('--grace <seconds>', 'how long each daemon may take to stop after SIGTERM before SIGKILL', '15')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Signals only the processes \`up\` recorded, and only after checking that /proc/<pid> still
shows the same start time and program. Clients and Prometheus stop first, servers last.
Data survives (\`piinit up\` continues where it stopped) unless --purge is given.`,
    )
    .action(async (clusterArg, opts) => {
      const { cluster } = await loadCluster(resolve(clusterArg));
      const stateDir = resolve(opts.state ?? defaultStateDir(cluster.name));
      const r = await downLocal(stateDir, { purge: !!opts.purge, graceMs: Number(opts.grace) * 1000 });
      if (opts.json) {
        console.log(JSON.stringify({ stateDir, ...r }, null, 2));
        return;
      }
      const n = r.stopped.length + r.killed.length;
      if (n === 0 && r.notRunning.length === 0) console.log(`no local cluster was running for "${cluster.name}"`);
      else console.log(`stopped ${n} daemons${r.killed.length ? ` (${r.killed.length} needed SIGKILL: ${r.killed.join(', ')})` : ''}`);
      if (r.notRunning.length) console.log(`already gone: ${r.notRunning.join(', ')}`);
      console.log(r.purged ? `removed ${stateDir}` : `data kept in ${stateDir} (piinit down --purge removes it)`);
    });
}
