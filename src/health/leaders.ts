// The first step of a Consul or Nomad probe: every server is asked who the leader is. Those
// that answer, those that do not (and why), and the first one that knows a leader, which the
// rest of the probe then asks for the details.
import type { Endpoint } from './consul.ts';
import type { HttpResult } from './http.ts';

export interface LeaderPoll {
  answering: string[];
  unreachable: { node: string; error: string }[];
  /** The leader's address as the servers report it; null when none knows one. */
  leader: string | null;
  withLeader: Endpoint | null;
}

export async function pollLeaders(servers: Endpoint[], ask: (url: string) => Promise<HttpResult<string>>): Promise<LeaderPoll> {
  const answers = await Promise.all(servers.map(async (s) => ({ s, res: await ask(`${s.url}/v1/status/leader`) })));
  const poll: LeaderPoll = { answering: [], unreachable: [], leader: null, withLeader: null };
  for (const { s, res } of answers) {
    if (!res.ok) {
      poll.unreachable.push({ node: s.node, error: res.error });
      continue;
    }
    poll.answering.push(s.node);
    if (typeof res.body === 'string' && res.body !== '' && !poll.withLeader) {
      poll.withLeader = s;
      poll.leader = res.body;
    }
  }
  return poll;
}
