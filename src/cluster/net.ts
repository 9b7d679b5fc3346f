// IPv4, CIDR and MAC helpers. Pure functions; no dependency on the cluster schema.

/** The 32-bit value of a dotted-quad IPv4 address, or null if it is not one (no leading zeros). */
export function parseIPv4(s: string): number | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n;
}

export function isIPv4(s: string): boolean {
  return parseIPv4(s) !== null;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  /** The network address (host bits cleared). */
  network: number;
  prefixLength: number;
}

export type CidrResult = { ok: true; cidr: Cidr } | { ok: false; reason: string };

/** Parses "a.b.c.d/n". Host bits must be zero ("192.168.1.5/24" is refused: it is ambiguous). */
export function parseCidr(s: string): CidrResult {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s);
  if (!m) return { ok: false, reason: 'is not a CIDR network (expected e.g. 192.168.1.0/24)' };
  const addr = parseIPv4(m[1]!);
  if (addr === null) return { ok: false, reason: `${m[1]} is not an IPv4 address` };
  const prefixLength = Number(m[2]);
  if (prefixLength > 32) return { ok: false, reason: `prefix length /${prefixLength} is larger than 32` };
  const network = (addr & maskOf(prefixLength)) >>> 0;
  if (network !== addr) {
    return { ok: false, reason: `has host bits set; the network is ${formatIPv4(network)}/${prefixLength}` };
  }
  return { ok: true, cidr: { network, prefixLength } };
}

export function maskOf(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

export function cidrContains(c: Cidr, addr: number): boolean {
  return ((addr & maskOf(c.prefixLength)) >>> 0) === c.network;
}

export function broadcastOf(c: Cidr): number {
  return (c.network | ~maskOf(c.prefixLength)) >>> 0;
}

export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.network)}/${c.prefixLength}`;
}

/** Why addr cannot be a host address in c, or null if it can. */
export function hostAddressProblem(c: Cidr, addr: number): string | null {
  if (!cidrContains(c, addr)) return `is outside the network ${formatCidr(c)}`;
  // /31 and /32 have no network or broadcast address (RFC 3021).
  if (c.prefixLength <= 30) {
    if (addr === c.network) return `is the network address of ${formatCidr(c)}, not a host address`;
    if (addr === broadcastOf(c)) return `is the broadcast address of ${formatCidr(c)}, not a host address`;
  }
  return null;
}

/** Lower-case, colon-separated MAC from "AA:BB:..", "aa-bb-.." ; null if it is not a MAC. */
export function normalizeMac(s: string): string | null {
  if (!/^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/.test(s)) return null;
  return s.toLowerCase().replaceAll('-', ':');
}

/** Why a normalized MAC cannot belong to a network card, or null. */
export function macProblem(mac: string): string | null {
  const first = parseInt(mac.slice(0, 2), 16);
  if (mac === '00:00:00:00:00:00') return 'is the all-zero address';
  if (first & 1) return 'is a multicast address (the lowest bit of the first byte is set), not a network card';
  return null;
}

/** Whether two networks share any address (one contains the other's network address). */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefixLength, b.prefixLength);
  return ((a.network & maskOf(p)) >>> 0) === ((b.network & maskOf(p)) >>> 0);
}
