// `piinit burn` and `piinit devices` as a user runs them, on loop devices made here.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createBlockMap } from '../../../src/image/bmap.ts';
import { attachLoop, buildTestImage, card, defer, detachLoop, makeCardFile, setup, sh } from './helpers.ts';
import { watchOutput } from '../../helpers/child-output.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const MiB = 1024 * 1024;

function piinit(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, ['bin/piinit.js', ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'], // stdin is not a terminal
    timeout: 300_000,
  });
}

function head(file: string, n = 4096): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(n);
    readSync(fd, b, 0, n, 0);
    return b;
  } finally {
    closeSync(fd);
  }
}

test('three cards are written and verified in parallel by one command', async (t) => {
  const dir = setup(t, 'piinit-burn-cli-');
  const img = buildTestImage(dir, { sizeMiB: 48, dataMiB: 3 });
  const map = await createBlockMap(img);
  const cards = [card(t, dir, 'a', 48), card(t, dir, 'b', 56), card(t, dir, 'c', 64)];
  const r = piinit(['burn', img, ...cards.map((c) => c.dev), '--yes', '--allow-loop', '--json']);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const report = JSON.parse(r.stdout) as { mapOrigin: string; cards: Array<{ path: string; status: string; bytesWritten: number }> };
  assert.equal(report.mapOrigin, 'allocation');
  assert.deepEqual(
    report.cards.map((c) => [c.path, c.status]),
    cards.map((c) => [c.dev, 'verified']),
  );
  const image = readFileSync(img);
  for (const c of cards) {
    const onCard = readFileSync(c.file);
    for (const range of map.ranges) {
      const s = range.first * map.blockSize;
      const e = (range.last + 1) * map.blockSize;
      assert.ok(onCard.subarray(s, e).equals(image.subarray(s, e)), `${c.dev}: range ${range.first}-${range.last}`);
    }
  }
});

/** The whole disk that holds /, found through /sys from the maj:min in mountinfo. */
function systemDisk(): string {
  const line = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === '/');
  const majMin = line?.split(' ')[2];
  assert.ok(majMin, 'no / in mountinfo');
  let name: string;
  try {
    name = basename(readlinkSync(`/sys/dev/block/${majMin}`));
  } catch {
    assert.fail(`/ is not on a block device here (maj:min ${majMin}): this test needs a machine whose root is a disk`);
  }
  const parent = sh('lsblk', ['-n', '-s', '-o', 'NAME,TYPE', '-r', `/dev/${name}`])
    .trim()
    .split('\n')
    .map((l) => l.split(' '))
    .filter(([, type]) => type === 'disk')
    .map(([n]) => n)[0];
  return `/dev/${parent ?? name}`;
}

