import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inferDepends } from '../../../src/deb/depends.ts';
import type { DebEntry } from '../../../src/deb/model.ts';

const f = (content: string, mode = 0o644): DebEntry => ({ content, mode, owner: 'root', group: 'root' });

test('dependencies come from Exec lines, scripts, config directories and preset lines', () => {
  const files = new Map<string, DebEntry>([
    ['/usr/lib/systemd/system/consul.service', f('[Service]\nExecStart=/usr/bin/consul agent\nExecReload=/bin/kill --signal HUP $MAINPID\n')],
    ['/usr/libexec/piinit/bootstrap', f('#!/bin/sh\nset -e\nout=$(curl -sS http://127.0.0.1)\n', 0o755)],
    ['/etc/systemd/resolved.conf.d/consul.conf', f('[Resolve]\n')],
    ['/usr/lib/systemd/system-preset/40-x.preset', f('enable wpa_supplicant@.service wlan0\n')],
    ['/usr/share/doc/x/README', f('use curl to ...\n')],
  ]);
  assert.deepEqual(inferDepends(files), ['curl', 'procps', 'systemd-resolved', 'wpasupplicant']);
});

test('no dependency for essential commands or words inside other words', () => {
  const files = new Map<string, DebEntry>([
    ['/usr/lib/systemd/system/a.service', f('[Service]\nExecStart=/bin/sh -c true\n')],
    ['/usr/libexec/piinit/a', f('#!/bin/sh\necho skill curling\n', 0o755)],
  ]);
  assert.deepEqual(inferDepends(files), []);
});
