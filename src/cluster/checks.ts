// Rules that relate several fields of cluster.yaml. They run on the raw parsed data even
// when the schema found problems, so that every problem is reported at once; each rule
// skips values that are malformed (the schema already reports those).
import { BOARD_INFO, BOARDS, type Board } from './boards.ts';
import type { Diagnostic } from './diagnostics.ts';
import { COMPONENTS } from './types.ts';
import { formatIPv4, hostAddressProblem, normalizeMac, parseCidr, parseIPv4, type Cidr } from './net.ts';
import { SOURCES } from './schema.ts';
import type { YamlFile } from './yamlfile.ts';

export const DEFAULT_SOURCE: Record<(typeof COMPONENTS)[number], string> = {
  consul: 'hashicorp',
  nomad: 'hashicorp',
  prometheus: 'github',
  node_exporter: 'github',
};

export const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export function checkCluster(f: YamlFile): Diagnostic[] {
  const out: Diagnostic[] = [];
  const root = f.data;
  if (!isObj(root)) return out;

  let cidr: Cidr | null = null;
  const net = root.network;
  if (isObj(net) && typeof net.cidr === 'string') {
    const r = parseCidr(net.cidr);
    if (r.ok) cidr = r.cidr;
  }
  if (cidr && isObj(net) && typeof net.gateway === 'string') {
    const gw = parseIPv4(net.gateway);
    const p = gw === null ? null : hostAddressProblem(cidr, gw);
    if (p) out.push(f.diagnostic(['network', 'gateway'], 'error', `${net.gateway} ${p}`));
  }
  const gateway = isObj(net) && typeof net.gateway === 'string' ? parseIPv4(net.gateway) : null;
  const staticAddressing = isObj(net) && net.addressing === 'static';

  const nodes = Array.isArray(root.nodes) ? root.nodes : [];
  const names = new Map<string, number>();
  const macs = new Map<string, number>();
  const addrs = new Map<number, number>();
  let servers = 0;
  let monitors = 0;
  let unknownRole = false; // then the counts below would mislead
  nodes.forEach((n, i) => {
    if (!isObj(n)) return;
    const at = (k: string) => ['nodes', i, k];
    if (typeof n.name === 'string') {
      const first = names.get(n.name);
      if (first !== undefined) out.push(f.diagnostic(at('name'), 'error', `duplicate node name "${n.name}" (also nodes[${first}])`));
      else names.set(n.name, i);
    }
    const mac = typeof n.mac === 'string' ? normalizeMac(n.mac) : null;
    if (mac) {
      const first = macs.get(mac);
      if (first !== undefined) out.push(f.diagnostic(at('mac'), 'error', `duplicate MAC address ${mac} (also nodes[${first}])`));
      else macs.set(mac, i);
    }
    const role = n.role;
    if (!['server', 'client', 'monitor'].includes(role as string)) unknownRole = true;
    if (role === 'server') servers++;
    if (role === 'monitor') monitors++;
    const board = typeof n.board === 'string' && (BOARDS as readonly string[]).includes(n.board) ? (n.board as Board) : null;
    if (board && typeof role === 'string' && ['server', 'client', 'monitor'].includes(role)) {
      const info = BOARD_INFO[board];
      if (!info.roles.includes(role as 'server')) {
        out.push(
          f.diagnostic(
            at('board'),
            'error',
            `a ${board} (${info.description}, ${info.minMemoryMiB} MiB) cannot run the ${role} role; it can run: ${info.roles.join(', ')}`,
          ),
        );
      }
    }
    if (board && BOARD_INFO[board].noImage) {
      out.push(f.diagnostic(at('board'), 'warning', `piinit image makes no image for a ${board}: ${BOARD_INFO[board].noImage} (piinit up runs it)`));
    }
    const needsAddress = role === 'server' || role === 'monitor';
    if (n.address === undefined || n.address === 'dhcp') {
      if (needsAddress) {
        out.push(
          f.diagnostic(
            at('address'),
            'error',
            `a ${role} needs a fixed IPv4 address (the other nodes find it by address)` +
              (staticAddressing ? '' : '; with addressing: dhcp, give the address your router reserves for its MAC'),
          ),
        );
      }
    } else if (typeof n.address === 'string') {
      const a = parseIPv4(n.address);
      if (a !== null) {
        const p = cidr ? hostAddressProblem(cidr, a) : null;
        if (p) out.push(f.diagnostic(at('address'), 'error', `${n.address} ${p}`));
        else if (a === gateway) out.push(f.diagnostic(at('address'), 'error', `${n.address} is the gateway's address`));
        const first = addrs.get(a);
        if (first !== undefined) {
          out.push(f.diagnostic(at('address'), 'error', `duplicate address ${formatIPv4(a)} (also nodes[${first}])`));
        } else addrs.set(a, i);
      }
    }
  });

  if (Array.isArray(root.nodes) && root.nodes.length > 0 && !unknownRole) {
    const consul = isObj(root.consul) ? root.consul : {};
    const allowEven = consul.allow_even_servers === true;
    // Messages about the node list as a whole point at the "nodes:" key.
    const atNodes = (severity: 'error' | 'warning', message: string) => f.diagnostic(['nodes'], severity, message, { key: true });
    if (servers === 0) {
      out.push(atNodes('error', 'no node has role server: Consul and Nomad need 3 (or 5) servers'));
    } else if (servers === 1) {
      out.push(
        atNodes('warning', 'only 1 server: the cluster has no fault tolerance (use 3 or 5 servers)'),
      );
    } else if (servers % 2 === 0) {
      const tolerated = Math.floor((servers - 1) / 2);
      const msg =
        `${servers} servers: an even number halves fault tolerance ` +
        `(${servers} servers survive ${tolerated} failure${tolerated === 1 ? '' : 's'}, no more than ${servers - 1} do)`;
      const use = servers - 1 >= 3 ? `${servers - 1} or ${servers + 1}` : `${servers + 1}`;
      if (allowEven) out.push(atNodes('warning', msg));
      else out.push(atNodes('error', `${msg}; use ${use}, or set consul.allow_even_servers: true`));
    }
    if (servers > 7 && servers % 2 === 1) {
      out.push(atNodes('warning', `${servers} servers: every write waits for a majority of them; 3 or 5 is the usual size`));
    }
    if (monitors === 0 && nodes.length > 0) {
      out.push(atNodes('warning', 'no node has role monitor: nothing runs Prometheus'));
    }
  }

  const components = isObj(root.components) ? root.components : {};
  for (const name of COMPONENTS) {
    const c = components[name];
    if (!isObj(c)) continue;
    const source = c.source === undefined ? DEFAULT_SOURCE[name] : c.source;
    if (typeof source !== 'string' || !(SOURCES as readonly string[]).includes(source)) continue; // the schema says so
    const at = (k: string) => ['components', name, k];
    if (source !== 'debian') {
      for (const k of ['suite', 'package']) {
        if (c[k] !== undefined) out.push(f.diagnostic(at(k), 'error', `"${k}" only applies to source: debian (this source is ${source})`, { key: true }));
      }
    } else if (c.suite === undefined) {
      out.push(f.diagnostic(at('suite'), 'error', 'source: debian needs a suite (e.g. bullseye, bookworm)'));
    }
    if (source === 'mirror') {
      if (c.mirror === undefined) out.push(f.diagnostic(at('mirror'), 'error', 'source: mirror needs mirror: a directory or http(s) URL'));
      else if (typeof c.mirror === 'string' && /^[a-z]+:\/\//i.test(c.mirror) && !/^https?:\/\//i.test(c.mirror)) {
        out.push(f.diagnostic(at('mirror'), 'error', `"${c.mirror}" is neither a directory nor an http(s) URL`));
      }
    } else if (c.mirror !== undefined) {
      out.push(f.diagnostic(at('mirror'), 'error', `"mirror" only applies to source: mirror (this source is ${source})`, { key: true }));
    }
  }
  return out;
}

