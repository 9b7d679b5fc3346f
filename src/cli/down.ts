import type { Command } from '@commander-js/extra-typings';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { readClusterName } from '../cluster/load.ts';
import { downLocal } from '../run/local.ts';
import { defaultStateDir } from '../run/state.ts';
import { downDocker, readDockerState } from '../docker/cluster.ts';
import { checkDocker } from '../docker/engine.ts';
import { secondsOption } from './seconds.ts';

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
Data survives (\`piinit up\` continues where it stopped) unless --purge is given.
A cluster started with \`piinit up --docker\`: its containers and network are removed;
its named volumes (the nodes' /data) stay unless --purge is given.`,
    )
    .action(async (clusterArg, opts) => {
      const graceMs = secondsOption('--grace', opts.grace, { allowZero: true }) * 1000;
      const name = await readClusterName(resolve(clusterArg));
      const stateDir = resolve(opts.state ?? defaultStateDir(name));
      const dockerState = await readDockerState(stateDir);
      if (dockerState) {
        await checkDocker();
        const d = await downDocker(stateDir, dockerState, { purge: !!opts.purge });
        if (opts.json) {
          console.log(JSON.stringify({ stateDir, mode: 'docker', ...d, network: dockerState.network, purged: !!opts.purge }, null, 2));
          return;
        }
        console.log(`removed ${d.removed.length} containers and the network ${dockerState.network}`);
        console.log(opts.purge ? `removed the volumes (${d.volumes.join(', ') || 'none left'}) and ${purgedWhat(stateDir, d.kept)}` : `data kept in the volumes ${dockerState.nodes.map((n) => n.volume).join(', ')} (piinit down --purge removes them)`);
        return;
      }
      if (!existsSync(stateDir)) {
        // Nothing was ever started with this state directory (or it was purged): down is done.
        if (opts.json) console.log(JSON.stringify({ stateDir, stopped: [], killed: [], notRunning: [], purged: false, kept: [], exists: false }, null, 2));
        else console.log(`no local cluster state in ${stateDir}: nothing to stop`);
        return;
      }
      const r = await downLocal(stateDir, { purge: !!opts.purge, graceMs });
      if (opts.json) {
        console.log(JSON.stringify({ stateDir, ...r }, null, 2));
        return;
      }
      const n = r.stopped.length + r.killed.length;
      if (n === 0 && r.notRunning.length === 0) console.log(`no local cluster was running for "${name}"`);
      else console.log(`stopped ${n} daemons${r.killed.length ? ` (${r.killed.length} needed SIGKILL: ${r.killed.join(', ')})` : ''}`);
      if (r.notRunning.length) console.log(`already gone: ${r.notRunning.join(', ')}`);
      console.log(r.purged ? `removed ${purgedWhat(stateDir, r.kept)}` : `data kept in ${stateDir} (piinit down --purge removes it)`);
    });
}

/** What a purge removed, for its message. Pure. */
export function purgedWhat(stateDir: string, kept: string[]): string {
  return kept.length ? `piinit's files from ${stateDir} (kept it for ${kept.join(', ')}: not made by piinit, or with no state file there, not known to be)` : stateDir;
}
