// What each component ships and where each kind of source keeps it.
import type { UpstreamNaming } from '../cluster/boards.ts';
import type { ComponentName } from '../cluster/types.ts';

/** The executables piinit takes from each component's release. */
export const PROGRAMS: Record<ComponentName, string[]> = {
  consul: ['consul'],
  nomad: ['nomad'],
  prometheus: ['prometheus', 'promtool'],
  node_exporter: ['node_exporter'],
};

export const NAMING: Record<ComponentName, UpstreamNaming> = {
  consul: 'hashicorp',
  nomad: 'hashicorp',
  prometheus: 'github',
  node_exporter: 'github',
};

export const GITHUB_REPO: Partial<Record<ComponentName, string>> = {
  prometheus: 'prometheus/prometheus',
  node_exporter: 'prometheus/node_exporter',
};

/** Debian package name and where each program sits inside it. */
export const DEBIAN_PACKAGE: Record<ComponentName, { package: string; paths: Record<string, string> }> = {
  consul: { package: 'consul', paths: { consul: 'usr/bin/consul' } },
  nomad: { package: 'nomad', paths: { nomad: 'usr/bin/nomad' } },
  prometheus: { package: 'prometheus', paths: { prometheus: 'usr/bin/prometheus', promtool: 'usr/bin/promtool' } },
  node_exporter: { package: 'prometheus-node-exporter', paths: { node_exporter: 'usr/bin/prometheus-node-exporter' } },
};

export const DEFAULT_HASHICORP_BASE = 'https://releases.hashicorp.com';
export const DEFAULT_GITHUB_BASE = 'https://github.com';
