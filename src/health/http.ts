// One JSON GET against a cluster API, bounded in time, with the cluster CA and an ACL token
// when the cluster uses them. Failures are values, not exceptions: a health report is
// mostly about what does not answer.
import { checkServerIdentity as defaultCheck, type PeerCertificate } from 'node:tls';
import { Agent, request, type Dispatcher } from 'undici';

export interface HttpAuth {
  /** PEM of the cluster CA, for https:// endpoints. */
  ca?: string;
  /** Sent as X-Consul-Token to Consul and X-Nomad-Token to Nomad. */
  consulToken?: string;
  nomadToken?: string;
  /** Extra DNS names accepted in server certificates besides the address itself
   *  (Consul and Nomad servers' certificates name e.g. server.<dc>.consul). */
  serverNames?: string[];
}

export type HttpResult<T> = { ok: true; status: number; body: T; headers: Record<string, string> } | { ok: false; status?: number; error: string };

/** What a JSON answer must look like for its reader: another service on the port (a web
 *  page, other JSON) is a problem to report, not a crash further on. */
export type Shape = (body: unknown) => boolean;

/** Shapes of the answers read. Pure. */
export const shapes = {
  string: ((b) => typeof b === 'string') as Shape,
  array: ((b) => Array.isArray(b)) as Shape,
  /** An object with an array at `path` (dotted: "data.activeTargets"). */
  arrayAt:
    (path: string): Shape =>
    (b) =>
      Array.isArray(path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), b)),
  objectWith: (key: string): Shape => (b) => typeof b === 'object' && b !== null && key in b,
};

export class Http {
  private readonly dispatcher: Dispatcher;

  constructor(
    private readonly auth: HttpAuth = {},
    private readonly timeoutMs = 3000,
  ) {
    const names = auth.serverNames ?? [];
    this.dispatcher = new Agent({
      connect: {
        timeout: timeoutMs,
        ...(auth.ca ? { ca: auth.ca } : {}),
        checkServerIdentity: (host: string, cert: PeerCertificate) => {
          const err = defaultCheck(host, cert);
          if (!err) return undefined;
          const sans = (cert.subjectaltname ?? '').split(', ');
          return names.some((n) => sans.includes(`DNS:${n}`)) ? undefined : err;
        },
      },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
  }

  async getJson<T>(url: string, token?: { header: string; value: string | undefined }, shape?: Shape): Promise<HttpResult<T>> {
    return this.send<T>('GET', url, undefined, token, [], shape);
  }

  /** accept: error statuses whose body is still the answer (Consul's autopilot health is
   *  HTTP 429 while the servers are unhealthy). shape: the answer must be JSON of that shape
   *  (without one, an answer that is not JSON is its text). */
  async send<T>(
    method: 'GET' | 'PUT',
    url: string,
    body?: string,
    token?: { header: string; value: string | undefined },
    accept: number[] = [],
    shape?: Shape,
  ): Promise<HttpResult<T>> {
    const headers: Record<string, string> = {};
    if (token?.value) headers[token.header] = token.value;
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      const res = await request(url, { method, headers, body, dispatcher: this.dispatcher, signal });
      const text = await res.body.text();
      const hdrs: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') hdrs[k] = v;
      if (res.statusCode >= 400 && !accept.includes(res.statusCode)) {
        const hint = res.statusCode === 403 ? ' — the ACL token is missing, unknown, or lacks the permission (see --token)' : '';
        return { ok: false, status: res.statusCode, error: `HTTP ${res.statusCode}: ${text.trim().slice(0, 200) || 'no body'}${hint}` };
      }
      let parsed: unknown = text;
      let json = true;
      try {
        parsed = JSON.parse(text);
      } catch {
        json = false;
      }
      if (shape && !(json && shape(parsed))) {
        const start = text.trim().replace(/\s+/g, ' ').slice(0, 80) || 'no body';
        return { ok: false, status: res.statusCode, error: `not the answer expected here, HTTP ${res.statusCode}: ${start}` };
      }
      return { ok: true, status: res.statusCode, body: parsed as T, headers: hdrs };
    } catch (err) {
      return { ok: false, error: describeError(err) };
    }
  }

  consul<T>(url: string, shape: Shape, accept: number[] = []): Promise<HttpResult<T>> {
    return this.send<T>('GET', url, undefined, { header: 'X-Consul-Token', value: this.auth.consulToken }, accept, shape);
  }

  nomad<T>(url: string, shape: Shape): Promise<HttpResult<T>> {
    return this.getJson<T>(url, { header: 'X-Nomad-Token', value: this.auth.nomadToken }, shape);
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as Error & { cause?: unknown }).cause;
  const code = (err as { code?: string }).code ?? (cause as { code?: string } | undefined)?.code;
  if (err.name === 'TimeoutError' || err.name === 'AbortError' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'timed out';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (cause instanceof Error) return `${err.message}: ${cause.message}`;
  return code ? `${code}: ${err.message}` : err.message;
}
