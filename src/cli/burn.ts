import { Option, type Command } from '@commander-js/extra-typings';
import { createInterface } from 'node:readline/promises';
import { burn, type CardReport } from '../burn/burn.ts';
import { resolveTargets, type ResolvedTarget } from '../burn/devices.ts';
import { progressDisplay } from '../burn/progress.ts';
import { humanBytes } from '../burn/safety.ts';
import { openSource } from '../burn/source.ts';
import { UserError } from '../errors.ts';
import { onInterrupt } from './interrupt.ts';

export function register(program: Command): void {
  program
    .command('burn')
    .description('Write an image to one or more SD cards at once: only the blocks that hold data, then read every card back and verify it')
    .argument('<image>', 'the image: raw (.img) or xz-compressed (.img.xz); its block map IMAGE.bmap is used when present')
    .argument('<device...>', 'whole card devices, e.g. /dev/sdb /dev/mmcblk0 (see `piinit devices`)')
    .option('-y, --yes', 'write without asking (needed when stdin is not a terminal)')
    .option('--bmap <file>', 'the block map (bmaptool format) to use instead of the one next to the image')
    .option('--no-bmap', 'ignore any .bmap file: map a raw image by its allocation; an xz image is written whole')
    .option('--no-verify', 'do not read the cards back (not recommended)')
    .option('--allow-file', 'allow writing to a regular file (creates or grows it)')
    .addOption(new Option('--allow-loop', 'accept loop devices as cards (tests and benchmarks)').hideHelp())
    .option('--json', 'print the per-card report as JSON')
    .addHelpText(
      'after',
      `
Safety: every device must be a whole disk that is removable or on a USB or SD bus, with no
mounted file system or swap on it (also through LVM, dm-crypt or RAID), not the disk the
running system lives on, and at least as big as the image. Anything else is refused before a
byte is written. Without --yes you see each card's model, size and partitions and confirm.

The first and last MiB of each card are zeroed first, the image's mapped ranges are written
with the first sector last, then the card is flushed and read back range by range.
Ctrl-C stops cleanly and leaves the first sector zero, so a half-written card does not boot.

Exit status: 0 when every card verified, 1 when any failed, 2 when refused or not confirmed
(nothing written), 130 when interrupted.`,
    )
    .action(async (image, devices, opts) => {
      // Both set one value (the last given wins in commander): a script giving both meant something.
      const given = (flag: string) => process.argv.some((a) => a === flag || a.startsWith(`${flag}=`));
      if (given('--bmap') && given('--no-bmap')) throw new UserError('--bmap and --no-bmap exclude each other', 2);
      const source = await openSource(image, { bmap: opts.bmap === false ? null : opts.bmap });
      const targets = await resolveTargets(devices, {
        imageSize: source.imageSize,
        allowLoop: opts.allowLoop === true,
        allowFile: opts.allowFile === true,
        sources: [image, ...(source.bmapPath ? [source.bmapPath] : [])],
      });
      const refused = targets.filter((t) => !t.verdict.ok);
      if (refused.length) {
        throw new UserError(
          `refusing to write (nothing was written):\n${refused
            .map((t) => `  ${t.given}${t.given !== t.path ? ` (${t.path})` : ''}:\n${t.verdict.reasons.map((r) => `    - ${r}`).join('\n')}`)
            .join('\n')}`,
          2,
        );
      }
      if (!opts.yes) await confirm(image, source.imageSize, targets);

      const interrupt = onInterrupt("stopping after the current write and zeroing each card's first sector...", 'the cards are incomplete');

      const interactive = process.stdout.isTTY === true && process.stderr.isTTY === true && !opts.json;
      const display = interactive ? progressDisplay(targets.map((t) => t.path)) : null;
      let reports: CardReport[];
      try {
        reports = await burn({
          source,
          targets: targets.map((t) => ({ path: t.path, kind: t.kind, size: t.verdict.device?.size, identity: t.identity })),
          signal: interrupt.signal,
          verify: opts.verify,
          onProgress: (p) => display?.update(p),
          hooks: testHooks(interrupt.signal),
        });
      } finally {
        display?.stop();
        interrupt.dispose();
      }

      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ image, mapOrigin: source.mapOrigin, cards: reports }, null, 2)}\n`);
      } else {
        process.stdout.write(reports.map(reportLine).join('\n') + '\n');
      }
      process.exitCode = reports.some((r) => r.status === 'interrupted')
        ? 130
        : reports.every((r) => r.status === 'verified' || r.status === 'written')
          ? 0
          : 1;
    });
}

function reportLine(r: CardReport): string {
  const wrote = `wrote ${humanBytes(r.bytesWritten)} (${humanBytes(r.mappedBytes)} of data in a ${humanBytes(r.imageSize)} image)`;
  switch (r.status) {
    case 'verified':
      return `${r.path}: verified. ${wrote} in ${r.writeSeconds.toFixed(1)} s, read back in ${r.verifySeconds.toFixed(1)} s`;
    case 'written':
      return `${r.path}: written, NOT verified (--no-verify). ${wrote} in ${r.writeSeconds.toFixed(1)} s`;
    case 'interrupted':
      return `${r.path}: INTERRUPTED: the card is incomplete; its first sector is zero, so it will not boot. Burn it again.`;
    default: {
      const shown = r.mismatches.slice(0, 5).map((m) => `\n    - at byte ${m.offset}: ${m.detail}`);
      const more = r.mismatches.length > 5 ? `\n    - ... ${r.mismatches.length - 5} more` : '';
      return `${r.path}: FAILED: ${r.error ?? 'unknown error'}${shown.join('')}${more}`;
    }
  }
}

async function confirm(image: string, imageSize: number, targets: ResolvedTarget[]): Promise<void> {
  if (!process.stdin.isTTY) {
    throw new UserError('refusing to write without --yes: stdin is not a terminal, so nobody can confirm', 2);
  }
  const lines = [`About to write ${image} (${humanBytes(imageSize)}) to:`];
  for (const t of targets) {
    const d = t.verdict.device;
    if (!d) {
      lines.push(`  ${t.path}  (file)`);
      continue;
    }
    lines.push(`  ${d.path}  ${d.model}  ${humanBytes(d.size)}${d.transport ? `  via ${d.transport}` : ''}`);
    if (d.partitions.length === 0) lines.push('      no partitions');
    for (const p of d.partitions) {
      lines.push(`      ${p.path}  ${humanBytes(p.size)}  ${p.fstype ?? 'unknown'}${p.label ? `  "${p.label}"` : ''}`);
    }
  }
  lines.push('Everything on these devices will be lost.');
  process.stderr.write(`${lines.join('\n')}\n`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  let answer: string;
  try {
    answer = await rl.question(`Type "yes" to write ${targets.length === 1 ? 'this card' : `these ${targets.length} cards`}: `);
  } catch (err) {
    // On a terminal readline reads Ctrl-C and Ctrl-D itself: they end the question, not piinit.
    if ((err as NodeJS.ErrnoException).code !== 'ABORT_ERR') throw err;
    process.stderr.write('\n');
    const eof = /Ctrl\+D/.test((err as Error).message);
    throw new UserError(`not confirmed (${eof ? 'Ctrl-D' : 'Ctrl-C'}): nothing was written`, eof ? 2 : 130);
  } finally {
    rl.close();
  }
  if (answer.trim().toLowerCase() !== 'yes') throw new UserError('not confirmed: nothing was written', 2);
}

/**
 * PIINIT_TEST_HOLD_AT_BYTES=N (tests only): once N bytes are synced to a card, say so on
 * stderr and wait (at most 60 s) for a signal, so a test can interrupt a burn mid-write.
 */
function testHooks(signal: AbortSignal): { afterSync?: (path: string, done: number) => Promise<void> } {
  const at = Number(process.env.PIINIT_TEST_HOLD_AT_BYTES ?? NaN);
  if (!Number.isFinite(at)) return {};
  let held = false;
  return {
    afterSync: async (path, done) => {
      if (held || done < at) return;
      held = true;
      process.stderr.write(`piinit-test: holding ${path} at ${done} bytes\n`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 60_000);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
