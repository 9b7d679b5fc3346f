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
    const cardFile = join(dir, 'card');
    closeSync(openSync(cardFile, 'w'));
    truncateSync(cardFile, (IMAGE_MIB + 64) * MiB);
    dev = sh('losetup', ['-f', '--show', cardFile]).trim();
    const size = (IMAGE_MIB + 64) * MiB;
    execFileSync('sh', ['-c', 'cat "$1" > /dev/null', 'sh', img]); // warm the page cache once, the same for every tool

    const ours = await timed(async () =>
      burn({ source: await openSource(img), targets: [{ path: dev!, kind: 'block', size }], verify: false }),
    );
    const oursReport = ours.value[0]!;
    if (oursReport.status !== 'written') throw new Error(`piinit burn failed: ${oursReport.error}`);
    const oursVerified = await timed(async () =>
      burn({ source: await openSource(img), targets: [{ path: dev!, kind: 'block', size }] }),
    );
    const v = oursVerified.value[0]!;
    if (v.status !== 'verified') throw new Error(`piinit burn (verify) failed: ${v.error}`);

    const dd = await timed(() => sh('dd', [`if=${img}`, `of=${dev}`, 'bs=4M', 'conv=fsync', 'status=none']));
    const hasBmaptool = spawnSync('bmaptool', ['--version']).status === 0;
    const bmaptool = hasBmaptool ? await timed(() => sh('bmaptool', ['-q', 'copy', '--bmap', bmap, img, dev!])) : null;

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
