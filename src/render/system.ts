import type { RenderContext } from "./context.ts"; import type { FileTree } from "./filetree.ts";
export function renderSystem(_ctx: RenderContext): FileTree { return new Map(); }
