// A local release server on 127.0.0.1 for the fetch tests and benchmark: serves files from
// memory with HTTP Range support, logs every request, and can misbehave on purpose
// (drop the connection part-way through a file, or send its start slowly).
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RequestLog {
  path: string;
  range: string | undefined;
  status: number;
}

export interface ReleaseServer {
  url: string;
  files: Map<string, Buffer>;
  log: RequestLog[];
  /** For `path`, the next `times` responses stop after `afterBytes` body bytes and the socket is destroyed. */
  dropConnection(path: string, afterBytes: number, times: number): void;
  /** For `path`, every response sends its first `slowBytes` in chunks of `chunkBytes`, `delayMs` apart. */
  throttle(path: string, slowBytes: number, chunkBytes: number, delayMs: number): void;
  /** Answer requests for `path` with a 302 to `location` (as github.com does for release assets). */
  redirect(path: string, location: string): void;
  close(): Promise<void>;
}

export async function startReleaseServer(files: Map<string, Buffer> = new Map()): Promise<ReleaseServer> {
  const log: RequestLog[] = [];
  const drops = new Map<string, { afterBytes: number; times: number }>();
  const throttles = new Map<string, { slowBytes: number; chunkBytes: number; delayMs: number }>();
  const redirects = new Map<string, string>();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const range = req.headers.range;
    const body = files.get(path);
    const record = (status: number) => log.push({ path, range, status });
    const target = redirects.get(path);
    if (target) {
      record(302);
      res.writeHead(302, { location: target }).end();
      return;
    }
    if (!body) {
      record(404);
      res.writeHead(404).end('not found');
      return;
    }
    let start = 0;
    let end = body.length - 1;
    let status = 200;
    if (range) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (!m || Number(m[1]) >= body.length) {
        record(416);
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      start = Number(m[1]);
      if (m[2]) end = Math.min(end, Number(m[2]));
      status = 206;
    }
    const headers: Record<string, string | number> = {
      'content-length': end - start + 1,
      'accept-ranges': 'bytes',
      'content-type': 'application/octet-stream',
    };
    if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${body.length}`;
    record(status);
    res.writeHead(status, headers);
    const drop = drops.get(path);
    if (drop && drop.times > 0) {
      drop.times--;
      const n = Math.min(drop.afterBytes, end - start);
      res.write(body.subarray(start, start + n), () => {
        // Give the bytes a moment to leave, then cut the connection mid-body.
        setTimeout(() => res.socket?.destroy(), 50);
      });
      return;
    }
    const slow = throttles.get(path);
    if (slow) {
      void (async () => {
        let at = start;
        while (at < Math.min(end + 1, slow.slowBytes) && !res.destroyed) {
          const n = Math.min(slow.chunkBytes, slow.slowBytes - at);
          res.write(body.subarray(at, at + n));
          at += n;
          await new Promise((r) => setTimeout(r, slow.delayMs));
        }
        res.end(body.subarray(at, end + 1));
      })();
      return;
    }
    res.end(body.subarray(start, end + 1));
  };
  const server: Server = createServer(handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    files,
    log,
    dropConnection(path, afterBytes, times) {
      drops.set(path, { afterBytes, times });
    },
    throttle(path, slowBytes, chunkBytes, delayMs) {
      throttles.set(path, { slowBytes, chunkBytes, delayMs });
    },
    redirect(path, location) {
      redirects.set(path, location);
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
