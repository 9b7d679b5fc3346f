import type { RenderContext } from "./context.ts"; import type { FileTree } from "./filetree.ts"; import type { ServiceCommand } from "./unit.ts";
export function renderNomad(_ctx: RenderContext): FileTree { return new Map(); }
export function nomadSystemFiles(_ctx: RenderContext): FileTree { return new Map(); }
export function nomadCommand(ctx: RenderContext): ServiceCommand { return { program: "nomad", args: ["agent", `-config=${ctx.p("/etc/nomad.d")}`], user: ctx.role === "server" ? "nomad" : "root" }; }