test('refused before a byte is written: too small, mounted, the system disk; a loop device without the allow option; no --yes without a terminal', async (t) => {
  const dir = setup(t, 'piinit-burn-cli-');
  const img = buildTestImage(dir, { sizeMiB: 40, dataMiB: 1 });
  const small = card(t, dir, 'small', 16);
  const ok = card(t, dir, 'ok', 40);
  // a card whose file system is mounted
  const fsFile = join(dir, 'mounted');
  makeCardFile(fsFile, 48, 0);
  sh('mke2fs', ['-q', '-F', '-t', 'ext4', fsFile]);
  const mounted = attachLoop(fsFile);
  defer(t, () => detachLoop(mounted));
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  sh('mount', [mounted, mnt]);
  defer(t, () => sh('umount', [mnt]));
  const disk = systemDisk();

  // With --yes and every allow option, the safety checks still refuse all three, and the
  // command writes nothing at all (not even to the good card given with them).
  let r = piinit(['burn', img, small.dev, mounted, disk, ok.dev, '--yes', '--allow-loop', '--allow-file']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /refusing to write \(nothing was written\)/);
  const block = (dev: string) => r.stderr.split(/\n  (?=\/)/).find((b) => b.startsWith(`${dev}:`)) ?? '';
  assert.match(block(small.dev), /is too small: 16\.0 MiB \(16777216 bytes\) for an image of 40\.0 MiB/);
  assert.match(block(mounted), new RegExp(`has a mounted file system at ${mnt}: unmount it first`));
  assert.match(block(disk), /holds the running system: \/ is mounted from it/);
  assert.equal(block(ok.dev), '', 'the good card is not refused');

  r = piinit(['burn', img, ok.dev, '--yes']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /is a loop device, not a card/);

  r = piinit(['burn', img, ok.dev, '--allow-loop']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /refusing to write without --yes: stdin is not a terminal/);

  // --allow-file writes image files, but never over the image itself (a slip of the
  // shell's completion) nor to a name in /dev that does not exist (a card not inserted yet).
  const imgBefore = readFileSync(img);
  const missing = '/dev/piinit-no-such-card';
  r = piinit(['burn', img, img, missing, '--yes', '--allow-file']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`${img}:\\n\\s+- is the image \\(or block map\\) being burned`));
  assert.match(r.stderr, new RegExp(`${missing}:\\n\\s+- does not exist: in /dev that is a card not inserted yet or a typo`));
  assert.ok(readFileSync(img).equals(imgBefore), 'the image is untouched');
  assert.equal(existsSync(missing), false, 'no file was made in /dev');

  // An image that is not there is refused too (2), not a failed card (1).
  r = piinit(['burn', `${img}.missing`, ok.dev, '--yes', '--allow-loop']);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, `piinit: image ${img}.missing does not exist\n`);
  writeFileSync(`${img}.junk.bmap`, '<not a block map/>');
  r = piinit(['burn', img, ok.dev, '--yes', '--allow-loop', '--bmap', `${img}.junk.bmap`]);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, `piinit: block map ${img}.junk.bmap: not a bmap file (no <bmap version="...">)\n`);

  for (const c of [small, ok]) assert.equal(head(c.file)[0], 0xa5, `${c.dev} untouched`);
  assert.equal(head(fsFile, 2048).readUInt16LE(1024 + 56), 0xef53, 'the mounted ext4 is untouched');

  const d = piinit(['devices', '--all', '--json']);
  assert.equal(d.status, 0, d.stderr);
  const list = JSON.parse(d.stdout) as Array<{ path: string; candidate: boolean; reasons: string[] }>;
  assert.equal(list.find((x) => x.path === disk)?.candidate, false);
});

