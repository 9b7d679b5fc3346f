// The base root file system: Debian + kernel + firmware for one image kind, built by
// mmdebstrap and cached as a tarball under a key that hashes every input (suite, arch,
// sources, package set, hook scripts). Nothing cluster-specific goes in here, so a change
// to cluster.yaml never rebuilds it.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DebianArch } from '../cluster/boards.ts';
import { BASE_PACKAGES, IMAGE_PATH, IMAGE_TARGETS, type ImageKind } from './targets.ts';
import { birthTime } from './base-age.ts';
import { buildDirPrefix, removeOrphans } from './orphans.ts';
import { markUsed, pruneBases } from './prune.ts';
import { run } from './run.ts';
import { UserError } from '../errors.ts';

export const SUITE = 'bookworm';

export interface BaseSpec {
  suite: string;
  arch: DebianArch;
  kind: ImageKind;
  /** apt sources lines, in order. */
  sources: string[];
  /** Sorted, deduplicated. */
  packages: string[];
  initramfsModules: string[];
  sourceDateEpoch: number;
}

export function baseSpec(kind: ImageKind, sources: string[], extraPackages: string[], sourceDateEpoch: number): BaseSpec {
  const t = IMAGE_TARGETS[kind];
  return {
    suite: SUITE,
    arch: t.arch,
    kind,
    sources,
    packages: [...new Set([...BASE_PACKAGES, ...t.packages, ...extraPackages])].sort(),
    initramfsModules: t.initramfsModules,
    sourceDateEpoch,
  };
}

/** Runs before any package is configured (mmdebstrap --essential-hook): the initramfs keeps
 *  only the listed modules instead of MODULES=most, which halves the build under emulation
 *  and shrinks the initrd from ~30 MB to ~7 MB. */
export function essentialHook(spec: BaseSpec): string {
  return [
    '#!/bin/sh',
    'set -e',
    'mkdir -p "$1/etc/initramfs-tools/conf.d"',
    'echo MODULES=list > "$1/etc/initramfs-tools/conf.d/piinit-modules"',
    `printf '%s\\n' ${spec.initramfsModules.join(' ')} > "$1/etc/initramfs-tools/modules"`,
    // raspi-firmware copies kernel, initrd and device trees into /boot/firmware.
    'mkdir -p "$1/boot/firmware"',
    ...CA_STUB,
    '',
  ].join('\n');
}

/** ca-certificates' postinst and then its trigger each run update-ca-certificates, which
 *  starts a few processes per certificate (about 150): 33 s under emulation, against 1 s
 *  natively. So while the packages are installed the command is a no-op (a dpkg diversion
 *  keeps the package's own script aside), and customizeHook puts it back and runs it once on
 *  the host (CA_STORE). */
const CA_TOOL = '/usr/sbin/update-ca-certificates';
// dpkg-divert leaves its previous table in diversions-old: kept aside and put back, so the
// base's dpkg database is what it would be without the stub.
const DIVERSIONS_OLD = '/var/lib/dpkg/diversions-old';
// A command run inside the image, with the image's PATH.
const IN_IMAGE = `chroot "$1" /usr/bin/env PATH=${IMAGE_PATH}`;
const CA_STUB = [
  `if [ -e "$1${DIVERSIONS_OLD}" ]; then cp -p "$1${DIVERSIONS_OLD}" "$1${DIVERSIONS_OLD}.piinit"; fi`,
  `${IN_IMAGE} dpkg-divert --quiet --local --rename --divert ${CA_TOOL}.piinit --add ${CA_TOOL}`,
  `printf '#!/bin/sh\\nexit 0\\n' > "$1${CA_TOOL}"`,
  `chmod 755 "$1${CA_TOOL}"`,
];

/** The image's own update-ca-certificates (a shell script) run by the host's shell, sed and
 *  openssl on the image's files, as the postinst runs it; the links it makes carry the
 *  build directory in their targets, which are then cut back to the image's paths. The
 *  result is what the script makes in the image (compared in test/e2e/image/secrets.test.ts).
 *  Hooks of other packages (update.d) must run inside the image, and the script carries on
 *  without openssl (no hash links): in either case the image's own command runs there,
 *  slowly (both cases are tested there too). */
