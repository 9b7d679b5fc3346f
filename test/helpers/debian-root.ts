// Fresh Debian root file systems for tests that install packages (dpkg -i) or run tools
// inside a chroot. mmdebstrap builds a root once per set of inputs and keeps it as a
// tarball in a cache directory; every test unpacks its own copy into a temp dir.
//
//   const root = await debianRoot(t, { arch: 'arm64', include: ['systemd'] });
//
// The cache lives in $PIINIT_TEST_CACHE (default ~/.cache/piinit-test)/debian-roots,
// keyed by suite, arch, variant, packages and the mmdebstrap version. Foreign
// arches run through qemu-user-static and binfmt_misc (scripts/setup-test-host.sh).
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { hostDebianMirror } from '../../src/releases/apt-mirror.ts';

export interface RootSpec {
  arch: 'amd64' | 'arm64' | 'armhf' | 'armel';
  /** Default bookworm. */
  suite?: string;
  /** Default minbase. */
  variant?: 'minbase' | 'apt' | 'essential';
  include?: string[];
}

export function testCacheDir(): string {
  return process.env.PIINIT_TEST_CACHE ?? join(homedir(), '.cache', 'piinit-test');
}

const exec = promisify(execFile);

function runLogged(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (d: Buffer) => {
      out = (out + d.toString()).slice(-8000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} failed (exit ${code}):\n${out}`))));
  });
}

/** The host's Debian mirror: what apt's index targets name, or — when the apt lists are
 *  missing (another test may have cleaned them) — the first non-security URI of the host's
 *  sources files. Never a hard-coded host. */
export async function debianMirror(): Promise<string> {
  try {
    return await hostDebianMirror();
  } catch (err) {
    const dir = '/etc/apt/sources.list.d';
    const files = ['/etc/apt/sources.list', ...(await readdir(dir).catch(() => [])).filter((f) => /\.(list|sources)$/.test(f)).map((f) => join(dir, f))];
    for (const f of files) {
      const text = await readFile(f, 'utf8').catch(() => '');
      for (const m of text.matchAll(/^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)/gm)) {
        if (!/security/.test(m[1]!)) return m[1]!.replace(/\/+$/, '');
      }
    }
    throw err;
  }
}

/** The cached tarball of a root for spec, built with mmdebstrap when missing. */
export async function debianRootTarball(spec: RootSpec): Promise<string> {
  const suite = spec.suite ?? 'bookworm';
  const variant = spec.variant ?? 'minbase';
  const include = [...new Set(spec.include ?? [])].sort();
  const { stdout: version } = await exec('mmdebstrap', ['--version']);
  // The mirror is not part of the key: any Debian mirror serves the same archive.
  const key = createHash('sha256')
    .update(JSON.stringify({ v: 1, suite, arch: spec.arch, variant, include, mmdebstrap: version.trim() }))
    .digest('hex')
    .slice(0, 16);
  const dir = join(testCacheDir(), 'debian-roots');
  const tarball = join(dir, `${suite}-${spec.arch}-${variant}-${key}.tar`);
  try {
    await stat(tarball);
    return tarball;
  } catch {
    // build it
  }
  await mkdir(dir, { recursive: true });
  const mirror = await debianMirror();
  const partial = `${tarball}.${process.pid}.partial.tar`;
  try {
    await runLogged('mmdebstrap', [
      '--mode=root',
      `--variant=${variant}`,
      `--architectures=${spec.arch}`,
      ...(include.length ? [`--include=${include.join(',')}`] : []),
      suite,
      partial,
      `deb ${mirror} ${suite} main`,
    ]);
    await rename(partial, tarball);
  } finally {
    await rm(partial, { force: true });
  }
  return tarball;
}

/** A fresh root unpacked into a temp dir that is removed after the test. */
export async function debianRoot(t: TestContext | null, spec: RootSpec): Promise<string> {
  const tarball = await debianRootTarball(spec);
  const root = await mkdtemp(join(tmpdir(), `piinit-root-${spec.arch}-`));
  t?.after(() => rm(root, { recursive: true, force: true }));
  await exec('tar', ['--numeric-owner', '-xpf', tarball, '-C', root], { maxBuffer: 16 * 1024 * 1024 });
  return root;
}

/** Runs a command inside root (chroot); returns status and combined output. */
export function inRoot(root: string, cmd: string[], env: Record<string, string> = {}): Promise<{ status: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('chroot', [root, ...cmd], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C.UTF-8', DEBIAN_FRONTEND: 'noninteractive', ...env },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? 1, out }));
  });
}
