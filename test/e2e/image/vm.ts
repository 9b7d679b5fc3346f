// A qemu VM for boot tests: boots a disk image (amd64 through OVMF from the image's own EFI
// partition; arm64 and armhf on `-M virt` and armel on `-M raspi0`, a Pi Zero, with the
// kernel, initrd, cmdline.txt and (raspi0) device tree taken from the image's FAT
// partition), records the serial console, and is killed by its own PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export interface VmOptions {
  /** armel boots as a Pi Zero (qemu's raspi0: one ARM1176 core, 512 MiB, the image on its SD
   *  card, whose size must be a power of two). armhf boots on `virt` with Cortex-A15s, not on
   *  qemu's Pi 2 (raspi2b): that machine has four cores, which two host cores without KVM
   *  cannot emulate without the guest's soft lockups and SD timeouts (see docs/images.md). */
  arch: 'amd64' | 'arm64' | 'armhf' | 'armel';
  image: string;
  /** Directory for the OVMF vars copy and extracted kernel/initrd. */
  workDir: string;
  memMiB?: number;
  /** Virtual CPUs (default 2). */
  cpus?: number;
  /** amd64 CPU model (default qemu's qemu64). "max" offers AES-NI and friends, which Go's
   *  crypto uses instead of its much slower generic code (TLS, gossip encryption). */
  cpuModel?: string;
  /** Network: a tap device already attached to a bridge, with this MAC. */
  tap?: { ifname: string; mac: string };
  /** Run qemu inside this network namespace (ip netns exec). */
  netns?: string;
}

export class Vm {
  readonly proc: ChildProcess;
  console = '';
  private waiters: Array<() => void> = [];
  private exited = false;

  constructor(cmd: string[], logFile?: string) {
    this.proc = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const log = logFile ? createWriteStream(logFile) : null;
    const add = (d: Buffer) => {
      log?.write(d);
      this.console += d.toString('latin1').replace(/\r/g, '');
      for (const w of this.waiters) w();
    };
    this.proc.stdout!.on('data', add);
    this.proc.stderr!.on('data', add);
    this.proc.on('exit', () => {
      this.exited = true;
      for (const w of this.waiters) w();
    });
  }

  /** Resolves with the first match of re in the console; rejects after timeoutMs or on exit. */
  waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.console.slice(from).match(re);
        if (m) return done(() => resolve(m));
        if (this.exited) return done(() => reject(new Error(`qemu exited before ${re}:\n${this.tail()}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re}:\n${this.tail()}`))), timeoutMs);
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        f();
      };
      this.waiters.push(check);
      check();
    });
  }

  tail(lines = 60): string {
    return this.console.split('\n').slice(-lines).join('\n');
  }

  /** SIGKILL: a hard power-off. Resolves when the process is gone. */
  async kill(): Promise<void> {
    if (this.exited || this.proc.pid === undefined) return;
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
    process.kill(this.proc.pid, 'SIGKILL');
    await gone;
  }
}

/** The FAT partition's byte offset in an image (first partition, from sfdisk --json). */
export async function bootPartitionOffset(image: string): Promise<number> {
  const { stdout } = await execa('sfdisk', ['--json', image]);
  const pt = JSON.parse(stdout) as { partitiontable: { partitions: Array<{ start: number }>; sectorsize?: number } };
  return pt.partitiontable.partitions[0]!.start * (pt.partitiontable.sectorsize ?? 512);
}

