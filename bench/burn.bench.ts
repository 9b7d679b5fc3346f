// Burning a sparse 1 GiB image (~15% data) to a loop device: piinit's burner against
// `dd bs=4M conv=fsync` of the whole raw image and against `bmaptool copy` with the same
// block map. Prints bytes written and time ratios. Goals: at most 5% more bytes than the
// mapped data; faster than dd by about image size / data size.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { burn } from '../src/burn/burn.ts';
import { humanBytes } from '../src/burn/safety.ts';
import { openSource } from '../src/burn/source.ts';
import { createBlockMap, renderBmapXml } from '../src/image/bmap.ts';

const MiB = 1024 * 1024;
const IMAGE_MIB = 1024;
const DATA_MIB = 150;

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

function buildImage(dir: string): string {
  const img = join(dir, 'bench.img');
  const root = join(dir, 'root');
  mkdirSync(root);
  const buf = Buffer.alloc(MiB);
  for (let i = 0; i < DATA_MIB; i++) {
    randomFillSync(buf);
    writeFileSync(join(root, `f${i}`), buf);
  }
  closeSync(openSync(img, 'w'));
  truncateSync(img, IMAGE_MIB * MiB);
  const boot = 256 * 2048;
  sh('sfdisk', ['-q', img], `label: dos\nstart=8192, size=${boot}, type=c\nstart=${8192 + boot}, type=83\n`);
  sh('mkfs.vfat', ['-F', '16', '--offset', '8192', '-n', 'BOOT', img, String(boot / 2)]);
  const rootStart = 8192 + boot;
  sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-E', `offset=${rootStart * 512}`, '-d', root, img, `${(IMAGE_MIB * 2048 - rootStart) / 2}k`]);
  rmSync(root, { recursive: true });
  return img;
}

async function timed<T>(fn: () => Promise<T> | T): Promise<{ seconds: number; value: T }> {
  const t = performance.now();
  const value = await fn();
  return { seconds: (performance.now() - t) / 1000, value };
}

export default async function (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'piinit-bench-burn-'));
  let dev: string | null = null;
  try {
    process.stdout.write(`building a ${IMAGE_MIB} MiB image with ${DATA_MIB} MiB of data...\n`);
    const img = buildImage(dir);
    const mapTime = await timed(() => createBlockMap(img));
    const map = mapTime.value;
    const mapped = map.mappedBlocksCount * map.blockSize;
    const bmap = `${img}.bmap`;
    writeFileSync(bmap, renderBmapXml(map));
    // The card's backing file is written in full first: otherwise whichever tool runs first
    // also pays for the file system allocating the backing file's blocks.
    const cardFile = join(dir, 'card');
    sh('dd', ['if=/dev/zero', `of=${cardFile}`, 'bs=4M', `count=${(IMAGE_MIB + 64) / 4}`, 'conv=fsync', 'status=none']);
    dev = sh('losetup', ['-f', '--show', cardFile]).trim();
    const size = (IMAGE_MIB + 64) * MiB;
    execFileSync('sh', ['-c', 'cat "$1" > /dev/null', 'sh', img]); // warm the page cache once, the same for every tool

    // Two rounds, best time of each: this machine is shared, single runs vary a lot.
    const hasBmaptool = spawnSync('bmaptool', ['--version']).status === 0;
    const best = { ours: Infinity, oursVerified: Infinity, dd: Infinity, bmaptool: Infinity };
    let oursReport: Awaited<ReturnType<typeof burn>>[number] | undefined;
    let v: Awaited<ReturnType<typeof burn>>[number] | undefined;
    for (let round = 0; round < 2; round++) {
      const ours = await timed(async () =>
        burn({ source: await openSource(img), targets: [{ path: dev!, kind: 'block', size }], verify: false }),
      );
      oursReport = ours.value[0]!;
      if (oursReport.status !== 'written') throw new Error(`piinit burn failed: ${oursReport.error}`);
      best.ours = Math.min(best.ours, ours.seconds);
      if (hasBmaptool) {
        const b = await timed(() => sh('bmaptool', ['-q', 'copy', '--bmap', bmap, img, dev!]));
        best.bmaptool = Math.min(best.bmaptool, b.seconds);
      }
      const verified = await timed(async () =>
        burn({ source: await openSource(img), targets: [{ path: dev!, kind: 'block', size }] }),
      );
      v = verified.value[0]!;
      if (v.status !== 'verified') throw new Error(`piinit burn (verify) failed: ${v.error}`);
      best.oursVerified = Math.min(best.oursVerified, verified.seconds);
      const dd = await timed(() => sh('dd', [`if=${img}`, `of=${dev}`, 'bs=4M', 'conv=fsync', 'status=none']));
      best.dd = Math.min(best.dd, dd.seconds);
    }
    const ours = { seconds: best.ours };
    const oursVerified = { seconds: best.oursVerified };
    const dd = { seconds: best.dd };
    const bmaptool = hasBmaptool ? { seconds: best.bmaptool } : null;
    oursReport = oursReport!;
    v = v!;

    const rows: Array<[string, number, number]> = [
      ['piinit burn (write only)', oursReport.bytesWritten, ours.seconds],
      ['piinit burn + read-back verify', v.bytesWritten, oursVerified.seconds],
      ['dd bs=4M conv=fsync', IMAGE_MIB * MiB, dd.seconds],
      ...(bmaptool ? ([['bmaptool copy', mapped, bmaptool.seconds]] as Array<[string, number, number]>) : []),
    ];
    process.stdout.write(
      `image ${humanBytes(IMAGE_MIB * MiB)}, mapped ${humanBytes(mapped)} (${((100 * mapped) / (IMAGE_MIB * MiB)).toFixed(1)}%), ` +
        `block map made in ${mapTime.seconds.toFixed(2)} s\n`,
    );
    for (const [name, bytes, secs] of rows) {
      process.stdout.write(
        `  ${name.padEnd(32)} ${humanBytes(bytes).padStart(10)} written  ${secs.toFixed(2).padStart(6)} s  ` +
          `(${(ours.seconds / secs).toFixed(2)}x of our write time)\n`,
      );
    }
    const extra = (oursReport.bytesWritten - mapped) / mapped;
    process.stdout.write(
      `  bytes beyond the mapped data: ${(100 * extra).toFixed(1)}% (goal <= 5%)${extra <= 0.05 ? '' : '  ** over the goal **'}\n` +
        `  dd / piinit write time: ${(dd.seconds / ours.seconds).toFixed(1)}x  (goal ~ image/data = ${((IMAGE_MIB * MiB) / mapped).toFixed(1)}x)\n` +
        (bmaptool ? `  bmaptool / piinit write time: ${(bmaptool.seconds / ours.seconds).toFixed(2)}x\n` : '  bmaptool not installed: skipped\n'),
    );
  } finally {
    if (dev) spawnSync('losetup', ['-d', dev]);
    rmSync(dir, { recursive: true, force: true });
  }
}
