// Consul's view of the cluster: leader, raft peers and their health, gossip members.
import { type Http, shapes } from './http.ts';
import { pollLeaders } from './leaders.ts';

export interface Endpoint {
  node: string;
  url: string;
}

export interface ConsulPeer {
  node: string;
  id: string;
  address: string;
  voter: boolean;
  leader: boolean;
  /** From autopilot; null when autopilot did not answer. */
  healthy: boolean | null;
  serfStatus: string | null;
  lastContact: string | null;
}

export interface ConsulMember {
  name: string;
  addr: string;
  status: 'alive' | 'leaving' | 'left' | 'failed' | 'none';
  role: string;
}

export interface ConsulReport {
  /** Servers whose HTTP API answered, and the error of those that did not. */
  answering: string[];
  unreachable: { node: string; error: string }[];
  leader: string | null;
  leaderNode: string | null;
  peers: ConsulPeer[];
  failureTolerance: number | null;
  autopilotHealthy: boolean | null;
  members: ConsulMember[];
  /** service name → nodes it is registered on in the catalog (what Prometheus discovers). */
  services: Record<string, string[]>;
  problems: string[];
}

const MEMBER_STATUS = ['none', 'alive', 'leaving', 'left', 'failed'] as const;

interface RaftConfiguration {
  Servers: { ID: string; Node: string; Address: string; Leader: boolean; Voter: boolean }[];
}
interface AutopilotHealth {
  Healthy: boolean;
  FailureTolerance: number;
  Servers: { ID: string; Name: string; Address: string; SerfStatus: string; Leader: boolean; Voter: boolean; Healthy: boolean; LastContact: string }[] | null;
}
interface AgentMember {
  Name: string;
  Addr: string;
  Status: number;
  Tags?: Record<string, string>;
}

/** servers: the Consul servers' API base URLs; expectedServers/expectedMembers: node names. */
export async function probeConsul(
  http: Http,
  servers: Endpoint[],
  expected: { servers: string[]; members: string[]; services?: Record<string, string[]> },
): Promise<ConsulReport> {
  const { withLeader, ...poll } = await pollLeaders(servers, (url) => http.consul<string>(url, shapes.string));
  const r: ConsulReport = {
    ...poll,
    leaderNode: null,
    peers: [],
    failureTolerance: null,
    autopilotHealthy: null,
    members: [],
    services: {},
    problems: [],
  };
  for (const u of r.unreachable) r.problems.push(`Consul server ${u.node} does not answer (${u.error})`);
  if (r.answering.length === 0) {
    r.problems.push('no Consul server answers');
    return r;
  }
  const quorum = Math.floor(expected.servers.length / 2) + 1;
  if (!withLeader) {
    r.problems.push(
      `Consul has no leader: quorum lost (${r.answering.length} of ${expected.servers.length} servers answer, a quorum needs ${quorum})`,
    );
    // Members are still known to any agent without a leader.
    const any = servers.find((s) => r.answering.includes(s.node))!;
    await addMembers(http, any, expected.members, r);
    return r;
  }
  const [raft, autopilot] = await Promise.all([
    http.consul<RaftConfiguration>(`${withLeader.url}/v1/operator/raft/configuration`, shapes.arrayAt('Servers')),
    // 429 is Consul's answer while some server is unhealthy; the body says which.
    http.consul<AutopilotHealth>(`${withLeader.url}/v1/operator/autopilot/health`, shapes.objectWith('Healthy'), [429]),
  ]);
  if (raft.ok) {
    // Servers is null while the cluster forms.
    const health = autopilot.ok ? (autopilot.body.Servers ?? []) : [];
    r.peers = raft.body.Servers.map((p) => {
      const h = health.find((x) => x.ID === p.ID);
      return {
        node: p.Node,
        id: p.ID,
        address: p.Address,
        voter: p.Voter,
        leader: p.Leader,
        healthy: h ? h.Healthy : null,
        serfStatus: h ? h.SerfStatus : null,
        lastContact: h ? h.LastContact : null,
      };
    });
    const leaderPeer = r.peers.find((p) => p.leader);
    r.leaderNode = leaderPeer?.node ?? null;
    for (const name of expected.servers) {
      const p = r.peers.find((x) => x.node === name);
      if (!p) r.problems.push(`Consul server ${name} is not a raft peer`);
      else if (!p.voter) r.problems.push(`Consul server ${name} is not a voter`);
      else if (p.healthy === false) r.problems.push(`Consul server ${name} is not healthy in autopilot (serf ${p.serfStatus}, last contact ${p.lastContact})`);
    }
  } else {
    r.problems.push(`cannot read the raft configuration (${raft.error})`);
  }
  if (autopilot.ok) {
    r.failureTolerance = autopilot.body.FailureTolerance;
    r.autopilotHealthy = autopilot.body.Healthy;
    if (!autopilot.body.Healthy && !r.problems.some((p) => p.includes('autopilot'))) r.problems.push('Consul autopilot reports the servers unhealthy');
  } else {
    r.problems.push(`cannot read autopilot health (${autopilot.error})`);
  }
  await addMembers(http, withLeader, expected.members, r);
  for (const [svc, nodes] of Object.entries(expected.services ?? {})) {
    const res = await http.consul<{ Node: string }[]>(`${withLeader.url}/v1/catalog/service/${encodeURIComponent(svc)}`, shapes.array);
    if (!res.ok) {
      r.problems.push(`cannot read service ${svc} from the Consul catalog (${res.error})`);
      continue;
    }
    r.services[svc] = res.body.map((e) => e.Node).sort();
    const missing = nodes.filter((n) => !r.services[svc]!.includes(n));
    if (missing.length) r.problems.push(`service ${svc} is not registered in Consul for ${missing.join(', ')}`);
  }
  return r;
}

async function addMembers(http: Http, s: Endpoint, expected: string[], r: ConsulReport): Promise<void> {
  const res = await http.consul<AgentMember[]>(`${s.url}/v1/agent/members`, shapes.array);
  if (!res.ok) {
    r.problems.push(`cannot list Consul members (${res.error})`);
    return;
  }
  r.members = res.body
    .map((m) => ({ name: m.Name, addr: m.Addr, status: MEMBER_STATUS[m.Status] ?? 'none', role: m.Tags?.role ?? '' }))
    .sort((a, b) => a.name.localeCompare(b.name));
  for (const name of expected) {
    const m = r.members.find((x) => x.name === name);
    if (!m) r.problems.push(`${name} has not joined Consul`);
    else if (m.status !== 'alive') r.problems.push(`Consul member ${name} is ${m.status}`);
  }
}
