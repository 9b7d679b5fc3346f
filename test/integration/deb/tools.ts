// Shared steps of the packaging integration tests: build the fixture cluster's packages
// from a seeded cache, run dpkg-deb and lintian, install a role into a Debian root.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Role } from '../../../src/cluster/boards.ts';
import type { BuildResult, BuiltPackage } from '../../../src/deb/build.ts';
import { EXPECTED_LINTIAN_WARNINGS, parseLintian } from '../../../src/deb/lintian.ts';
import { inRoot } from '../../helpers/debian-root.ts';

export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ status: number; out: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '';
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? 1, out, stdout }));
  });
}

export async function tempDir(t: TestContext, prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

/** lintian over the given .debs: no error, and only the warnings documented as inherent. */
export async function assertLintianClean(debs: string[]): Promise<void> {
  const r = await run('lintian', ['--no-tag-display-limit', ...debs]);
  const tags = parseLintian(r.out);
  const errors = tags.filter((t) => t.severity === 'E');
  assert.deepEqual(errors.map((t) => t.line), [], 'lintian errors');
  const unexpected = tags.filter((t) => t.severity === 'W' && !(t.tag in EXPECTED_LINTIAN_WARNINGS));
  assert.deepEqual(unexpected.map((t) => t.line), [], 'lintian warnings not documented as inherent');
  // lintian exits non-zero only for errors (and for its own failures).
  assert.equal(r.status, 0, r.out);
}

/** The built packages a role needs, users first (its Pre-Depends). */
export function roleDebs(result: BuildResult, role: Role, arch: string): BuiltPackage[] {
  const prefix = result.rolePackages[role]!.slice(0, -role.length - 1);
  const variant = role === 'server' ? 'server' : 'client';
  const wanted = new Set([
    `${prefix}-users`,
    `${prefix}-base`,
    `${prefix}-${role}`,
    `${prefix}-consul-${variant}`,
    `${prefix}-nomad-${variant}`,
    `${prefix}-node-exporter`,
    'piinit-consul',
    'piinit-nomad',
    'piinit-node-exporter',
    ...(role === 'monitor' ? [`${prefix}-prometheus`, 'piinit-prometheus'] : []),
  ]);
  const out = result.packages.filter((p) => wanted.has(p.name) && (p.arch === arch || p.arch === 'all'));
  return out.sort((a, b) => Number(!a.name.endsWith('-users')) - Number(!b.name.endsWith('-users')));
}

/** dpkg -i inside the root: the users package first (Pre-Depends), then the rest at once. */
export async function installInto(root: string, debs: BuiltPackage[]): Promise<void> {
  const inside = '/tmp/piinit-debs';
  await mkdir(join(root, inside), { recursive: true });
  for (const d of debs) await copyFile(d.path, join(root, inside, basename(d.path)));
  const [users, ...rest] = debs.map((d) => `${inside}/${basename(d.path)}`);
  const first = await inRoot(root, ['dpkg', '-i', users!]);
  assert.equal(first.status, 0, first.out);
  const second = await inRoot(root, ['dpkg', '-i', ...rest]);
  assert.equal(second.status, 0, second.out);
  await rm(join(root, inside), { recursive: true, force: true });
}

/** What the test roots carry besides minbase: what our packages depend on (see inferDepends). */
export const ROOT_INCLUDE = ['systemd', 'systemd-resolved', 'procps', 'curl', 'wpasupplicant'];

/** `consul validate DIR` in a private network namespace (gone when the command ends) that
 *  has an address in the cluster network: the image config binds through a go-sockaddr
 *  template that picks the machine's address in that CIDR. */
export function consulValidate(dir: string, address: string): Promise<{ status: number; out: string }> {
  const script =
    `set -e; ip link set lo up; ip addr add ${address} dev lo; exec /usr/local/bin/consul validate "$1"`;
  return run('unshare', ['--net', 'sh', '-c', script, 'sh', dir]);
}
