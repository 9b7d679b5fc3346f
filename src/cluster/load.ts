// cluster.yaml + the secrets file → the typed Cluster, or every problem at once with its
// file:line:column.
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { boardArch } from './boards.ts';
import { checkCluster, DEFAULT_SOURCE, isObj } from './checks.ts';
import { ClusterValidationError, type Diagnostic } from './diagnostics.ts';
import { normalizeMac, parseCidr, formatIPv4 } from './net.ts';
import { clusterFileSchema, HOST_LABEL, secretsFileSchema, type ClusterFile, type SecretsFile } from './schema.ts';
import { resolveSecretsPath, SECRETS_FILE_NAME, secretsFromFile } from './secrets.ts';
import { COMPONENTS, type Cluster, type ComponentName, type ComponentSpec, type Secrets } from './types.ts';
import { wpaPsk } from './wifi.ts';
import { YamlFile } from './yamlfile.ts';

/** Raft multiplier when cluster.yaml sets none. Measured here with Consul 1.8.7: multiplier 1
 *  elects in ~1.6 s but SD-card write stalls on a Pi then cause needless elections; the
 *  default 5 took up to 12 s to fail over. 3 keeps election and fail-over under 10 s. */
export const DEFAULT_RAFT_MULTIPLIER = 3;

const DEFAULT_PACKAGE: Record<ComponentName, string> = {
  consul: 'consul',
  nomad: 'nomad',
  prometheus: 'prometheus',
  node_exporter: 'prometheus-node-exporter',
};

export interface LoadOptions {
  /** The secrets file; default: cluster.yaml's `secrets_file:`, else cluster.secrets.yaml beside it. */
  secretsPath?: string;
  /** `piinit secrets generate`: fills gaps in the parsed secrets file (a missing gossip key or
   *  certificate) before it is validated, so they are not errors; returns what it added. */
  fillSecrets?: (raw: Record<string, unknown>, cluster: ClusterFile) => string[];
}

export interface LoadResult {
  cluster: Cluster;
  warnings: Diagnostic[];
  /** What fillSecrets added. */
  filled: string[];
}

/** Far more than any cluster or secrets file: a disk image or log passed by mistake is refused, not read. */
const MAX_FILE_BYTES = 1024 * 1024;

async function readText(path: string, what: string): Promise<string | null> {
  try {
    // Checked first: a disk or a log passed by mistake is not read whole. A pipe is fine
    // (--secrets <(sops -d …)), but read only up to the limit: /dev/zero never ends.
    const st = await stat(path);
    if (st.isDirectory()) throw new UserError(`${path} is a directory, not a ${what}`);
    if (st.isBlockDevice()) throw new UserError(`${what} ${path} is a disk, not a file`);
    if (st.isFile() && st.size > MAX_FILE_BYTES) throw new UserError(`${path} is too large to be a ${what} (${st.size} bytes)`);
    if (st.isFile()) return await readFile(path, 'utf8');
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const chunk of createReadStream(path, { end: MAX_FILE_BYTES })) {
      chunks.push(chunk as Buffer);
      n += (chunk as Buffer).length;
    }
    if (n > MAX_FILE_BYTES) throw new UserError(`${path} is too large to be a ${what} (over ${MAX_FILE_BYTES} bytes)`);
    return Buffer.concat(chunks).toString('utf8');
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'EISDIR') throw new UserError(`${path} is a directory, not a ${what}`);
    if (code === 'EACCES') throw new UserError(`cannot read ${what} ${path}: permission denied`);
    throw e;
  }
}

/** Secrets written into cluster.yaml: say where they go instead. */
function secretInClusterFile(path: readonly (string | number)[], key: string): string | undefined {
  const k = key.toLowerCase();
  if (path.length === 1 && path[0] === 'wifi' && /pass|psk|key|secret/.test(k)) {
    return `secrets go into the secrets file, as wifi_passphrase (8-63 characters) or wifi_psk (64 hex digits)`;
  }
  if (/gossip|encrypt|token|secret|password|passphrase/.test(k)) {
    return 'secrets go into the secrets file (cluster.secrets.yaml), never into cluster.yaml';
  }
  return undefined;
}

