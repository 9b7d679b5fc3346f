// Which block devices piinit may write an image to, and why not the others. Pure decisions
// over a snapshot of the system (`lsblk --json --bytes -O`, /proc/self/mountinfo, /proc/swaps),
// so they are tested on recorded outputs of real machines; gathering the snapshot is in
// devices.ts.

/** One node of `lsblk --json --bytes -O` (only the fields we use). Holders (LVM, dm-crypt, md) are children. */
export interface LsblkDevice {
  name: string;
  kname?: string;
  path?: string;
  type: string;
  'maj:min'?: string;
  size: number | string | null;
  rm?: boolean | string | null;
  hotplug?: boolean | string | null;
  ro?: boolean | string | null;
  tran?: string | null;
  subsystems?: string | null;
  model?: string | null;
  vendor?: string | null;
  serial?: string | null;
  fstype?: string | null;
  label?: string | null;
  pttype?: string | null;
  mountpoint?: string | null;
  mountpoints?: Array<string | null> | null;
  children?: LsblkDevice[];
}

export interface Mount {
  majMin: string;
  mountPoint: string;
  source: string;
}

export interface SystemSnapshot {
  lsblk: { blockdevices: LsblkDevice[] };
  mounts: Mount[];
  /** Devices in use as swap (/proc/swaps). */
  swaps: string[];
  /** /sys/block/<mmcblkN>/device/type: "SD" for cards, "MMC" for soldered eMMC. */
  mmcTypes?: Record<string, string>;
}

export interface TargetOptions {
  /** Size in bytes the target must hold. */
  imageSize: number;
  /**
   * Accept loop devices as cards. Loop devices cannot be marked removable, so tests and
   * benchmarks use them with this; every other check still applies.
   */
  allowLoop?: boolean;
}

export interface PartitionInfo {
  path: string;
  size: number;
  fstype: string | null;
  label: string | null;
  mountpoints: string[];
}

export interface DeviceInfo {
  path: string;
  name: string;
  type: string;
  size: number;
  model: string;
  transport: string | null;
  removable: boolean;
  readOnly: boolean;
  partitions: PartitionInfo[];
}

export interface Verdict {
  path: string;
  ok: boolean;
  /** Why the device is refused; empty when ok. */
  reasons: string[];
  device?: DeviceInfo;
}

const flag = (v: boolean | string | null | undefined): boolean => v === true || v === '1' || v === 'true';
const num = (v: number | string | null | undefined): number => (v === null || v === undefined ? 0 : Number(v));

/** Parses /proc/self/mountinfo: "id parent maj:min root mountpoint opts [tags] - fstype source superopts". */
export function parseMountinfo(text: string): Mount[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    const dash = f.indexOf('-');
    if (f.length < 7 || dash < 6) continue;
    mounts.push({ majMin: f[2]!, mountPoint: unescape(f[4]!), source: unescape(f[dash + 2] ?? '') });
  }
  return mounts;
}

/** Parses /proc/swaps: the device (or file) paths in use as swap. */
export function parseSwaps(text: string): string[] {
  return text
    .split('\n')
    .slice(1)
    .map((l) => l.split(/\s+/)[0] ?? '')
    .filter((p) => p.length > 0)
    .map((p) => p.replace(/\\040/g, ' '));
}

const devPath = (d: LsblkDevice) => d.path ?? `/dev/${d.kname ?? d.name}`;

function descendants(d: LsblkDevice): LsblkDevice[] {
  return [d, ...(d.children ?? []).flatMap(descendants)];
}

/** Every node in the lsblk forest with the chain of its ancestors (outermost first). */
function walk(list: LsblkDevice[], parents: LsblkDevice[] = []): Array<{ dev: LsblkDevice; parents: LsblkDevice[] }> {
  return list.flatMap((dev) => [{ dev, parents }, ...walk(dev.children ?? [], [...parents, dev])]);
}

function mountpointsOf(d: LsblkDevice): string[] {
  const mps = [...(d.mountpoints ?? []), d.mountpoint ?? null].filter((m): m is string => typeof m === 'string');
  return [...new Set(mps)];
}

