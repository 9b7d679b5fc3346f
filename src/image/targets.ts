// What each kind of board needs in its image: the Debian architecture, the kernel and
// firmware packages, how it boots, and the short list of modules its initramfs must carry.
// Pi 3 and 4 share one arm64 image: the firmware picks its device tree at boot. Boards with
// BOARD_INFO[board].noImage (the Pi 5) have no image kind.
import type { Board, DebianArch, Role } from '../cluster/boards.ts';
import { BOARD_INFO } from '../cluster/boards.ts';

/** The PATH of every image (Debian's for root, without /usr/local): what a command the build
 *  runs inside an image is given, so the host's PATH never decides which program runs there. */
export const IMAGE_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

export const IMAGE_KINDS = ['rpi-arm64', 'rpi-armhf', 'rpi-armel', 'amd64'] as const;
export type ImageKind = (typeof IMAGE_KINDS)[number];

export interface ImageTarget {
  kind: ImageKind;
  arch: DebianArch;
  /** raspi: the Pi firmware reads config.txt/cmdline.txt from the FAT partition.
   *  efi: systemd-boot as \EFI\BOOT\BOOTX64.EFI on the FAT partition (an EFI system partition). */
  boot: 'raspi' | 'efi';
  /** Packages only this kind needs (kernel, firmware, boot loader). */
  packages: string[];
  /** Modules the initramfs carries (MODULES=list): enough to find and mount the root. */
  initramfsModules: string[];
  /** Kernel console arguments. The last one is /dev/console (where units' console output
   *  goes): the serial line a boot test or a UART cable reads. */
  console: string[];
  /** Boards this image is for. */
  boards: Board[];
}

// virtio for qemu boot tests, USB mass storage for USB-booted Pis and boxes.
const COMMON_MODULES = ['ext4', 'virtio_pci', 'virtio_blk', 'virtio_scsi', 'sd_mod', 'usb_storage', 'uas'];
const PI_MODULES = ['mmc_block', 'sdhci_iproc', 'bcm2835', 'dwc2', 'xhci_pci', 'pcie_brcmstb', 'reset_raspberrypi', 'virtio_mmio'];

export const IMAGE_TARGETS: Record<ImageKind, ImageTarget> = {
  'rpi-arm64': {
    kind: 'rpi-arm64',
    arch: 'arm64',
    boot: 'raspi',
    packages: ['linux-image-arm64', 'raspi-firmware'],
    initramfsModules: [...COMMON_MODULES, ...PI_MODULES],
    console: ['console=tty1', 'console=ttyAMA0,115200'],
    boards: ['pi3', 'pi4'],
  },
  'rpi-armhf': {
    kind: 'rpi-armhf',
    arch: 'armhf',
    boot: 'raspi',
    packages: ['linux-image-armmp', 'raspi-firmware'],
    initramfsModules: [...COMMON_MODULES, ...PI_MODULES],
    console: ['console=tty1', 'console=ttyAMA0,115200'],
    boards: ['pi2'],
  },
  'rpi-armel': {
    kind: 'rpi-armel',
    arch: 'armel',
    boot: 'raspi',
    packages: ['linux-image-rpi', 'raspi-firmware'],
    initramfsModules: [...COMMON_MODULES, 'mmc_block', 'bcm2835', 'dwc2'],
    console: ['console=tty1', 'console=ttyAMA0,115200'],
    boards: ['pi-zero', 'pi1'],
  },
  amd64: {
    kind: 'amd64',
    arch: 'amd64',
    boot: 'efi',
    packages: ['linux-image-amd64', 'systemd-boot-efi'],
    initramfsModules: [...COMMON_MODULES, 'ahci', 'ata_piix', 'nvme', 'xhci_pci', 'ehci_pci'],
    console: ['console=tty0', 'console=ttyS0,115200'],
    boards: ['amd64'],
  },
};

export function imageKindOf(board: Board): ImageKind {
  const kind = IMAGE_KINDS.find((k) => IMAGE_TARGETS[k].boards.includes(board));
  if (!kind) throw new Error(`no image kind for board ${board}`);
  // boards.ts is the source of truth for the arch; keep the two tables in step.
  if (IMAGE_TARGETS[kind].arch !== BOARD_INFO[board].arch) throw new Error(`arch mismatch for ${board}`);
  return kind;
}

/** The packages every image carries, whatever the board: init, device manager, network
 *  (systemd-networkd + resolved, DHCP hostname via hostnamed → dbus), the file system tools
 *  the first boot needs to grow the data partition (sfdisk, resize2fs), and TLS roots. */
export const BASE_PACKAGES = [
  'systemd-sysv',
  'udev',
  'dbus',
  'kmod',
  'initramfs-tools',
  'e2fsprogs',
  'fdisk',
  'iproute2',
  'systemd-resolved',
  'systemd-timesyncd',
  'ca-certificates',
  'netbase',
];

/** The image file name stem: one image per kind and role. */
export function imageName(clusterName: string, kind: ImageKind, role: Role): string {
  return `${clusterName}-${kind}-${role}`;
}