export async function loadCluster(clusterPath: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const text = await readText(clusterPath, 'cluster file');
  if (text === null) throw new UserError(`cluster file ${clusterPath} not found (create one with: piinit init)`);
  const cf = new YamlFile(clusterPath, text);
  const diags: Diagnostic[] = [...cf.syntax];
  let parsed: ClusterFile | undefined;
  if (cf.ok) {
    const v = cf.validate(clusterFileSchema, secretInClusterFile);
    parsed = v.value;
    diags.push(...v.diagnostics, ...checkCluster(cf));
  }

  // The secrets file.
  const secretsKey = cf.valueAt(['secrets_file']);
  const secretsPath = resolveSecretsPath(clusterPath, secretsKey, opts.secretsPath);
  const secretsText = await readText(secretsPath, 'secrets file');
  let secrets: SecretsFile | undefined;
  let sf: YamlFile | undefined;
  let filled: string[] = [];
  if (secretsText === null) {
    const init = `piinit init ${dirname(clusterPath)} --secrets-only`;
    const hint = opts.secretsPath ? `check --secrets, or create ${SECRETS_FILE_NAME} with: ${init}` : `create it with: ${init}`;
    if (!opts.secretsPath && typeof secretsKey === 'string') {
      diags.push(cf.diagnostic(['secrets_file'], 'error', `secrets file ${secretsPath} not found (${hint})`));
    } else {
      diags.push({ file: secretsPath, line: 1, column: 1, path: '', severity: 'error', message: `secrets file not found (${hint})` });
    }
  } else {
    const st = await stat(secretsPath);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      diags.push({
        file: secretsPath,
        line: 1,
        column: 1,
        path: '',
        severity: 'error',
        message: `the secrets file is readable by group or others (mode ${mode}); run: chmod 600 ${secretsPath}`,
      });
    }
    sf = new YamlFile(secretsPath, secretsText, { secret: true });
    diags.push(...sf.syntax);
    if (sf.ok) {
      if (opts.fillSecrets && parsed && isObj(sf.data)) filled = opts.fillSecrets(sf.data, parsed);
      const v = sf.validate(secretsFileSchema);
      secrets = v.value;
      diags.push(...v.diagnostics.map(fillableHint));
    }
  }

  // Wi-Fi: the SSID is in cluster.yaml, the passphrase or PSK in the secrets file.
  if (sf?.ok && cf.ok) {
    const wifi = cf.valueAt(['wifi']);
    const pass = sf.valueAt(['wifi_passphrase']);
    const psk = sf.valueAt(['wifi_psk']);
    if (wifi !== undefined && wifi !== null) {
      if (pass === undefined && psk === undefined) {
        diags.push(
          sf.diagnostic(
            ['wifi_passphrase'],
            'error',
            `missing: ${basename(clusterPath)} has a wifi section, so the secrets file needs wifi_passphrase (or the 64-hex-digit wifi_psk)`,
          ),
        );
      } else if (pass !== undefined && psk !== undefined) {
        diags.push(sf.diagnostic(['wifi_psk'], 'error', 'give wifi_passphrase or wifi_psk, not both', { key: true }));
      }
    } else if (pass !== undefined || psk !== undefined) {
      const key = pass !== undefined ? 'wifi_passphrase' : 'wifi_psk';
      diags.push(sf.diagnostic([key], 'warning', `unused: ${basename(clusterPath)} has no wifi section`, { key: true }));
    }
  }

  if (diags.some((d) => d.severity === 'error') || !parsed || !secrets) throw new ClusterValidationError(diags);
  const cluster = buildCluster(parsed, secretsFromFile(secrets), { cluster: clusterPath, secrets: secretsPath });
  return { cluster, warnings: diags, filled };
}

/** What `piinit secrets generate` can add (it needs the cluster CA for a certificate). */
const FILLABLE = new Set(['consul_gossip_key', 'nomad_gossip_key', 'tls.consul_server', 'tls.nomad_server', 'tls.nomad_client']);

function fillableHint(d: Diagnostic): Diagnostic {
  return d.message === 'missing required field' && FILLABLE.has(d.path) ? { ...d, message: `${d.message} (add it with: piinit secrets generate)` } : d;
}

/** The cluster's name alone, for commands that must work even after cluster.yaml or the
 *  secrets file was broken (down stops what up started). Without a name: the loader's errors. */
export async function readClusterName(clusterPath: string): Promise<string> {
  const text = await readText(clusterPath, 'cluster file');
  const name = text === null ? undefined : new YamlFile(clusterPath, text).valueAt(['name']);
  // Only a name the schema would take: it becomes a path (~/.local/state/piinit/<name>).
  if (typeof name === 'string' && HOST_LABEL.test(name)) return name;
  return (await loadCluster(clusterPath)).cluster.name;
}

/** Defaults and derived values. Input is already valid. */
function buildCluster(f: ClusterFile, secrets: Secrets, files: Cluster['files']): Cluster {
  const cidr = parseCidr(f.network.cidr);
  if (!cidr.ok) throw new Error('unreachable: cidr validated');
  const clusterDir = dirname(files.cluster);
  const components = {} as Record<ComponentName, ComponentSpec>;
  for (const name of COMPONENTS) {
    const c = f.components[name];
    const source = c.source ?? (DEFAULT_SOURCE[name] as ComponentSpec['source']);
    const spec: ComponentSpec = { name, version: c.version, source };
    if (source === 'debian') {
      spec.suite = c.suite;
      spec.package = c.package ?? DEFAULT_PACKAGE[name];
    }
    if (source === 'mirror' && c.mirror) {
      spec.mirror = /^https?:\/\//i.test(c.mirror) ? c.mirror : resolve(clusterDir, c.mirror);
    }
    components[name] = spec;
  }
  let wifi: Cluster['wifi'] = null;
  if (f.wifi) {
    const psk = secrets.wifiPsk?.toLowerCase() ?? wpaPsk(f.wifi.ssid, secrets.wifiPassphrase ?? '');
    wifi = { ssid: f.wifi.ssid, country: f.wifi.country, psk };
  }
  return {
    name: f.name,
    datacenter: f.datacenter ?? 'dc1',
    domain: f.domain ?? 'consul',
    network: {
      cidr: f.network.cidr,
      networkAddress: formatIPv4(cidr.cidr.network),
      prefixLength: cidr.cidr.prefixLength,
      gateway: f.network.gateway,
      dns: f.network.dns ?? [f.network.gateway],
      addressing: f.network.addressing ?? 'dhcp',
    },
    nodes: f.nodes.map((n) => ({
      name: n.name,
      role: n.role,
      board: n.board,
      arch: boardArch(n.board),
      mac: normalizeMac(n.mac)!,
      address: n.address === undefined || n.address === 'dhcp' ? null : n.address,
    })),
    components,
    consul: { raftMultiplier: f.consul?.raft_multiplier ?? DEFAULT_RAFT_MULTIPLIER },
    wifi,
    ssh: { authorizedKeys: f.ssh?.authorized_keys ?? [] },
    security: { tls: f.security?.tls ?? true, acl: f.security?.acl ?? true },
    secrets,
    files,
  };
}
