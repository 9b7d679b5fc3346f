import type { Command } from '@commander-js/extra-typings';
import { Option } from '@commander-js/extra-typings';
import cliProgress from 'cli-progress';
import { DEBIAN_ARCHES, type DebianArch } from '../cluster/boards.ts';
import { loadCluster } from '../cluster/load.ts';
import { archesNeeded, COMPONENTS, type ComponentName } from '../cluster/types.ts';
import { UserError } from '../errors.ts';
import { defaultCacheDir } from '../releases/cache.ts';
import { ensureReleases, type FetchReport, FetchVerificationError, type ProgressEvent } from '../releases/fetch.ts';
import { holderName } from '../pid-lock.ts';
import { stopAtOnce } from './interrupt.ts';
import { listOption } from './list-option.ts';

function mib(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** What a fetch waiting for another's download of the same file says. Pure. */
export function waitingLine(file: string, holder: number | null | undefined): string {
  return `${file}: waiting for ${holderName(holder)}, which is downloading it into this cache`;
}

/** Progress for commands without bars (up): only a wait is worth a line, on stderr. */
export function sayWaits(ev: ProgressEvent): void {
  if (ev.phase === 'waiting') console.error(waitingLine(ev.file, ev.holder));
}

/** One progress bar per file on a terminal; otherwise only a line on stderr while a
 *  download waits for another piinit's. */
function progressDisplay(enabled: boolean): { onProgress: (ev: ProgressEvent) => void; stop: () => void } {
  if (!enabled) {
    return { onProgress: sayWaits, stop: () => {} };
  }
  const multi = new cliProgress.MultiBar(
    {
      format: ' {bar} {percentage}% | {value}/{total} MiB | {file}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      barsize: 30,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, cliProgress.SingleBar>();
  const toMiB = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;
  return {
    onProgress(ev) {
      let bar = bars.get(ev.file);
      const total = toMiB(ev.total ?? ev.received);
      const label = ev.phase === 'waiting' ? waitingLine(ev.file, ev.holder) : ev.file;
      if (!bar) {
        bar = multi.create(total, toMiB(ev.received), { file: label });
        bars.set(ev.file, bar);
      }
      if (ev.total !== null) bar.setTotal(total);
      bar.update(toMiB(ev.received), { file: label });
      if (ev.phase === 'done') bar.stop();
    },
    stop: () => multi.stop(),
  };
}

function printReport(report: FetchReport, cacheDir: string): void {
  const fetched = new Set(report.fetched.map((f) => `${f.component} ${f.arch}`));
  for (const e of report.entries) {
    const how = fetched.has(`${e.component} ${e.arch}`) ? 'fetched' : 'cached ';
    const bins = Object.entries(e.binaries)
      .map(([p, path]) => `${p}=${path}`)
      .join(' ');
    console.log(`${how} ${e.component} ${e.version} ${e.arch} (${e.source}) ${bins}`);
  }
  for (const u of report.unavailable) console.log(`MISSING ${u.component} ${u.arch}: ${u.reason}`);
  console.log(`cache ${cacheDir}, downloaded ${mib(report.downloadedBytes)}`);
}

export function register(program: Command): void {
  program
    .command('fetch')
    .description(
      'Download, verify and cache the Consul, Nomad, Prometheus and node_exporter binaries ' +
        'for every architecture the cluster needs (later steps read them from the cache).',
    )
    .argument('[cluster]', 'the cluster file', 'cluster.yaml')
    .option('--arch <arches>', `comma-separated Debian arches (default: those the cluster's boards need; known: ${DEBIAN_ARCHES.join(', ')})`)
    .option('--component <names>', `only these components (comma-separated: ${COMPONENTS.join(', ')})`)
    .option('--cache <dir>', 'cache directory (default: $XDG_CACHE_HOME/piinit or ~/.cache/piinit)')
    .option('--secrets <file>', 'the secrets file (default: beside the cluster file)')
    .option('--offline', 'use only the cache; fail naming what is missing')
    .option('--verify', 'hash every cached binary again (default: only those changed since they were last hashed)')
    .option(
      '--allow-missing [names]',
      'exit 0 even when some components (all, or the comma-separated ones named) have no reachable source',
    )
    .addOption(new Option('--json', 'print the report as JSON'))
    .addHelpText(
      'after',
      '\nExit codes: 0 everything is cached and verified; 1 an error, or a download failed\n' +
        'verification (nothing bad is kept); 2 some component/arch has no reachable source\n' +
        '(the rest is still fetched; see --allow-missing).',
    )
    .action(async (clusterPath, opts) => {
      const archesGiven = listOption(opts.arch, DEBIAN_ARCHES, '--arch', 'arch');
      const allowed =
        opts.allowMissing === true ? new Set<string>(COMPONENTS) : new Set(listOption(opts.allowMissing, COMPONENTS, '--allow-missing', 'component') ?? []);
      const components: ComponentName[] = listOption(opts.component, COMPONENTS, '--component', 'component') ?? [...COMPONENTS];
      const { cluster } = await loadCluster(clusterPath, { secretsPath: opts.secrets });
      const arches: DebianArch[] = archesGiven ?? archesNeeded(cluster);
      const cacheDir = opts.cache ?? defaultCacheDir();
      const progress = progressDisplay(!opts.json && process.stdout.isTTY === true);
      // Nothing is lost by stopping at once: the next fetch resumes each part and takes over
      // this run's locks.
      const dispose = stopAtOnce(progress.stop, 'the next piinit fetch continues the downloads where they are');
      let report: FetchReport;
      try {
        report = await ensureReleases({
          cluster,
          arches,
          cacheDir,
          offline: opts.offline,
          components,
          onProgress: progress.onProgress,
          verify: opts.verify ? 'full' : 'stamp',
        });
      } catch (err) {
        progress.stop();
        if (err instanceof FetchVerificationError) {
          if (opts.json) console.log(JSON.stringify({ ok: false, cacheDir, ...err.report, failures: err.failures.map((f) => ({ component: f.component, arch: f.arch, reason: f.error.message })) }, null, 2));
          else printReport(err.report, cacheDir);
        }
        throw err;
      } finally {
        dispose();
      }
      progress.stop();
      const blocking = report.unavailable.filter((u) => !allowed.has(u.component));
      if (opts.json) console.log(JSON.stringify({ ok: blocking.length === 0, cacheDir, ...report }, null, 2));
      else printReport(report, cacheDir);
      if (blocking.length) {
        const what = blocking.map((u) => `${u.component} ${u.arch}`).join(', ');
        throw new UserError(
          `${what}: no reachable source${opts.offline ? ' in the cache (offline)' : ''}; everything else is cached. ` +
            `Fix the source in ${clusterPath}, or pass --allow-missing ${[...new Set(blocking.map((u) => u.component))].join(',')} to accept it.`,
          2,
        );
      }
    });
}