export function describe(d: LsblkDevice): DeviceInfo {
  const model = [d.vendor, d.model].filter((s): s is string => !!s && s.trim() !== '').map((s) => s.trim());
  return {
    path: devPath(d),
    name: d.name,
    type: d.type,
    size: num(d.size),
    model: model.join(' ') || '(unknown model)',
    transport: d.tran ?? null,
    removable: flag(d.rm) || flag(d.hotplug),
    readOnly: flag(d.ro),
    partitions: (d.children ?? [])
      .filter((c) => c.type === 'part')
      .map((c) => ({
        path: devPath(c),
        size: num(c.size),
        fstype: c.fstype ?? null,
        label: c.label ?? null,
        mountpoints: descendants(c).flatMap(mountpointsOf),
      })),
  };
}

function isMmc(d: LsblkDevice): boolean {
  return (d.kname ?? d.name).startsWith('mmcblk') || d.tran === 'mmc' || /(^|:)mmc(:|$)/.test(d.subsystems ?? '');
}

/** Removable media, or a disk on a USB or SD/MMC bus: what card readers look like. */
function looksLikeCard(d: LsblkDevice): boolean {
  return (
    flag(d.rm) || flag(d.hotplug) || d.tran === 'usb' || isMmc(d) || /(^|:)usb(:|$)/.test(d.subsystems ?? '')
  );
}