test('Ctrl-C during a burn stops it, says the card is incomplete and leaves sector 0 zero', async (t) => {
  const dir = setup(t, 'piinit-burn-cli-');
  const img = buildTestImage(dir, { sizeMiB: 64, dataMiB: 24 });
  const c = card(t, dir, 'card', 64);
  const child = spawn(process.execPath, ['bin/piinit.js', 'burn', img, c.dev, '--yes', '--allow-loop'], {
    env: { ...process.env, PIINIT_TEST_HOLD_AT_BYTES: String(4 * MiB) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  defer(t, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const stdout = watchOutput(child, ['stdout']);
  const stderr = watchOutput(child, ['stderr']);
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  await stderr.until('piinit-test: holding', 120_000, 'the hold point');
  child.kill('SIGINT');
  const code = await Promise.race([exited, sleep(60_000).then(() => 'timeout')]);
  assert.equal(code, 130, stderr.text);
  assert.match(stderr.text, /SIGINT: stopping/);
  assert.match(stdout.text, /INTERRUPTED: the card is incomplete; its first sector is zero/);
  assert.ok(head(c.file).every((b) => b === 0), 'sector 0 is zero');
});

test('on a terminal, piinit burn shows the card and writes only after "yes"', async (t) => {
  const dir = setup(t, 'piinit-burn-cli-');
  const img = buildTestImage(dir, { sizeMiB: 32, dataMiB: 1 });
  const c = card(t, dir, 'card', 40);
  // script(1) gives piinit a terminal; what we pipe in is what the user types.
  const onTty = (answer: string) =>
    spawnSync('script', ['-qec', `${process.execPath} bin/piinit.js burn ${img} ${c.dev} --allow-loop`, '/dev/null'], {
      input: `${answer}\n`,
      encoding: 'utf8',
      timeout: 300_000,
    });
  let r = onTty('no');
  assert.equal(r.status, 2, r.stdout);
  assert.match(r.stdout, new RegExp(`About to write ${img} \\(32\\.0 MiB\\) to:`));
  assert.match(r.stdout, new RegExp(`${c.dev}\\s+\\(unknown model\\)\\s+40\\.0 MiB`));
  assert.match(r.stdout, /Type "yes" to write this card/);
  assert.match(r.stdout, /not confirmed: nothing was written/);
  assert.equal(head(c.file)[0], 0xa5, 'nothing written');

  r = onTty('yes');
  assert.equal(r.status, 0, r.stdout);
  // The progress bar (its last frame: a fast burn may never draw the intermediate ones).
  assert.match(r.stdout, new RegExp(`${c.dev} verified\\s+\\[█+\\] 100%`));
  assert.match(r.stdout, new RegExp(`${c.dev}: verified\\.`));
  assert.ok(head(c.file).subarray(510, 512).equals(Buffer.from([0x55, 0xaa])), 'the MBR was written');
});

/** piinit burn on a terminal (script(1)), waiting at its "yes" prompt. */
async function atThePrompt(t: TestContext, img: string, dev: string) {
  const child = spawn('script', ['-qec', `${process.execPath} bin/piinit.js burn ${img} ${dev} --allow-loop`, '/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  defer(t, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const out = watchOutput(child, ['stdout']);
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  await out.until('Type "yes"', 60_000, 'the prompt');
  return { child, out, exited };
}

test('a card swapped for another disk while piinit waits for "yes" is not written', async (t) => {
  const dir = setup(t, 'piinit-burn-cli-');
  const img = buildTestImage(dir, { sizeMiB: 32, dataMiB: 1 });
  const c = card(t, dir, 'card', 40);
  const other = join(dir, 'other-disk');
  makeCardFile(other, 48, 0x5a);
  const { child, out, exited } = await atThePrompt(t, img, c.dev);
  assert.match(out.text, new RegExp(`${c.dev}\\s+\\(unknown model\\)\\s+40\\.0 MiB`), 'the prompt shows the card');

  // The card is pulled and another disk takes over its name (a loop device: its number).
  sh('losetup', ['-d', c.dev]);
  for (let i = 0; ; i++) {
    try {
      sh('losetup', [c.dev, other]);
      break;
    } catch (err) {
      if (i >= 50) throw err; // the detach is finished by the kernel once nothing holds the device
      await sleep(100);
    }
  }
  child.stdin.write('yes\n');
  const code = await Promise.race([exited, sleep(120_000).then(() => 'timeout')]);
  assert.equal(code, 1, out.text);
  assert.match(out.text, new RegExp(`${c.dev} is not the device that was checked: another disk or card took its name \\(disk sequence number \\d+ when checked, \\d+ now\\)`));
  assert.ok(head(other, 2 * MiB).every((b) => b === 0x5a), 'the other disk is untouched');
  assert.ok(head(c.file, 2 * MiB).every((b) => b === 0xa5), 'so is the card');
});

test('Ctrl-C or Ctrl-D at the "yes" prompt: not confirmed, nothing written, no stack trace', async (t) => {
  const dir = setup(t, 'piinit-burn-cli-');
  const img = buildTestImage(dir, { sizeMiB: 32, dataMiB: 1 });
  const c = card(t, dir, 'card', 40);
  for (const [key, name, status] of [['\x03', 'Ctrl-C', 130], ['\x04', 'Ctrl-D', 2]] as const) {
    const { child, out, exited } = await atThePrompt(t, img, c.dev);
    child.stdin.write(key); // as typed: the prompt reads the terminal raw
    const code = await Promise.race([exited, sleep(60_000).then(() => 'timeout')]);
    assert.equal(code, status, out.text);
    assert.match(out.text, new RegExp(`not confirmed \\(${name}\\): nothing was written`));
    assert.doesNotMatch(out.text, /internal error|^\s+at /m);
    assert.equal(head(c.file)[0], 0xa5, 'nothing written');
  }
});
