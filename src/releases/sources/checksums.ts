import { VerificationError } from '../errors.ts';

/** Parses a `sha256sum` style list ("<hex>  <name>" or "<hex> *<name>") into name → hex. */
export function parseSha256Sums(text: string, what: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const m = /^([0-9a-fA-F]{64})\s+\*?(\S+)$/.exec(line);
    if (!m) throw new VerificationError(`${what}: malformed line "${line.slice(0, 100)}"`);
    const name = m[2]!.replace(/^\.\//, '');
    const hex = m[1]!.toLowerCase();
    const prev = out.get(name);
    if (prev && prev !== hex) throw new VerificationError(`${what}: two different checksums for ${name}`);
    out.set(name, hex);
  }
  return out;
}
