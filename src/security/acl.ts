// Default-deny ACLs from the first boot, with no manual step.
//
// Consul bootstraps its ACL system itself from `acl.tokens.master` (rendered into the
// servers' acl.json). The policies and the other tokens — with the SecretIDs generated into
// the secrets file, so every node's config can name its token before it exists — are then
// created through the HTTP API by ONE shell script (curl + coreutils), rendered here. The
// images run it from a background unit on every server; `piinit up` runs the very same rendered
// file (target "local"). It is idempotent, so every server may run it at every boot.
//
// Nomad gets the same treatment: a script that bootstraps Nomad's ACLs with the generated
// bootstrap secret (Nomad >= 1.4 accepts an operator-chosen one). No Nomad binary runs on
// the machine piinit is developed on, so that script is rendered and unit-tested only.
import { createHash } from 'node:crypto';
import type { Cluster, Secrets } from '../cluster/types.ts';
import { CONSUL_HTTP_PORT } from '../render/consul.ts';
import type { RenderContext } from '../render/context.ts';
import { file, type FileTree } from '../render/filetree.ts';
import { UNIT_DIR, unitText, WANTS_DIR } from '../render/unit.ts';

export const CONSUL_ACL_SCRIPT = '/usr/libexec/piinit/consul-acl-bootstrap';
export const CONSUL_ACL_ENV = '/etc/piinit/consul-acl-bootstrap.env';
export const CONSUL_ACL_UNIT = 'piinit-consul-acl.service';
export const NOMAD_ACL_SCRIPT = '/usr/libexec/piinit/nomad-acl-bootstrap';
export const NOMAD_ACL_ENV = '/etc/piinit/nomad-acl-bootstrap.env';
export const NOMAD_ACL_UNIT = 'piinit-nomad-acl.service';
export const NOMAD_HTTP_PORT = 4646;

/** Consul's built-in anonymous token: what requests without a token run as. */
export const CONSUL_ANONYMOUS_ACCESSOR = '00000000-0000-0000-0000-000000000002';

export interface AclPolicy {
  name: string;
  description: string;
  rules: string;
}

const rule = (kind: string, policy: 'read' | 'write') => `${kind} "" {\n  policy = "${policy}"\n}\n`;

/** The policies piinit creates. Rules in HCL, as Consul 1.8 stores them. */
export const CONSUL_POLICIES: AclPolicy[] = [
  {
    name: 'piinit-agent',
    description: 'piinit: Consul agents (acl.tokens.agent) and the services they register',
    // Service write: services defined in /etc/consul.d and Nomad's own registrations are
    // synced with this token; without it, default deny drops them from the catalog.
    rules: rule('node_prefix', 'write') + rule('service_prefix', 'write') + rule('agent_prefix', 'read'),
  },
  {
    name: 'piinit-prometheus',
    description: 'piinit: Prometheus consul_sd and /v1/agent/metrics, read only',
    rules: rule('node_prefix', 'read') + rule('service_prefix', 'read') + rule('agent_prefix', 'read'),
  },
  {
    name: 'piinit-operator',
    description: 'piinit: `piinit status` (raft, autopilot, members, catalog, KV), read only',
    rules: 'operator = "read"\n' + rule('agent_prefix', 'read') + rule('node_prefix', 'read') + rule('service_prefix', 'read') + rule('key_prefix', 'read'),
  },
  {
    name: 'piinit-dns',
    description: 'piinit: DNS service discovery for requests without a token',
    rules: rule('node_prefix', 'read') + rule('service_prefix', 'read') + rule('query_prefix', 'read'),
  },
];

type TokenKey = keyof Secrets['tokens'];

export interface ConsulTokenSpec {
  key: TokenKey;
  policy: string;
  description: string;
}

export const CONSUL_TOKENS: ConsulTokenSpec[] = [
  { key: 'consulAgent', policy: 'piinit-agent', description: 'piinit agent token' },
  { key: 'consulPrometheus', policy: 'piinit-prometheus', description: 'piinit Prometheus token' },
  { key: 'consulOperator', policy: 'piinit-operator', description: 'piinit operator token (piinit status)' },
  { key: 'consulDns', policy: 'piinit-dns', description: 'piinit DNS / default token' },
];

/** The AccessorID piinit gives the token with this SecretID: derived (one-way) so that the
 *  script can look a token up without a second generated value, and stable across runs. */