function human(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${u[i]}`;
}
export { human as humanBytes };

/** Why this device, or something built on it, is in use: mounted file systems, swap, the system. */
function inUseReasons(d: LsblkDevice, snap: SystemSnapshot): string[] {
  const reasons: string[] = [];
  const swaps = new Set(snap.swaps);
  const byMajMin = new Map<string, Mount[]>();
  const bySource = new Map<string, Mount[]>();
  for (const m of snap.mounts) {
    byMajMin.set(m.majMin, [...(byMajMin.get(m.majMin) ?? []), m]);
    bySource.set(m.source, [...(bySource.get(m.source) ?? []), m]);
  }
  const seen = new Set<string>();
  let seenHolder = false;
  for (const n of descendants(d)) {
    const p = devPath(n);
    const k = `/dev/${n.kname ?? n.name}`;
    if (seen.has(p)) continue;
    seen.add(p);
    const via = n === d ? '' : ` (${p}${n.type === 'part' ? '' : `, ${n.type} on this device`})`;
    const mps = new Set(mountpointsOf(n).filter((m) => m !== '[SWAP]'));
    const mounts = [...(byMajMin.get(n['maj:min'] ?? '') ?? []), ...(bySource.get(p) ?? []), ...(bySource.get(k) ?? [])];
    for (const m of mounts) mps.add(m.mountPoint);
    if (mps.has('/')) reasons.push(`holds the running system: / is mounted from it${via}`);
    const others = [...mps].filter((m) => m !== '/').sort();
    const listed = others.length > 4 ? `${others.slice(0, 4).join(', ')} and ${others.length - 4} more` : others.join(', ');
    if (others.length) reasons.push(`has a mounted file system${via} at ${listed}: unmount it first`);
    if (swaps.has(p) || swaps.has(k) || mountpointsOf(n).includes('[SWAP]')) reasons.push(`is in use as swap${via}: swapoff it first`);
    if (n !== d && n.type !== 'part' && !seenHolder) {
      // An active LVM volume, dm-crypt mapping or RAID array holds the device even when nothing is mounted.
      seenHolder = true;
      reasons.push(`is held by ${n.type} ${p}: deactivate it first (vgchange -an, cryptsetup close, mdadm --stop)`);
    }
  }
  return reasons;
}

/** Decides whether `path` (a resolved /dev path) may be written with an image. rdev: the
 *  major:minor the path has now; the snapshot's device of that name must have it (a card
 *  pulled and another disk named alike between the two looks is refused). */
export function assessTarget(path: string, snap: SystemSnapshot, opts: TargetOptions, rdev?: string): Verdict {
  const all = walk(snap.lsblk.blockdevices);
  const hit = all.find(({ dev }) => devPath(dev) === path || `/dev/${dev.kname ?? dev.name}` === path);
  if (!hit) return { path, ok: false, reasons: ['is not a block device known to lsblk'] };
  if (rdev !== undefined && hit.dev['maj:min'] !== undefined && hit.dev['maj:min'] !== rdev) {
    return { path, ok: false, reasons: [`changed while it was being checked (device ${hit.dev['maj:min']}, now ${rdev}): run the burn again`] };
  }
  const { dev, parents } = hit;
  const device = describe(dev);
  const reasons: string[] = [];
  const kname = dev.kname ?? dev.name;
  if (dev.type === 'part') {
    const disk = parents[parents.length - 1];
    reasons.push(`is a partition${disk ? ` of ${devPath(disk)}: give the whole device ${devPath(disk)}` : ''}`);
  } else if (dev.type === 'loop') {
    if (!opts.allowLoop) reasons.push('is a loop device, not a card (tests pass an explicit allow option)');
  } else if (dev.type !== 'disk') {
    reasons.push(`is a ${dev.type} device (${dev.type === 'rom' ? 'an optical drive' : 'a volume built on other disks'}), not a card`);
  } else if (parents.length > 0) {
    reasons.push(`is built on ${devPath(parents[parents.length - 1]!)}, not a card`);
  } else if (/^mmcblk\d+(boot\d+|rpmb)$/.test(kname)) {
    reasons.push('is a hardware boot or RPMB area of an eMMC chip, not a card');
  } else if (isMmc(dev) && snap.mmcTypes?.[kname] === 'MMC') {
    reasons.push('is a soldered-on eMMC chip, not an SD card');
  } else if (isMmc(dev) && snap.mmcTypes?.[kname] !== 'SD') {
    reasons.push(`cannot be told from a soldered-on eMMC chip (/sys/block/${kname}/device/type is ${snap.mmcTypes?.[kname] ?? 'unreadable'}, not SD)`);
  } else if (!looksLikeCard(dev)) {
    reasons.push(
      `is not removable and not on a USB or SD bus (transport ${dev.tran ?? 'unknown'}): it looks like a built-in disk`,
    );
  }
  if (device.size === 0) reasons.push('has no medium (size 0): insert a card');
  else if (device.size < opts.imageSize) {
    reasons.push(`is too small: ${human(device.size)} (${device.size} bytes) for an image of ${human(opts.imageSize)} (${opts.imageSize} bytes)`);
  }
  if (device.readOnly) reasons.push("is read-only (is the card's lock switch on?)");
  const inUse = inUseReasons(dev, snap);
  const system = inUse.filter((r) => r.startsWith('holds the running system'));
  reasons.unshift(...system);
  reasons.push(...inUse.filter((r) => !system.includes(r)));
  return { path, ok: reasons.length === 0, reasons, device };
}

/** Every whole disk (and loop device with allowLoop) with its verdict: the card candidates first. */
export function assessAll(snap: SystemSnapshot, opts: TargetOptions): Verdict[] {
  return snap.lsblk.blockdevices
    .filter((d) => d.type === 'disk' || (d.type === 'loop' && opts.allowLoop))
    .map((d) => assessTarget(devPath(d), snap, opts))
    .sort((a, b) => Number(b.ok) - Number(a.ok) || a.path.localeCompare(b.path));
}

/** A block device beyond its name: its device number, and the kernel's disk sequence number
 *  (Linux 5.15 and later), new for every disk attached and every medium inserted, so a card
 *  swapped for a disk that took over its name (/dev/sdb) has another one. */
export interface DeviceIdentity {
  /** major:minor */
  rdev: string;
  diskseq: string | null;
  /** Size in 512-byte sectors, from sysfs. */
  sectors: string | null;
}

/** How `now` differs from the device that was checked, or null when it is the same. */
export function identityChange(checked: DeviceIdentity, now: DeviceIdentity): string | null {
  if (checked.rdev !== now.rdev) return `its device number was ${checked.rdev} when checked, ${now.rdev} now`;
  if (checked.diskseq !== now.diskseq) {
    return `another disk or card took its name (disk sequence number ${checked.diskseq ?? 'unknown'} when checked, ${now.diskseq ?? 'unknown'} now)`;
  }
  if (checked.sectors !== now.sectors) return `its size changed (${checked.sectors ?? '?'} sectors when checked, ${now.sectors ?? '?'} now)`;
  return null;
}
