// `piinit packages` end to end on the demo cluster: a full set for amd64 from a seeded
// release cache, byte-identical when built again, and clear errors (nothing left behind)
// for a release missing from the cache, a binary for the wrong arch and a read-only --out.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateSecrets, writeSecretsFile } from '../../../src/cluster/secrets.ts';
import type { ComponentSpec } from '../../../src/cluster/types.ts';
import { watchOutput } from '../../helpers/child-output.ts';
import { HOST_AMD64, seedHostAmd64, seedRelease } from './seed-cache.ts';

let dir: string;
let clusterFile: string;
let cacheDir: string;

// The demo's components, as in examples/demo/cluster.yaml.
const components: Record<string, ComponentSpec> = {
  consul: { name: 'consul', version: '1.8.7', source: 'debian', suite: 'bullseye', package: 'consul' },
  nomad: { name: 'nomad', version: '1.6.5', source: 'hashicorp' },
  prometheus: { name: 'prometheus', version: '2.24.1', source: 'debian', suite: 'bullseye', package: 'prometheus' },
  node_exporter: { name: 'node_exporter', version: '1.5.0', source: 'debian', suite: 'bookworm', package: 'prometheus-node-exporter' },
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'piinit-packages-cli-'));
  clusterFile = join(dir, 'cluster.yaml');
  await copyFile('examples/demo/cluster.yaml', clusterFile);
  await writeSecretsFile(join(dir, 'cluster.secrets.yaml'), generateSecrets());
  // The demo has TLS and ACLs on: add the CA, certificates and tokens.
  const gen = spawn(process.execPath, ['bin/piinit.js', 'secrets', 'generate', clusterFile], { stdio: 'inherit' });
  assert.equal(await new Promise((r) => gen.on('close', r)), 0, 'piinit secrets generate');
  cacheDir = join(dir, 'cache');
  await seedHostAmd64(cacheDir, components as never);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function piinit(args: string[], env: Record<string, string> = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/piinit.js', 'packages', clusterFile, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? 1, stdout, stderr }));
  });
}

async function debs(d: string): Promise<string[]> {
  return (await readdir(d)).filter((f) => f.endsWith('.deb')).sort();
}

test('piinit packages --arch amd64 builds the whole set; a rebuild is byte-identical', async () => {
  const env = { SOURCE_DATE_EPOCH: '1764000000' };
  const out1 = join(dir, 'out1');
  const out2 = join(dir, 'out2');
  const a = await piinit(['--arch', 'amd64', '--out', out1, '--cache', cacheDir, '--compression', 'gzip', '--json'], env);
  assert.equal(a.status, 0, a.stderr);
  const report = JSON.parse(a.stdout) as { ok: boolean; configVersion: string; packages: { file: string; kind: string }[]; rolePackages: Record<string, string> };
  assert.equal(report.ok, true);
  assert.match(report.configVersion, /^20251124\.160000\+[0-9a-f]{10}$/);
  assert.deepEqual(report.rolePackages, { server: 'piinit-demo-server', client: 'piinit-demo-client', monitor: 'piinit-demo-monitor' });
  const files = await debs(out1);
  assert.deepEqual(files, report.packages.map((p) => p.file).sort());
  for (const name of ['piinit-consul', 'piinit-nomad', 'piinit-prometheus', 'piinit-node-exporter']) {
    assert.ok(files.some((f) => f.startsWith(`${name}_`) && f.endsWith('_amd64.deb')), name);
  }
  const b = await piinit(['--arch', 'amd64', '--out', out2, '--cache', cacheDir, '--compression', 'gzip'], env);
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stdout, /server: install piinit-demo-server/);
  assert.deepEqual(await debs(out2), files);
  for (const f of files) {
    assert.ok((await readFile(join(out1, f))).equals(await readFile(join(out2, f))), `${f} differs between two builds`);
  }
  // A package with a file others may not read (a key, a token) is readable by its owner only.
  let hidden = 0;
  for (const f of files) {
    const listing = execFileSync('dpkg-deb', ['-c', join(out1, f)], { encoding: 'utf8' });
    const secret = listing.split('\n').some((l) => /^-.{6}-/.test(l));
    if (secret) hidden += 1;
    assert.equal((await stat(join(out1, f))).mode & 0o777, secret ? 0o600 : 0o644, f);
  }
  assert.ok(hidden > 0 && hidden < files.length, `${hidden} of ${files.length} packages hold secrets`);
});

test('the temp file of a build killed mid-write is removed by the next build; a live writer\'s is kept', async () => {
  const out = join(dir, 'out-killed');
  await mkdir(out);
  // As writeDeb names them: a killed build's (its PID gone), and this live process's.
  const dead = `.piinit-demo-server_1_all.deb.${spawnSync('true').pid}.0badc0de.tmp`;
  const live = `.piinit-demo-server_1_all.deb.${process.pid}.0badc0de.tmp`;
  for (const f of [dead, live]) await writeFile(join(out, f), 'half a package', { mode: 0o600 });
  const r = await piinit(['--arch', 'amd64', '--out', out, '--cache', cacheDir, '--compression', 'gzip']);
  assert.equal(r.status, 0, r.stderr);
  const left = await readdir(out);
  assert.ok(!left.includes(dead), 'the dead build\'s temp file is removed');
  assert.ok(left.includes(live), 'a running writer\'s is not touched');
});

