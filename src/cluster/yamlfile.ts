// A parsed YAML file that can say where any field path is (line:column), and turn zod
// issues into positioned diagnostics with readable messages.
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { formatPath, type Diagnostic, type PathSegment, type Severity } from './diagnostics.ts';
import { knownKeysAt, placesOfKey, requiredKeys } from './schema.ts';

export class YamlFile {
  readonly doc: Document.Parsed;
  readonly data: unknown;
  /** Syntax errors and warnings from the YAML parser. */
  readonly syntax: Diagnostic[] = [];
  private readonly lines = new LineCounter();

  /** secret: the file holds secrets, so messages name a value's kind, never the value. */
  constructor(
    readonly file: string,
    text: string,
    private readonly opts: { secret?: boolean } = {},
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    for (const [list, severity] of [
      [this.doc.errors, 'error'],
      [this.doc.warnings, 'warning'],
    ] as const) {
      const seenLines = new Set<number>();
      for (const e of list) {
        const { line, col } = this.lines.linePos(e.pos[0]);
        // One broken line often yields several parser errors; the first says it best.
        if (seenLines.has(line)) continue;
        seenLines.add(line);
        this.syntax.push({ file, line, column: col, path: '', severity, message: yamlMessage(e.message, text.slice(e.pos[0]), opts.secret === true) });
      }
    }
    let data: unknown;
    if (!this.doc.errors.length) {
      try {
        data = this.doc.toJS({ maxAliasCount: 100 });
      } catch (err) {
        // An alias without its anchor, or too many aliases: found only when resolving them.
        const { line, col } = this.lines.linePos(firstAliasOffset(this.doc));
        this.syntax.push({ file, line, column: col, path: '', severity: 'error', message: yamlMessage((err as Error).message, '', opts.secret === true) });
      }
    }
    this.data = data;
  }

  get ok(): boolean {
    return !this.syntax.some((d) => d.severity === 'error');
  }

