// `piinit image --format oci`: the container images of the cluster moved into a Docker
// subnet (what `piinit up --docker` runs), one archive per role in --out.
import type { Role } from '../cluster/boards.ts';
import type { Cluster } from '../cluster/types.ts';
import { UserError } from '../errors.ts';
import { oldBaseNote } from '../image/base-age.ts';
import { prunedMessage } from '../image/prune.ts';
import { dockerizeCluster } from './dockerize.ts';
import { buildDockerImages } from './images.ts';

export async function imageOciCommand(
  cluster: Cluster,
  opts: { roles: Role[] | null; boardsGiven: boolean; releaseCache: string; imageCache: string; outDir: string; sources: string[]; refreshBase: boolean; subnet: string; json: boolean; tty: boolean; signal?: AbortSignal },
): Promise<void> {
  if (opts.boardsGiven) throw new UserError('--format oci builds amd64 container images; --board does not apply');
  const docker = dockerizeCluster(cluster, opts.subnet);
  const started = Date.now();
  const results = await buildDockerImages(docker, {
    releaseCache: opts.releaseCache,
    imageCache: opts.imageCache,
    outDir: opts.outDir,
    sources: opts.sources,
    refreshBase: opts.refreshBase,
    ...(opts.roles ? { roles: opts.roles } : {}),
    onStep: opts.tty ? (role, s) => process.stdout.write(`oci ${role}: ${s}…\n`) : undefined,
    signal: opts.signal,
  });
  if (results.length === 0) throw new UserError('no node of the cluster matches --role: nothing to build');
  for (const r of results) {
    const note = oldBaseNote(r.archive, r.baseBuiltAt, Date.now());
    if (note) process.stderr.write(`${note}\n`);
  }
  if (opts.json) {
    console.log(JSON.stringify({ subnet: opts.subnet, images: results }, null, 2));
    return;
  }
  for (const r of results) {
    console.log(`${r.archive}  ${r.tag}  (base ${r.baseCached ? 'cached' : 'built'})`);
    if (r.prunedBases.length) console.log(prunedMessage(r.prunedBases));
  }
  console.log(`built in ${((Date.now() - started) / 1000).toFixed(0)} s for the Docker subnet ${opts.subnet}; load with: docker load -i <archive>`);
}
