import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateSecrets } from '../../../src/cluster/secrets.ts';
import { file, type FileTree } from '../../../src/render/filetree.ts';
import { accessProblem, formatFindings, scanFileTree, scanText, secretValues } from '../../../src/security/scan.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';

const secrets = generateSecrets(fixtureCluster());

test('every secret is searched for, PEM keys by a line that survives JSON escaping', () => {
  const names = secretValues(secrets).map((v) => v.name);
  for (const n of ['consulGossipKey', 'nomadGossipKey', 'tokens.consulBootstrap', 'tokens.consulAgent', 'tls.ca.key', 'tls.consulServer.key']) {
    assert.ok(names.includes(n), n);
  }
  const tree: FileTree = new Map([['/etc/x.json', file(JSON.stringify({ key: secrets.tls!.consulServer.key }), { mode: 0o644 })]]);
  assert.deepEqual(scanFileTree(tree, secrets).map((f) => f.secret), ['tls.consulServer.key', 'tls.consulServer.key']);
});

test('world-readable, foreign-group-readable and foreign-owned secret files are findings; 0600/0640 daemon files are not', () => {
  const g = `{"encrypt":"${secrets.consulGossipKey}"}`;
  const tree: FileTree = new Map([
    ['/etc/consul.d/ok-600.json', file(g, { mode: 0o600, owner: 'consul', secret: true })],
    ['/etc/consul.d/ok-640.json', file(g, { mode: 0o640, owner: 'root', group: 'consul', secret: true })],
    ['/etc/consul.d/world.json', file(g, { mode: 0o644, secret: true })],
    ['/etc/consul.d/users.json', file(g, { mode: 0o640, owner: 'root', group: 'users', secret: true })],
    ['/home/pi/token', file(secrets.tokens.consulOperator!, { mode: 0o600, owner: 'pi', secret: true })],
    ['/etc/consul.d/unmarked.json', file(g, { mode: 0o600, owner: 'consul' })],
    ['/etc/consul.d/plain.json', file('{"datacenter":"home"}', { mode: 0o644 })],
  ]);
  const f = scanFileTree(tree, secrets, 'test');
  assert.deepEqual(
    f.map((x) => [x.path, x.reason.split(' ')[0]]),
    [
      ['/etc/consul.d/world.json', 'readable'],
      ['/etc/consul.d/users.json', 'group'],
      ['/home/pi/token', 'owned'],
      ['/etc/consul.d/unmarked.json', 'holds'],
    ],
  );
  const text = formatFindings(f);
  for (const v of secretValues(secrets)) assert.ok(!text.includes(v.needle), 'reports never show the secret');
});

test('the access rule', () => {
  assert.equal(accessProblem(0o600, 'consul', 'consul'), null);
  assert.equal(accessProblem(0o640, 'root', 'nomad'), null);
  assert.match(accessProblem(0o604, 'root', 'root')!, /others/);
  assert.match(accessProblem(0o660, 'root', 'adm')!, /group adm/);
});

test('secrets in captured output are leaks', () => {
  assert.deepEqual(scanText(`starting with key ${secrets.nomadGossipKey}\n`, secrets, 'log').map((f) => f.secret), ['nomadGossipKey']);
  assert.deepEqual(scanText('all good\n', secrets, 'log'), []);
});
