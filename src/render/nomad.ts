// Nomad agent: servers on the core nodes, clients on the others (workers and the monitor).
// Config JSON in /etc/nomad.d, the server gossip key in its own secret file, TLS files, the
// Consul service its metrics are found by, and the systemd unit. No Nomad binary exists on
// the build machine: the keys follow Nomad's documentation and are unit-tested for shape.
import { servers } from '../cluster/types.ts';
import { consulService } from './consul.ts';
import { type RenderContext, runsNomadServer } from './context.ts';
import { file, type FileTree } from './filetree.ts';
import { type Json, stableJson } from './json.ts';
import { NOMAD_HTTP_PORT, NOMAD_METRICS_SERVICE } from './prometheus.ts';
import { aclTokens, tlsMaterial } from './security.ts';
import { execStart, hardening, type ServiceCommand, sysusersFile, tmpfilesFile, unitFiles, unitText } from './unit.ts';

export const NOMAD_CONFIG_DIR = '/etc/nomad.d';
export const NOMAD_DATA_DIR = '/opt/nomad';
export const NOMAD_TLS_DIR = '/etc/nomad.d/tls';
export const NOMAD_RPC_PORT = 4647;

export function nomadCommand(ctx: RenderContext): ServiceCommand {
  return {
    program: 'nomad',
    args: ['agent', `-config=${ctx.p(NOMAD_CONFIG_DIR)}`],
    // Clients must be root: they create cgroups, mounts and namespaces for the tasks.
    user: runsNomadServer(ctx.role) ? 'nomad' : 'root',
  };
}

export function nomadAgentConfig(ctx: RenderContext): Record<string, Json> {
  const c = ctx.cluster;
  const server = runsNomadServer(ctx.role);
  const serverAddrs = servers(c).map((n) => n.address).filter((a): a is string => !!a);
  const tls = tlsMaterial(c);
  const cfg: Record<string, Json> = {
    region: 'global',
    datacenter: c.datacenter,
    data_dir: ctx.p(NOMAD_DATA_DIR),
    bind_addr: ctx.bindAddr,
    disable_update_check: true,
    log_level: 'INFO',
    leave_on_terminate: !server,
    leave_on_interrupt: !server,
    consul: {
      address: `${ctx.localAgent}:8500`,
      auto_advertise: true,
      server_auto_join: true,
      client_auto_join: true,
    },
    telemetry: {
      collection_interval: '15s',
      disable_hostname: true,
      prometheus_metrics: true,
      publish_allocation_metrics: true,
      publish_node_metrics: true,
    },
  };
  if (ctx.node && ctx.target === 'local') cfg.name = ctx.node.name;
  if (ctx.target === 'image') {
    // bind_addr alone puts the HTTP API on the cluster address only, but the node's own
    // tools call it on 127.0.0.1 (Consul's nomad check, the ACL bootstrap). All interfaces
    // (Nomad's default), advertised on the cluster address as before.
    cfg.addresses = { http: '0.0.0.0' };
    cfg.advertise = { http: ctx.bindAddr };
  }
  if (server) {
    cfg.server = {
      enabled: true,
      bootstrap_expect: serverAddrs.length,
      server_join: { retry_join: serverAddrs },
    };
  } else {
    cfg.client = {
      enabled: true,
      server_join: { retry_join: serverAddrs.map((a) => `${a}:${NOMAD_RPC_PORT}`) },
    };
  }
  if (c.security.acl) cfg.acl = { enabled: true };
  if (tls) {
    const dir = ctx.p(NOMAD_TLS_DIR);
    const kind = server ? 'server' : 'client';
    cfg.tls = {
      http: true,
      rpc: true,
      ca_file: `${dir}/ca.pem`,
      cert_file: `${dir}/${kind}.pem`,
      key_file: `${dir}/${kind}-key.pem`,
      verify_server_hostname: true,
      // The HTTP API is for browsers, the CLI and Prometheus: server-authenticated only.
      verify_https_client: false,
    };
  }
  return cfg;
}

