// Problems found in cluster.yaml or the secrets file, each with its position, and the error
// that carries all of them at once.
import { UserError } from '../errors.ts';

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  /** The file as the user named it (relative paths stay relative). */
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** Field path like "nodes[2].address"; "" for the whole file. */
  path: string;
  severity: Severity;
  message: string;
}

export type PathSegment = string | number;

export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** "cluster.yaml:14:14: error: nodes[2].address: 192.168.2.5 is outside the network 192.168.1.0/24" */
export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.column}: ${d.severity}: ${d.path ? `${d.path}: ` : ''}${d.message}`;
}

/** Files in the order they first appear (cluster.yaml before its secrets), then by position. */
export function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  const fileOrder = new Map<string, number>();
  for (const d of ds) if (!fileOrder.has(d.file)) fileOrder.set(d.file, fileOrder.size);
  return [...ds].sort(
    (a, b) =>
      fileOrder.get(a.file)! - fileOrder.get(b.file)! || a.line - b.line || a.column - b.column || a.path.localeCompare(b.path),
  );
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function summarize(ds: Diagnostic[]): string {
  const errors = ds.filter((d) => d.severity === 'error').length;
  const warnings = ds.length - errors;
  return warnings ? `${plural(errors, 'error')}, ${plural(warnings, 'warning')}` : plural(errors, 'error');
}

/** Thrown by loadCluster when there is at least one error. Carries every diagnostic (warnings too). */
export class ClusterValidationError extends UserError {
  readonly diagnostics: Diagnostic[];

  constructor(diagnostics: Diagnostic[]) {
    const sorted = sortDiagnostics(diagnostics);
    super(`invalid cluster (${summarize(sorted)}):\n${sorted.map(formatDiagnostic).join('\n')}`, 1);
    this.name = 'ClusterValidationError';
    this.diagnostics = sorted;
  }

  get errors(): Diagnostic[] {
    return this.diagnostics.filter((d) => d.severity === 'error');
  }
}
