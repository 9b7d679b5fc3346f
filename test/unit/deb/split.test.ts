import assert from 'node:assert/strict';
import { test } from 'node:test';
import { partOf } from '../../../src/deb/split.ts';

test('paths go to the package of the daemon they belong to', () => {
  const cases: [string, string][] = [
    ['/etc/consul.d/consul.json', 'consul'],
    ['/etc/consul.d/tls/ca.pem', 'consul'],
    ['/etc/consul.d/service-node-exporter.json', 'node_exporter'],
    ['/etc/consul.d/service-prometheus.json', 'prometheus'],
    ['/etc/nomad.d/nomad.json', 'nomad'],
    ['/etc/prometheus/prometheus.yml', 'prometheus'],
    ['/usr/lib/systemd/system/consul.service', 'consul'],
    ['/usr/lib/systemd/system/consul-acl-bootstrap.service', 'consul'],
    ['/usr/lib/systemd/system/node_exporter.service', 'node_exporter'],
    ['/etc/systemd/system/multi-user.target.wants/nomad.service', 'nomad'],
    ['/usr/lib/tmpfiles.d/prometheus.conf', 'prometheus'],
    ['/usr/lib/sysusers.d/consul.conf', 'users'],
    ['/usr/lib/sysusers.d/node-exporter.conf', 'users'],
    ['/usr/lib/systemd/system-preset/50-piinit.preset', 'role'],
    ['/etc/systemd/network/20-wired.network', 'base'],
    ['/etc/wpa_supplicant/wpa_supplicant-wlan0.conf', 'base'],
    ['/etc/systemd/resolved.conf.d/consul.conf', 'base'],
  ];
  for (const [path, part] of cases) assert.equal(partOf(path), part, path);
});

test('system files that merely mention a daemon stay in the base package', () => {
  assert.equal(partOf('/etc/systemd/resolved.conf.d/consul.conf'), 'base');
  assert.equal(partOf('/etc/dnsmasq.d/consul'), 'base');
  assert.equal(partOf('/etc/systemd/system/consul.service.d/override.conf'), 'consul');
});

test("piinit's helpers for a daemon go with that daemon", () => {
  assert.equal(partOf('/usr/lib/systemd/system/piinit-consul-acl.service'), 'consul');
  assert.equal(partOf('/etc/systemd/system/multi-user.target.wants/piinit-nomad-acl.service'), 'nomad');
  assert.equal(partOf('/usr/libexec/piinit/consul-acl-bootstrap'), 'consul');
  assert.equal(partOf('/etc/piinit/nomad-acl-bootstrap.env'), 'nomad');
  assert.equal(partOf('/usr/lib/piinit/hostname-from-mac'), 'base');
  assert.equal(partOf('/usr/lib/tmpfiles.d/piinit-admin.conf'), 'base');
});
