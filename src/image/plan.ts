// Which images a cluster needs: one per image kind and role among its nodes (Pi 3/4 share
// the arm64 kind), each with the nodes whose cards take it, and the nodes no image can boot.
// Pure.
import { BOARD_INFO, type Board, type Role } from '../cluster/boards.ts';
import { imageKindOf, type ImageKind } from './targets.ts';

export interface PlannedImage {
  kind: ImageKind;
  /** A board of the kind, for the build (the kinds' boards share one image). */
  board: Board;
  role: Role;
  /** The nodes that boot this image, in cluster file order. */
  nodes: string[];
}

export interface ImagePlan {
  images: PlannedImage[];
  /** Selected nodes on a board no image boots (BOARD_INFO[board].noImage), in file order. */
  withoutImage: { node: string; board: Board; reason: string }[];
}

/** boards/roles: only these (null: all). Images sorted by kind, then role. */
export function planImages(
  nodes: readonly { name: string; board: Board; role: Role }[],
  boards: readonly Board[] | null,
  roles: readonly Role[] | null,
): ImagePlan {
  const plan = new Map<string, PlannedImage>();
  const withoutImage: ImagePlan['withoutImage'] = [];
  for (const n of nodes) {
    if (boards && !boards.includes(n.board)) continue;
    if (roles && !roles.includes(n.role)) continue;
    const reason = BOARD_INFO[n.board].noImage;
    if (reason) {
      withoutImage.push({ node: n.name, board: n.board, reason });
      continue;
    }
    const kind = imageKindOf(n.board);
    const key = `${kind}/${n.role}`;
    const p = plan.get(key) ?? { kind, board: n.board, role: n.role, nodes: [] };
    p.nodes.push(n.name);
    plan.set(key, p);
  }
  const images = [...plan.values()].sort((a, b) => `${a.kind}/${a.role}`.localeCompare(`${b.kind}/${b.role}`));
  return { images, withoutImage };
}

/** Why `piinit image` refuses a plan with nodes no image boots, and how to build the rest;
 *  null when there are none. `nodes`: the cluster's, to name the boards that have images. */
export function withoutImageMessage(plan: ImagePlan, nodes: readonly { name: string; board: Board }[]): string | null {
  if (plan.withoutImage.length === 0) return null;
  const byBoard = new Map<Board, { names: string[]; reason: string }>();
  for (const w of plan.withoutImage) {
    const e = byBoard.get(w.board) ?? { names: [], reason: w.reason };
    e.names.push(w.node);
    byBoard.set(w.board, e);
  }
  const lines = [...byBoard].map(([board, e]) => `no image boots a ${board} (${e.names.join(', ')}): ${e.reason}.`);
  const planned = new Set(plan.images.flatMap((i) => i.nodes));
  const others = [...new Set(nodes.filter((n) => planned.has(n.name)).map((n) => n.board))];
  lines.push(others.length ? `Build the other images with --board ${others.join(',')}.` : 'No other node was selected: nothing to build.');
  return lines.join('\n');
}
