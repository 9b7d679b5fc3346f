// Nomad's view: leader, servers (gossip members) and client nodes.
import type { Endpoint } from './consul.ts';
import { type Http, shapes } from './http.ts';
import { pollLeaders } from './leaders.ts';

export interface NomadReport {
  /** unavailable: no Nomad binary could be obtained for this machine, so none runs (not a
   *  failure of the cluster); checked: the servers were asked. */
  state: 'unavailable' | 'checked';
  reason?: string;
  answering: string[];
  unreachable: { node: string; error: string }[];
  leader: string | null;
  servers: { name: string; status: string }[];
  clients: { name: string; status: string; eligibility: string }[];
  problems: string[];
}

interface Members {
  Members: { Name: string; Status: string }[];
}
interface NodeStub {
  Name: string;
  Status: string;
  SchedulingEligibility: string;
}

export function nomadUnavailable(reason: string): NomadReport {
  return { state: 'unavailable', reason, answering: [], unreachable: [], leader: null, servers: [], clients: [], problems: [] };
}

export async function probeNomad(
  http: Http,
  servers: Endpoint[],
  expected: { servers: string[]; clients: string[] },
): Promise<NomadReport> {
  const { withLeader, ...poll } = await pollLeaders(servers, (url) => http.nomad<string>(url, shapes.string));
  const r: NomadReport = { state: 'checked', ...poll, servers: [], clients: [], problems: [] };
  for (const u of r.unreachable) r.problems.push(`Nomad server ${u.node} does not answer (${u.error})`);
  if (r.answering.length === 0) {
    r.problems.push('no Nomad server answers');
    return r;
  }
  if (!withLeader) {
    r.problems.push(`Nomad has no leader (${r.answering.length} of ${expected.servers.length} servers answer)`);
    return r;
  }
  const [members, nodes] = await Promise.all([
    http.nomad<Members>(`${withLeader.url}/v1/agent/members`, shapes.arrayAt('Members')),
    http.nomad<NodeStub[]>(`${withLeader.url}/v1/nodes`, shapes.array),
  ]);
  if (members.ok) {
    // Nomad names server members "<node>.<region>".
    r.servers = members.body.Members.map((m) => ({ name: m.Name.replace(/\.[^.]+$/, ''), status: m.Status })).sort((a, b) =>
      a.name.localeCompare(b.name),
    );
    for (const name of expected.servers) {
      const m = r.servers.find((x) => x.name === name);
      if (!m) r.problems.push(`Nomad server ${name} is not a member`);
      else if (m.status !== 'alive') r.problems.push(`Nomad server ${name} is ${m.status}`);
    }
  } else {
    r.problems.push(`cannot list Nomad servers (${members.error})`);
  }
  if (nodes.ok) {
    r.clients = nodes.body
      .map((n) => ({ name: n.Name, status: n.Status, eligibility: n.SchedulingEligibility }))
      .sort((a, b) => a.name.localeCompare(b.name));
    for (const name of expected.clients) {
      const n = r.clients.find((x) => x.name === name);
      if (!n) r.problems.push(`Nomad client ${name} is not registered`);
      else if (n.status !== 'ready') r.problems.push(`Nomad client ${name} is ${n.status}`);
    }
  } else {
    r.problems.push(`cannot list Nomad client nodes (${nodes.error})`);
  }
  return r;
}
