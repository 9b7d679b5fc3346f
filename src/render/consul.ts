// Consul agent: config JSON in /etc/consul.d (server or client), the gossip key and ACL
// tokens in their own secret files, TLS files, service definitions, and the systemd unit.
// Keys follow cluster.components.consul.version: Consul renamed several across releases.
import type { Cluster } from '../cluster/types.ts';
import { servers } from '../cluster/types.ts';
import type { RenderContext } from './context.ts';
import { file, type FileTree } from './filetree.ts';
import { type Json, stableJson, versionAtLeast } from './json.ts';
import { aclTokens, tlsMaterial } from './security.ts';
import {
  execStart,
  hardening,
  type ServiceCommand,
  sysusersFile,
  tmpfilesFile,
  unitFiles,
  unitText,
} from './unit.ts';

export const CONSUL_CONFIG_DIR = '/etc/consul.d';
export const CONSUL_DATA_DIR = '/opt/consul';
export const CONSUL_TLS_DIR = '/etc/consul.d/tls';
export const CONSUL_HTTP_PORT = 8500;
export const CONSUL_HTTPS_PORT = 8501;
export const CONSUL_DNS_PORT = 8600;

/** Which key names this Consul version understands. */
export function consulKeys(version: string) {
  return {
    /** 1.9 moved `ui` into `ui_config.enabled`. */
    uiConfig: versionAtLeast(version, '1.9.0'),
    /** 1.11 renamed acl.tokens.master to initial_management. */
    initialManagement: versionAtLeast(version, '1.11.0'),
    /** 1.12 moved the top-level TLS keys into the `tls` stanza. */
    tlsStanza: versionAtLeast(version, '1.12.0'),
    /** 1.14 split gRPC over TLS onto its own port. */
    grpcTls: versionAtLeast(version, '1.14.0'),
  };
}

const isServer = (ctx: RenderContext) => ctx.role === 'server';

/** Consul's default autopilot last_contact_threshold, the same whatever the raft_multiplier. */
const AUTOPILOT_LAST_CONTACT_MS = 200;

export function consulCommand(ctx: RenderContext): ServiceCommand {
  return { program: 'consul', args: ['agent', `-config-dir=${ctx.p(CONSUL_CONFIG_DIR)}`], user: 'consul' };
}

/** The agent config without secrets. */
export function consulAgentConfig(ctx: RenderContext): Record<string, Json> {
  const c = ctx.cluster;
  const server = isServer(ctx);
  const keys = consulKeys(c.components.consul.version);
  const tls = tlsMaterial(c);
  const serverAddrs = servers(c).map((n) => n.address).filter((a): a is string => !!a);

  const cfg: Record<string, Json> = {
    datacenter: c.datacenter,
    domain: c.domain,
    data_dir: ctx.p(CONSUL_DATA_DIR),
    server,
    bind_addr: ctx.bindAddr,
    client_addr: ctx.clientAddr,
    retry_join: serverAddrs,
    disable_update_check: true,
    leave_on_terminate: !server,
    log_level: 'INFO',
    performance: { raft_multiplier: c.consul.raftMultiplier },
    telemetry: { prometheus_retention_time: '60s', disable_hostname: true },
    ports: { dns: CONSUL_DNS_PORT, http: CONSUL_HTTP_PORT },
  };
  // On an image the node name is the hostname (DHCP or the MAC map); locally all nodes share one.
  if (ctx.node && ctx.target === 'local') cfg.node_name = ctx.node.name;
  if (server) {
    cfg.bootstrap_expect = serverAddrs.length;
    // raft_multiplier slows raft's own timing for slow boards, but autopilot's health check
    // keeps its fixed 200 ms: on a slow board a follower then flaps unhealthy (and a new
    // server waits to be promoted to voter) though raft itself is content. Scale it alike.
    // min_quorum: autopilot's dead-server cleanup would remove a server that is only away
    // (a Pi rebooting for its new image, a Wi-Fi drop) from the raft peers, and the server
    // comes back through a re-join that Consul 1.8 can leave stuck in serf "leaving"
    // (hashicorp/consul#6882, #13379); a rolling reboot faster than the re-promotion can lose
    // the quorum (#8118). The cluster file fixes the servers, so cleanup stops at their
    // number; a dead server beyond it (one replaced by a new machine) is still removed.
    cfg.autopilot = {
      last_contact_threshold: `${AUTOPILOT_LAST_CONTACT_MS * c.consul.raftMultiplier}ms`,
      min_quorum: serverAddrs.length,
    };
    if (keys.uiConfig) cfg.ui_config = { enabled: true };
    else cfg.ui = true;
  }
  if (c.security.acl) cfg.primary_datacenter = c.datacenter;

  if (tls) {
    const dir = ctx.p(CONSUL_TLS_DIR);
    const ports: Record<string, Json> = { dns: CONSUL_DNS_PORT, http: CONSUL_HTTP_PORT, https: CONSUL_HTTPS_PORT };
    if (keys.grpcTls && server) ports.grpc_tls = 8503;
    cfg.ports = ports;
    // Plain HTTP stays on loopback for the local tools (Prometheus SD, Nomad, the CLI).
    cfg.addresses = { http: ctx.target === 'local' ? ctx.localAgent : '127.0.0.1' };
    const files: Record<string, Json> = { ca_file: `${dir}/ca.pem` };
    if (server) Object.assign(files, { cert_file: `${dir}/server.pem`, key_file: `${dir}/server-key.pem` });
    cfg.auto_encrypt = server ? { allow_tls: true } : { tls: true };
    if (keys.tlsStanza) {
      cfg.tls = {
        defaults: { ...files, verify_incoming: false, verify_outgoing: true },
        internal_rpc: { verify_incoming: server, verify_server_hostname: true },
        https: { verify_incoming: false },
      };
    } else {
      Object.assign(cfg, files, {
        verify_incoming: false,
        verify_incoming_rpc: server,
        verify_incoming_https: false,
        verify_outgoing: true,
        verify_server_hostname: true,
      });
    }
  }
  return cfg;
}