const CA_STORE = [
  `rm -f "$1${CA_TOOL}"`,
  `${IN_IMAGE} dpkg-divert --quiet --local --rename --remove ${CA_TOOL}`,
  `if [ -e "$1${DIVERSIONS_OLD}.piinit" ]; then mv "$1${DIVERSIONS_OLD}.piinit" "$1${DIVERSIONS_OLD}"; else rm -f "$1${DIVERSIONS_OLD}"; fi`,
  `if [ ! -e "$1${CA_TOOL}" ]; then`,
  '  :',
  `elif [ -n "$(ls -A "$1/etc/ca-certificates/update.d" 2>/dev/null)" ] || ! command -v openssl > /dev/null; then`,
  `  ${IN_IMAGE} update-ca-certificates`,
  'else',
  `  sh "$1${CA_TOOL}" --hooksdir "" --certsconf "$1/etc/ca-certificates.conf" --certsdir "$1/usr/share/ca-certificates" \\`,
  '    --localcertsdir "$1/usr/local/share/ca-certificates" --etccertsdir "$1/etc/ssl/certs" > /dev/null',
  '  for l in "$1"/etc/ssl/certs/*; do',
  '    [ -L "$l" ] || continue',
  '    t=$(readlink "$l")',
  '    case "$t" in "$1"/*) ln -sfn "${t#"$1"}" "$l" ;; esac',
  '  done',
  'fi',
];

/** Where the host's dpkg-deb and the libraries it loads are copied in the new root (foreign
 *  architectures only, see nativeDebHook), and where the command that runs it goes: a
 *  directory ahead of /usr/bin in the PATH the build runs with (BUILD_PATH_HEAD). */
const NATIVE_DIR = '/tmp/piinit-native';
export const BUILD_PATH_HEAD = '/usr/local/sbin';
const NATIVE_WRAPPER = `${BUILD_PATH_HEAD}/dpkg-deb`;
const NATIVE_APT_CONF = '/etc/apt/apt.conf.d/00piinit-dpkg-path';
/** What customizeHook runs first: nothing of nativeDebHook's stays in the base. */
export const NATIVE_CLEANUP = `rm -rf "$1${NATIVE_WRAPPER}" "$1${NATIVE_DIR}" "$1${NATIVE_APT_CONF}"`;

/** Runs once the essential packages are extracted, before dpkg installs them (mmdebstrap
 *  --extract-hook), for a foreign architecture only. dpkg unpacks each package through
 *  `dpkg-deb --fsys-tarfile` found in PATH; under emulation that decompression is most of
 *  an install (14 s against 3 s for the arm64 kernel). The host's own dpkg-deb, with its
 *  loader and libraries beside it, runs natively inside the new root, so dpkg gets the same
 *  tar stream without emulating the decompressor (an arm64 base: 30 s less CPU time, and
 *  the same files; test/e2e/image/boot.test.ts has the host's dpkg --verify them).
 *  customizeHook removes all of it again (NATIVE_CLEANUP). */
export function nativeDebHook(): string {
  return [
    '#!/bin/sh',
    'set -e',
    `n="$1${NATIVE_DIR}"`,
    'mkdir -p "$n"',
    'libs=$(ldd /usr/bin/dpkg-deb | sed -n "s|.*=> \\(/[^ ]*\\) .*|\\1|p")',
    'loader=$(ldd /usr/bin/dpkg-deb | sed -n "s|^[[:space:]]*\\(/[^ ]*\\) (0x.*|\\1|p")',
    'cp -L /usr/bin/dpkg-deb $libs "$loader" "$n/"',
    `mkdir -p "$1${BUILD_PATH_HEAD}"`,
    `printf '#!/bin/sh\\nexec %s/%s --library-path %s %s/dpkg-deb "$@"\\n' ${NATIVE_DIR} "$(basename "$loader")" ${NATIVE_DIR} ${NATIVE_DIR} > "$1${NATIVE_WRAPPER}"`,
    `chmod 755 "$1${NATIVE_WRAPPER}"`,
    // apt runs dpkg with a PATH of its own (DPkg::Path), not the one mmdebstrap runs with.
    `echo 'DPkg::Path "${BUILD_PATH_HEAD}:${IMAGE_PATH}";' > "$1${NATIVE_APT_CONF}"`,
    '',
  ].join('\n');
}

