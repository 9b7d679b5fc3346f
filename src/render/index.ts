// The render entry points: Cluster → FileTree for a node (local runs, inspection) or for a
// role (what the identical image of that role carries). Pure: no I/O.
import type { Role } from '../cluster/boards.ts';
import type { Cluster, Node } from '../cluster/types.ts';
import { renderAclBootstrap } from '../security/acl.ts';
import { consulCommand, consulSystemFiles, renderConsul } from './consul.ts';
import { makeContext, type RenderContext, runsNomadClient, runsNomadServer } from './context.ts';
import { type FileTree, mergeTrees } from './filetree.ts';
import { nomadCommand, nomadSystemFiles, renderNomad } from './nomad.ts';
import {
  nodeExporterCommand,
  nodeExporterSystemFiles,
  prometheusCommand,
  prometheusSystemFiles,
  renderNodeExporter,
  renderPrometheus,
} from './prometheus.ts';
import { renderSystem } from './system.ts';
import { presetFile, type ServiceCommand } from './unit.ts';

export type { ServiceCommand } from './unit.ts';
export type { FileTree } from './filetree.ts';

export interface RenderOptions {
  /** 'image': paths as on the Pi (default). 'local': for `piinit up` on one machine — every
   *  path the configs reference (config dirs, data dirs, TLS files) lives under `root` (an
   *  absolute directory, e.g. <state>/nodes/core1) and the tree's keys are those relocated
   *  paths too; daemons bind to the node's address (a 127.0.0.x the local runner puts in
   *  node.address); system files (networkd, resolved, journald, wifi, ssh, sysusers, tmpfiles)
   *  are left out. */
  target?: 'image' | 'local';
  root?: string;
}

/** The daemons a role runs, in start order. */
export function componentsOf(role: Role): ('consul' | 'nomad' | 'prometheus' | 'node_exporter')[] {
  const out: ('consul' | 'nomad' | 'prometheus' | 'node_exporter')[] = ['consul'];
  if (runsNomadServer(role) || runsNomadClient(role)) out.push('nomad');
  if (role === 'monitor') out.push('prometheus');
  out.push('node_exporter');
  return out;
}

/**
 * The place where trees from other areas join the rendered files: the security step's
 * first-boot oneshot (ACL policies and tokens) is merged here.
 */
export const extraRenderers: ((ctx: RenderContext) => FileTree)[] = [renderAclBootstrap];

function renderWith(ctx: RenderContext): FileTree {
  const comps = componentsOf(ctx.role);
  const trees: FileTree[] = [];
  for (const comp of comps) {
    if (comp === 'consul') trees.push(renderConsul(ctx));
    if (comp === 'nomad') trees.push(renderNomad(ctx));
    if (comp === 'prometheus') trees.push(renderPrometheus(ctx));
    if (comp === 'node_exporter') trees.push(renderNodeExporter(ctx));
  }
  if (ctx.target === 'image') {
    for (const comp of comps) {
      if (comp === 'consul') trees.push(consulSystemFiles());
      if (comp === 'nomad') trees.push(nomadSystemFiles(ctx));
      if (comp === 'prometheus') trees.push(prometheusSystemFiles());
      if (comp === 'node_exporter') trees.push(nodeExporterSystemFiles());
    }
    trees.push(presetFile(comps.map((c) => `${c}.service`)));
    trees.push(renderSystem(ctx));
  }
  for (const r of extraRenderers) trees.push(r(ctx));
  return mergeTrees(...trees);
}

/** Everything this node carries. On the image target that is exactly its role's image. */
export function renderNode(cluster: Cluster, node: Node, opts: RenderOptions = {}): FileTree {
  const target = opts.target ?? 'image';
  if (target === 'image') return renderRole(cluster, node.role);
  return renderWith(makeContext(cluster, node.role, 'local', node, opts.root));
}

/** What the image for a role carries: identical for all nodes of the role. */
export function renderRole(cluster: Cluster, role: Role): FileTree {
  return renderWith(makeContext(cluster, role, 'image', null));
}

/** Kernel command line additions for the role's image. */
export function bootCmdlineExtras(_cluster: Cluster, role: Role): string[] {
  // Raspberry Pi kernels keep the memory cgroup off; Nomad clients need it for task limits.
  return runsNomadClient(role) ? ['cgroup_enable=memory', 'cgroup_memory=1'] : [];
}

/** Each unit's ExecStart as data, so the local runner starts exactly what systemd would. */
export function serviceCommands(cluster: Cluster, node: Node, opts: RenderOptions = {}): ServiceCommand[] {
  const target = opts.target ?? 'image';
  const ctx = makeContext(cluster, node.role, target, target === 'local' ? node : null, opts.root);
  return componentsOf(node.role).map((comp) => {
    switch (comp) {
      case 'consul':
        return consulCommand(ctx);
      case 'nomad':
        return nomadCommand(ctx);
      case 'prometheus':
        return prometheusCommand(ctx);
      case 'node_exporter':
        return nodeExporterCommand(ctx);
    }
  });
}
