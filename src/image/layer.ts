// The config layer: the cached base unpacked, our .debs installed, the rendered files and
// the immutable-system files written, then state paths moved onto the data partition. This
// is all a change to cluster.yaml rebuilds. Needs root (chroot, file ownership); foreign
// arches run their maintainer scripts through qemu-user via binfmt_misc.
import { chmod, chown, copyFile, lstat, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isSymlink, type FileTree } from '../render/filetree.ts';
import { UserError } from '../errors.ts';
import { run } from './run.ts';
import { IMAGE_PATH, IMAGE_TARGETS, type ImageKind } from './targets.ts';
import { enablePiinitPresets } from './presets.ts';
import { ENABLED_UNITS, kernelCmdline, PERSISTENT_PATHS, ROOT_LABEL, sshHostKeyTree, systemTree } from './system.ts';
import { clampMtimes } from './treehash.ts';
import { bindHostDevNodes } from './devnodes.ts';

export interface LayerInput {
  kind: ImageKind;
  /** Local .deb files to install (our binary and config packages). */
  debs: string[];
  /** Rendered files for this role; they win over piinit's own system files. */
  overlay?: FileTree;
  /** The image runs sshd (the cluster gives authorized keys; openssh-server is in the base). */
  ssh?: boolean;
  /** Extra kernel arguments (e.g. the memory cgroup for Nomad clients). */
  cmdlineExtras?: string[];
  sourceDateEpoch: number;
}

export interface LayerDirs {
  /** The root file system, with empty mount points where /data and /boot/firmware go; the
   *  base is already there (baseroot.ts), possibly an overlay mount (other directories are
   *  then on another file system: moves out of root copy). */
  root: string;
  /** The content of the FAT partition (Pi firmware, or the EFI system partition). */
  boot: string;
  /** The initial content of the data partition. */
  data: string;
  /** false: root/dev lacks the device nodes (a rootless build): the host's are bound in
   *  while programs run in the image. Default true. */
  devNodes?: boolean;
}

const CHROOT_ENV = {
  DEBIAN_FRONTEND: 'noninteractive',
  LC_ALL: 'C.UTF-8',
  PATH: IMAGE_PATH,
};

const TMPFILES_EXCLUDE = ['/run', '/tmp', '/var/tmp', '/dev', '/proc', '/sys', '/boot'];

export async function buildLayer(input: LayerInput, dirs: LayerDirs): Promise<void> {
  const { root } = dirs;
  const target = IMAGE_TARGETS[input.kind];
  const env = { ...CHROOT_ENV, SOURCE_DATE_EPOCH: String(input.sourceDateEpoch) };
  for (const d of [dirs.boot, dirs.data]) await mkdir(d, { recursive: true });

  const dev = dirs.devNodes === false ? await bindHostDevNodes(root) : null;
  try {
    if (input.debs.length > 0) {
      const inside = '/tmp/piinit-debs';
      await mkdir(join(root, inside), { recursive: true });
      const names: string[] = [];
      for (const [i, deb] of input.debs.entries()) {
        const name = `${String(i).padStart(3, '0')}-${basename(deb)}`;
        await copyFile(deb, join(root, inside, name));
        names.push(`${inside}/${name}`);
      }
      // One at a time, in the given (dependency) order: Pre-Depends must be configured first.
      for (const n of names) await run('chroot', [root, 'dpkg', '--force-confold', '-i', n], { env });
      await rm(join(root, inside), { recursive: true, force: true });
    }

    // The FAT partition is for the firmware only: not mounted, so nothing can change the boot files.
    const tree = new Map([...systemTree({ bootMountable: false }), ...sshHostKeyTree(input.ssh ?? false), ...(input.overlay ?? new Map())]);
    await writeTree(root, tree);

    const cmdline = kernelCmdline(target.console, input.cmdlineExtras ?? []);
    if (target.boot === 'raspi') await raspiBoot(root, dirs.boot, cmdline);
    else await efiBoot(root, dirs.boot, cmdline);

    // The root is read-only at boot: system users and their state directories are made now.
    await run('chroot', [root, 'systemd-sysusers'], { env });
    // tmpfiles refuses to do anything without /proc. (It did, silently, until an SSH login
    // found /home/admin missing on the read-only root.) A private mount namespace gives it a
    // /proc that disappears with the process.
    await run(
      'unshare',
      ['--mount', '--fork', 'chroot', root, 'sh', '-c', 'mount -t proc proc /proc && exec systemd-tmpfiles --create "$@"', 'tmpfiles', ...TMPFILES_EXCLUDE.map((p) => `--exclude-prefix=${p}`)],
      { env },
    );
    await run('chroot', [root, 'systemctl', 'enable', ...ENABLED_UNITS, ...(input.ssh ? ['ssh.service'] : [])], { env });
    await enablePiinitPresets(root);
  } finally {
    await dev?.release();
  }
  await lockPasswords(root, input.sourceDateEpoch);
  await cleanup(root);
  await movePersistent(root, dirs.data);
  for (const d of [dirs.root, dirs.boot, dirs.data]) await clampMtimes(d, input.sourceDateEpoch);
}