/** The ACL stanza, tokens included: it goes into its own secret file. */
export function consulAclConfig(ctx: RenderContext): Record<string, Json> | null {
  const tokens = aclTokens(ctx.cluster);
  if (!tokens) return null;
  const keys = consulKeys(ctx.cluster.components.consul.version);
  const t: Record<string, Json> = { agent: tokens.consulAgent };
  if (isServer(ctx)) t[keys.initialManagement ? 'initial_management' : 'master'] = tokens.consulBootstrap;
  if (tokens.consulDns) t.default = tokens.consulDns;
  return {
    acl: { enabled: true, default_policy: 'deny', down_policy: 'extend-cache', enable_token_persistence: true, tokens: t },
  };
}

/** A Consul service definition file for a daemon on this node, so Prometheus finds it. */
export function consulService(
  ctx: RenderContext,
  name: string,
  port: number,
  opts: { tags?: string[]; meta?: Record<string, string>; checkHttp?: string } = {},
): FileTree {
  const host = ctx.target === 'local' ? ctx.localAgent : '127.0.0.1';
  const check: Record<string, Json> = opts.checkHttp
    ? { name: `${name} HTTP`, http: `http://${host}:${port}${opts.checkHttp}`, interval: '30s', timeout: '5s' }
    : { name: `${name} TCP`, tcp: `${host}:${port}`, interval: '30s', timeout: '5s' };
  const svc: Record<string, Json> = { name, port, tags: opts.tags ?? [], check };
  if (opts.meta) svc.meta = opts.meta;
  // With default-deny ACLs a service without a token is synced with the default (DNS,
  // read-only) token and "blocked by ACLs": register it with the agent token instead.
  const tokens = aclTokens(ctx.cluster);
  if (tokens) svc.token = tokens.consulAgent;
  const path = ctx.p(`${CONSUL_CONFIG_DIR}/service-${name}.json`);
  return new Map([[path, tokens ? secretFile(stableJson({ service: svc })) : file(stableJson({ service: svc }))]]);
}

const secretFile = (content: string) => file(content, { mode: 0o640, owner: 'root', group: 'consul', secret: true });

export function renderConsul(ctx: RenderContext): FileTree {
  const c = ctx.cluster;
  const p = ctx.p;
  const tree: FileTree = new Map();
  tree.set(p(`${CONSUL_CONFIG_DIR}/consul.json`), file(stableJson(consulAgentConfig(ctx)), { mode: 0o640, owner: 'root', group: 'consul' }));
  tree.set(p(`${CONSUL_CONFIG_DIR}/encrypt.json`), secretFile(stableJson({ encrypt: c.secrets.consulGossipKey })));
  const acl = consulAclConfig(ctx);
  if (acl) tree.set(p(`${CONSUL_CONFIG_DIR}/acl.json`), secretFile(stableJson(acl)));
  const tls = tlsMaterial(c);
  if (tls) {
    tree.set(p(`${CONSUL_TLS_DIR}/ca.pem`), file(tls.ca.cert));
    if (isServer(ctx)) {
      tree.set(p(`${CONSUL_TLS_DIR}/server.pem`), file(tls.consulServer.cert));
      tree.set(p(`${CONSUL_TLS_DIR}/server-key.pem`), secretFile(tls.consulServer.key));
    }
  }

  const cmd = consulCommand(ctx);
  const unit = unitText([
    [
      'Unit',
      [
        ['Description', `HashiCorp Consul agent (${isServer(ctx) ? 'server' : 'client'})`],
        ['Documentation', 'https://developer.hashicorp.com/consul/docs'],
        ['Wants', 'network-online.target'],
        ['After', 'network-online.target'],
        ['ConditionFileNotEmpty', p(`${CONSUL_CONFIG_DIR}/consul.json`)],
        ['StartLimitIntervalSec', '120'],
        ['StartLimitBurst', '5'],
      ],
    ],
    [
      'Service',
      [
        ['Type', 'notify'],
        ['User', 'consul'],
        ['Group', 'consul'],
        ['ExecStart', execStart(cmd)],
        ['ExecReload', '/bin/kill --signal HUP $MAINPID'],
        ['KillMode', 'process'],
        ['KillSignal', 'SIGTERM'],
        ['Restart', 'on-failure'],
        ['RestartSec', '5'],
        ['LimitNOFILE', '65536'],
        ...hardening([p(CONSUL_DATA_DIR)]),
      ],
    ],
    ['Install', [['WantedBy', 'multi-user.target']]],
  ]);
  for (const [k, v] of unitFiles(ctx, 'consul.service', unit)) tree.set(k, v);
  return tree;
}

/** sysusers/tmpfiles for Consul (image target only). */
export function consulSystemFiles(): FileTree {
  return new Map([
    ...sysusersFile('consul', 'HashiCorp Consul', CONSUL_DATA_DIR),
    ...tmpfilesFile('consul', [`d ${CONSUL_DATA_DIR} 0750 consul consul -`]),
  ]);
}

export function consulServerAddresses(c: Cluster): string[] {
  return servers(c).map((n) => n.address).filter((a): a is string => !!a);
}
