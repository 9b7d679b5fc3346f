// Boards, Debian architectures and each upstream's naming for them, in one place.

export const BOARDS = ['pi-zero', 'pi1', 'pi2', 'pi3', 'pi4', 'pi5', 'amd64'] as const;
export type Board = (typeof BOARDS)[number];

export const DEBIAN_ARCHES = ['armel', 'armhf', 'arm64', 'amd64'] as const;
export type DebianArch = (typeof DEBIAN_ARCHES)[number];

export const ROLES = ['server', 'client', 'monitor'] as const;
export type Role = (typeof ROLES)[number];

export interface BoardInfo {
  /** Debian architecture the image for this board is built for. */
  arch: DebianArch;
  /** Memory in MiB of the smallest model, to judge which roles the board can carry. */
  minMemoryMiB: number;
  /** Roles this board can run. A Pi Zero/1 (512 MiB, ARMv6, one slow core) cannot hold a raft quorum or Prometheus. */
  roles: readonly Role[];
  description: string;
  /** Set when `piinit image` cannot make an image that boots on this board: why. The board
   *  still runs under `piinit up`, which needs no image. */
  noImage?: string;
}

export const BOARD_INFO: Record<Board, BoardInfo> = {
  'pi-zero': { arch: 'armel', minMemoryMiB: 512, roles: ['client'], description: 'Raspberry Pi Zero / Zero W (ARMv6)' },
  pi1: { arch: 'armel', minMemoryMiB: 256, roles: ['client'], description: 'Raspberry Pi 1 (ARMv6)' },
  pi2: { arch: 'armhf', minMemoryMiB: 1024, roles: ['server', 'client'], description: 'Raspberry Pi 2 (ARMv7)' },
  pi3: { arch: 'arm64', minMemoryMiB: 1024, roles: ['server', 'client', 'monitor'], description: 'Raspberry Pi 3 (ARMv8)' },
  pi4: { arch: 'arm64', minMemoryMiB: 1024, roles: ['server', 'client', 'monitor'], description: 'Raspberry Pi 4 (ARMv8)' },
  pi5: {
    arch: 'arm64',
    minMemoryMiB: 2048,
    roles: ['server', 'client', 'monitor'],
    description: 'Raspberry Pi 5 (ARMv8)',
    // Checked against bookworm's packages: linux-image-arm64 6.1 ships no bcm2712 device tree
    // (raspi-firmware copies the kernel's bcm*.dtb), bookworm-backports' 6.12 has the tree
    // but not the RP1 south bridge, which carries the Ethernet port (mainline from 6.17).
    noImage:
      "Debian bookworm cannot boot a Raspberry Pi 5: its kernel (6.1) has no Pi 5 device tree, and the Pi 5's Ethernet (behind its RP1 chip) needs Linux 6.17 or later",
  },
  amd64: { arch: 'amd64', minMemoryMiB: 1024, roles: ['server', 'client', 'monitor'], description: 'x86-64 machine' },
};

/** How each upstream names a Debian architecture in its release file names; null = no build published. */
export type UpstreamNaming = 'hashicorp' | 'github';

export function upstreamArch(naming: UpstreamNaming, arch: DebianArch): string | null {
  switch (naming) {
    // releases.hashicorp.com: linux_arm (ARMv6 hard-float, runs on armel Pi Zero/1 and armhf), linux_arm64, linux_amd64
    case 'hashicorp':
      return { armel: 'arm', armhf: 'arm', arm64: 'arm64', amd64: 'amd64' }[arch];
    // Prometheus GitHub releases: linux-armv6, linux-armv7, linux-arm64, linux-amd64
    case 'github':
      return { armel: 'armv6', armhf: 'armv7', arm64: 'arm64', amd64: 'amd64' }[arch];
  }
}

export function boardArch(board: Board): DebianArch {
  return BOARD_INFO[board].arch;
}
