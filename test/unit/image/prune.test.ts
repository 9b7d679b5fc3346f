// Which bases the cache sweep removes: stale keys of the build's own suite and kind, never
// the current key, the most recently used few, a mounted tree or anything else in the dir.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KEEP_RECENT, overlayLowerDirs, prunedMessage, STALE_DAYS, staleBases } from '../../../src/image/prune.ts';

const DAY = 24 * 3600 * 1000;
const NOW = Date.UTC(2026, 10, 28);
const key = (i: number) => i.toString(16).padStart(16, '0');
const base = (group: string, i: number, ageDays: number) => [
  { name: `${group}-${key(i)}.tar`, mtimeMs: NOW - ageDays * DAY },
  // The unpacked tree's mtime is the image epoch's, not its last use.
  { name: `${group}-${key(i)}.root`, mtimeMs: Date.UTC(2024, 0, 1) },
];

test('staleBases: the old bases of the group go, beyond the most recently used', () => {
  assert.equal(KEEP_RECENT, 3);
  const entries = [
    ...[1, 2, 3].flatMap((i) => base('bookworm-rpi-arm64', i, STALE_DAYS + 10 * i)), // the 3 most recent, all stale
    ...base('bookworm-rpi-arm64', 4, STALE_DAYS + 40),
    ...base('bookworm-rpi-arm64', 5, STALE_DAYS + 50),
  ];
  assert.deepEqual(staleBases(entries, 'bookworm-rpi-arm64', key(1), NOW, new Set()), [
    `bookworm-rpi-arm64-${key(4)}.root`,
    `bookworm-rpi-arm64-${key(4)}.tar`,
    `bookworm-rpi-arm64-${key(5)}.root`,
    `bookworm-rpi-arm64-${key(5)}.tar`,
  ]);
});

test('staleBases: recent use, the current key and a mounted tree keep a base', () => {
  const entries = [
    ...base('bookworm-amd64', 1, 0),
    ...base('bookworm-amd64', 2, 1),
    ...base('bookworm-amd64', 3, 2),
    ...base('bookworm-amd64', 4, STALE_DAYS - 1), // not stale yet, though 4th
    ...base('bookworm-amd64', 5, 400), // the current key, whatever its age
    ...base('bookworm-amd64', 6, 400), // mounted: a running build's lower layer
    ...base('bookworm-amd64', 7, 400),
  ];
  assert.deepEqual(staleBases(entries, 'bookworm-amd64', key(5), NOW, new Set([`bookworm-amd64-${key(6)}.root`])), [
    `bookworm-amd64-${key(7)}.root`,
    `bookworm-amd64-${key(7)}.tar`,
  ]);
});

test('staleBases: other kinds, work entries and a tree without its tarball', () => {
  const entries = [
    ...[1, 2, 3].flatMap((i) => base('bookworm-amd64', i, 0)),
    { name: `bookworm-amd64-${key(9)}.root`, mtimeMs: NOW }, // tarball gone: never used
    ...base('bookworm-rpi-armel', 8, 900), // another kind: not this build's to judge
    { name: `.build-123-abc`, mtimeMs: 0 },
    { name: `bookworm-amd64-${key(1)}.root.tmp-77`, mtimeMs: 0 },
    { name: 'notes.txt', mtimeMs: 0 },
  ];
  assert.deepEqual(staleBases(entries, 'bookworm-amd64', key(1), NOW, new Set()), [`bookworm-amd64-${key(9)}.root`]);
  // "bookworm-amd64" is not a prefix match of "bookworm-amd64x" or of another suite.
  assert.deepEqual(staleBases(base('trixie-amd64', 1, 900).concat(base('bookworm-amd64x', 2, 900)), 'bookworm-amd64', key(3), NOW, new Set()), []);
});

test('overlayLowerDirs reads the lower layers of overlay mounts from mountinfo', () => {
  const mountinfo = [
    '25 1 0:22 / / rw,relatime shared:1 - ext4 /dev/vda rw',
    '310 25 0:51 / /c/work/x-1/root rw,relatime shared:180 - overlay piinit-build rw,lowerdir=/c/base/bookworm-amd64-0000000000000001.root,upperdir=/c/work/x-1/upper,workdir=/c/work/x-1/overlay-work',
    '311 25 0:52 / /merged rw,relatime - overlay overlay rw,lowerdir=/a:/b\\040c,upperdir=/u,workdir=/w',
    '312 25 0:53 / /t rw - tmpfs tmpfs rw,lowerdir=/not-an-overlay',
    '',
  ].join('\n');
  assert.deepEqual(overlayLowerDirs(mountinfo), ['/c/base/bookworm-amd64-0000000000000001.root', '/a', '/b c']);
});

test('prunedMessage names the bases removed and why', () => {
  assert.equal(
    prunedMessage([`bookworm-amd64-${key(7)}.root`, `bookworm-amd64-${key(7)}.tar`]),
    `  removed from the base cache (unused for 14 days): bookworm-amd64-${key(7)}.root, bookworm-amd64-${key(7)}.tar`,
  );
});
