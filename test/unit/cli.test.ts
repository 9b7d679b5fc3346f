import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { Command } from '@commander-js/extra-typings';
import { registerCommands } from '../../src/cli/commands.ts';

test('piinit --help lists the commands', () => {
  const r = spawnSync(process.execPath, ['bin/piinit.js', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const c of ['init', 'validate', 'render', 'fetch', 'packages', 'image', 'burn', 'up', 'down', 'status']) {
    assert.match(r.stdout, new RegExp(`^\\s+${c}\\b`, 'm'), `missing ${c}`);
  }
});

// Commander wraps a description to the terminal's width; a line break written into one
// leaves a stub line in the middle of the paragraph ("…read-only\nroot,\nstate…").
function descriptionParagraph(help: string): string[] {
  const lines = help.split('\n');
  const start = lines.findIndex((l) => l.startsWith('Usage:')) + 2;
  const end = lines.indexOf('', start);
  return lines.slice(start, end);
}

test('piinit --help: the description is one filled paragraph', () => {
  const r = spawnSync(process.execPath, ['bin/piinit.js', '--help'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '80' } });
  const para = descriptionParagraph(r.stdout);
  assert.ok(para.length >= 2, r.stdout);
  for (const l of para.slice(0, -1)) assert.ok(l.length > 60, `stub line ${JSON.stringify(l)} in:\n${para.join('\n')}`);
});

test('no command description carries a line break of its own', () => {
  const program = new Command();
  registerCommands(program);
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap((s) => all(s as Command))];
  const commands = all(program).slice(1);
  assert.ok(commands.length >= 12);
  for (const c of commands) assert.doesNotMatch(c.description(), /\n/, `piinit ${c.name()}`);
});
