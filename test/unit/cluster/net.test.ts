import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cidrContains, formatIPv4, hostAddressProblem, macProblem, normalizeMac, parseCidr, parseIPv4 } from '../../../src/cluster/net.ts';
import { wpaPsk } from '../../../src/cluster/wifi.ts';

test('IPv4 parsing', () => {
  assert.equal(parseIPv4('192.168.1.10'), 0xc0a8010a);
  assert.equal(formatIPv4(0xc0a8010a), '192.168.1.10');
  assert.equal(formatIPv4(parseIPv4('255.255.255.255')!), '255.255.255.255');
  for (const bad of ['192.168.1', '192.168.1.256', '01.2.3.4', '1.2.3.4.5', ' 1.2.3.4', '1.2.3.-4', 'a.b.c.d', '']) {
    assert.equal(parseIPv4(bad), null, bad);
  }
});

test('CIDR parsing and membership', () => {
  const r = parseCidr('10.0.0.0/8');
  assert.ok(r.ok);
  assert.ok(cidrContains(r.cidr, parseIPv4('10.255.1.2')!));
  assert.ok(!cidrContains(r.cidr, parseIPv4('11.0.0.1')!));
  const all = parseCidr('0.0.0.0/0');
  assert.ok(all.ok && cidrContains(all.cidr, parseIPv4('8.8.8.8')!));
  assert.deepEqual(parseCidr('10.0.0.1/8'), { ok: false, reason: 'has host bits set; the network is 10.0.0.0/8' });
  assert.equal(parseCidr('10.0.0.0').ok, false);
  const p31 = parseCidr('10.0.0.0/31');
  assert.ok(p31.ok);
  assert.equal(hostAddressProblem(p31.cidr, parseIPv4('10.0.0.0')!), null, '/31 has no network address');
  const p24 = parseCidr('10.0.0.0/24');
  assert.ok(p24.ok);
  assert.match(hostAddressProblem(p24.cidr, parseIPv4('10.0.0.0')!)!, /network address/);
});

test('MAC normalization', () => {
  assert.equal(normalizeMac('DC-A6-32-01-02-03'), 'dc:a6:32:01:02:03');
  assert.equal(normalizeMac('dc:a6:32:01:02-03'), null, 'mixed separators');
  assert.equal(normalizeMac('dc:a6:32:01:02'), null);
  assert.match(macProblem('01:00:5e:00:00:01')!, /multicast/);
  assert.equal(macProblem('dc:a6:32:01:02:03'), null);
});

test('WPA PSK: the IEEE 802.11 test vector', () => {
  // IEEE 802.11-2007 Annex H.4: passphrase "password", SSID "IEEE".
  assert.equal(wpaPsk('IEEE', 'password'), 'f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e');
});
