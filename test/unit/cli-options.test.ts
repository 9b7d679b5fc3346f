import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { listOption } from '../../src/cli/list-option.ts';
import { UserError } from '../../src/errors.ts';

const ARCHES = ['amd64', 'arm64', 'armhf'] as const;

test('listOption: not given is null; names are trimmed and checked; an empty value is refused, not read as all', () => {
  assert.equal(listOption(undefined, ARCHES, '--arch', 'arch'), null);
  assert.deepEqual(listOption(' arm64, armhf ,', ARCHES, '--arch', 'arch'), ['arm64', 'armhf']);
  assert.throws(() => listOption('arm64,mips', ARCHES, '--arch', 'arch'), (e) => e instanceof UserError && e.message === '--arch: unknown arch "mips" (known: amd64, arm64, armhf)');
  for (const empty of ['', ' ', ',']) {
    assert.throws(() => listOption(empty, ARCHES, '--arch', 'arch'), (e) => e instanceof UserError && e.message === '--arch needs at least one arch (known: amd64, arm64, armhf)', JSON.stringify(empty));
  }
});

test('an empty option value (--arch "", --node "", --out ""): refused before the cluster file is read or anything fetched', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, ['bin/piinit.js', ...args], { encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: '/nonexistent-piinit-cache' } });
  for (const [args, option] of [
    [['fetch', 'examples/demo/cluster.yaml', '--arch', ''], '--arch'],
    [['fetch', 'examples/demo/cluster.yaml', '--arch', ' , '], null],
    [['render', 'examples/demo/cluster.yaml', '--node', ''], '--node'],
    [['render', 'examples/demo/cluster.yaml', '--out', ''], '--out'],
  ] as const) {
    const r = run(...args);
    assert.equal(r.status, 1, args.join(' '));
    if (option) assert.equal(r.stderr, `piinit: ${option}: empty value (give one, or leave the option out)\n`);
    else assert.match(r.stderr, /^piinit: --arch needs at least one arch \(known: /);
    assert.equal(r.stdout, '');
  }
});

test('piinit status --ca naming a file that holds no certificate: refused by name, before any request', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-status-ca-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'ca.pem'), 'this is not a certificate\n');
  const r = spawnSync(process.execPath, ['bin/piinit.js', 'status', 'no-such-cluster.yaml', '--ca', join(dir, 'ca.pem')], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `piinit: --ca ${join(dir, 'ca.pem')}: not a PEM certificate (expected a file starting with -----BEGIN CERTIFICATE-----)\n`);
});

test('--json: a command that fails before printing anything still prints one JSON object on stdout', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-json-fail-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const piinit = (...args: string[]) => spawnSync(process.execPath, ['bin/piinit.js', ...args], { encoding: 'utf8' });
  const missing = piinit('status', join(dir, 'nope.yaml'), '--json');
  assert.equal(missing.status, 1);
  assert.deepEqual(JSON.parse(missing.stdout), { ok: false, error: `cluster file ${join(dir, 'nope.yaml')} not found (create one with: piinit init)` });
  assert.equal(missing.stderr, `piinit: cluster file ${join(dir, 'nope.yaml')} not found (create one with: piinit init)\n`);
  // An invalid cluster: the diagnostics too, with file, line and column.
  await writeFile(join(dir, 'cluster.yaml'), 'name: lab\n');
  const invalid = piinit('packages', join(dir, 'cluster.yaml'), '--json', '--out', join(dir, 'out'));
  assert.equal(invalid.status, 1);
  const j = JSON.parse(invalid.stdout) as { ok: boolean; error: string; diagnostics: { file: string; line: number; column: number }[] };
  assert.equal(j.ok, false);
  assert.match(j.error, /^invalid cluster/);
  assert.ok(j.diagnostics.length > 0 && j.diagnostics.every((d) => d.file && d.line >= 1 && d.column >= 1));
  // Without --json, stdout stays empty.
  assert.equal(piinit('status', join(dir, 'nope.yaml')).stdout, '');
  // A usage error commander finds (a choice not offered): JSON too, and its usual exit code.
  const usage = piinit('render', join(dir, 'cluster.yaml'), '--json', '--role', 'router');
  assert.equal(usage.status, 1);
  assert.deepEqual(JSON.parse(usage.stdout), { ok: false, error: "option '--role <role>' argument 'router' is invalid. Allowed choices are server, client, monitor." });
  assert.match(usage.stderr, /^error: option '--role <role>' argument 'router' is invalid/);
  assert.equal(piinit('render', '--help').status, 0);
});

test('piinit up --subnet that is no network: refused before any release is looked for, with nothing made', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-up-subnet-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const piinit = (...args: string[]) => spawnSync(process.execPath, ['bin/piinit.js', ...args], { encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: join(dir, 'cache') } });
  assert.equal(piinit('init', join(dir, 'c')).status, 0);
  const r = piinit('up', join(dir, 'c', 'cluster.yaml'), '--subnet', 'garbage', '--offline', '--state', join(dir, 'state'));
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'piinit: local subnet garbage is not a CIDR network (expected e.g. 192.168.1.0/24)\n');
  assert.equal(r.stdout, '');
  assert.deepEqual((await readdir(dir)).sort(), ['c']);
});