export async function listBootFiles(image: string): Promise<string[]> {
  const off = await bootPartitionOffset(image);
  const { stdout } = await execa('mdir', ['-b', '-i', `${image}@@${off}`, '::/'], { env: { MTOOLS_SKIP_CHECK: '1' } });
  return stdout.split('\n').map((l) => l.trim().replace(/^::\//, '')).filter(Boolean);
}

export async function extractBootFile(image: string, name: string, dest: string): Promise<void> {
  const off = await bootPartitionOffset(image);
  await execa('mcopy', ['-n', '-i', `${image}@@${off}`, `::/${name}`, dest], { env: { MTOOLS_SKIP_CHECK: '1' } });
}

/** qemu's raspi machines leave out the SoC's AXI bridge registers ("asb" of the power
 *  management block): the kernel's bcm2835-power driver reads them and dies of a bus fault,
 *  a panic before init. Renaming the register name in the device tree qemu gets (not the
 *  image's) makes the driver skip its power domains, which no device on this board uses
 *  (they take theirs from the firmware). Same length, so the blob needs no other change. */
export function withoutAsb(dtb: Buffer): Buffer {
  const from = Buffer.from('pm\0asb\0', 'latin1');
  const at = dtb.indexOf(from);
  if (at < 0 || dtb.indexOf(from, at + 1) >= 0) throw new Error('the device tree has no single "pm", "asb" reg-names');
  const out = Buffer.from(dtb);
  out.write('pm\0xsb\0', at, 'latin1');
  return out;
}

export async function startVm(o: VmOptions): Promise<Vm> {
  const mem = String(o.memMiB ?? 1024);
  const smp = String(o.cpus ?? 2);
  const net = o.tap
    ? ['-netdev', `tap,id=n0,ifname=${o.tap.ifname},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=n0,mac=${o.tap.mac}`]
    : ['-nic', 'none'];
  // virtio-rng: without an entropy source early boot waits minutes for the kernel's RNG under
  // emulation (a Pi has a hardware RNG).
  const disk = ['-drive', `file=${o.image},format=raw,if=virtio,cache=unsafe`, '-device', 'virtio-rng-pci'];
  let cmd: string[];
  if (o.arch === 'amd64') {
    const vars = join(o.workDir, `OVMF_VARS-${Math.random().toString(36).slice(2)}.fd`);
    await copyFile('/usr/share/OVMF/OVMF_VARS_4M.fd', vars);
    cmd = [
      'qemu-system-x86_64', '-machine', 'q35', ...(o.cpuModel ? ['-cpu', o.cpuModel] : []), '-m', mem, '-smp', smp,
      '-drive', 'if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
      '-drive', `if=pflash,format=raw,file=${vars}`,
      ...disk, ...net,
      '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
    ];
  } else {
    const files = await listBootFiles(o.image);
    const dtbName = 'bcm2835-rpi-zero.dtb';
    if (o.arch === 'armel' && !files.includes(dtbName)) throw new Error(`no ${dtbName} on the boot partition: ${files.join(' ')}`);
    const kernelName = files.find((f) => /^vmlinuz/.test(f));
    const initrdName = files.find((f) => /^initrd\.img/.test(f));
    if (!kernelName || !initrdName) throw new Error(`no kernel/initrd on the boot partition: ${files.join(' ')}`);
    const kernel = join(o.workDir, 'vmlinuz');
    const initrd = join(o.workDir, 'initrd.img');
    const cmdlinePath = join(o.workDir, 'cmdline.txt');
    await extractBootFile(o.image, kernelName, kernel);
    await extractBootFile(o.image, initrdName, initrd);
    await extractBootFile(o.image, 'cmdline.txt', cmdlinePath);
    const append = (await readFile(cmdlinePath, 'utf8')).trim();
    if (o.arch === 'armel') {
      if (o.tap) throw new Error('a Pi Zero (raspi0) has no network device for a tap');
      const dtb = join(o.workDir, dtbName);
      await extractBootFile(o.image, dtbName, dtb);
      await writeFile(dtb, withoutAsb(await readFile(dtb)));
      // No network and no RNG device to add: a Pi Zero has neither Ethernet nor virtio; the
      // SoC's own RNG is emulated.
      // -icount: the guest's clock counts instructions, not host time. Linux sets the
      // BCM2835 system timer's next event as "counter now + at least 15 µs", and qemu's
      // timer fires only when the counter reaches it again (after 2^32 µs, 71 minutes) if
      // the counter has already passed it. With host time, a host that preempts qemu for
      // 15 µs between the guest's read and write left the guest asleep for 71 minutes (seen
      // in CI); counted in instructions, those few instructions take nanoseconds. sleep=off:
      // idle guest time passes at once rather than in real time.
      cmd = [
        'qemu-system-arm', '-M', 'raspi0', '-icount', 'shift=0,sleep=off', '-kernel', kernel, '-initrd', initrd, '-dtb', dtb, '-append', append,
        '-drive', `file=${o.image},format=raw,if=sd,cache=unsafe`,
        '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
      ];
    } else {
      // highmem=off: a 32-bit kernel without LPAE cannot reach the PCI host's config space
      // above 4 GiB and would find no virtio disk.
      const [qemu, machine, cpu] =
        o.arch === 'armhf' ? ['qemu-system-arm', 'virt,highmem=off', 'cortex-a15'] : ['qemu-system-aarch64', 'virt', 'max,pauth-impdef=on'];
      cmd = [
        qemu, '-M', machine, '-cpu', cpu, '-m', mem, '-smp', smp,
        '-kernel', kernel, '-initrd', initrd, '-append', append,
        ...disk, ...net,
        '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
      ];
    }
  }
  if (o.netns) cmd = ['ip', 'netns', 'exec', o.netns, ...cmd];
  return new Vm(cmd, join(o.workDir, 'console.log'));
}
