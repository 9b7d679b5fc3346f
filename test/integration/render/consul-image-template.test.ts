// The image's Consul config, exactly as the image carries it (paths under /etc/consul.d),
// finds its address with a go-sockaddr template restricted to the cluster CIDR. `consul
// validate` evaluates it: run it in a network namespace this test made (once without an
// interface in the CIDR: rejected; once with one: valid), with the rendered /etc bind-mounted
// over /etc in a private mount namespace so the TLS file paths exist as on the Pi.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderRole } from '../../../src/render/index.ts';
import { writeTree } from '../../../src/render/write.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';
import { makeTlsMaterial } from './tls-material.ts';
import { run, tempDir } from './tools.ts';

const uuid = (i: number) => `4a3e0d6c-6f1f-4a2b-9a8e-0b5c2c6d7e0${i}`;

test('image config (plain and TLS + ACL): bind_addr template resolves to the interface in the cluster CIDR', async (t) => {
  const dir = await tempDir(t);
  const plain = fixtureCluster();
  const secure = fixtureCluster({ security: { tls: true, acl: true } });
  await mkdir(join(dir, 'pki'));
  secure.secrets.tls = makeTlsMaterial(join(dir, 'pki'), secure.datacenter, secure.domain, ['192.168.50.11', '192.168.50.12', '192.168.50.13']);
  secure.secrets.tokens = { consulBootstrap: uuid(1), consulAgent: uuid(2), consulPrometheus: uuid(3), consulDns: uuid(4) };
  const variants: string[] = [];
  for (const [name, c] of [['plain', plain], ['secure', secure]] as const) {
    for (const role of ['server', 'client'] as const) {
      await writeTree(renderRole(c, role), join(dir, name, role));
      variants.push(join(dir, name, role));
    }
  }
  const ns = `piinit-render-${process.pid}`;
  const host = `pr${process.pid % 100000}a`;
  const peer = `pr${process.pid % 100000}b`;
  const must = (cmd: string, args: string[]) => {
    const r = run(cmd, args);
    assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.out}`);
  };
  const validate = (root: string) =>
    run('ip', ['netns', 'exec', ns, 'unshare', '-m', 'sh', '-c', 'mount --bind "$1" /etc && exec consul validate /etc/consul.d', 'sh', join(root, 'etc')]);
  must('ip', ['netns', 'add', ns]);
  t.after(() => {
    run('ip', ['netns', 'del', ns]);
    run('ip', ['link', 'del', host]);
  });
  must('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  for (const v of variants) {
    const r = validate(v);
    assert.notEqual(r.status, 0, `${v} without an address in the CIDR must not validate: ${r.out}`);
    assert.match(r.out, /bind_addr/);
  }
  must('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', peer, 'netns', ns]);
  must('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', '192.168.50.11/24', 'dev', peer]);
  must('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', peer, 'up']);
  for (const v of variants) {
    const r = validate(v);
    assert.equal(r.status, 0, `${v}: ${r.out}`);
    assert.match(r.out, /Configuration is valid/);
  }
});