/** Writes a FileTree under root, resolving owner names through root's own passwd/group. */
export async function writeTree(root: string, tree: FileTree): Promise<void> {
  const users = await idMap(join(root, 'etc/passwd'));
  const groups = await idMap(join(root, 'etc/group'));
  const id = (map: Map<string, number>, name: string, path: string) => {
    const v = /^\d+$/.test(name) ? Number(name) : map.get(name);
    if (v === undefined) throw new UserError(`${path}: owner ${name} does not exist in the image (is its package missing?)`);
    return v;
  };
  for (const [path, entry] of tree) {
    const abs = join(root, path);
    await mkdir(dirname(abs), { recursive: true });
    await rm(abs, { force: true });
    if (isSymlink(entry)) {
      await symlink(entry.symlink, abs);
      continue;
    }
    const tmp = `${abs}.piinit-tmp`;
    // Secrets are written 0600 first, then given their final mode and owner.
    await writeFile(tmp, entry.content, { mode: 0o600 });
    await chown(tmp, id(users, entry.owner, path), id(groups, entry.group, path));
    await chmod(tmp, entry.mode);
    await rename(tmp, abs);
  }
}

async function idMap(path: string): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && f[0]) m.set(f[0], Number(f[2]));
  }
  return m;
}

async function raspiBoot(root: string, boot: string, cmdline: string): Promise<void> {
  const fw = join(root, 'boot/firmware');
  const names = await readdir(fw).catch(() => [] as string[]);
  if (!names.some((n) => n.startsWith('vmlinuz') || n.startsWith('kernel'))) {
    throw new Error('raspi-firmware put no kernel into /boot/firmware');
  }
  await writeFile(join(root, 'etc/default/raspi-firmware'), `# piinit: boot by label, read-only root\nROOTPART=LABEL=${ROOT_LABEL}\nCONSOLES="tty1 ttyAMA0,115200"\n`);
  await writeFile(join(fw, 'cmdline.txt'), `${cmdline}\n`);
  for (const n of names) await moveOut(join(fw, n), join(boot, n));
  if (!names.includes('cmdline.txt')) await moveOut(join(fw, 'cmdline.txt'), join(boot, 'cmdline.txt'));
}

