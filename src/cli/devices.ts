import { Option, type Command } from '@commander-js/extra-typings';
import { listDevices } from '../burn/devices.ts';
import { humanBytes, type Verdict } from '../burn/safety.ts';

export function register(program: Command): void {
  program
    .command('devices')
    .description('List the SD cards and USB drives `piinit burn` would write to (--all: every disk, and why it is not a candidate)')
    .option('--all', 'also list the disks that are not candidates, with the reasons')
    .option('--json', 'print the list as JSON')
    .addOption(new Option('--allow-loop', 'list loop devices as candidates (tests)').hideHelp())
    .action(async (opts) => {
      const all = await listDevices({ imageSize: 0, allowLoop: opts.allowLoop === true });
      const shown = opts.all ? all : all.filter((v) => v.ok);
      if (opts.json) {
        process.stdout.write(
          `${JSON.stringify(
            shown.map((v) => ({ path: v.path, candidate: v.ok, reasons: v.reasons, ...v.device })),
            null,
            2,
          )}\n`,
        );
        return;
      }
      if (shown.length === 0) {
        process.stdout.write(
          opts.all ? 'no disks found\n' : 'no card found: insert an SD card or USB drive (`piinit devices --all` says why each disk is not one)\n',
        );
        return;
      }
      process.stdout.write(`${shown.map(describeLine).join('\n')}\n`);
    });
}

function describeLine(v: Verdict): string {
  const d = v.device;
  const head = d
    ? `${d.path}  ${humanBytes(d.size)}  ${d.model}${d.transport ? `  via ${d.transport}` : ''}`
    : v.path;
  const parts = (d?.partitions ?? []).map(
    (p) =>
      `    ${p.path}  ${humanBytes(p.size)}  ${p.fstype ?? 'unknown'}${p.label ? `  "${p.label}"` : ''}${
        p.mountpoints.length ? `  mounted at ${p.mountpoints.join(', ')}` : ''
      }`,
  );
  const why = v.ok ? [] : v.reasons.map((r) => `    not a candidate: ${r}`);
  return [head, ...parts, ...why].join('\n');
}