/** CA_STUB and CA_STORE as scripts of their own (for test/e2e/image/secrets.test.ts). */
export const caStubScript = (): string => ['#!/bin/sh', 'set -e', ...CA_STUB, ''].join('\n');
export const caStoreScript = (): string => ['#!/bin/sh', 'set -e', ...CA_STORE, ''].join('\n');

/** What an image leaves out of every package (dpkg path-exclude/path-include rules): manual
 *  pages (no man-db here), info, translations and documentation other than the copyright and
 *  Debian changelog files. About 50 MB of an image nobody logs in to read. */
export const DOC_EXCLUDES = [
  'path-exclude=/usr/share/man/*',
  'path-exclude=/usr/share/info/*',
  'path-exclude=/usr/share/locale/*',
  'path-include=/usr/share/locale/locale.alias',
  'path-exclude=/usr/share/doc/*',
  'path-include=/usr/share/doc/*/copyright',
  'path-include=/usr/share/doc/*/changelog.Debian.*',
];

/** Runs after everything is installed (mmdebstrap --customize-hook, after the .debs were
 *  synced out to the package cache). First it makes the initramfs, once: the packages were
 *  installed with INITRD=No (MMDEBSTRAP_ENV), because otherwise the kernel's postinst makes
 *  one and initramfs-tools' trigger makes it again at the end, 80 s each under emulation.
 *  Running the kernel's postinst.d hooks by hand is what its postinst does; raspi-firmware's
 *  hook then copies kernel, initrd and device trees to /boot/firmware, and the /initrd.img
 *  links the postinst skipped (no initrd yet) are made. Then the CA store is made, once
 *  (CA_STORE). Then it removes documentation (DOC_EXCLUDES) and what would make two builds differ or
 *  what belongs to the host, not to the image.
 *  It leaves /tmp, the apt lists and the downloaded .debs to mmdebstrap's own clean-up,
 *  which runs after it: mmdebstrap keeps its apt configuration (APT_CONFIG) in the new
 *  root's /tmp, and without that file its clean-up's `apt-get update` (with no sources)
 *  and `apt-get clean` act on the host, emptying the host's package lists and cache. */
export function customizeHook(): string {
  return [
    '#!/bin/sh',
    'set -e',
    NATIVE_CLEANUP,
    'for d in "$1"/lib/modules/*; do',
    '  [ -d "$d" ] || continue',
    '  v=$(basename "$d")',
    '  INITRD=Yes chroot "$1" run-parts --report --exit-on-error --arg="$v" --arg="/boot/vmlinuz-$v" /etc/kernel/postinst.d',
    '  chroot "$1" linux-update-symlinks upgrade "$v" "/boot/vmlinuz-$v"',
    'done',
    ...CA_STORE,
    // Documentation out, as dpkg's path-exclude would leave it, and the rule in dpkg.cfg.d
    // for packages installed later (the config layer's). Not --dpkgopt: mmdebstrap then
    // filters the essential packages through a Python tar filter, 40 s slower here.
    `printf '%s\\n' ${DOC_EXCLUDES.map((r) => `'${r}'`).join(' ')} > "$1/etc/dpkg/dpkg.cfg.d/piinit-nodoc"`,
    'rm -rf "$1"/usr/share/man/* "$1"/usr/share/info/*',
    'if [ -d "$1/usr/share/locale" ]; then find "$1"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +; fi',
    'if [ -d "$1/usr/share/doc" ]; then',
    '  find "$1"/usr/share/doc -mindepth 2 ! -type d ! -name copyright ! -name "changelog.Debian.*" -delete',
    '  find "$1"/usr/share/doc -mindepth 1 -type d -empty -delete',
    'fi',
    'rm -f "$1/etc/hostname" "$1/var/lib/dbus/machine-id"',
    ': > "$1/etc/machine-id"',
    'rm -f "$1"/var/cache/ldconfig/aux-cache "$1"/var/log/*.log "$1"/var/log/apt/*',
    'rm -rf "$1"/var/tmp/*',
    '',
  ].join('\n');
}

