import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import type { Board, Role } from '../../../src/cluster/boards.ts';
import { planImages, withoutImageMessage } from '../../../src/image/plan.ts';
import { IMAGE_KINDS } from '../../../src/image/targets.ts';

const homelab = (parse(readFileSync('examples/homelab/cluster.yaml', 'utf8')) as { nodes: { name: string; board: Board; role: Role }[] }).nodes;

test('examples/homelab: every image kind gets its images, one per role, each naming its nodes', () => {
  const { images: plan, withoutImage } = planImages(homelab, null, null);
  assert.deepEqual(withoutImage, []);
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

test('Pi 3 and 4 share the arm64 image; --board and --role narrow the plan', () => {
  const nodes = [
    { name: 'a', board: 'pi4' as const, role: 'server' as const },
    { name: 'b', board: 'pi3' as const, role: 'server' as const },
    { name: 'c', board: 'pi4' as const, role: 'client' as const },
    { name: 'd', board: 'amd64' as const, role: 'server' as const },
  ];
  assert.deepEqual(planImages(nodes, null, ['server']).images, [
    { kind: 'amd64', board: 'amd64', role: 'server', nodes: ['d'] },
    { kind: 'rpi-arm64', board: 'pi4', role: 'server', nodes: ['a', 'b'] },
  ]);
  assert.deepEqual(planImages(nodes, ['pi3'], null).images, [{ kind: 'rpi-arm64', board: 'pi3', role: 'server', nodes: ['b'] }]);
  assert.deepEqual(planImages(nodes, ['pi2'], null), { images: [], withoutImage: [] });
});

test('Pi 5 nodes get no image: the plan names them, and the refusal says how to build the rest', () => {
  const nodes = [
    { name: 'a', board: 'pi5' as const, role: 'server' as const },
    { name: 'b', board: 'pi4' as const, role: 'server' as const },
    { name: 'c', board: 'pi5' as const, role: 'client' as const },
    { name: 'd', board: 'amd64' as const, role: 'client' as const },
  ];
  const plan = planImages(nodes, null, null);
  assert.deepEqual(plan.images.map((i) => [`${i.kind}/${i.role}`, i.nodes.join(' ')]), [
    ['amd64/client', 'd'],
    ['rpi-arm64/server', 'b'],
  ]);
  assert.deepEqual(plan.withoutImage.map((w) => `${w.node} ${w.board}`), ['a pi5', 'c pi5']);
  const message = withoutImageMessage(plan, nodes);
  assert.match(message ?? '', /^no image boots a pi5 \(a, c\): Debian bookworm cannot boot a Raspberry Pi 5: .*Linux 6\.17 or later\.\nBuild the other images with --board pi4,amd64\.$/);

  // Narrowed by role: only the pi5 client and the amd64 one are selected.
  assert.match(withoutImageMessage(planImages(nodes, null, ['client']), nodes) ?? '', /\(c\).*\n.*--board amd64\.$/);
  // Nothing else selected.
  assert.match(withoutImageMessage(planImages(nodes, ['pi5'], null), nodes) ?? '', /\(a, c\).*\nNo other node was selected: nothing to build\.$/);
  // No Pi 5 selected: no refusal.
  assert.equal(withoutImageMessage(planImages(nodes, ['pi4', 'amd64'], null), nodes), null);
});
