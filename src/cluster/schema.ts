// The shape of cluster.yaml and of the secrets file (snake_case, as the user writes them).
// Only what one field can say about itself is checked here; rules that relate fields
// (duplicates, addresses inside the network, server count, board vs role) live in checks.ts.
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { BOARDS, ROLES } from './boards.ts';
import { COMPONENTS } from './types.ts';
import { isIPv4, macProblem, normalizeMac, parseCidr } from './net.ts';

type Ctx = z.RefinementCtx;
const fail = (ctx: Ctx, message: string) => ctx.addIssue({ code: 'custom', message });

/** A string matching re; the message names the value (only for non-secret fields). */
const matches = (re: RegExp, what: string) =>
  z.string().superRefine((v, ctx) => {
    if (!re.test(v)) fail(ctx, `"${v}" ${what}`);
  });

/** RFC 1123 host name label, lower case (it becomes the hostname and the Consul/Nomad node name). */
export const HOST_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

const hostLabel = z.string().superRefine((v, ctx) => {
  if (!HOST_LABEL.test(v)) {
    fail(ctx, `"${v}" is not a host name label: use 1-63 lower-case letters, digits and "-", not starting or ending with "-"`);
  }
});

const datacenterName = z.string().superRefine((v, ctx) => {
  if (!/^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$/.test(v)) {
    fail(ctx, `"${v}" is not a datacenter name: use lower-case letters, digits, "-" and "_"`);
  }
});

const dnsDomain = z.string().superRefine((v, ctx) => {
  const labels = v.split('.');
  if (v.length > 253 || !labels.every((l) => HOST_LABEL.test(l))) {
    fail(ctx, `"${v}" is not a DNS domain (lower-case labels separated by dots, no leading or trailing dot)`);
  }
});

/** "192.168.1.5/24" where a plain address belongs. */
const withPrefix = (v: string) => {
  const m = /^(.+)\/\d{1,2}$/.exec(v);
  return m && isIPv4(m[1]!) ? ` (write it without the prefix length: ${m[1]}; the network comes from network.cidr)` : '';
};

const ipv4 = z.string().superRefine((v, ctx) => {
  if (!isIPv4(v)) fail(ctx, `"${v}" is not an IPv4 address${withPrefix(v)}`);
});

const ipv4OrDhcp = z.string().superRefine((v, ctx) => {
  if (v !== 'dhcp' && !isIPv4(v)) fail(ctx, `"${v}" is not an IPv4 address or "dhcp"${withPrefix(v)}`);
});

const cidr = z.string().superRefine((v, ctx) => {
  const r = parseCidr(v);
  if (!r.ok) fail(ctx, `"${v}" ${r.reason}`);
});

const mac = z.string().superRefine((v, ctx) => {
  const m = normalizeMac(v);
  if (m === null) fail(ctx, `"${v}" is not a MAC address (expected six hex bytes like dc:a6:32:12:34:56)`);
  else {
    const p = macProblem(m);
    if (p) fail(ctx, `${v} ${p}`);
  }
});

/** 1.8.7, 2.24.1, 1.6.5+ent, 1.7.0-beta.1. Debian revisions (-1+b6) are not versions of the software. */
export const VERSION = /^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?(\+[0-9A-Za-z.]+)?$/;

const version = z.string().superRefine((v, ctx) => {
  if (!VERSION.test(v)) fail(ctx, `"${v}" is not a release version (expected MAJOR.MINOR.PATCH like 1.8.7)`);
});

const SSH_KEY =
  /^(ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) AAAA[A-Za-z0-9+/]+={0,3}( [^\n]*)?$/;

const sshKey = z.string().superRefine((v, ctx) => {
  if (!SSH_KEY.test(v)) {
    fail(ctx, 'is not an OpenSSH public key line (expected "ssh-ed25519 AAAA... comment", as in ~/.ssh/id_ed25519.pub)');
  }
});

export const SOURCES = ['hashicorp', 'github', 'debian', 'mirror'] as const;

const component = z.strictObject({
  version,
  source: z.enum(SOURCES).optional(),
  suite: matches(/^[a-z][a-z0-9-]*$/, 'is not a Debian suite name (e.g. bullseye, bookworm)').optional(),
  package: matches(/^[a-z0-9][a-z0-9+.-]+$/, 'is not a Debian package name').optional(),
  mirror: z.string().min(1).optional(),
});

