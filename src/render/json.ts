// Deterministic serialisation: object keys sorted, two-space indent, trailing newline.
// Arrays keep their order (callers sort where order carries no meaning).

export type Json = string | number | boolean | null | Json[] | { [k: string]: Json | undefined };

function sortKeys(v: Json | undefined): Json | undefined {
  if (Array.isArray(v)) return v.map((x) => sortKeys(x) as Json);
  if (v !== null && typeof v === 'object') {
    const out: { [k: string]: Json } = {};
    for (const k of Object.keys(v).sort()) {
      const x = sortKeys(v[k]);
      if (x !== undefined) out[k] = x;
    }
    return out;
  }
  return v;
}

export function stableJson(v: Json): string {
  return `${JSON.stringify(sortKeys(v), null, 2)}\n`;
}

/** Compares dotted numeric versions ("1.12.3", "v1.8.7+ent"); true when v >= min. */
export function versionAtLeast(v: string, min: string): boolean {
  const parse = (s: string) =>
    s
      .replace(/^v/, '')
      .split(/[-+~]/)[0]!
      .split('.')
      .map((x) => Number.parseInt(x, 10) || 0);
  const a = parse(v);
  const b = parse(min);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
}
