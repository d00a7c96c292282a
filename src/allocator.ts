/**
 * Wiring: the OS backend is supplied once (by mod.ts, which knows the runtimes); the core
 * initializes on the first allocation that needs memory.
 */
import { ctx } from "./context.ts";
import { setInitHook, setStatsHook } from "./heap.ts";
import type { Os } from "./os.ts";
import { collectStats } from "./report.ts";

let provider: (() => Os) | null = null;

/** Registers how to obtain the backend; called at first use. */
export function setOsProvider(f: () => Os): void {
  provider = f;
}

export function isInitialized(): boolean {
  return ctx.os !== null;
}

/** Picks the backend now (idempotent). */
export function initialize(): Os {
  if (ctx.os !== null) return ctx.os;
  if (provider === null) throw new Error("tsmalloc: no OS backend provider");
  const o = provider();
  ctx.os = o;
  ctx.tag = (o.threadId() & 0x3fffffff) || 1;
  if (o.kind === "buffer") ctx.options.arenaReserve = Math.min(ctx.options.arenaReserve, 256 * 1024 * 1024);
  return o;
}

setInitHook(() => {
  if (ctx.os === null) initialize();
});
setStatsHook(collectStats);
