// The `ar` container of a .deb: a global magic, then per member a 60-byte text header and
// the data padded to an even length. dpkg reads only the common System V/GNU subset:
// names up to 15 characters, decimal mtime/uid/gid/size, octal mode.

export interface ArMember {
  name: string;
  data: Buffer;
}

export const AR_MAGIC = Buffer.from('!<arch>\n', 'latin1');

function field(value: string, width: number, what: string): string {
  if (value.length > width) throw new Error(`ar header: ${what} "${value}" longer than ${width}`);
  return value.padEnd(width, ' ');
}

export function arHeader(name: string, size: number, mtime: number): Buffer {
  const h =
    field(name, 16, 'name') +
    field(String(Math.max(0, Math.floor(mtime))), 12, 'mtime') +
    field('0', 6, 'uid') +
    field('0', 6, 'gid') +
    field('100644', 8, 'mode') +
    field(String(size), 10, 'size') +
    '`\n';
  return Buffer.from(h, 'latin1');
}

/** The whole archive as a list of buffers (written with one writev, no copy). */
export function arChunks(members: ArMember[], mtime: number): Buffer[] {
  const out: Buffer[] = [AR_MAGIC];
  for (const m of members) {
    out.push(arHeader(m.name, m.data.length, mtime), m.data);
    if (m.data.length % 2 === 1) out.push(Buffer.from('\n'));
  }
  return out;
}
