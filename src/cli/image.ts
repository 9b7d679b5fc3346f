import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { resolve, join } from 'node:path';
import type { Command } from '@commander-js/extra-typings';
import { BOARDS, ROLES } from '../cluster/boards.ts';
import { loadCluster } from '../cluster/load.ts';
import { UserError } from '../errors.ts';
import { defaultCacheDir } from '../releases/cache.ts';
import { bootCmdlineExtras } from '../render/index.ts';
import { buildImage, imageSources, type ImageResult } from '../image/build.ts';
import { hostMirrors, resolveMirrors } from '../image/mirror.ts';
import { reexecRootless } from '../image/rootless.ts';
import { externalDepends, roleDebs } from '../image/debs.ts';
import { optionalPackages } from '../image/system.ts';
import { oldBaseNote } from '../image/base-age.ts';
import { refreshOnce } from '../image/base.ts';
import { prunedMessage } from '../image/prune.ts';
import { planImages, withoutImageMessage } from '../image/plan.ts';
import { IMAGE_TARGETS } from '../image/targets.ts';
import { imageOciCommand } from '../docker/image-command.ts';
import { onInterrupt, type Interrupt } from './interrupt.ts';
import { listOption } from './list-option.ts';
import { DEFAULT_DOCKER_SUBNET } from '../docker/dockerize.ts';

/** The image's apt sources: --mirror and --security-mirror, else the host apt's archives. */
async function archiveSources(mirror: string | undefined, securityMirror: string | undefined): Promise<string[]> {
  const m = resolveMirrors(await hostMirrors(), { mirror, securityMirror });
  if (!m.security) process.stderr.write('warning: building without Debian security updates (--security-mirror none)\n');
  return imageSources(m);
}

const mib = (n: number | null) => (n === null ? '-' : `${(n / 1024 / 1024).toFixed(0)} MiB`);

/** Ctrl-C in a build: the step under way ends (the terminal's SIGINT also ends its tools),
 *  the build unmounts its root and removes its work directory. A second one exits at once;
 *  what that leaves, the next build's sweep removes (image/orphans.ts). */
function buildInterrupt(imageCache: string): Interrupt {
  return onInterrupt('stopping after the current step and cleaning up...', `the next piinit image removes what is left in ${imageCache}`);
}

