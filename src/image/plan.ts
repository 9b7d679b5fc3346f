// Which images a cluster needs: one per image kind and role among its nodes (Pi 3/4/5 share
// the arm64 kind), each with the nodes whose cards take it. Pure.
import type { Board, Role } from '../cluster/boards.ts';
import { imageKindOf, type ImageKind } from './targets.ts';

export interface PlannedImage {
  kind: ImageKind;
  /** A board of the kind, for the build (the kinds' boards share one image). */
  board: Board;
  role: Role;
  /** The nodes that boot this image, in cluster file order. */
  nodes: string[];
}

/** boards/roles: only these (null: all). Sorted by kind, then role. */
export function planImages(
  nodes: readonly { name: string; board: Board; role: Role }[],
  boards: readonly Board[] | null,
  roles: readonly Role[] | null,
): PlannedImage[] {
  const plan = new Map<string, PlannedImage>();
  for (const n of nodes) {
    if (boards && !boards.includes(n.board)) continue;
    if (roles && !roles.includes(n.role)) continue;
    const kind = imageKindOf(n.board);
    const key = `${kind}/${n.role}`;
    const p = plan.get(key) ?? { kind, board: n.board, role: n.role, nodes: [] };
    p.nodes.push(n.name);
    plan.set(key, p);
  }
  return [...plan.values()].sort((a, b) => `${a.kind}/${a.role}`.localeCompare(`${b.kind}/${b.role}`));
}