  /** Position of the deepest node along path that exists (a missing key points at its parent map).
   *  With key: true and a map entry at the end of path, the position of the key itself. */
  position(path: readonly PathSegment[], opts: { key?: boolean } = {}): { line: number; column: number } {
    let node: unknown = this.doc.contents;
    let offset = node && (node as YamlNode).range ? (node as YamlNode).range![0] : 0;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
        if (!pair) break;
        const keyRange = (pair.key as YamlNode | null)?.range;
        const valueRange = (pair.value as YamlNode | null)?.range;
        if (last && opts.key && keyRange) {
          offset = keyRange[0];
          break;
        }
        // "key:" with nothing after it: point at the key.
        const emptyValue = pair.value === null || (isScalar(pair.value) && pair.value.value === null && pair.value.source === '');
        if (valueRange && !emptyValue) offset = valueRange[0];
        else if (keyRange) offset = keyRange[0];
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg] as YamlNode | undefined;
        if (!item?.range) break;
        offset = item.range[0];
        node = item;
      } else break;
    }
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col };
  }

  diagnostic(path: readonly PathSegment[], severity: Severity, message: string, opts: { key?: boolean } = {}): Diagnostic {
    return { file: this.file, ...this.position(path, opts), path: formatPath(path), severity, message };
  }

  /** The raw value at path in the parsed data, or undefined. In a file with syntax errors,
   *  a scalar from the part that parsed. */
  valueAt(path: readonly PathSegment[]): unknown {
    if (!this.ok) {
      try {
        const v: unknown = this.doc.getIn(path);
        return v !== null && typeof v === 'object' ? undefined : v;
      } catch {
        return undefined;
      }
    }
    let v: unknown = this.data;
    for (const seg of path) {
      if (v === null || typeof v !== 'object') return undefined;
      v = (v as Record<string | number, unknown>)[seg];
    }
    return v;
  }

  /** Validates the data against schema; returns the parsed value (if valid) and diagnostics. */
  /** unknownKeyHint: a better message for an unknown key that has a known right place. */
  validate<S extends z.ZodType>(
    schema: S,
    unknownKeyHint: (path: readonly PathSegment[], key: string) => string | undefined = () => undefined,
  ): { value?: z.infer<S>; diagnostics: Diagnostic[] } {
    const r = schema.safeParse(this.data);
    if (r.success) return { value: r.data, diagnostics: [] };
    const out: Diagnostic[] = [];
    for (const issue of r.error.issues) {
      const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
      if (issue.code === 'unrecognized_keys') {
        const known = knownKeysAt(schema, path);
        for (const key of issue.keys) {
          const hint = didYouMean(key, known);
          const elsewhere = placesOfKey(schema, key).map((w) => (w === '' ? 'at the top level' : `under ${w}:`));
          if (this.opts.secret === true && !fieldLike(key)) {
            // Its name is shown nowhere: it looks like a secret put where a key goes.
            const d = this.diagnostic([...path, key], 'error', 'unknown field (not named here: it looks like a value, maybe a secret indented as a key)', { key: true });
            out.push({ ...d, path: formatPath(path) });
            continue;
          }
          let msg = `unknown field ${quote(key) ?? `(${key.length} characters, not shown)`}`;
          const special = unknownKeyHint(path, key);
          if (special) msg += ` here: ${special}`;
          else if (hint) msg += ` (did you mean "${hint}"?)`;
          else if (elsewhere.length > 2) msg += ` here (it belongs ${elsewhere.slice(0, 2).join(' or ')} or …)`;
          else if (elsewhere.length) msg += ` here (it belongs ${elsewhere.join(' or ')})`;
          else if (known.length) msg += ` (expected one of: ${known.join(', ')})`;
          const d = this.diagnostic([...path, key], 'error', msg, { key: true });
          out.push(plain(key) ? d : { ...d, path: formatPath(path) });
        }
        continue;
      }
      out.push(this.diagnostic(path, 'error', this.describe(issue, path, schema)));
    }
    return { diagnostics: out };
  }

  private describe(issue: z.core.$ZodIssue, path: PathSegment[], schema: z.ZodType): string {
    const value = this.valueAt(path);
    const secret = this.opts.secret === true || secretPath(path);
    const shown = secret ? 'the value' : undefined;
    switch (issue.code) {
      case 'invalid_type': {
        if (value === undefined) return 'missing required field';
        if (path.length === 0 && value === null) {
          return `the file is empty: expected a mapping with ${requiredKeys(schema).map((k) => `${k}:`).join(', ')}`;
        }
        // 1e400 and .inf are Infinity, .nan is NaN: numbers to JavaScript, not to the schema.
        if (issue.expected === 'number' && typeof value === 'number') {
          return `expected a finite number, got ${Number.isNaN(value) ? 'NaN (not a number)' : `${value < 0 ? 'minus ' : ''}infinity`}`;
        }
        const expected = EXPECTED[issue.expected] ?? `a ${issue.expected}`;
        let msg = `expected ${expected}, got ${kindOf(value, secret)}`;
        if (issue.expected === 'string' && typeof value === 'number') msg += ' (put it in quotes)';
        if (issue.expected === 'array' && typeof value === 'string') msg += ' (write it as a list: one "- item" per line)';
        return msg;
      }
      case 'invalid_value': {
        if (value === undefined) return 'missing required field';
        const options = issue.values.map((v) => String(v));
        if (!secret && !plain(value)) return `expected one of: ${options.join(', ')}, got ${kindOf(value, secret)}`;
        const hint = typeof value === 'string' ? didYouMean(value, options) : undefined;
        return `${shown ?? JSON.stringify(value)} is not one of: ${options.join(', ')}${hint && !secret ? ` (did you mean "${hint}"?)` : ''}`;
      }
      case 'too_small':
        if (issue.origin === 'array') return `needs at least ${issue.minimum} ${Number(issue.minimum) === 1 ? 'entry' : 'entries'}`;
        if (issue.origin === 'string') return 'must not be empty';
        return `${shown ?? String(value)} is too small: the minimum is ${issue.minimum}`;
      case 'too_big':
        return `${shown ?? String(value)} is too large: the maximum is ${issue.maximum}`;
      case 'invalid_format':
      case 'custom':
      default:
        // The schema's messages quote the value: not a secret's, nor a long or garbled one.
        if (typeof value === 'string' && value !== '' && (secret || !plain(value))) {
          const as = shown ?? quote(value) ?? kindOf(value, false);
          const msg = issue.message.replaceAll(`"${value}"`, as);
          return plain(value) ? msg : msg.replaceAll(value, as);
        }
        return issue.message;
    }
  }
}