export function register(program: Command): void {
  program
    .command('image')
    .description(
      'Build one immutable OS image per board kind and role (Debian bookworm; read-only root, ' +
        'state on a data partition that grows to fill the card on first boot). Pi 3/4 share ' +
        'one arm64 image; Pi 2 (armhf), Pi Zero/1 (armel) and amd64 have their own. No image ' +
        'for the Pi 5 yet: bookworm cannot boot it.',
    )
    .argument('[cluster]', 'cluster file', 'cluster.yaml')
    .option('--board <boards>', `only images for these boards, comma separated (${BOARDS.join(', ')})`)
    .option('--role <roles>', `only these roles, comma separated (${ROLES.join(', ')})`)
    .option('--out <dir>', 'where the images go', 'images')
    .option('--debs <dir>', 'directory with the .debs from `piinit packages`', 'packages')
    .option('--cache <dir>', 'cache directory (base root file systems under <cache>/images; default: $XDG_CACHE_HOME/piinit or ~/.cache/piinit)')
    .option('--no-xz', 'skip the xz-compressed copy')
    .option('--refresh-base', 'rebuild the cached base root file systems, each once (e.g. for Debian security updates)')
    .option('--mirror <url>', "the Debian archive to build from (default: the one the host's apt uses)")
    .option('--security-mirror <url>', "the Debian security archive (default: the host apt's); none: build without security updates")
    .option('--json', 'print the results as JSON')
    .option('--format <format>', 'disk: disk images for boards; oci: amd64 container images for Docker (docker load -i)', 'disk')
    .option('--docker-subnet <cidr>', `with --format oci: the Docker network the containers live in (default ${DEFAULT_DOCKER_SUBNET})`)
    .addHelpText(
      'after',
      '\nOutputs per image in --out: <name>.img, <name>.img.xz, <name>.img.bmap, <name>.img.sha256,\n' +
        '<name>.manifest.json (every package and version inside).\n' +
        'Runs as root, or rootless in a user namespace (needs uidmap and the user\'s subordinate IDs in\n' +
        '/etc/subuid and /etc/subgid). Pi images on a PC need qemu-user-static with binfmt_misc.\n' +
        'SOURCE_DATE_EPOCH makes builds reproducible (default 2024-01-01).',
    )
    .action(async (clusterPath, opts) => {
      const boards = listOption(opts.board, BOARDS, '--board', 'board');
      const roles = listOption(opts.role, ROLES, '--role', 'role');
      if (opts.format !== 'disk' && opts.format !== 'oci') throw new UserError(`unknown --format ${opts.format} (known: disk, oci)`);
      // Directories the layer makes take their mode from the umask: a user's 002 would give
      // the image other modes (and another contentHash) than a build under sudo.
      process.umask(0o022);
      if (process.getuid?.() !== 0) return reexecRootless(); // as root of a user namespace: rootless.ts
      const { cluster } = await loadCluster(clusterPath);
      if (opts.format === 'oci') {
        const cache = resolve(opts.cache ?? defaultCacheDir());
        const imageCache = join(cache, 'images');
        const sources = await archiveSources(opts.mirror, opts.securityMirror);
        const interrupt = buildInterrupt(imageCache);
        try {
          return await imageOciCommand(cluster, { roles, boardsGiven: !!boards, releaseCache: cache, imageCache, outDir: resolve(opts.out), sources, refreshBase: !!opts.refreshBase, subnet: opts.dockerSubnet ?? DEFAULT_DOCKER_SUBNET, json: !!opts.json, tty: process.stdout.isTTY && !opts.json, signal: interrupt.signal });
        } finally {
          interrupt.dispose();
        }
      }
      const plan = planImages(cluster.nodes, boards, roles);
      const refusal = withoutImageMessage(plan, cluster.nodes);
      if (refusal) throw new UserError(refusal);
      if (plan.images.length === 0) throw new UserError('no node of the cluster matches --board/--role: nothing to build');
      const sources = await archiveSources(opts.mirror, opts.securityMirror);
      const cacheDir = join(resolve(opts.cache ?? defaultCacheDir()), 'images');
      const outDir = resolve(opts.out);
      // Before the base build, which can take long: an --out that cannot be written fails now.
      await mkdir(outDir, { recursive: true });
      await access(outDir, constants.W_OK);
      const ssh = cluster.ssh.authorizedKeys.some((k) => k.trim());
      const tty = process.stdout.isTTY && !opts.json;
      const results: (ImageResult & { nodes: string[] })[] = [];
      const refreshBase = opts.refreshBase ? refreshOnce() : false; // images of one kind may share a base
      const interrupt = buildInterrupt(cacheDir);
      try {
        for (const g of plan.images) {
          const target = IMAGE_TARGETS[g.kind];
          const debs = await roleDebs(resolve(opts.debs), cluster.name, g.role, target.arch);
          const started = Date.now();
          const r = await buildImage(
            {
              cluster: cluster.name,
              board: g.board,
              role: g.role,
              debs,
              ssh,
              cmdlineExtras: bootCmdlineExtras(cluster, g.role),
              // dpkg -i in the layer has no apt: what our .debs depend on must come with the base.
              extraPackages: [...optionalPackages({ ssh, wifi: cluster.wifi !== null, raspi: target.boot === 'raspi' }), ...(await externalDepends(debs))],
            },
            {
              cacheDir,
              outDir,
              xz: opts.xz,
              sources,
              refreshBase,
              onStep: tty ? (s) => process.stdout.write(`${g.kind} ${g.role}: ${s}…\n`) : undefined,
              onWait: (m) => process.stderr.write(`piinit: ${m}\n`),
              signal: interrupt.signal,
            },
          );
          results.push({ ...r, nodes: g.nodes });
          const note = oldBaseNote(`${r.name}.img`, r.baseBuiltAt, Date.now());
          if (note) process.stderr.write(`${note}\n`);
          if (!opts.json) {
            console.log(
              `${r.name}.img  ${mib(r.sizes.rawBytes)} raw, ${mib(r.sizes.usedBytes)} used, ${mib(r.sizes.xzBytes)} xz` +
                (r.xzChunks && r.xzChunks.reused > 0 ? ` (${r.xzChunks.reused} of ${r.xzChunks.chunks} xz chunks kept from the last build)` : '') +
                `  (base ${r.baseCached ? 'cached' : 'built'}, ${((Date.now() - started) / 1000).toFixed(0)} s)` +
                `\n  for ${g.nodes.join(', ')}`,
            );
            if (r.prunedBases.length) console.log(prunedMessage(r.prunedBases));
          }
        }
      } finally {
        interrupt.dispose();
      }
      if (opts.json) {
        console.log(JSON.stringify(results.map((r) => ({ name: r.name, kind: r.kind, role: r.role, nodes: r.nodes, files: r.files, sizes: r.sizes, sha256: r.sha256, xzChunks: r.xzChunks, baseKey: r.baseKey, baseCached: r.baseCached, baseBuiltAt: r.baseBuiltAt, prunedBases: r.prunedBases, contentHash: r.contentHash, timings: r.timings })), null, 2));
      } else {
        console.log(`images in ${outDir}`);
      }
    });
}
