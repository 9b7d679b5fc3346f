// The PSK piinit writes is the one the real wpa_passphrase derives (apt: wpasupplicant).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { wpaPsk } from '../../../src/cluster/wifi.ts';

function wpaPassphrase(ssid: string, passphrase: string): string {
  const r = spawnSync('wpa_passphrase', [ssid, passphrase], { encoding: 'utf8' });
  assert.equal(r.error, undefined, 'wpa_passphrase must be installed (scripts/setup-test-host.sh: wpasupplicant)');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const m = /^\s*psk=([0-9a-f]{64})$/m.exec(r.stdout);
  assert.ok(m, r.stdout);
  return m[1]!;
}

const cases: [string, string][] = [
  ['IEEE', 'password'],
  ['HomeNet', 'correct horse battery staple'],
  ['My Network 5G', '  spaces at both ends  '],
  ['Café ☕', 'pässwörd-ümlaut'],
  ['日本のネットワーク', 'パスワードです'],
  ['x', '12345678'],
  ['thirty-two-bytes-long-ssid-name!', 'a'.repeat(63)],
  ['quotes "and" $hell', `it's "quoted" \\ $HOME \`x\``],
];

for (const [ssid, passphrase] of cases) {
  test(`PSK matches wpa_passphrase for SSID ${JSON.stringify(ssid)}`, () => {
    assert.equal(wpaPsk(ssid, passphrase), wpaPassphrase(ssid, passphrase));
  });
}
