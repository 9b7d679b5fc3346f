// Prometheus on the monitor node and node_exporter on every node. Prometheus finds its
// targets through the local Consul agent (consul_sd_configs): node_exporter, Prometheus and
// Nomad are Consul services (definitions rendered into /etc/consul.d), Consul servers
// register themselves as the "consul" service.
import { stringify } from 'yaml';
import { CONSUL_HTTP_PORT, CONSUL_HTTPS_PORT, consulService } from './consul.ts';
import type { RenderContext } from './context.ts';
import { file, type FileTree } from './filetree.ts';
import { aclTokens, tlsMaterial } from './security.ts';
import { execStart, hardening, type ServiceCommand, sysusersFile, tmpfilesFile, unitFiles, unitText } from './unit.ts';

export const PROMETHEUS_CONFIG = '/etc/prometheus/prometheus.yml';
export const PROMETHEUS_DATA_DIR = '/var/lib/prometheus';
export const PROMETHEUS_CA = '/etc/prometheus/ca.pem';
export const PROMETHEUS_CONSUL_TOKEN = '/etc/prometheus/consul-token';
export const PROMETHEUS_PORT = 9090;
export const NODE_EXPORTER_PORT = 9100;
export const NOMAD_HTTP_PORT = 4646;
/** The Consul service the Nomad agents' metrics endpoint is registered as (tags: server | client). */
export const NOMAD_METRICS_SERVICE = 'nomad-metrics';

export function nodeExporterCommand(ctx: RenderContext): ServiceCommand {
  return {
    program: 'node_exporter',
    args: [
      `--web.listen-address=${ctx.nodeExporterListen}`,
      // Both as upstream has them, not as Debian's build does, so a node's metrics do not
      // depend on where its binary came from. The systemd collector asks PID 1 over D-Bus
      // about every unit on each scrape, which on a slow or busy node outlasts Prometheus's
      // 10 s time-out (`up` already says whether each of the cluster's services answers).
      // Debian's text file directory does not exist here, and a read-only root has nothing to
      // put there: each scrape would log an error.
      '--no-collector.systemd',
      '--no-collector.textfile',
    ],
    user: 'node_exporter',
  };
}

export function prometheusCommand(ctx: RenderContext): ServiceCommand {
  const listen = ctx.target === 'local' ? `${ctx.localAgent}:${PROMETHEUS_PORT}` : `:${PROMETHEUS_PORT}`;
  return {
    program: 'prometheus',
    args: [
      `--config.file=${ctx.p(PROMETHEUS_CONFIG)}`,
      `--storage.tsdb.path=${ctx.p(PROMETHEUS_DATA_DIR)}`,
      // SD cards: keep two weeks, and never more than 2 GB.
      '--storage.tsdb.retention.time=15d',
      '--storage.tsdb.retention.size=2GB',
      `--web.listen-address=${listen}`,
    ],
    user: 'prometheus',
  };
}

export function renderNodeExporter(ctx: RenderContext): FileTree {
  const tree: FileTree = new Map(consulService(ctx, 'node-exporter', NODE_EXPORTER_PORT, { tags: ['metrics'] }));
  const unit = unitText([
    [
      'Unit',
      [
        ['Description', 'Prometheus node_exporter (machine metrics)'],
        ['Documentation', 'https://github.com/prometheus/node_exporter'],
        ['After', 'network-online.target'],
        ['Wants', 'network-online.target'],
        ['StartLimitIntervalSec', '120'],
        ['StartLimitBurst', '5'],
      ],
    ],
    [
      'Service',
      [
        ['User', 'node_exporter'],
        ['Group', 'node_exporter'],
        ['ExecStart', execStart(nodeExporterCommand(ctx))],
        ['Restart', 'on-failure'],
        ['RestartSec', '5'],
        // It reports on mounts, /home included (read-only is enough), and reads the kernel
        // clock state with adjtimex (timex collector), which ProtectClock's filter denies.
        ...hardening([], { ProtectHome: 'read-only', ProtectClock: 'no' }).filter(([k]) => k !== 'ReadWritePaths'),
      ],
    ],
    ['Install', [['WantedBy', 'multi-user.target']]],
  ]);
  for (const [k, v] of unitFiles(ctx, 'node_exporter.service', unit)) tree.set(k, v);
  return tree;
}