export function renderNomad(ctx: RenderContext): FileTree {
  const c = ctx.cluster;
  const p = ctx.p;
  const server = runsNomadServer(ctx.role);
  const keyFile = (content: string) =>
    server
      ? file(content, { mode: 0o640, owner: 'root', group: 'nomad', secret: true })
      : file(content, { mode: 0o600, owner: 'root', secret: true });
  const tree: FileTree = new Map(
    consulService(ctx, NOMAD_METRICS_SERVICE, NOMAD_HTTP_PORT, {
      tags: [server ? 'server' : 'client'],
      meta: { scheme: c.security.tls ? 'https' : 'http' },
    }),
  );
  tree.set(
    p(`${NOMAD_CONFIG_DIR}/nomad.json`),
    file(stableJson(nomadAgentConfig(ctx)), server ? { mode: 0o640, owner: 'root', group: 'nomad' } : { mode: 0o640 }),
  );
  if (server) tree.set(p(`${NOMAD_CONFIG_DIR}/encrypt.json`), keyFile(stableJson({ server: { encrypt: c.secrets.nomadGossipKey } })));
  // Default-deny Consul: Nomad registers itself and its tasks' services with the agent token
  // (its policy grants service writes); Nomad merges this consul block into nomad.json's.
  const acl = aclTokens(c);
  if (acl) tree.set(p(`${NOMAD_CONFIG_DIR}/consul-token.json`), keyFile(stableJson({ consul: { token: acl.consulAgent } })));
  const tls = tlsMaterial(c);
  if (tls) {
    const pair = server ? tls.nomadServer : tls.nomadClient;
    const kind = server ? 'server' : 'client';
    tree.set(p(`${NOMAD_TLS_DIR}/ca.pem`), file(tls.ca.cert));
    tree.set(p(`${NOMAD_TLS_DIR}/${kind}.pem`), file(pair.cert));
    tree.set(p(`${NOMAD_TLS_DIR}/${kind}-key.pem`), keyFile(pair.key));
  }

  const service: [string, string][] = server
    ? [['User', 'nomad'], ['Group', 'nomad']]
    : [];
  service.push(
    ['ExecStart', execStart(nomadCommand(ctx))],
    ['ExecReload', '/bin/kill -HUP $MAINPID'],
    ['KillMode', 'process'],
    ['KillSignal', 'SIGINT'],
    ['Restart', 'on-failure'],
    ['RestartSec', '2'],
    ['LimitNOFILE', '65536'],
    ['LimitNPROC', 'infinity'],
    ['TasksMax', 'infinity'],
  );
  if (server) service.push(...hardening([p(NOMAD_DATA_DIR)]));
  else service.push(['OOMScoreAdjust', '-1000'], ['Delegate', 'yes']);
  const unit = unitText([
    [
      'Unit',
      [
        ['Description', `HashiCorp Nomad ${server ? 'server' : 'client'}`],
        ['Documentation', 'https://developer.hashicorp.com/nomad/docs'],
        ['Wants', 'network-online.target consul.service'],
        ['After', 'network-online.target consul.service'],
        ['ConditionFileNotEmpty', p(`${NOMAD_CONFIG_DIR}/nomad.json`)],
        ['StartLimitIntervalSec', '120'],
        ['StartLimitBurst', '5'],
      ],
    ],
    ['Service', service],
    ['Install', [['WantedBy', 'multi-user.target']]],
  ]);
  for (const [k, v] of unitFiles(ctx, 'nomad.service', unit)) tree.set(k, v);
  return tree;
}

export function nomadSystemFiles(ctx: RenderContext): FileTree {
  if (runsNomadServer(ctx.role)) {
    return new Map([
      ...sysusersFile('nomad', 'HashiCorp Nomad', NOMAD_DATA_DIR),
      ...tmpfilesFile('nomad', [`d ${NOMAD_DATA_DIR} 0750 nomad nomad -`]),
    ]);
  }
  return tmpfilesFile('nomad', [`d ${NOMAD_DATA_DIR} 0700 root root -`]);
}
