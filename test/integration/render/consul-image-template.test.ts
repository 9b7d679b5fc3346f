// The image's Consul config finds its address with a go-sockaddr template restricted to the
// cluster CIDR. `consul validate` evaluates it: run it in a network namespace this test made,
// once with an interface in the CIDR (valid) and once without (rejected).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderRole } from '../../../src/render/index.ts';
import { writeTree } from '../../../src/render/write.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';
import { run, tempDir } from './tools.ts';

test('image config: bind_addr template resolves to the interface in the cluster CIDR', async (t) => {
  const dir = await tempDir(t);
  const c = fixtureCluster();
  for (const role of ['server', 'client'] as const) await writeTree(renderRole(c, role), join(dir, role));
  const ns = `piinit-render-${process.pid}`;
  const host = `pr${process.pid % 100000}a`;
  const peer = `pr${process.pid % 100000}b`;
  const must = (cmd: string, args: string[]) => {
    const r = run(cmd, args);
    assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.out}`);
  };
  must('ip', ['netns', 'add', ns]);
  t.after(() => {
    run('ip', ['netns', 'del', ns]);
    run('ip', ['link', 'del', host]);
  });
  must('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  for (const role of ['server', 'client']) {
    const r = run('ip', ['netns', 'exec', ns, 'consul', 'validate', join(dir, role, 'etc/consul.d')]);
    assert.notEqual(r.status, 0, `${role} without an address in the CIDR must not validate: ${r.out}`);
    assert.match(r.out, /bind_addr/);
  }
  must('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', peer, 'netns', ns]);
  must('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', '192.168.50.11/24', 'dev', peer]);
  must('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', peer, 'up']);
  for (const role of ['server', 'client']) {
    const r = run('ip', ['netns', 'exec', ns, 'consul', 'validate', join(dir, role, 'etc/consul.d')]);
    assert.equal(r.status, 0, `${role}: ${r.out}`);
  }
});
