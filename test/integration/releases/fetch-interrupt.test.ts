// Ctrl-C in a terminal while `piinit fetch` downloads: it stops at once with status 130, says
// so, shows the terminal's cursor again (the progress bars hide it), and keeps the part
// downloaded so far for the next run. A real terminal (script(1)), a real ^C through it, and
// a local server with the GitHub release layout that sends the file slowly.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { githubLayout } from '../../helpers/release-layout.ts';
import { startReleaseServer } from '../../helpers/release-server.ts';
import { watchOutput } from '../../helpers/child-output.ts';

const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';

test('Ctrl-C during piinit fetch: status 130, the cursor shown again, the part kept', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-fetch-int-'));
  const layout = await githubLayout('prometheus', '2.24.1', { amd64: { prometheus: Buffer.alloc(4 << 20, 7), promtool: Buffer.alloc(1024, 8) } });
  const server = await startReleaseServer(layout);
  const tarball = [...layout.keys()].find((k) => k.endsWith('.tar.gz'))!;
  server.throttle(tarball, Number.MAX_SAFE_INTEGER, 1024, 100); // 10 KiB/s: still downloading when ^C comes
  t.after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  const demo = await readFile('examples/demo/cluster.yaml', 'utf8');
  const yaml = demo.replace(/source: debian\n\s+suite: bullseye\n\s+package: prometheus\n/, `source: mirror\n    mirror: ${server.url}\n`);
  assert.notEqual(yaml, demo);
  await writeFile(join(dir, 'cluster.yaml'), yaml);
  execFileSync(process.execPath, ['bin/piinit.js', 'init', dir, '--secrets-only']);
  const cache = join(dir, 'cache');

  const cmd = `${process.execPath} bin/piinit.js fetch ${join(dir, 'cluster.yaml')} --component prometheus --arch amd64 --cache ${cache}`;
  const term = spawn('script', ['-qec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => {
    if (term.exitCode === null && term.signalCode === null) term.kill('SIGKILL');
  });
  const out = watchOutput(term, ['stdout']);
  await out.until(' MiB | ', 60_000, 'a progress bar');
  term.stdin.write('\x03'); // Ctrl-C, as typed: the terminal sends SIGINT to piinit
  const [code] = (await Promise.race([once(term, 'close'), new Promise((r) => setTimeout(() => r(['timeout']), 30_000))])) as [number | string];
  assert.equal(code, 130, out.text);
  assert.match(out.text, /piinit: SIGINT: stopped; the next piinit fetch continues the downloads where they are/);
  const hidden = out.text.indexOf(HIDE_CURSOR);
  assert.ok(hidden >= 0, 'the progress bars hid the cursor');
  assert.ok(out.text.indexOf(SHOW_CURSOR, hidden) > hidden, 'and it is shown again');
  const parts = (await readdir(join(cache, 'tmp'))).filter((f) => f.endsWith('.part'));
  assert.equal(parts.length, 1);
  assert.ok((await stat(join(cache, 'tmp', parts[0]!))).size > 0, 'the bytes so far are kept');
});
