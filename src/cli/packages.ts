import type { Command } from '@commander-js/extra-typings';
import { Option } from '@commander-js/extra-typings';
import { resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { DEBIAN_ARCHES } from '../cluster/boards.ts';
import { loadCluster } from '../cluster/load.ts';
import { type BuildResult, buildPackages } from '../deb/build.ts';
import type { CompressionKind } from '../deb/model.ts';
import { defaultCacheDir } from '../releases/cache.ts';
import { stopAtOnce } from './interrupt.ts';
import { listOption } from './list-option.ts';

function size(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

function printReport(r: BuildResult): void {
  const width = Math.max(...r.packages.map((p) => p.file.length));
  for (const p of r.packages) console.log(`${p.file.padEnd(width)}  ${size(p.size).padStart(9)}`);
  console.log(`\n${r.packages.length} packages in ${r.outDir} (arches: ${r.arches.join(', ')}; config version ${r.configVersion}, SOURCE_DATE_EPOCH=${r.epoch})`);
  for (const [role, pkg] of Object.entries(r.rolePackages)) console.log(`  ${role}: install ${pkg}`);
  if (r.replaced.length) console.log(`removed older builds: ${r.replaced.join(', ')}`);
}

export function register(program: Command): void {
  program
    .command('packages')
    .description(
      'Build reproducible Debian packages: the Consul, Nomad, Prometheus and node_exporter ' +
        'binaries per architecture (from the release cache) and the configuration of this ' +
        'cluster per role (users, base system, one package per daemon, one per role).',
    )
    .argument('[cluster]', 'the cluster file', 'cluster.yaml')
    .option('--arch <arches>', `comma-separated Debian arches (default: those the cluster's boards need; known: ${DEBIAN_ARCHES.join(', ')})`)
    .option('--out <dir>', 'where the .debs go', 'packages')
    .option('--cache <dir>', 'release cache filled by `piinit fetch` (default: $XDG_CACHE_HOME/piinit or ~/.cache/piinit)')
    .option('--secrets <file>', 'the secrets file (default: beside the cluster file)')
    .addOption(new Option('--compression <kind>', 'compression of the archive members').choices(['xz', 'gzip', 'none'] as const).default('xz' as const))
    .addOption(new Option('--json', 'print the result as JSON'))
    .addHelpText(
      'after',
      '\nBuilds are reproducible: with the same inputs and SOURCE_DATE_EPOCH the .debs are\n' +
        'byte-identical. Without SOURCE_DATE_EPOCH the newest modification time of the cluster\n' +
        'and secrets files is used; it also sets the config packages\' version\n' +
        '(<UTC date>.<time>+<digest>), so each change of the cluster upgrades them.\n' +
        'The config packages hold the cluster\'s secrets (owner-only modes): keep them private.',
    )
    .action(async (clusterPath, opts) => {
      const arches = listOption(opts.arch, DEBIAN_ARCHES, '--arch', 'arch');
      const { cluster } = await loadCluster(clusterPath, { secretsPath: opts.secrets });
      const progress =
        !opts.json && process.stdout.isTTY === true
          ? new cliProgress.SingleBar({ format: ' {bar} {value}/{total} | {file}', hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic)
          : null;
      let started = false;
      let result: BuildResult;
      // Each .deb is written to a temp file and renamed; the next build removes a killed one's.
      const dispose = stopAtOnce(() => progress?.stop(), 'each .deb written is complete, the set is not: run piinit packages again');
      try {
        result = await buildPackages({
          cluster,
          ...(arches ? { arches } : {}),
          outDir: resolve(opts.out),
          cacheDir: opts.cache ?? defaultCacheDir(),
          compression: { kind: opts.compression as CompressionKind },
          onPackage: (p, i, total) => {
            if (!progress) return;
            if (!started) progress.start(total, 0, { file: '' });
            started = true;
            progress.update(i, { file: p.file });
          },
        });
      } finally {
        dispose();
        progress?.stop();
      }
      if (opts.json) console.log(JSON.stringify({ ok: true, ...result }, null, 2));
      else printReport(result);
    });
}