/** Environment of the whole mmdebstrap run. INITRD=No: the kernel's initramfs-tools hook
 *  skips its initramfs; customizeHook makes the one the image keeps. */
export const MMDEBSTRAP_ENV = { INITRD: 'No' } as const;

/** merged /usr the way debootstrap makes it (directory symlinks + the usr-is-merged package),
 *  instead of the usrmerge package converting the tree: that pulls perl into the image and
 *  its conversion script takes 15 s under emulation. */
export const MMDEBSTRAP_HOOK_DIRS = ['/usr/share/mmdebstrap/hooks/merged-usr'];

/** A word for mmdebstrap's hooks: sh -c runs them, and its special hooks (sync-in) split
 *  their arguments like a shell. A cache path with a space stays one word. Pure. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:=+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Where one build's hook scripts, package cache and output are (native: the hook for a
 *  foreign arch's build, or null). */
export interface MmdebstrapPaths {
  debCache: string;
  ess: string;
  cust: string;
  native: string | null;
  out: string;
}

/** mmdebstrap's command line for spec. Pure. */
export function mmdebstrapArgs(spec: BaseSpec, p: MmdebstrapPaths): string[] {
  const components = [...new Set(spec.sources.flatMap((l) => l.split(/\s+/).slice(3)))];
  const q = shellWord;
  return [
    '--mode=root',
    '--variant=apt',
    `--arch=${spec.arch}`,
    `--components=${components.join(',')}`,
    `--include=${spec.packages.join(',')}`,
    '--skip=download/empty',
    '--skip=essential/unlink',
    ...MMDEBSTRAP_HOOK_DIRS.map((d) => `--hook-dir=${d}`),
    '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
    `--setup-hook=sync-in ${q(p.debCache)} /var/cache/apt/archives/`,
    ...(p.native ? [`--extract-hook=${q(p.native)} "$1"`] : []),
    `--essential-hook=${q(p.ess)} "$1"`,
    `--customize-hook=sync-out /var/cache/apt/archives ${q(p.debCache)}`,
    `--customize-hook=${q(p.cust)} "$1"`,
    spec.suite,
    p.out,
    ...spec.sources,
  ];
}

/** The arguments as the cache key sees them: this build's paths left out, the foreign-arch
 *  hook in (the same base whatever the build host's arch). */
const KEY_PATHS: MmdebstrapPaths = { debCache: 'DEBS', ess: 'ESS', cust: 'CUST', native: 'NATIVE', out: 'OUT' };

export function baseKey(spec: BaseSpec): string {
  const h = createHash('sha256');
  h.update(
    JSON.stringify({
      v: 1,
      spec,
      ess: essentialHook(spec),
      cust: customizeHook(),
      native: nativeDebHook(),
      env: MMDEBSTRAP_ENV,
      hookDirs: MMDEBSTRAP_HOOK_DIRS,
      args: mmdebstrapArgs(spec, KEY_PATHS),
    }),
  );
  return h.digest('hex').slice(0, 16);
}

export interface BaseResult {
  tarball: string;
  key: string;
  cached: boolean;
  /** Bases of the same suite and kind this call removed from the cache (prune.ts). */
  pruned: string[];
  /** When the base was built (base-age.ts); null where the file system does not say. */
  builtAt: Date | null;
}

/** Whether ensureBase builds a base again although it is cached: always, never, or by its key. */
export type RefreshBase = boolean | ((key: string) => boolean);

/** --refresh-base for one run of several images: each base is built again once, not once per
 *  image that shares it. */