async function efiBoot(root: string, boot: string, cmdline: string): Promise<void> {
  const bootDir = join(root, 'boot');
  const names = await readdir(bootDir);
  const kernel = names.find((n) => n.startsWith('vmlinuz-'));
  const initrd = names.find((n) => n.startsWith('initrd.img-'));
  if (!kernel || !initrd) throw new Error(`no kernel/initrd in /boot (found ${names.join(', ')})`);
  const sdboot = join(root, 'usr/lib/systemd/boot/efi/systemd-bootx64.efi');
  await mkdir(join(boot, 'EFI/BOOT'), { recursive: true });
  await mkdir(join(boot, 'loader/entries'), { recursive: true });
  await copyFile(sdboot, join(boot, 'EFI/BOOT/BOOTX64.EFI'));
  await copyFile(join(bootDir, kernel), join(boot, 'vmlinuz'));
  await copyFile(join(bootDir, initrd), join(boot, 'initrd.img'));
  await writeFile(join(boot, 'loader/loader.conf'), 'default piinit.conf\ntimeout 0\neditor no\n');
  await writeFile(join(boot, 'loader/entries/piinit.conf'), `title piinit (${kernel.replace('vmlinuz-', '')})\nlinux /vmlinuz\ninitrd /initrd.img\noptions ${cmdline}\n`);
  await mkdir(join(root, 'boot/firmware'), { recursive: true });
}

/** No password logins, ever: every account's password field is locked. Password-change
 *  dates are clamped so two builds on different days give the same file. */
async function lockPasswords(root: string, epoch: number): Promise<void> {
  const path = join(root, 'etc/shadow');
  const day = String(Math.floor(epoch / 86400));
  const text = await readFile(path, 'utf8');
  const out = text
    .split('\n')
    .map((line) => {
      const f = line.split(':');
      if (f.length < 3) return line;
      if (!f[1]!.startsWith('!') && f[1] !== '*') f[1] = f[0] === 'root' ? '!*' : '*';
      if (f[2] && Number(f[2]) > Number(day)) f[2] = day;
      return f.join(':');
    })
    .join('\n');
  await writeFile(path, out, { mode: 0o640 });
  for (const backup of ['passwd-', 'group-', 'shadow-', 'gshadow-', 'subuid-', 'subgid-']) await rm(join(root, 'etc', backup), { force: true });
}

async function cleanup(root: string): Promise<void> {
  for (const p of ['var/log/dpkg.log', 'var/log/alternatives.log', 'var/lib/dpkg/status-old', 'var/lib/dpkg/diversions-old', 'var/lib/dpkg/statoverride-old', 'var/cache/debconf/config.dat-old', 'var/cache/debconf/templates.dat-old', 'var/cache/ldconfig/aux-cache', 'etc/hostname']) {
    await rm(join(root, p), { force: true });
  }
  // systemd-resolved's stub: the only resolv.conf that works on a read-only root.
  await rm(join(root, 'etc/resolv.conf'), { force: true });
  await symlink('../run/systemd/resolve/stub-resolv.conf', join(root, 'etc/resolv.conf'));
  await writeFile(join(root, 'etc/machine-id'), '');
}

/** Moves a file or directory out of the root into another tree: a rename, or a copy when
 *  the root is an overlay mount (another file system). */
async function moveOut(src: string, dst: string): Promise<void> {
  try {
    await rename(src, dst);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await run('cp', ['-a', '--', src, dst]);
    await rm(src, { recursive: true, force: true });
  }
}

/** Moves each persistent path's content to data/<path>, leaving an empty mount point of
 *  the same mode and owner in the root. */
async function movePersistent(root: string, data: string): Promise<void> {
  await mkdir(join(root, 'data'), { recursive: true });
  await mkdir(join(data, 'etc'), { recursive: true });
  for (const p of PERSISTENT_PATHS) {
    const src = join(root, p);
    const dst = join(data, p);
    await mkdir(dirname(dst), { recursive: true });
    const st = await lstat(src).catch(() => null);
    if (!st) {
      await mkdir(src, { recursive: true });
      await mkdir(dst, { recursive: true });
      continue;
    }
    if (!st.isDirectory()) throw new Error(`${p} in the image is not a directory`);
    await moveOut(src, dst);
    await mkdir(src);
    await chown(src, st.uid, st.gid);
    await chmod(src, st.mode & 0o7777);
  }
}
