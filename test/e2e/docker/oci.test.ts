// `piinit image --format oci` end to end with a real Docker daemon: the server role's amd64
// root (the image pipeline: cached base + the fixture cluster's .debs, dockerized) as an
// image archive; a second build gives the same image; `docker load`; `docker run` with
// systemd as PID 1 reaches a running system with Consul up. The base root file system is
// shared through $PIINIT_IMAGE_TEST_CACHE, by default the test cache's images/ (kept between
// runs, so it is built once per CI run).
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { dockerizeCluster } from '../../../src/docker/dockerize.ts';
import { SYSTEMD_RUN_ARGS } from '../../../src/docker/container.ts';
import { buildDockerImages } from '../../../src/docker/images.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';
import { testCacheDir } from '../../helpers/debian-root.ts';
import { seedHostAmd64 } from '../../integration/deb/seed-cache.ts';
import { docker, startDockerd, type Dockerd } from './dockerd.ts';

const SUBNET = '172.31.251.0/24';
let work: string;
let dockerdStarting: Promise<Dockerd> | undefined;
const cleanup: (() => Promise<unknown>)[] = [];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'piinit-oci-'));
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  if (dockerdStarting) await (await dockerdStarting.catch(() => null))?.stop();
  await rm(work, { recursive: true, force: true });
});

test('the server role as an OCI/Docker archive: reproducible, loads, boots systemd with Consul', { timeout: 30 * 60_000 }, async () => {
  const cluster = dockerizeCluster(fixtureCluster(), SUBNET);
  const releaseCache = join(work, 'releases');
  await seedHostAmd64(releaseCache, cluster.components);
  const imageCache = process.env.PIINIT_IMAGE_TEST_CACHE ?? join(testCacheDir(), 'images');
  await mkdir(imageCache, { recursive: true });
  const opts = { releaseCache, imageCache, roles: ['server' as const], sourceDateEpoch: 1704067200 };
  dockerdStarting = startDockerd(join(work, 'dk'));
  dockerdStarting.catch(() => {});

  const [first] = await buildDockerImages(cluster, { ...opts, outDir: join(work, 'a') });
  const [second] = await buildDockerImages(cluster, { ...opts, outDir: join(work, 'b') });
  assert.ok(first && second);
  assert.equal(second.layerDigest, first.layerDigest, 'same inputs, same layer');
  assert.equal(second.imageId, first.imageId, 'same inputs, same image config');
  assert.match(first.tag, /^piinit\/homelab-server:[0-9a-f]{12}$/);
  assert.equal(statSync(first.archive).mode & 0o777, 0o600, "the archive holds the cluster's keys: owner-only");

  const d = await dockerdStarting;
  const loaded = await docker(d, ['load', '-i', first.archive]);
  assert.match(loaded, new RegExp(first.tag.replace(/[/.]/g, '\\$&')));
  const inspect = JSON.parse(await docker(d, ['image', 'inspect', first.tag])) as { Id: string; Config: { Cmd: string[]; StopSignal: string; Env: string[] } }[];
  assert.equal(inspect[0]!.Id, `sha256:${first.imageId}`);
  assert.deepEqual(inspect[0]!.Config.Cmd, ['/sbin/init']);
  assert.equal(inspect[0]!.Config.StopSignal, 'SIGRTMIN+3');

  const net = `piinit-oci-test-${process.pid}`;
  await docker(d, ['network', 'create', '--subnet', SUBNET, net]);
  cleanup.push(() => docker(d, ['network', 'rm', net]));
  const node = cluster.nodes.find((n) => n.role === 'server')!;
  const name = `${net}-${node.name}`;
  cleanup.push(() => docker(d, ['rm', '-f', '-v', name]));
  await docker(d, ['run', '-d', '--name', name, '--hostname', node.name, '--network', net, '--ip', node.address!, ...SYSTEMD_RUN_ARGS, '-v', `${name}-data:/data`, first.tag]);
  cleanup.push(() => docker(d, ['volume', 'rm', `${name}-data`]));

  const exec = (args: string[]) => docker(d, ['exec', name, ...args]).catch((e: Error) => e.message);
  let state = '';
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    state = (await exec(['systemctl', 'is-system-running'])).trim().split('\n').pop()!;
    if (state === 'running' || state === 'degraded') break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const failed = await exec(['systemctl', '--failed', '--no-legend', '--plain']);
  assert.equal(state, 'running', `systemd state ${state}; failed units:\n${failed}\n${await exec(['journalctl', '-b', '--no-pager', '-n', '80'])}`);
  assert.equal((await exec(['systemctl', 'is-active', 'consul.service'])).trim(), 'active');
  // /etc is writable in a container: systemd's commit of a transient machine ID must have
  // been skipped (the ID lives on /data), not have run into piinit's bind mount.
  assert.equal((await exec(['systemctl', 'show', '-p', 'ConditionResult', '--value', 'systemd-machine-id-commit.service'])).trim(), 'no');
  assert.equal((await exec(['cat', '/data/etc/machine-id'])).trim(), (await exec(['cat', '/etc/machine-id'])).trim());
  assert.equal((await exec(['hostname'])).trim(), node.name);
  // The state paths are bind mounts into the /data volume, which Docker filled from the image.
  assert.match(await exec(['findmnt', '-no', 'SOURCE', '/opt/consul']), /\/opt\/consul\]?\s*$/m);
  assert.match(await exec(['ls', '/data']), /opt/);
});