export function accessorIdFor(secretId: string): string {
  const h = createHash('sha256').update(`piinit consul accessor\0${secretId}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function checkedUuid(cluster: Cluster, key: TokenKey): string | undefined {
  const v = cluster.secrets.tokens[key];
  // The values end up in a file the shell sources: refuse anything but a UUID.
  if (v !== undefined && !UUID_RE.test(v)) throw new Error(`secrets: tokens.${key} is not a UUID`);
  return v;
}

/** Env file (KEY=value, also valid systemd EnvironmentFile syntax) with the tokens the Consul
 *  script needs. Secret: 0600 root. */
export function consulAclEnv(cluster: Cluster): string {
  const master = checkedUuid(cluster, 'consulBootstrap');
  if (!master) throw new Error('secrets: tokens.consulBootstrap is missing');
  const lines = ['# piinit: Consul ACL bootstrap tokens. Secret.', `CONSUL_MASTER_TOKEN=${master}`];
  for (const t of CONSUL_TOKENS) {
    const v = checkedUuid(cluster, t.key);
    if (v) lines.push(`${envName(t.key)}_SECRET=${v}`, `${envName(t.key)}_ACCESSOR=${accessorIdFor(v)}`);
  }
  return `${lines.join('\n')}\n`;
}

const envName = (k: TokenKey) => k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
const shq = (s: string) => {
  if (s.includes("'")) throw new Error(`cannot single-quote ${s}`);
  return `'${s}'`;
};

/** The shell helpers both scripts share: an API call that keeps secrets off every command
 *  line (other users can read /proc/PID/cmdline) and never prints a response body. */
function scriptPrelude(what: string, tokenHeader: string, tokenVar: string, defaults: { env: string; addr: string }): string {
  return `#!/bin/sh
# Generated by piinit. ${what}
# Idempotent: safe on every server at every boot; whichever runs first creates, the others
# find everything in place. Secrets come from a 0600 file and reach curl through a header
# file and stdin, never through its command line; no response body is ever printed.
set -eu
ENV_FILE=\${PIINIT_ACL_ENV:-${defaults.env}}
ADDR=\${PIINIT_ACL_ADDR:-${defaults.addr}}
TIMEOUT=\${PIINIT_ACL_TIMEOUT:-300}
# Seconds between tries at most (backing off from 1): 8 on a board, 1 for the local runner.
PAUSE_MAX=\${PIINIT_ACL_PAUSE_MAX:-8}
CACERT=\${PIINIT_ACL_CACERT:-}
command -v curl >/dev/null 2>&1 || { echo "piinit-acl: curl is not installed" >&2; exit 1; }
. "$ENV_FILE"
umask 077
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
printf '${tokenHeader}: %s\\n' "$${tokenVar}" >"$WORK/auth"
log() { echo "piinit-acl: $*" >&2; }

# api METHOD PATH [BODY]: prints the HTTP status (000 when unreachable); the response stays
# in $WORK/out for the caller to inspect, never on the terminal or in the journal.
api() {
  set -- "$1" "$2" "\${3:-}"
  set +e
  if [ -n "$CACERT" ]; then tls="--cacert $CACERT"; else tls=""; fi
  # shellcheck disable=SC2086
  printf '%s' "$3" | curl -sS --max-time 10 -o "$WORK/out" -w '%{http_code}' -X "$1" \\
    -H @"$WORK/auth" -H 'Content-Type: application/json' $tls --data-binary @- "$ADDR$2" 2>"$WORK/err"
  set -e
}
`;
}

/** The Consul script: wait for a leader, then make sure every policy and token exists. */
export function consulAclScript(cluster: Cluster, defaults: { env: string; addr: string }): string {
  const present = CONSUL_TOKENS.filter((t) => checkedUuid(cluster, t.key));
  const policyCalls = CONSUL_POLICIES.map((p) => `  ensure_policy ${p.name} ${shq(JSON.stringify({ Name: p.name, Description: p.description, Rules: p.rules }))} || return 1`);
  const tokenCalls = present.map(
    (t) => `  ensure_token "$${envName(t.key)}_ACCESSOR" "$${envName(t.key)}_SECRET" ${t.policy} ${shq(t.description)} || return 1`,
  );
  return `${scriptPrelude('Creates the cluster\'s Consul ACL policies and tokens.', 'X-Consul-Token', 'CONSUL_MASTER_TOKEN', defaults)}
ensure_policy() { # NAME JSON
  [ "$(api GET "/v1/acl/policy/name/$1")" = 200 ] && return 0
  if [ "$(api PUT /v1/acl/policy "$2")" = 200 ]; then log "created policy $1"; return 0; fi
  # Another server may have created it in the meantime.
  code=$(api GET "/v1/acl/policy/name/$1")
  [ "$code" = 200 ] || { log "policy $1: HTTP $code"; return 1; }
}

ensure_token() { # ACCESSOR SECRET POLICY DESCRIPTION
  [ "$(api GET "/v1/acl/token/$1")" = 200 ] && return 0
  body=$(printf '{"AccessorID":"%s","SecretID":"%s","Description":"%s","Policies":[{"Name":"%s"}],"Local":false}' "$1" "$2" "$4" "$3")
  if [ "$(api PUT /v1/acl/token "$body")" = 200 ]; then log "created token: $4"; return 0; fi
  code=$(api GET "/v1/acl/token/$1")
  [ "$code" = 200 ] || { log "token '$4': HTTP $code"; return 1; }
}

attempt() {
  code=$(api GET /v1/status/leader)
  if [ "$code" != 200 ] || [ "$(cat "$WORK/out")" = '""' ]; then log "waiting for a Consul leader at $ADDR (HTTP $code)"; return 1; fi
${policyCalls.join('\n')}
${tokenCalls.join('\n')}
  # Requests without a token (DNS lookups above all) may read nodes and services, nothing else.
  code=$(api PUT /v1/acl/token/${CONSUL_ANONYMOUS_ACCESSOR} '{"Description":"Anonymous Token","Policies":[{"Name":"piinit-dns"}]}')
  [ "$code" = 200 ] || { log "anonymous token: HTTP $code"; return 1; }
}

${retryAttempt('Consul ACL policies and tokens are in place')}`;
}

/** The tail of both scripts: call attempt() until it succeeds or TIMEOUT passes, with a
 *  doubling pause, then log done. */
function retryAttempt(done: string): string {
  return `deadline=$(( $(date +%s) + TIMEOUT ))
pause=1
[ "$PAUSE_MAX" -ge 1 ] 2>/dev/null || PAUSE_MAX=8
until attempt; do
  if [ "$(date +%s)" -ge "$deadline" ]; then log "gave up after \${TIMEOUT}s"; exit 1; fi
  sleep "$pause"
  # Back off: a slow board waiting for its peers is not kept busy asking.
  if [ "$pause" -lt "$PAUSE_MAX" ]; then pause=$((pause * 2)); fi
done
log "${done}"
`;
}

/** The Nomad script: bootstrap Nomad's ACL system with the generated management secret. */
export function nomadAclScript(defaults: { env: string; addr: string }): string {
  return `${scriptPrelude('Bootstraps Nomad\'s ACL system with the secret from piinit\'s secrets file (Nomad >= 1.4).', 'X-Nomad-Token', 'NOMAD_BOOTSTRAP_TOKEN', defaults)}
attempt() {
  # Done already (by this or another server) when the token works.
  [ "$(api GET /v1/acl/token/self)" = 200 ] && return 0
  code=$(api GET /v1/status/leader)
  if [ "$code" != 200 ] || [ "$(cat "$WORK/out")" = '""' ]; then log "waiting for a Nomad leader at $ADDR (HTTP $code)"; return 1; fi
  body=$(printf '{"BootstrapSecret":"%s"}' "$NOMAD_BOOTSTRAP_TOKEN")
  if [ "$(api POST /v1/acl/bootstrap "$body")" = 200 ]; then log "bootstrapped Nomad ACLs"; return 0; fi
  code=$(api GET /v1/acl/token/self)
  [ "$code" = 200 ] || { log "Nomad ACL bootstrap: token not accepted (HTTP $code)"; return 1; }
}

${retryAttempt('Nomad ACLs are bootstrapped')}`;
}

// Type=exec, not oneshot: multi-user.target waits for the oneshots it wants, so a server
// waiting minutes for its peers' leader held the whole boot (and is-system-running) for as
// long. The script runs in the background; RemainAfterExit keeps the unit active once done.
function aclUnit(description: string, after: string, script: string, env: string): string {
  return unitText([
    [
      'Unit',
      [
        ['Description', description],
        ['Wants', after],
        ['After', `${after} network-online.target`],
        ['ConditionPathExists', env],
      ],
    ],
    [
      'Service',
      [
        ['Type', 'exec'],
        ['RemainAfterExit', 'yes'],
        ['ExecStart', script],
        // The script waits up to 5 minutes for a leader; a slow first boot gets more tries.
        ['Restart', 'on-failure'],
        ['RestartSec', '15'],
        ['NoNewPrivileges', 'yes'],
        ['PrivateTmp', 'yes'],
        ['ProtectSystem', 'strict'],
        ['ProtectHome', 'yes'],
        ['UMask', '0077'],
      ],
    ],
    ['Install', [['WantedBy', 'multi-user.target']]],
  ]);
}

const secretFile = (content: string) => file(content, { mode: 0o600, owner: 'root', group: 'root', secret: true });
const scriptFile = (content: string) => file(content, { mode: 0o755 });

/**
 * The ACL bootstrap for a server (image or local target): scripts, their secret env files
 * and, on images, the background units. Empty for other roles and with security.acl off.
 * Plugs into render/index.ts's extraRenderers.
 */
export function renderAclBootstrap(ctx: RenderContext): FileTree {
  const c = ctx.cluster;
  const tree: FileTree = new Map();
  if (!c.security.acl || ctx.role !== 'server') return tree;
  const p = ctx.p;
  const consulDefaults = { env: p(CONSUL_ACL_ENV), addr: `http://${ctx.localAgent}:${CONSUL_HTTP_PORT}` };
  tree.set(p(CONSUL_ACL_SCRIPT), scriptFile(consulAclScript(c, consulDefaults)));
  tree.set(p(CONSUL_ACL_ENV), secretFile(consulAclEnv(c)));
  const nomadToken = checkedUuid(c, 'nomadBootstrap');
  if (nomadToken) {
    // Nomad serves its API over HTTPS when TLS is on (tls.http); the CA verifies it.
    const scheme = c.security.tls ? 'https' : 'http';
    const host = ctx.target === 'local' ? ctx.localAgent : '127.0.0.1';
    tree.set(p(NOMAD_ACL_SCRIPT), scriptFile(nomadAclScript({ env: p(NOMAD_ACL_ENV), addr: `${scheme}://${host}:${NOMAD_HTTP_PORT}` })));
    tree.set(p(NOMAD_ACL_ENV), secretFile(`# piinit: Nomad ACL bootstrap secret. Secret.\nNOMAD_BOOTSTRAP_TOKEN=${nomadToken}\n`));
  }
  if (ctx.target === 'image') {
    const units: [string, string][] = [[CONSUL_ACL_UNIT, aclUnit('piinit: Consul ACL policies and tokens', 'consul.service', CONSUL_ACL_SCRIPT, CONSUL_ACL_ENV)]];
    if (nomadToken) {
      const unit = aclUnit('piinit: Nomad ACL bootstrap', 'nomad.service', NOMAD_ACL_SCRIPT, NOMAD_ACL_ENV);
      // curl needs to know the cluster CA for Nomad's HTTPS API.
      units.push([NOMAD_ACL_UNIT, c.security.tls ? unit.replace('[Service]\n', '[Service]\nEnvironment=PIINIT_ACL_CACERT=/etc/nomad.d/tls/ca.pem\n') : unit]);
    }
    for (const [name, text] of units) {
      tree.set(`${UNIT_DIR}/${name}`, file(text));
      tree.set(`${WANTS_DIR}/${name}`, { symlink: `${UNIT_DIR}/${name}` });
    }
  }
  return tree;
}

/** For the local runner: the command that runs a server's rendered Consul ACL script
 *  (target "local", rendered under `root`). Run it once the servers are up; it waits for a
 *  leader itself (bounded by PIINIT_ACL_TIMEOUT seconds, default 300). */
export function consulAclBootstrapCommand(p: (path: string) => string): { program: string; args: string[] } {
  return { program: '/bin/sh', args: [p(CONSUL_ACL_SCRIPT)] };
}

/** The same for a server's rendered Nomad ACL bootstrap script (once Nomad runs). */
export function nomadAclBootstrapCommand(p: (path: string) => string): { program: string; args: string[] } {
  return { program: '/bin/sh', args: [p(NOMAD_ACL_SCRIPT)] };
}
