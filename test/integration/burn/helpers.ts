// Test images and loop devices for the burn tests: real sfdisk + mkfs on plain files,
// loop devices made with losetup and detached by the caller's cleanup.
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, truncateSync, openSync, closeSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/**
 * A small bootable-looking disk image: DOS partition table, FAT boot partition and an ext4
 * root filled from a folder with `dataMiB` of random data. Sparse: holes where nothing was written.
 */
export function buildTestImage(dir: string, opts: { sizeMiB?: number; dataMiB?: number; name?: string } = {}): string {
  const sizeMiB = opts.sizeMiB ?? 64;
  const dataMiB = opts.dataMiB ?? 3;
  const img = join(dir, opts.name ?? 'test.img');
  const root = join(dir, `${opts.name ?? 'test.img'}.root`);
  mkdirSync(root, { recursive: true });
  const data = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < dataMiB; i++) {
    randomFillSync(data);
    writeFileSync(join(root, `data${i}.bin`), data);
  }
  writeFileSync(join(root, 'hello'), 'hello from the test image\n');
  closeSync(openSync(img, 'w'));
  truncateSync(img, sizeMiB * 1024 * 1024);
  const sectors = sizeMiB * 2048;
  const bootSectors = 16 * 2048;
  sh('sfdisk', ['-q', img], `label: dos\nstart=2048, size=${bootSectors}, type=c\nstart=${2048 + bootSectors}, type=83\n`);
  sh('mkfs.vfat', ['--offset', '2048', '-n', 'BOOT', img, String(bootSectors / 2)]);
  const rootStart = 2048 + bootSectors;
  sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'root', '-E', `offset=${rootStart * 512}`, '-d', root, img, `${(sectors - rootStart) / 2}k`]);
  return img;
}

/** Attaches a file as a loop device; returns /dev/loopN. */
export function attachLoop(file: string): string {
  return sh('losetup', ['-f', '--show', file]).trim();
}

export function detachLoop(dev: string): void {
  try {
    sh('losetup', ['-d', dev]);
  } catch {
    // already detached
  }
}

/** A card stand-in: a file of `sizeMiB` filled with a non-zero pattern (old card contents). */
export function makeCardFile(path: string, sizeMiB: number, fill = 0xa5): void {
  const fd = openSync(path, 'w');
  try {
    const chunk = Buffer.alloc(1024 * 1024, fill);
    for (let i = 0; i < sizeMiB; i++) writeSync(fd, chunk);
  } finally {
    closeSync(fd);
  }
}

/**
 * Cleanups that run last-registered-first when the test ends, each even if another fails
 * (unmount before detaching before removing the folder).
 */
export function deferrer(t: { after: (fn: () => void | Promise<void>) => void }): (fn: () => unknown) => void {
  const stack: Array<() => unknown> = [];
  t.after(async () => {
    const errors: unknown[] = [];
    for (const fn of stack.reverse()) {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length) throw errors[0];
  });
  return (fn) => {
    stack.push(fn);
  };
}

const defers = new WeakMap<TestContext, (fn: () => unknown) => void>();
/** Registers a cleanup on the test's one deferrer stack. */
export function defer(t: TestContext, fn: () => unknown): void {
  if (!defers.has(t)) defers.set(t, deferrer(t));
  defers.get(t)!(fn);
}

/** A work folder for one test, removed last. */
export function setup(t: TestContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  defer(t, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A card: a backing file full of 0xa5 ("old contents") attached as a loop device. */
export function card(t: TestContext, dir: string, name: string, sizeMiB: number): { dev: string; file: string } {
  const file = join(dir, name);
  makeCardFile(file, sizeMiB);
  const dev = attachLoop(file);
  defer(t, () => detachLoop(dev));
  return { dev, file };
}
