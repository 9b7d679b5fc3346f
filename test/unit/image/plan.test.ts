import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import type { Board, Role } from '../../../src/cluster/boards.ts';
import { planImages } from '../../../src/image/plan.ts';
import { IMAGE_KINDS } from '../../../src/image/targets.ts';

const homelab = (parse(readFileSync('examples/homelab/cluster.yaml', 'utf8')) as { nodes: { name: string; board: Board; role: Role }[] }).nodes;

test('examples/homelab: every image kind gets its images, one per role, each naming its nodes', () => {
  const plan = planImages(homelab, null, null);
  assert.deepEqual(
    plan.map((p) => [`${p.kind}/${p.role}`, p.nodes.join(' ')]),
    [
      ['amd64/client', 'nuc'],
      ['rpi-arm64/monitor', 'monitor'],
      ['rpi-arm64/server', 'core1 core2'],
      ['rpi-armel/client', 'sensor1'],
      ['rpi-armhf/server', 'core3'],
    ],
  );
  assert.deepEqual([...new Set(plan.map((p) => p.kind))].sort(), [...IMAGE_KINDS].sort());
});

test('Pi 3, 4 and 5 share the arm64 image; --board and --role narrow the plan', () => {
  const nodes = [
    { name: 'a', board: 'pi5' as const, role: 'server' as const },
    { name: 'b', board: 'pi3' as const, role: 'server' as const },
    { name: 'c', board: 'pi4' as const, role: 'client' as const },
    { name: 'd', board: 'amd64' as const, role: 'server' as const },
  ];
  assert.deepEqual(planImages(nodes, null, ['server']), [
    { kind: 'amd64', board: 'amd64', role: 'server', nodes: ['d'] },
    { kind: 'rpi-arm64', board: 'pi5', role: 'server', nodes: ['a', 'b'] },
  ]);
  assert.deepEqual(planImages(nodes, ['pi3', 'pi4'], null), [
    { kind: 'rpi-arm64', board: 'pi4', role: 'client', nodes: ['c'] },
    { kind: 'rpi-arm64', board: 'pi3', role: 'server', nodes: ['b'] },
  ]);
  assert.deepEqual(planImages(nodes, ['pi2'], null), []);
});
