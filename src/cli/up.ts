import type { Command } from '@commander-js/extra-typings';
import { resolve } from 'node:path';
import { formatDiagnostic } from '../cluster/diagnostics.ts';
import { loadCluster } from '../cluster/load.ts';
import { ensureSecretsFile } from '../cluster/secrets.ts';
import { UserError } from '../errors.ts';
import { secondsOption } from './seconds.ts';
import { formatReport, progressLine } from '../health/format.ts';
import { defaultCacheDir } from '../releases/cache.ts';
import { releaseBinaries } from '../run/binaries.ts';
import { firstCrash, localAuth, localTargets, processStatus, upLocal } from '../run/local.ts';
import { withLocalTls } from '../run/local-security.ts';
import { waitLocalHealthy } from '../run/probe.ts';
import { defaultStateDir } from '../run/state.ts';
import { localizeCluster } from '../run/localize.ts';
import { sayWaits } from './fetch.ts';
import { uiUrls } from './status.ts';
import { DEFAULT_DOCKER_SUBNET } from '../docker/dockerize.ts';
import { upDockerCommand } from '../docker/up-command.ts';
import { join } from 'node:path';

export function register(program: Command): void {
  program
    .command('up')
    .description('Run the whole cluster on this machine: every node on its own local address, real daemons, the rendered configs')
    .argument('[cluster]', 'cluster file', 'cluster.yaml')
    .option('--state <dir>', 'state directory (default: ~/.local/state/piinit/<cluster name>)')
    .option('--netns', 'each node in its own network namespace on a bridge (root only; what partition tests need)')
    .option('--subnet <cidr>', 'local address range (default 127.0.100.0/24; 10.213.0.0/24 with --netns)')
    .option('--cache <dir>', 'release cache (default: $XDG_CACHE_HOME/piinit or ~/.cache/piinit)')
    .option('--offline', 'use only releases already in the cache')
    .option('--timeout <seconds>', 'how long to wait for the cluster to become healthy', '180')
    .option('--no-wait', 'start the daemons and return without waiting for health')
    .option('--json', 'print the result as JSON')
    .option('--docker', 'run the nodes as Docker containers built from the same packages as the images (needs root and Docker; see docs/docker.md)')
    .option('--docker-subnet <cidr>', `with --docker: the subnet of the Docker network piinit creates (default ${DEFAULT_DOCKER_SUBNET})`)
    .option('--image-cache <dir>', 'with --docker: base root file systems (default: <cache>/images, shared with piinit image)')
    .addHelpText(
      'after',
      `
Renders every node with the local target under <state>/nodes/<name> and starts exactly the
commands its systemd units run (Consul, Nomad where a binary is available, node_exporter on
every node, Prometheus on the monitor) as background processes with logs in <state>/logs.
Releases come verified from piinit's cache (fetched on first use). Running \`up\` again
starts only what is not running (a daemon that crashed is started again) and changes
nothing else. Exit code 0 once the cluster is healthy (see \`piinit status\`).

  piinit up examples/demo/cluster.yaml
  piinit status examples/demo/cluster.yaml
  piinit down examples/demo/cluster.yaml`,
    )
    .action(async (clusterArg, opts) => {
      const clusterPath = resolve(clusterArg);
      const tty = process.stdout.isTTY && !opts.json;
      const say = (s: string) => {
        if (!opts.json) console.log(s);
      };
      const timeoutS = secondsOption('--timeout', opts.timeout);

      const secrets = await ensureSecretsFile(clusterPath);
      if (secrets.created) say(`created ${secrets.path} (fresh secrets, mode 0600; keep it out of version control)`);
      const { cluster, warnings } = await loadCluster(clusterPath);
      for (const w of warnings) process.stderr.write(`${formatDiagnostic(w)}\n`);
      const stateDir = resolve(opts.state ?? defaultStateDir(cluster.name));
      if (opts.docker) {
        const cache = resolve(opts.cache ?? defaultCacheDir());
        return upDockerCommand(cluster, clusterArg, {
          stateDir,
          subnet: opts.dockerSubnet ?? DEFAULT_DOCKER_SUBNET,
          releaseCache: cache,
          imageCache: resolve(opts.imageCache ?? join(cache, 'images')),
          offline: !!opts.offline,
          timeoutS,
          wait: opts.wait,
          json: !!opts.json,
          tty: !!tty,
        });
      }
      if (opts.netns && process.getuid?.() !== 0) throw new UserError('--netns creates network namespaces and needs root (run with sudo)');
      if (opts.subnet !== undefined) localizeCluster(cluster, opts.subnet); // a bad --subnet is said before any download

      const cacheDir = opts.cache ?? defaultCacheDir();
      if (tty) process.stdout.write(`checking releases in ${cacheDir} …\n`);
      const rel = await releaseBinaries(cluster, { cacheDir, offline: opts.offline, onProgress: sayWaits });
      for (const f of rel.fetched) say(`fetched ${f} ${cluster.components[f].version}`);
      for (const u of rel.unavailable) say(`unavailable: ${u.component} — ${u.reason}`);

      const t0 = Date.now();
      const result = await upLocal(cluster, {
        stateDir,
        binaries: rel.binaries,
        unavailable: rel.unavailable,
        netns: !!opts.netns,
        ...(opts.subnet ? { subnet: opts.subnet } : {}),
        prepare: withLocalTls,
        onEvent: (ev) => {
          if (!tty) return;
          if (ev.kind === 'started') console.log(`  started ${ev.node}/${ev.daemon} (pid ${ev.pid})`);
          if (ev.kind === 'skipped') console.log(`  not started ${ev.node}/${ev.daemon}: ${ev.reason}`);
          if (ev.kind === 'waiting') console.log(`  waiting for ${ev.what} …`);
        },
      });
      const { state, cluster: local } = result;
      if (result.started.length === 0 && result.alreadyRunning.length > 0) {
        say(`the local cluster "${cluster.name}" is already running (${result.alreadyRunning.length} daemons); nothing changed`);
      } else if (result.alreadyRunning.length > 0) {
        say(`started ${result.started.length} daemons (${result.alreadyRunning.length} were already running)`);
      } else {
        say(`started ${result.started.length} daemons; state and logs in ${stateDir}`);
      }
      if (result.staleConfig.length) {
        say(`note: the rendered configuration changed for ${result.staleConfig.join(', ')}, which keep running with the old one; run \`piinit down\` and \`piinit up\` to restart them`);
      }

      const targets = localTargets(local, state);
      const auth = localAuth(local);
      let health = null;
      if (opts.wait) {
        let last = '';
        health = await waitLocalHealthy(state, targets, auth, {
          timeoutMs: timeoutS * 1000,
          intervalMs: 500,
          abort: () => firstCrash(state),
          onProgress: (r) => {
            if (!tty) return;
            const line = `  ${((Date.now() - t0) / 1000).toFixed(0).padStart(3)} s  ${progressLine(r, targets.expected.consulServers.length)}`;
            if (line !== last) process.stdout.write(`\r\x1b[2K${line}`);
            last = line;
          },
        });
        if (tty) process.stdout.write('\n');
      }
      const urls = uiUrls(local, state);
      if (opts.json) {
        console.log(
          JSON.stringify(
            {
              stateDir,
              mode: state.mode,
              started: result.started,
              alreadyRunning: result.alreadyRunning,
              skipped: result.skipped,
              unavailable: state.unavailable,
              urls,
              seconds: (Date.now() - t0) / 1000,
              health,
            },
            null,
            2,
          ),
        );
      } else {
        if (health && !health.healthy) {
          const procs = await processStatus(state);
          console.log(formatReport(health, procs.map((p) => ({ node: p.node, daemon: p.daemon, pid: p.pid, state: p.state, ...(p.logTail !== undefined ? { logTail: p.logTail } : {}) }))));
        } else if (health) {
          console.log(`healthy after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
          for (const n of health.notes) console.log(`note: ${n}`);
        }
        console.log('');
        for (const u of urls) console.log(`  ${u.name.padEnd(11)} ${u.url}${u.note ? `  (${u.note})` : ''}`);
        if (state.network) console.log(`\nThe nodes live in network namespaces; reach them from the hub: sudo ip netns exec ${state.network.hub} curl …`);
        console.log(`\n  piinit status ${clusterArg}    piinit down ${clusterArg}`);
      }
      if (health && !health.healthy) {
        throw new UserError(`the local cluster is not healthy after ${timeoutS} s (state and logs in ${stateDir})`, 1);
      }
    });
}