function kindOf(v: unknown, secret: boolean): string {
  if (v === null) return 'nothing (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (secret) return typeof v === 'string' ? 'text' : `a ${typeof v}`;
  if (typeof v === 'string') {
    const pem = PEM.exec(v);
    if (pem) return `a PEM block (BEGIN ${pem[1]}; not shown)`;
    const q = quote(v);
    return q ? `the text ${q}` : `a text of ${v.length} characters`;
  }
  return `the ${typeof v} ${String(v)}`;
}

const PEM = /-----BEGIN ([A-Z0-9 ]{1,40})-----/;
const ODD = /[\p{C}\uFFFD]/u; // control and invisible characters, or bytes that were not UTF-8

/** A scalar a message can show whole: not long, one line, printable, not a PEM block. */
function plain(v: unknown): boolean {
  if (typeof v === 'number' || typeof v === 'boolean') return true;
  return typeof v === 'string' && v.length <= 60 && !ODD.test(v) && !PEM.test(v);
}

/** Text in quotes as messages show it: whole if plain, else its printable start and length
 *  ('"abc…" (4123 characters)'); undefined when no start can be shown. */
function quote(s: string): string | undefined {
  if (plain(s)) return JSON.stringify(s);
  const start = PEM.test(s) ? undefined : /^[^\p{C}\uFFFD]{1,20}/u.exec(s)?.[0];
  return start && `${JSON.stringify(`${start}…`)} (${s.length} characters)`;
}

/** A field whose name or place says it may hold a secret (anything under wifi:, a token, a
 *  passphrase…): its value is described, never shown. A mistake like `wifi: "passphrase"`. */
function secretPath(path: readonly PathSegment[]): boolean {
  return path.some((seg) => typeof seg === 'string' && /wifi|pass|psk|secret|token|gossip|encrypt|private|(^|_)key$/i.test(seg));
}

/** Where the first alias (*name) of the document is: the likely culprit when resolving
 *  aliases fails. */
function firstAliasOffset(doc: Document.Parsed): number {
  let at = 0;
  visit(doc, {
    Alias(_key, node) {
      at = node.range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  return at;
}

const EXPECTED: Record<string, string> = {
  object: 'a mapping (key: value lines)',
  array: 'a list',
  int: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
};

/** The parser's message in our words, without the position we print anyway; `at` is the
 *  source from where it points. */
/** The parser's message, without the excerpt of the file it appends. In a secrets file also
 *  without what follows a colon: "Unresolved alias …: <name>" and "Unresolved tag: <tag>"
 *  quote the text, which there can be a key or a token. */
function yamlMessage(m: string, at = '', secret = false): string {
  if (m.startsWith('Map keys must be unique')) {
    const key = /^["']?([^"':\n]+)/.exec(at)?.[1]?.trim();
    return key && (!secret || fieldLike(key)) ? `"${key}" appears twice in this mapping` : 'a key appears twice in this mapping';
  }
  if (m.startsWith('Source contains multiple documents')) return "more than one YAML document (a second '---'): piinit reads one";
  const plain = m.replace(/ at line \d+, column \d+:?[\s\S]*$/, '').trim();
  return secret ? plain.replace(/:\s[\s\S]*$/, '') : plain;
}

/** Whether a key of a secrets file can be named in a message: field names are short snake
 *  case; a token, key or PEM line put where a key goes is not. Pure. */
function fieldLike(key: string): boolean {
  return /^[a-z][a-z0-9_]{0,31}$/.test(key);
}

/** Edit distance counting a swap of two neighbouring letters as one edit (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest known name, if it is close enough to be a typo. Short names only match when
 *  they differ in case or separators ("pi9" is not a typo of "pi1"). */
export function didYouMean(input: string, known: readonly string[]): string | undefined {
  const norm = (x: string) => x.toLowerCase().replaceAll('-', '_');
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(norm(input), norm(k));
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  if (best === undefined) return undefined;
  const allowed = best.length < 4 ? 0 : best.length < 8 ? 1 : 2;
  return bestD <= allowed ? best : undefined;
}