export const clusterFileSchema = z.strictObject({
  name: hostLabel,
  datacenter: datacenterName.optional(),
  domain: dnsDomain.optional(),
  secrets_file: z.string().min(1).optional(),
  network: z.strictObject({
    cidr,
    gateway: ipv4,
    dns: z.array(ipv4).min(1).optional(),
    addressing: z.enum(['dhcp', 'static']).optional(),
  }),
  nodes: z
    .array(
      z.strictObject({
        name: hostLabel,
        role: z.enum(ROLES),
        board: z.enum(BOARDS),
        mac,
        address: ipv4OrDhcp.optional(),
      }),
    )
    .min(1),
  components: z.strictObject(
    Object.fromEntries(COMPONENTS.map((c) => [c, component])) as Record<(typeof COMPONENTS)[number], typeof component>,
  ),
  consul: z
    .strictObject({
      raft_multiplier: z.number().int().min(1).max(10).optional(),
      allow_even_servers: z.boolean().optional(),
    })
    .nullish(),
  wifi: z
    .strictObject({
      ssid: z.string().superRefine((v, ctx) => {
        const n = Buffer.byteLength(v, 'utf8');
        if (n < 1 || n > 32) fail(ctx, `an SSID is 1 to 32 bytes long, this one is ${n}`);
      }),
      country: matches(/^[A-Z]{2}$/, 'is not a two-letter ISO 3166 country code in capitals (e.g. DE, US, GB)'),
    })
    .nullish(),
  ssh: z.strictObject({ authorized_keys: z.array(sshKey).nullish() }).nullish(),
  security: z.strictObject({ tls: z.boolean().optional(), acl: z.boolean().optional() }).nullish(),
});

export type ClusterFile = z.infer<typeof clusterFileSchema>;

const GOSSIP_KEY = z.string().superRefine((v, ctx) => {
  const ok = /^[A-Za-z0-9+/]{43}=$/.test(v) && Buffer.from(v, 'base64').length === 32;
  if (!ok) fail(ctx, 'is not a gossip key: expected 32 random bytes in base64 (44 characters ending in "=")');
});

const UUID = z.string().superRefine((v, ctx) => {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v)) fail(ctx, 'is not a UUID token');
});

/** Parsed, not only matched: a damaged body would otherwise pass here and crash later. */
const PEM = (kind: 'CERTIFICATE' | 'PRIVATE KEY') =>
  z.string().superRefine((v, ctx) => {
    const re = kind === 'CERTIFICATE' ? /-----BEGIN CERTIFICATE-----/ : /-----BEGIN ([A-Z]+ )?PRIVATE KEY-----/;
    if (!re.test(v)) return fail(ctx, `is not a PEM ${kind.toLowerCase()}`);
    try {
      if (kind === 'CERTIFICATE') new X509Certificate(v);
      else createPrivateKey(v);
    } catch {
      fail(ctx, `is a damaged PEM ${kind.toLowerCase()}: it cannot be read`);
    }
  });

/** The public half of a PEM certificate or private key (DER), or null when it cannot be read. */
function publicDer(pem: string, kind: 'cert' | 'key'): Buffer | null {
  try {
    const key = kind === 'cert' ? new X509Certificate(pem).publicKey : createPublicKey(createPrivateKey(pem));
    return key.export({ type: 'spki', format: 'der' });
  } catch {
    return null; // PEM() says what is wrong with it
  }
}

/** A key that is not the certificate's (two keys swapped in an edit) would sign certificates
 *  no one trusts, or serve TLS that fails. */
export const keyPair = z.strictObject({ cert: PEM('CERTIFICATE'), key: PEM('PRIVATE KEY') }).superRefine((v, ctx) => {
  const [cert, key] = [publicDer(v.cert, 'cert'), publicDer(v.key, 'key')];
  if (cert && key && !cert.equals(key)) ctx.addIssue({ code: 'custom', path: ['key'], message: 'is not the private key of the certificate in cert (their public keys differ)' });
});

/** The cluster CA signs with ECDSA P-256 (src/security/pki.ts), as the CA piinit makes does:
 *  another key type would sign certificates nobody can verify. */
