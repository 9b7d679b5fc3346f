import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AR_MAGIC, arChunks, arHeader } from '../../../src/deb/ar.ts';

test('an ar header is 60 bytes with the fields where dpkg looks for them', () => {
  const h = arHeader('debian-binary', 4, 1700000000).toString('latin1');
  assert.equal(h.length, 60);
  assert.equal(h.slice(0, 16), 'debian-binary   ');
  assert.equal(h.slice(16, 28).trim(), '1700000000');
  assert.equal(h.slice(28, 34).trim(), '0');
  assert.equal(h.slice(40, 48).trim(), '100644');
  assert.equal(h.slice(48, 58).trim(), '4');
  assert.equal(h.slice(58), '`\n');
});

test('members are padded to an even length', () => {
  const out = Buffer.concat(arChunks([{ name: 'a', data: Buffer.from('xyz') }, { name: 'b', data: Buffer.from('12') }], 0));
  assert.deepEqual(out.subarray(0, 8), AR_MAGIC);
  assert.equal(out.length, 8 + 60 + 4 + 60 + 2);
  assert.equal(out.subarray(8 + 60, 8 + 64).toString(), 'xyz\n');
});

test('names longer than 16 characters are refused', () => {
  assert.throws(() => arHeader('a-very-long-member-name', 1, 0), /longer than 16/);
});
