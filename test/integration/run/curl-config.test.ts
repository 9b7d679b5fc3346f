// curlConfig: what the local cluster hands curl on stdin (tokens never on a command line)
// reaches a real server through a real curl exactly as given, quotes and backslashes too.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { curlConfig } from '../../../src/run/local-security.ts';

test('curl -K - with curlConfig sends the header and body as given', async (t) => {
  let got: { token: unknown; body: string; method: string | undefined } | null = null;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      got = { token: req.headers['x-consul-token'], body, method: req.method };
      res.end('true');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/agent/token/agent`;
  const token = '0b5e6b1c-2f3a-4c7d-9e8f-a1b2c3d4e5f6';
  const body = JSON.stringify({ Token: 'a "quoted" \\ value' });

  const curl = spawn('curl', ['-sS', '--max-time', '5', '-o', '/dev/null', '-X', 'PUT', '-K', '-', url], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  curl.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  curl.stdin.end(curlConfig({ header: `X-Consul-Token: ${token}`, 'data-binary': body }));
  const [code] = (await once(curl, 'close')) as [number | null];
  assert.equal(code, 0, stderr);
  assert.deepEqual(got, { token, body, method: 'PUT' });
});