export const caKeyPair = keyPair.superRefine((v, ctx) => {
  let cert: X509Certificate;
  let key: ReturnType<typeof createPrivateKey>;
  try {
    cert = new X509Certificate(v.cert);
    key = createPrivateKey(v.key);
  } catch {
    return; // PEM() says what is wrong with it
  }
  const remedy = 'delete tls: from the secrets file and run piinit secrets generate for a new one (and re-image every node)';
  if (!cert.ca) ctx.addIssue({ code: 'custom', path: ['cert'], message: `is not a CA certificate (no basicConstraints CA:TRUE); ${remedy}` });
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
    const what = key.asymmetricKeyType === 'ec' ? `EC ${curve}` : key.asymmetricKeyType;
    ctx.addIssue({ code: 'custom', path: ['key'], message: `is an ${what} key; piinit signs with ECDSA P-256 only: ${remedy}` });
  }
});

/** The secrets file. Keys are the snake_case spelling of the fields of `Secrets` in types.ts. */
export const secretsFileSchema = z.strictObject({
  consul_gossip_key: GOSSIP_KEY,
  nomad_gossip_key: GOSSIP_KEY,
  tls: z
    .strictObject({ ca: caKeyPair, consul_server: keyPair, nomad_server: keyPair, nomad_client: keyPair })
    .optional(),
  tokens: z
    .strictObject({
      consul_bootstrap: UUID.optional(),
      consul_agent: UUID.optional(),
      consul_prometheus: UUID.optional(),
      consul_operator: UUID.optional(),
      consul_dns: UUID.optional(),
      nomad_bootstrap: UUID.optional(),
      nomad_operator: UUID.optional(),
    })
    .optional(),
  wifi_passphrase: z
    .string()
    .superRefine((v, ctx) => {
      const n = Buffer.byteLength(v, 'utf8');
      if (n < 8 || n > 63) fail(ctx, `a WPA passphrase is 8 to 63 characters long, this one is ${n}`);
      // wpa_passphrase and wpa_supplicant refuse control characters.
      if (/[\x00-\x1f\x7f]/.test(v)) fail(ctx, 'a WPA passphrase cannot contain control characters (tabs, newlines)');
    })
    .optional(),
  wifi_psk: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'is not a WPA PSK: expected 64 hex digits (or give wifi_passphrase instead)')
    .optional(),
});

export type SecretsFile = z.infer<typeof secretsFileSchema>;

/** The field names an object schema accepts at `path`, for "did you mean" on unknown keys. */
export function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let s: unknown = schema;
  const unwrap = () => {
    for (;;) {
      const def = (s as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
      if (!def) return;
      if (['optional', 'nullable', 'default', 'prefault', 'readonly', 'nonoptional', 'catch'].includes(def.type as string)) {
        s = def.innerType;
      } else if (def.type === 'pipe') s = def.in;
      else return;
    }
  };
  unwrap();
  for (const seg of path) {
    const def = (s as { _zod: { def: Record<string, unknown> } })._zod.def;
    if (def.type === 'object' && typeof seg === 'string') s = (def.shape as Record<string, unknown>)[seg];
    else if (def.type === 'array') s = def.element;
    else return [];
    if (!s) return [];
    unwrap();
  }
  const def = (s as { _zod: { def: Record<string, unknown> } })._zod.def;
  return def.type === 'object' ? Object.keys(def.shape as object) : [];
}

/** Every place in the schema where a field named key is allowed, as display paths
 *  ("consul", "nodes[]"), to say where a misplaced field belongs. */
export function placesOfKey(schema: z.ZodType, key: string): string[] {
  const out: string[] = [];
  const walk = (s: unknown, where: string, depth: number) => {
    if (depth > 6 || !s) return;
    const def = (s as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (!def) return;
    if (['optional', 'nullable', 'default', 'prefault', 'readonly', 'nonoptional', 'catch'].includes(def.type as string)) {
      return walk(def.innerType, where, depth);
    }
    if (def.type === 'pipe') return walk(def.in, where, depth);
    if (def.type === 'array') return walk(def.element, `${where}[]`, depth + 1);
    if (def.type === 'object') {
      const shape = def.shape as Record<string, unknown>;
      if (Object.hasOwn(shape, key)) out.push(where);
      for (const [k, v] of Object.entries(shape)) walk(v, where ? `${where}.${k}` : k, depth + 1);
    }
  };
  walk(schema, '', 0);
  return out;
}

/** The required top-level fields of an object schema, to say what an empty file lacks. */
export function requiredKeys(schema: z.ZodType): string[] {
  const def = (schema as unknown as { _zod: { def: { type: string; shape?: Record<string, { _zod: { optin?: string } }> } } })._zod.def;
  if (def.type !== 'object' || !def.shape) return [];
  return Object.entries(def.shape)
    .filter(([, v]) => v._zod.optin !== 'optional')
    .map(([k]) => k);
}
