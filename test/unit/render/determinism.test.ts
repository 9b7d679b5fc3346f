import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ROLES } from '../../../src/cluster/boards.ts';
import { renderNode, renderRole } from '../../../src/render/index.ts';
import { stableJson } from '../../../src/render/json.ts';
import { fixtureCluster } from '../../helpers/cluster-fixture.ts';

const serial = (t: Map<string, unknown>) => JSON.stringify([...t]);

test('two renders of the same cluster are identical, paths sorted, JSON keys sorted', () => {
  for (const role of ROLES) {
    const a = renderRole(fixtureCluster(), role);
    const b = renderRole(fixtureCluster(), role);
    assert.equal(serial(a), serial(b));
    const keys = [...a.keys()];
    assert.deepEqual(keys, [...keys].sort());
  }
  const c = fixtureCluster();
  const root = '/tmp/piinit-state/nodes/monitor';
  assert.equal(serial(renderNode(c, c.nodes[3]!, { target: 'local', root })), serial(renderNode(fixtureCluster(), c.nodes[3]!, { target: 'local', root })));
  assert.equal(stableJson({ b: 1, a: { d: [2, 1], c: null } }), '{\n  "a": {\n    "c": null,\n    "d": [\n      2,\n      1\n    ]\n  },\n  "b": 1\n}\n');
});
