// The health report as text for people. Pure.
import type { HealthReport } from './report.ts';

export interface ProcessLine {
  node: string;
  daemon: string;
  pid: number;
  state: string;
  /** Last lines of the log of a daemon that is not running. */
  logTail?: string;
}

export function table(rows: string[][], indent = '  '): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export function formatReport(r: HealthReport, processes: ProcessLine[] = []): string {
  const out: string[] = [];
  const c = r.consul;
  out.push(`Consul: ${c.leader ? `leader ${c.leaderNode ?? '?'} (${c.leader})` : 'NO LEADER'}` +
    (c.failureTolerance !== null ? `, failure tolerance ${c.failureTolerance}` : ''));
  if (c.peers.length) {
    out.push(table([
      ['RAFT PEER', 'ADDRESS', 'ROLE', 'VOTER', 'HEALTHY', 'LAST CONTACT'],
      ...c.peers.map((p) => [p.node, p.address, p.leader ? 'leader' : 'follower', p.voter ? 'yes' : 'no', p.healthy === null ? '?' : p.healthy ? 'yes' : 'NO', p.lastContact ?? '']),
    ]));
  }
  for (const u of c.unreachable) out.push(`  server ${u.node}: not answering (${u.error})`);
  if (c.members.length) {
    out.push(table([['MEMBER', 'ADDRESS', 'STATUS'], ...c.members.map((m) => [m.name, m.addr, m.status === 'alive' ? 'alive' : m.status.toUpperCase()])]));
  }
  out.push('');
  const n = r.nomad;
  if (n.state === 'unavailable') {
    out.push(`Nomad: unavailable — ${n.reason}`);
  } else {
    out.push(`Nomad: ${n.leader ? `leader ${n.leader}` : 'NO LEADER'}`);
    for (const u of n.unreachable) out.push(`  server ${u.node}: not answering (${u.error})`);
    if (n.servers.length) out.push(table([['SERVER', 'STATUS'], ...n.servers.map((s) => [s.name, s.status])]));
    if (n.clients.length) out.push(table([['CLIENT', 'STATUS', 'ELIGIBILITY'], ...n.clients.map((s) => [s.name, s.status, s.eligibility])]));
  }
  out.push('');
  const p = r.prometheus;
  if (p.state === 'absent') out.push('Prometheus: no monitor node');
  else if (!p.reachable) out.push(`Prometheus: NOT ANSWERING (${p.url})`);
  else {
    const down = p.targets.filter((t) => t.health !== 'up' && !t.excused).length;
    const excused = p.targets.filter((t) => t.excused).length;
    out.push(
      `Prometheus: ${p.targets.length} targets, ${down === 0 ? 'all up' : `${down} DOWN`}` +
        (excused ? ` (besides ${excused} expected down: ${p.targets.find((t) => t.excused)!.excused})` : ''),
    );
    out.push(
      table([
        ['JOB', 'INSTANCE', 'HEALTH', 'ERROR'],
        ...p.targets.map((t) => [
          t.job,
          t.instance,
          t.health === 'up' ? 'up' : t.excused ? `${t.health} (expected)` : t.health.toUpperCase(),
          t.excused ? '' : t.lastError,
        ]),
      ]),
    );
  }
  out.push('');
  out.push('node_exporter:');
  out.push(table(r.nodeExporters.map((e) => [e.node, e.url, e.ok ? 'reachable' : `NOT REACHABLE (${e.error})`])));
  if (processes.length) {
    out.push('');
    out.push('Local processes:');
    out.push(table([['NODE', 'DAEMON', 'PID', 'STATE'], ...processes.map((pr) => [pr.node, pr.daemon, String(pr.pid), pr.state])]));
    for (const pr of processes.filter((x) => x.logTail !== undefined)) {
      out.push(`\n  ${pr.node}/${pr.daemon} is ${pr.state}; the end of its log:`);
      out.push((pr.logTail || '(empty)').split('\n').map((l) => `    ${l}`).join('\n'));
    }
  }
  out.push('');
  for (const note of r.notes) out.push(`note: ${note}`);
  if (r.healthy) out.push('HEALTHY');
  else {
    out.push(`NOT HEALTHY (${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}):`);
    for (const pr of r.problems) out.push(`  - ${pr}`);
  }
  return out.join('\n');
}

/** One line for a progress display while waiting. */
export function progressLine(r: HealthReport, servers: number): string {
  const c = r.consul;
  const voters = c.peers.filter((p) => p.voter && p.healthy !== false).length;
  const alive = c.members.filter((m) => m.status === 'alive').length;
  const counted = r.prometheus.targets.filter((t) => !t.excused);
  const up = counted.filter((t) => t.health === 'up').length;
  const ne = r.nodeExporters.filter((e) => e.ok).length;
  return [
    `leader: ${c.leaderNode ?? (c.leader ? 'yes' : 'no')}`,
    `voters ${voters}/${servers}`,
    `members ${alive}/${r.nodeExporters.length}`,
    r.prometheus.state === 'checked' ? `targets up ${up}/${counted.length}` : '',
    `node_exporter ${ne}/${r.nodeExporters.length}`,
  ]
    .filter(Boolean)
    .join(' · ');
}
