import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { secretsFileSchema } from '../../../src/cluster/schema.ts';
import {
  ensureSecretsFile,
  generateSecrets,
  renderSecretsYaml,
  secretsFromFile,
  writeSecretsFile,
} from '../../../src/cluster/secrets.ts';
import { UserError } from '../../../src/errors.ts';

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'piinit-secrets-'));
}

test('generated secrets: 32-byte base64 gossip keys, a UUID for every token, all different', () => {
  const a = generateSecrets();
  const b = generateSecrets();
  for (const k of [a.consulGossipKey, a.nomadGossipKey]) assert.equal(Buffer.from(k, 'base64').length, 32);
  assert.notEqual(a.consulGossipKey, a.nomadGossipKey);
  assert.notEqual(a.consulGossipKey, b.consulGossipKey);
  const tokens = Object.values(a.tokens);
  assert.equal(tokens.length, 7);
  for (const t of tokens) assert.match(t!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(new Set(tokens).size, tokens.length);
});

test('rendered secrets YAML: warning header, and it reads back to the same Secrets', () => {
  const s = { ...generateSecrets(), wifiPassphrase: 'correct horse battery' };
  const text = renderSecretsYaml(s);
  assert.match(text, /^# piinit secrets/);
  assert.match(text, /NEVER commit/);
  assert.match(text, /0600/);
  const parsed = secretsFileSchema.parse(parse(text));
  assert.deepEqual(secretsFromFile(parsed), s);
});

test('secrets file is written 0600 even with umask 000, and never overwritten without force', async () => {
  const dir = await tempDir();
  const old = process.umask(0);
  try {
    const path = join(dir, 'cluster.secrets.yaml');
    const first = generateSecrets();
    await writeSecretsFile(path, first);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    await assert.rejects(writeSecretsFile(path, generateSecrets()), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /already exists; not overwriting secrets \(use --force/);
      return true;
    });
    assert.match(await readFile(path, 'utf8'), new RegExp(first.consulGossipKey.replace(/[+/]/g, '\\$&')));
    const second = generateSecrets();
    await writeSecretsFile(path, second, { force: true });
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.ok((await readFile(path, 'utf8')).includes(second.consulGossipKey));
  } finally {
    process.umask(old);
    await rm(dir, { recursive: true, force: true });
  }
});

test('ensureSecretsFile creates the file only when it is missing, honouring secrets_file:, never for a cluster file it cannot read', async () => {
  const dir = await tempDir();
  try {
    const cluster = join(dir, 'cluster.yaml');
    await writeFile(cluster, 'name: x\nnodes: []\nsecrets_file: private/s.yaml\n');
    // A folder not made yet is made, owner-only.
    assert.deepEqual(await ensureSecretsFile(cluster), { path: join(dir, 'private/s.yaml'), created: true });
    assert.equal((await stat(join(dir, 'private'))).mode & 0o777, 0o700);
    await writeFile(cluster, 'name: x\nnodes: []\nsecrets_file: afile/s.yaml\n');
    await writeFile(join(dir, 'afile'), '');
    await assert.rejects(ensureSecretsFile(cluster), /EEXIST: file already exists, mkdir/); // a file where its folder belongs: an error, not "created: false"
    const cluster2 = join(dir, 'c2.yaml');
    await writeFile(cluster2, 'name: x\nnodes: []\nsecrets_file: "s2.yaml"  # beside it\n');
    const r1 = await ensureSecretsFile(cluster2);
    assert.deepEqual(r1, { path: join(dir, 's2.yaml'), created: true });
    const before = await readFile(r1.path, 'utf8');
    const r2 = await ensureSecretsFile(cluster2);
    assert.deepEqual(r2, { path: join(dir, 's2.yaml'), created: false });
    assert.equal(await readFile(r1.path, 'utf8'), before);
    // A mistyped name (cluster.yml) or a file that is not a cluster: nothing is created, and
    // the loader then says what is wrong with the cluster file.
    assert.deepEqual(await ensureSecretsFile(join(dir, 'missing.yaml')), { path: join(dir, 'cluster.secrets.yaml'), created: false });
    await writeFile(join(dir, 'c3.yaml'), 'name: [unclosed\n');
    assert.deepEqual(await ensureSecretsFile(join(dir, 'c3.yaml')), { path: join(dir, 'cluster.secrets.yaml'), created: false });
    await assert.rejects(stat(join(dir, 'cluster.secrets.yaml')), { code: 'ENOENT' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
