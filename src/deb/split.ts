// Splits a role's rendered FileTree into the parts that go into separate packages: one per
// daemon, the system users, the role's own files (preset) and the rest (base system).
// Pure: decided by path alone, so what the render step adds later lands somewhere sensible.
import type { ComponentName } from '../cluster/types.ts';

export type Part = ComponentName | 'users' | 'role' | 'base';

const COMPONENT_TOKENS: [ComponentName, RegExp][] = [
  ['node_exporter', /^node[-_]exporter(?:[.@-]|$)/],
  ['consul', /^consul(?:[.@-]|$)/],
  ['nomad', /^nomad(?:[.@-]|$)/],
  ['prometheus', /^prometheus(?:[.@-]|$)/],
];

/** consul.service, consul-acl.conf, piinit-consul-acl.service → consul. */
function componentOfName(name: string): ComponentName | null {
  const n = name.replace(/^piinit-/, '');
  for (const [c, re] of COMPONENT_TOKENS) if (re.test(n)) return c;
  return null;
}

/** Which package part a path belongs to. */
export function partOf(path: string): Part {
  if (path.startsWith('/usr/lib/sysusers.d/')) return 'users';
  if (path.startsWith('/usr/lib/systemd/system-preset/')) return 'role';
  // A Consul service registration belongs to the daemon it registers
  // (/etc/consul.d/service-node-exporter.json → node_exporter).
  const reg = /^\/etc\/consul\.d\/service-(.+)\.(?:json|hcl)$/.exec(path);
  if (reg?.[1]) {
    const c = componentOfName(reg[1]);
    if (c) return c;
  }
  // A daemon's own directories: /etc/consul.d/…, /etc/prometheus/…, /opt/nomad/…, /var/lib/…
  const top = /^\/(?:etc|opt|var\/lib|srv)\/([^/]+)/.exec(path)?.[1];
  const topComp = top ? componentOfName(top) : null;
  if (topComp) return topComp;
  // Units, drop-ins and WantedBy links named after a daemon:
  // /usr/lib/systemd/system/prometheus.service, /etc/systemd/system/consul.service.d/x.conf,
  // /etc/systemd/system/multi-user.target.wants/consul.service, /usr/lib/tmpfiles.d/consul.conf
  const unit = /^\/(?:usr\/lib|etc)\/systemd\/system\/(?:[^/]+\.(?:wants|requires)\/)?([^/]+)/.exec(path)?.[1];
  const tmpfiles = /^\/usr\/lib\/tmpfiles\.d\/([^/]+)$/.exec(path)?.[1];
  // piinit's own helpers for a daemon: /usr/libexec/piinit/consul-acl-bootstrap, /etc/piinit/consul-acl-bootstrap.env
  const helper = /^\/(?:usr\/libexec|usr\/lib|etc)\/piinit\/([^/]+)$/.exec(path)?.[1];
  const name = unit ?? tmpfiles ?? helper;
  if (name) return componentOfName(name) ?? 'base';
  return 'base';
}
