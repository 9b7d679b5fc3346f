// Compressors for the tar members of a .deb, as transform streams whose output is a pure
// function of the input and the options: gzip through node:zlib (no name, mtime 0), xz
// through the system `xz` with every option that changes the output fixed.
import { spawn } from 'node:child_process';
import { Duplex, PassThrough, type Readable, type Writable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { UserError } from '../errors.ts';
import type { Compression } from './model.ts';

export function memberSuffix(c: Compression): string {
  return c.kind === 'xz' ? '.xz' : c.kind === 'gzip' ? '.gz' : '';
}

/** xz arguments. Multi-threaded mode with a fixed block size gives the same bytes for any
 *  thread count ≥ 1 in that mode, so a two-core laptop and a 64-core CI box agree. 8 MiB
 *  blocks (plain xz -6 uses 24 MiB) keep two cores busy on a 70 MB binary for ~1% size. */
export function xzArgs(level: number): string[] {
  return ['--format=xz', '--check=crc64', `-${level}`, '--threads=2', '--block-size=8388608', '--stdout', '--quiet'];
}

export function compressor(c: Compression): Duplex {
  const level = c.level ?? 6;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new Error(`compression level ${level} out of 0..9`);
  switch (c.kind) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return createGzip({ level });
    case 'xz': {
      const child = spawn('xz', xzArgs(level), { stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const duplex = Duplex.from({ writable: child.stdin as Writable, readable: child.stdout as Readable });
      child.on('error', (err: NodeJS.ErrnoException) => {
        duplex.destroy(
          err.code === 'ENOENT' ? new UserError('xz is not installed (apt-get install xz-utils), or use gzip compression') : err,
        );
      });
      child.on('close', (code, signal) => {
        if (code !== 0) duplex.destroy(new Error(`xz failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
      });
      return duplex;
    }
  }
}
