// `piinit render` end to end: a cluster from `piinit init`, listing without secrets, --json,
// --out with modes and manifest, byte-identical output from two separate runs, clear errors.
// (Each CLI run costs a tsx start-up: keep their number small.)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { init } from '../../../src/cli/init.ts';
import { renderSelection, writeRendered } from '../../../src/cli/render.ts';
import { UserError } from '../../../src/errors.ts';
import { loadCluster } from '../../../src/cluster/load.ts';
import type { Cluster } from '../../../src/cluster/types.ts';
import { tempDir } from './tools.ts';

function piinit(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/piinit.js', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function secretValues(c: Cluster): string[] {
  const s = c.secrets;
  const out = [s.consulGossipKey, s.nomadGossipKey, ...Object.values(s.tokens).filter((v): v is string => !!v)];
  if (s.tls) for (const k of [s.tls.ca, s.tls.consulServer, s.tls.nomadServer, s.tls.nomadClient]) out.push(k.key.split('\n')[1]!);
  return out;
}

/** path → [mode, content or link target] for every file under dir. */
async function snapshot(dir: string, base = dir, out = new Map<string, string>()): Promise<Map<string, string>> {
  for (const name of (await readdir(dir)).sort()) {
    const p = join(dir, name);
    const st = await lstat(p);
    const rel = p.slice(base.length);
    if (st.isDirectory()) await snapshot(p, base, out);
    else if (st.isSymbolicLink()) out.set(rel, `link ${await readlink(p)}`);
    else out.set(rel, `${(st.mode & 0o7777).toString(8)} ${(await readFile(p)).toString('base64')}`);
  }
  return out;
}

test('piinit render: listing, --json, --out (two runs, byte-identical), errors', async (t) => {
  const dir = await tempDir(t);
  await init(dir, { force: false, clients: 1, secretsOnly: false });
  const clusterFile = join(dir, 'cluster.yaml');
  const { cluster } = await loadCluster(clusterFile);
  const secrets = secretValues(cluster);
  assert.ok(secrets.length >= 2);

  const list = piinit(['render', clusterFile]);
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout, /^node core1 \(server\)/m);
  assert.match(list.stdout, /0640 {2}root:consul +\d+ {2}\/etc\/consul\.d\/encrypt\.json {2}\(secret\)/);
  for (const s of secrets) assert.ok(!list.stdout.includes(s) && !list.stderr.includes(s), 'a secret was printed');

  const js = piinit(['render', clusterFile, '--role', 'client', '--json']);
  assert.equal(js.status, 0, js.stderr);
  const parsed = JSON.parse(js.stdout);
  assert.equal(parsed[0].role, 'client');
  assert.deepEqual(parsed[0].bootCmdlineExtras, ['cgroup_enable=memory', 'cgroup_memory=1']);
  assert.ok(parsed[0].files.some((f: { path: string }) => f.path === '/etc/nomad.d/nomad.json'));
  for (const s of secrets) assert.ok(!js.stdout.includes(s), 'a secret was printed in --json');

  const [a, b] = [join(dir, 'out-a'), join(dir, 'out-b')];
  for (const out of [a, b]) {
    const r = piinit(['render', clusterFile, '--out', out]);
    assert.equal(r.status, 0, r.stderr);
  }
  // Rendering again over an existing directory replaces it whole (in-process: same code path).
  await writeRendered(renderSelection(cluster, {}), a);
  const [sa, sb] = [await snapshot(a), await snapshot(b)];
  assert.deepEqual([...sa.keys()], [...sb.keys()]);
  for (const [k, v] of sa) assert.equal(v, sb.get(k), `${k} differs between two renders`);
  assert.equal((await lstat(join(a, 'core1/etc/consul.d/encrypt.json'))).mode & 0o777, 0o640);
  assert.equal((await lstat(a)).mode & 0o777, 0o700);
  assert.equal(await readlink(join(a, 'core1/etc/systemd/system/multi-user.target.wants/consul.service')), '/usr/lib/systemd/system/consul.service');
  const manifest = JSON.parse(await readFile(join(a, 'core1.manifest.json'), 'utf8'));
  assert.equal(manifest.node, 'core1');
  assert.deepEqual(
    manifest.files.find((f: { path: string }) => f.path === '/etc/consul.d/encrypt.json'),
    { path: '/etc/consul.d/encrypt.json', type: 'file', mode: '0640', owner: 'root', group: 'consul', size: 64, secret: true },
  );
  assert.ok(!(await readdir(a)).some((n) => n.includes('.tmp')), 'no temp dirs left');

  assert.throws(() => renderSelection(cluster, { node: 'nope' }), (e: unknown) => e instanceof UserError && /--node nope: no such node/.test(e.message));
});
