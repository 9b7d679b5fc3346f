// Runs startReleaseServer over a directory in a worker thread, so a benchmark's client and
// server do not share one event loop. Posts the URL when listening; closes on 'close'.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parentPort, Worker, workerData } from 'node:worker_threads';
import { startReleaseServer } from './release-server.ts';

if (parentPort && workerData?.releaseServerRoot) {
  const root = workerData.releaseServerRoot as string;
  const files = new Map<string, Buffer>();
  for (const rel of await readdir(root, { recursive: true })) {
    const data = await readFile(join(root, rel)).catch(() => null);
    if (data) files.set(`/${rel}`, data);
  }
  const server = await startReleaseServer(files);
  parentPort.on('message', async (m) => {
    if (m === 'close') {
      await server.close();
      parentPort!.close();
    }
  });
  parentPort.postMessage(server.url);
}

/** Serves `root` from a worker thread; returns its URL and a close function. */
export async function serveDirectoryInWorker(root: string): Promise<{ url: string; close: () => Promise<void> }> {
  // The worker needs tsx's loader too: register it first, then load this file.
  const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const worker = new Worker(boot, { eval: true, workerData: { releaseServerRoot: root } });
  const url = await new Promise<string>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return {
    url,
    close: async () => {
      const exited = new Promise((r) => worker.once('exit', r));
      worker.postMessage('close');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      await worker.terminate();
    },
  };
}