/** prometheus.yml as data. */
export function prometheusConfig(ctx: RenderContext): Record<string, unknown> {
  const c = ctx.cluster;
  const tls = tlsMaterial(c);
  const acl = aclTokens(c);
  const sd = (services: string[], tags?: string[]) => [
    {
      server: `${ctx.localAgent}:${CONSUL_HTTP_PORT}`,
      datacenter: c.datacenter,
      ...(acl ? { token: acl.consulPrometheus } : {}),
      services,
      ...(tags ? { tags } : {}),
    },
  ];
  const instanceFromNode = { source_labels: ['__meta_consul_node'], target_label: 'instance' };
  const tlsScrape = (serverName: string) =>
    tls ? { scheme: 'https', tls_config: { ca_file: ctx.p(PROMETHEUS_CA), server_name: serverName } } : {};
  const consulPort = tls ? CONSUL_HTTPS_PORT : CONSUL_HTTP_PORT;

  return {
    global: { scrape_interval: '15s', evaluation_interval: '15s', external_labels: { cluster: c.name } },
    scrape_configs: [
      { job_name: 'prometheus', consul_sd_configs: sd(['prometheus']), relabel_configs: [instanceFromNode] },
      { job_name: 'node', consul_sd_configs: sd(['node-exporter']), relabel_configs: [instanceFromNode] },
      {
        job_name: 'consul',
        metrics_path: '/v1/agent/metrics',
        params: { format: ['prometheus'] },
        ...tlsScrape(`server.${c.datacenter}.${c.domain}`),
        ...(acl ? { bearer_token_file: ctx.p(PROMETHEUS_CONSUL_TOKEN) } : {}),
        consul_sd_configs: sd(['consul']),
        // Consul servers register the "consul" service on their RPC port; metrics are on the HTTP API.
        relabel_configs: [
          instanceFromNode,
          { source_labels: ['__meta_consul_address'], target_label: '__address__', replacement: `$1:${consulPort}` },
        ],
      },
      ...(['server', 'client'] as const).map((kind) => ({
        job_name: `nomad-${kind}s`,
        metrics_path: '/v1/metrics',
        params: { format: ['prometheus'] },
        ...tlsScrape(`${kind}.global.nomad`),
        consul_sd_configs: sd([NOMAD_METRICS_SERVICE], [kind]),
        relabel_configs: [instanceFromNode],
      })),
    ],
  };
}

export function renderPrometheus(ctx: RenderContext): FileTree {
  const c = ctx.cluster;
  const tls = tlsMaterial(c);
  const acl = aclTokens(c);
  const p = ctx.p;
  const tree: FileTree = new Map(consulService(ctx, 'prometheus', PROMETHEUS_PORT, { tags: ['metrics'], checkHttp: '/-/healthy' }));
  const yml = `# Rendered by piinit from ${c.name}; edit cluster.yaml, not this file.\n${stringify(prometheusConfig(ctx), { lineWidth: 0, aliasDuplicateObjects: false })}`;
  tree.set(
    p(PROMETHEUS_CONFIG),
    // With ACLs the Consul SD token is inline (Prometheus 2.24's consul_sd_configs has no token file).
    acl ? file(yml, { mode: 0o640, owner: 'root', group: 'prometheus', secret: true }) : file(yml),
  );
  if (acl) {
    tree.set(p(PROMETHEUS_CONSUL_TOKEN), file(`${acl.consulPrometheus}\n`, { mode: 0o640, owner: 'root', group: 'prometheus', secret: true }));
  }
  if (tls) tree.set(p(PROMETHEUS_CA), file(tls.ca.cert));

  const unit = unitText([
    [
      'Unit',
      [
        ['Description', 'Prometheus monitoring'],
        ['Documentation', 'https://prometheus.io/docs/'],
        ['Wants', 'network-online.target consul.service'],
        ['After', 'network-online.target consul.service'],
        ['StartLimitIntervalSec', '120'],
        ['StartLimitBurst', '5'],
      ],
    ],
    [
      'Service',
      [
        ['User', 'prometheus'],
        ['Group', 'prometheus'],
        ['ExecStart', execStart(prometheusCommand(ctx))],
        ['ExecReload', '/bin/kill -HUP $MAINPID'],
        ['TimeoutStopSec', '60'],
        ['Restart', 'on-failure'],
        ['RestartSec', '5'],
        ['LimitNOFILE', '65536'],
        ...hardening([p(PROMETHEUS_DATA_DIR)]),
      ],
    ],
    ['Install', [['WantedBy', 'multi-user.target']]],
  ]);
  for (const [k, v] of unitFiles(ctx, 'prometheus.service', unit)) tree.set(k, v);
  return tree;
}

export function nodeExporterSystemFiles(): FileTree {
  return new Map([...sysusersFile('node_exporter', 'Prometheus node_exporter', '/nonexistent')]);
}

export function prometheusSystemFiles(): FileTree {
  return new Map([
    ...sysusersFile('prometheus', 'Prometheus', PROMETHEUS_DATA_DIR),
    ...tmpfilesFile('prometheus', [`d ${PROMETHEUS_DATA_DIR} 0750 prometheus prometheus -`]),
  ]);
}