test('Ctrl-C in a terminal during piinit packages: status 130, the cursor shown again; the next build completes the set', async (t) => {
  const out = join(dir, 'out-ctrl-c');
  const cmd = `${process.execPath} bin/piinit.js packages ${clusterFile} --arch amd64 --out ${out} --cache ${cacheDir} --compression gzip`;
  const term = spawn('script', ['-qec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => {
    if (term.exitCode === null && term.signalCode === null) term.kill('SIGKILL');
  });
  const screen = watchOutput(term, ['stdout']);
  await screen.until('.deb', 120_000, 'the progress bar naming a package');
  term.stdin.write('\x03');
  const [code] = (await Promise.race([once(term, 'close'), new Promise((r) => setTimeout(() => r(['timeout']), 60_000))])) as [number | string];
  assert.equal(code, 130, screen.text);
  assert.match(screen.text, /piinit: SIGINT: stopped; each \.deb written is complete, the set is not: run piinit packages again/);
  const hidden = screen.text.indexOf('\x1b[?25l');
  assert.ok(hidden >= 0 && screen.text.lastIndexOf('\x1b[?25h') > hidden, 'the bar hid the cursor; it is shown again');
  const r = await piinit(['--arch', 'amd64', '--out', out, '--cache', cacheDir, '--compression', 'gzip']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual((await readdir(out)).filter((f) => !f.endsWith('.deb')), [], 'no temp file is left');
});

test('without SOURCE_DATE_EPOCH the cluster files’ time sets the version; a later change upgrades', async () => {
  const out = join(dir, 'out-mtime');
  const t1 = new Date('2026-01-02T03:04:05Z');
  await utimes(clusterFile, t1, t1);
  await utimes(join(dir, 'cluster.secrets.yaml'), t1, t1);
  const env = { SOURCE_DATE_EPOCH: '' };
  const first = await piinit(['--arch', 'amd64', '--out', out, '--cache', cacheDir, '--compression', 'none', '--json'], env);
  assert.equal(first.status, 0, first.stderr);
  const v1 = (JSON.parse(first.stdout) as { configVersion: string }).configVersion;
  assert.match(v1, /^20260102\.030405\+/);
  const t2 = new Date('2026-01-03T00:00:00Z');
  await utimes(clusterFile, t2, t2);
  const second = await piinit(['--arch', 'amd64', '--out', out, '--cache', cacheDir, '--compression', 'none', '--json'], env);
  assert.equal(second.status, 0, second.stderr);
  const v2 = (JSON.parse(second.stdout) as { configVersion: string; replaced: string[] }).configVersion;
  assert.match(v2, /^20260103\.000000\+/);
  // dpkg agrees that the new version is newer.
  const cmp = spawn('dpkg', ['--compare-versions', v2, 'gt', v1]);
  assert.equal(await new Promise((r) => cmp.on('close', r)), 0);
  // Only the new set is left in --out.
  const left = await debs(out);
  assert.ok(left.every((f) => !f.includes(v1.replace(/^\d+:/, ''))), left.join(' '));
});

test('a release missing from the cache: clear error, no .deb written', async () => {
  const out = join(dir, 'out-missing');
  const empty = join(dir, 'empty-cache');
  await mkdir(empty);
  const r = await piinit(['--arch', 'amd64', '--out', out, '--cache', empty]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /consul 1\.8\.7 for amd64 is not in the release cache/);
  assert.match(r.stderr, /piinit fetch/);
  assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/); // no stack trace
  assert.deepEqual(await readdir(out), []);
});

test('a binary for the wrong arch: clear error naming it, no .deb written', async () => {
  const out = join(dir, 'out-wrong-arch');
  const cache = join(dir, 'cache-arm64');
  for (const [c, programs] of Object.entries(HOST_AMD64)) await seedRelease(cache, components[c]!, 'arm64', programs);
  const r = await piinit(['--arch', 'arm64', '--out', out, '--cache', cache]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /consul 1\.8\.7 for arm64: consul is built for x86_64\/64-bit, not arm64/);
  assert.deepEqual(await readdir(out), []);
});

test('an output directory that is not writable: clear error before any work', async (t) => {
  const out = join(dir, 'out-ro');
  await mkdir(out);
  const mount = spawn('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', out]);
  assert.equal(await new Promise((r) => mount.on('close', r)), 0, 'mount a read-only tmpfs');
  t.after(async () => {
    const umount = spawn('umount', [out]);
    await new Promise((r) => umount.on('close', r));
  });
  const r = await piinit(['--arch', 'amd64', '--out', out, '--cache', cacheDir]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot write packages to .*out-ro: EROFS/);
  assert.deepEqual(await readdir(out), []);
});
