// Just enough ELF to check a release binary before packaging it: which Debian arch it runs
// on, and whether it is dynamically linked (then the package needs libc6).
import { open } from 'node:fs/promises';
import type { DebianArch } from '../cluster/boards.ts';

export interface ElfInfo {
  machine: 'x86_64' | 'aarch64' | 'arm' | 'other';
  bits: 32 | 64;
  dynamic: boolean;
}

const EM: Record<number, ElfInfo['machine']> = { 62: 'x86_64', 183: 'aarch64', 40: 'arm' };

/** null when the file is not ELF. */
export async function readElf(path: string): Promise<ElfInfo | null> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(64);
    const { bytesRead } = await fh.read(head, 0, 64, 0);
    if (bytesRead < 52 || head.readUInt32BE(0) !== 0x7f454c46) return null;
    const bits = head[4] === 2 ? 64 : 32;
    const le = head[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const machine = EM[u16(head, 18)] ?? 'other';
    const phoff = bits === 64 ? Number(le ? head.readBigUInt64LE(32) : head.readBigUInt64BE(32)) : u32(head, 28);
    const phentsize = u16(head, bits === 64 ? 54 : 42);
    const phnum = u16(head, bits === 64 ? 56 : 44);
    const ph = Buffer.alloc(phentsize * phnum);
    await fh.read(ph, 0, ph.length, phoff);
    let dynamic = false;
    for (let i = 0; i < phnum; i++) {
      const type = u32(ph, i * phentsize);
      if (type === 3 /* PT_INTERP */) dynamic = true;
    }
    return { machine, bits, dynamic };
  } finally {
    await fh.close();
  }
}

export function elfMatchesArch(e: ElfInfo, arch: DebianArch): boolean {
  switch (arch) {
    case 'amd64':
      return e.machine === 'x86_64' && e.bits === 64;
    case 'arm64':
      return e.machine === 'aarch64' && e.bits === 64;
    case 'armhf':
    case 'armel':
      return e.machine === 'arm' && e.bits === 32;
  }
}
