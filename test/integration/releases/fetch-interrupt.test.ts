// Ctrl-C in a terminal while `piinit fetch` downloads: it stops at once with status 130, says
// so, shows the terminal's cursor again (the progress bars hide it), and keeps the part
// downloaded so far for the next run. A real terminal (script(1)), a real ^C through it, and
// a local server with the GitHub release layout that sends the file slowly.
// And a second fetch into the same cache meanwhile: it says whose download it waits for, and
// carries on from that part once the first is stopped.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { githubLayout } from '../../helpers/release-layout.ts';
import { startReleaseServer } from '../../helpers/release-server.ts';
import { watchOutput } from '../../helpers/child-output.ts';

const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';

/** A cluster whose Prometheus comes from a local mirror that sends its tarball (4 MiB that
 *  do not compress) at 10 KiB/s: minutes, longer than any test waits. And a cache for it. */
async function slowMirror(t: TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'piinit-fetch-int-'));
  const layout = await githubLayout('prometheus', '2.24.1', { amd64: { prometheus: randomBytes(4 << 20), promtool: Buffer.alloc(1024, 8) } });
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
  return { dir, server, tarball, cache };
}

test('Ctrl-C during piinit fetch: status 130, the cursor shown again, the part kept', async (t) => {
  const { dir, cache } = await slowMirror(t);
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

test('a second piinit fetch into the same cache says whose download it waits for, then carries on from its part', async (t) => {
  const { dir, server, tarball, cache } = await slowMirror(t);
  const args = ['bin/piinit.js', 'fetch', join(dir, 'cluster.yaml'), '--component', 'prometheus', '--arch', 'amd64', '--cache', cache];
  const children: ChildProcess[] = [];
  t.after(() => children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL')));
  const start = () => {
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(c);
    return { child: c, out: watchOutput(c), closed: once(c, 'close') as Promise<[number | null]> };
  };
  const first = start();
  const tmp = join(cache, 'tmp');
  const downloading = async () => (await readdir(tmp).catch(() => [])).some((f) => f.endsWith('.part.lock'));
  for (let i = 0; i < 300 && !(await downloading()); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(await downloading(), `the first fetch is downloading: ${first.out.text}`);

  const second = start();
  await second.out.until(`waiting for another piinit (pid ${first.child.pid}), which is downloading it into this cache`, 60_000, 'the wait, named');
  const before = server.log.length;
  server.throttle(tarball, 0, 1, 0); // full speed from now on
  first.child.kill('SIGINT');
  assert.equal((await first.closed)[0], 130, first.out.text);
  const [code] = (await Promise.race([second.closed, new Promise((r) => setTimeout(() => r(['timeout']), 60_000))])) as [number | string];
  assert.equal(code, 0, second.out.text);
  assert.match(second.out.text, /^fetched prometheus 2\.24\.1 amd64/m);
  const resumed = server.log.slice(before).filter((l) => l.path === tarball);
  assert.equal(resumed.length, 1);
  assert.match(resumed[0]!.range ?? '', /^bytes=[1-9]\d*-$/, "it took over the first one's part");
});
