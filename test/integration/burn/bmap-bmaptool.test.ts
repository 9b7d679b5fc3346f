// Our block maps and bmaptool's must be interchangeable: bmaptool copies with ours, and we
// read (and agree with) the one bmaptool creates for the same image.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createBlockMap, parseBmapXml, renderBmapXml } from '../../../src/image/bmap.ts';
import { buildTestImage, makeCardFile, sh } from './helpers.ts';

test('bmaptool copy accepts our .bmap, and bmaptool create makes the same map as ours', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'piinit-bmaptool-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const img = buildTestImage(dir, { sizeMiB: 48, dataMiB: 2 });
  const ours = await createBlockMap(img);
  assert.ok(ours.mappedBlocksCount > 0 && ours.mappedBlocksCount < ours.blocksCount / 2, 'the image is sparse');
  const bmapPath = join(dir, 'test.bmap');
  writeFileSync(bmapPath, renderBmapXml(ours));

  const theirsXml = sh('bmaptool', ['create', img]);
  const theirs = parseBmapXml(theirsXml);
  assert.deepEqual(ours, theirs);

  // bmaptool writes the mapped ranges with our map and checks every range's SHA-256.
  const target = join(dir, 'card');
  makeCardFile(target, 48, 0);
  sh('bmaptool', ['copy', '--bmap', bmapPath, img, target]);
  assert.deepEqual(readFileSync(target), readFileSync(img));

  // A wrong range checksum makes bmaptool fail: it does read ours.
  const bad = renderBmapXml({ ...ours, ranges: ours.ranges.map((r, i) => (i === 1 ? { ...r, sha256: '0'.repeat(64) } : r)) });
  writeFileSync(bmapPath, bad);
  assert.throws(() => sh('bmaptool', ['copy', '--bmap', bmapPath, img, target]), /checksum mismatch/);
});