export function refreshOnce(): (key: string) => boolean {
  const done = new Set<string>();
  return (key) => {
    if (done.has(key)) return false;
    done.add(key);
    return true;
  };
}

/** Whether apt's output says the mirror was caught between two syncs: indexes that do not
 *  match their Release file yet. Pure. */
export function mirrorSyncing(output: string): boolean {
  return /Hash Sum mismatch|File has unexpected size|Mirror sync in progress/.test(output);
}

export const MIRROR_RETRY_MS = 60_000;

/** Runs fn, and once more after waitMs when it failed because the mirror was syncing (a
 *  Debian mirror updates a few times a day, and a build that starts during a sync fails).
 *  A mirror that stays inconsistent fails the second time, with apt's words. */
export async function retryOnMirrorSync<T>(
  fn: () => Promise<T>,
  opts: { waitMs?: number; signal?: AbortSignal; note?: (message: string) => void } = {},
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof UserError) || !mirrorSyncing(err.message) || opts.signal?.aborted) throw err;
    const waitMs = opts.waitMs ?? MIRROR_RETRY_MS;
    opts.note?.(`the Debian mirror is between two syncs (its indexes do not match its Release file yet); trying again in ${Math.round(waitMs / 1000)} s`);
    await sleep(waitMs, undefined, opts.signal ? { signal: opts.signal } : {});
    return fn();
  }
}

/** Returns the cached base tarball for spec, building it with mmdebstrap when missing.
 *  cacheDir/debs/<arch> keeps the downloaded .debs between builds (a warm package cache). */
export async function ensureBase(
  spec: BaseSpec,
  cacheDir: string,
  opts: { refresh?: RefreshBase; onLine?: (l: string) => void; signal?: AbortSignal } = {},
): Promise<BaseResult> {
  const key = baseKey(spec);
  const refresh = typeof opts.refresh === 'function' ? opts.refresh(key) : !!opts.refresh;
  const dir = join(cacheDir, 'base');
  const tarball = join(dir, `${spec.suite}-${spec.kind}-${key}.tar`);
  await removeOrphans(dir);
  const group = `${spec.suite}-${spec.kind}`;
  if (!refresh && (await exists(tarball))) {
    await markUsed(tarball);
    return { tarball, key, cached: true, pruned: await pruneBases(dir, group, key), builtAt: await birthTime(tarball) };
  }
  await mkdir(dir, { recursive: true });
  const debCache = join(cacheDir, 'debs', spec.arch);
  await mkdir(debCache, { recursive: true });
  const work = await mkdtemp(join(dir, buildDirPrefix()));
  try {
    const ess = join(work, 'essential-hook.sh');
    const cust = join(work, 'customize-hook.sh');
    await writeFile(ess, essentialHook(spec));
    await writeFile(cust, customizeHook());
    await chmod(ess, 0o755);
    await chmod(cust, 0o755);
    const foreign = spec.arch !== (await run('dpkg', ['--print-architecture'])).trim();
    const native = join(work, 'native-deb-hook.sh');
    if (foreign) await writeFile(native, nativeDebHook(), { mode: 0o755 });
    const partial = join(work, 'base.tar');
    const mmdebstrap = () => run(
      'mmdebstrap',
      mmdebstrapArgs(spec, { debCache, ess, cust, native: foreign ? native : null, out: partial }),
      {
        env: {
          ...MMDEBSTRAP_ENV,
          SOURCE_DATE_EPOCH: String(spec.sourceDateEpoch),
          ...(foreign ? { PATH: `${BUILD_PATH_HEAD}:${process.env.PATH ?? IMAGE_PATH}` } : {}),
        },
        onLine: opts.onLine,
      },
    );
    await retryOnMirrorSync(
      async () => {
        await rm(partial, { force: true });
        await mmdebstrap();
      },
      { signal: opts.signal, note: (m) => process.stderr.write(`piinit: ${m}\n`) },
    );
    await rename(partial, tarball);
    return { tarball, key, cached: false, pruned: await pruneBases(dir, group, key), builtAt: await birthTime(tarball) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
