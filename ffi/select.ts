/**
 * Picks the `Os` backend for the running runtime, synchronously: Deno (checked first,
 * since Deno also has `process`), then Bun (`process.versions.bun`), then Node. On Node
 * the built-in `node:ffi` (Node >= 26) comes first and the koffi addon second, unless
 * `TSMALLOC_NODE_FFI` (or `configure({ nodeFfi })`) names one.
 * `"auto"` falls back to the buffer backend when FFI is unavailable and says why and how
 * to fix it; `"ffi"` throws instead.
 *
 * @module
 */
import type { Os } from "../src/os.ts";
import { createBufferOs } from "./buffer.ts";
import { createBunOs } from "./bun.ts";
import { createDenoOs } from "./deno.ts";
import { readEnv } from "./env.ts";
import { createNodeFfiOs } from "./node-ffi.ts";
import { createNodeOs } from "./node.ts";

/** Which backend the caller wants. */
export type BackendWant = "auto" | "ffi" | "buffer";

/** Which FFI the Node backend may use: "auto" (node:ffi, else koffi), or exactly one. */
export type NodeFfiWant = "auto" | "node:ffi" | "koffi";

/** The JavaScript runtime we are on. */
export type Runtime = "deno" | "bun" | "node" | "unknown";

/** Detect the runtime (Deno first: it also defines `process`; Bun also sets `versions.node`). */
export function detectRuntime(): Runtime {
  const g = globalThis as {
    Deno?: { version?: { deno?: string } };
    process?: { versions?: Record<string, string | undefined> };
  };
  if (typeof g.Deno?.version?.deno === "string") return "deno";
  if (g.process?.versions?.bun) return "bun";
  if (g.process?.versions?.node) return "node";
  return "unknown";
}

/** Checks a NodeFfiWant from configure() or TSMALLOC_NODE_FFI; throws RangeError naming `from`. */
export function checkNodeFfi(v: unknown, from: string): NodeFfiWant {
  if (v === "auto" || v === "node:ffi" || v === "koffi") return v;
  throw new RangeError(`tsmalloc: ${from} must be "auto", "node:ffi" or "koffi", got ${JSON.stringify(v)}`);
}

/** TSMALLOC_NODE_FFI, "auto" when unset or empty. */
export function envNodeFfi(): NodeFfiWant {
  const v = readEnv("TSMALLOC_NODE_FFI");
  return v === undefined || v === "" ? "auto" : checkNodeFfi(v, "TSMALLOC_NODE_FFI");
}

/** Node: each permitted shim in turn; the error lists why each one failed. */
function createNode(want: BackendWant, nodeFfi: NodeFfiWant): Os {
  const shims: [string, (reason: string) => Os][] = [];
  if (nodeFfi !== "koffi") shims.push(["node:ffi", createNodeFfiOs]);
  if (nodeFfi !== "node:ffi") shims.push(["koffi", createNodeOs]);
  const failed: string[] = [];
  for (const [name, create] of shims) {
    try {
      const forced = nodeFfi === "auto" ? "" : ", TSMALLOC_NODE_FFI/nodeFfi";
      return create(`${want}: Node FFI (${name}${forced})${failed.length > 0 ? `; ${failed.join("; ")}` : ""}`);
    } catch (e) {
      failed.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  throw new Error(failed.join("; "));
}

/** How to get FFI on this runtime, for the fallback reason and warning. */
function fixFor(runtime: Exclude<Runtime, "unknown">, nodeFfi: NodeFfiWant): string {
  if (runtime === "deno") return "run deno with --allow-ffi (unscoped)";
  if (runtime === "bun") return "bun:ffi should always be present; please report this";
  if ((globalThis as { process?: { permission?: unknown } }).process?.permission !== undefined) {
    return "the permission model is on: allow FFI with --allow-ffi (node:ffi, Node >= 26) or --allow-addons (koffi)";
  }
  if (nodeFfi === "node:ffi") return "use Node >= 26 without --no-experimental-ffi, or let tsmalloc choose (unset TSMALLOC_NODE_FFI / configure({ nodeFfi }))";
  if (nodeFfi === "koffi") return "install koffi (npm install koffi), or let tsmalloc choose (unset TSMALLOC_NODE_FFI / configure({ nodeFfi }))";
  const major = Number((globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node?.split(".")[0]);
  if (major >= 26) return "run node without --no-experimental-ffi (built-in node:ffi) or install koffi (npm install koffi)";
  return "use Node >= 26 (built-in node:ffi) or install koffi (npm install koffi)";
}

/**
 * Create the backend for `want`. Never throws for "auto" or "buffer"; throws for "ffi"
 * without FFI. `nodeFfi` restricts which FFI the Node backend may use (default: the
 * TSMALLOC_NODE_FFI environment variable, else "auto").
 */
export function selectOs(want: BackendWant, nodeFfi: NodeFfiWant = envNodeFfi()): Os {
  if (want === "buffer") return createBufferOs("buffer: requested");
  if (want !== "auto" && want !== "ffi") {
    throw new RangeError(`unknown backend "${want}" (expected "auto", "ffi" or "buffer")`);
  }
  checkNodeFfi(nodeFfi, "nodeFfi");
  const runtime = detectRuntime();
  if (runtime === "unknown") {
    if (want === "ffi") throw new Error("ffi backend requested, but the runtime is not Node, Deno or Bun");
    return createBufferOs("auto: unknown runtime, no FFI");
  }
  try {
    if (runtime === "deno") return createDenoOs(`${want}: Deno FFI (Deno.dlopen)`);
    if (runtime === "bun") return createBunOs(`${want}: Bun FFI (bun:ffi)`);
    return createNode(want, nodeFfi);
  } catch (e) {
    const name = runtime === "deno" ? "Deno" : runtime === "bun" ? "Bun" : "Node";
    const why = e instanceof Error ? e.message : String(e);
    const fix = fixFor(runtime, nodeFfi);
    if (want === "ffi") throw new Error(`ffi backend requested, but FFI is unavailable on ${name}: ${why} (fix: ${fix})`, { cause: e });
    const cause = /^Deno without/.test(why) ? why : `${name} FFI unavailable: ${why}`;
    return createBufferOs(`auto: ${cause}; using the buffer backend (fix: ${fix})`);
  }
}

/** True when `o` is the buffer backend because "auto" found no FFI on Node, Deno or Bun. */
export function isFallback(o: Os): boolean {
  return o.kind === "buffer" && o.reason.startsWith("auto:") && !o.reason.startsWith("auto: unknown runtime");
}

/** The one-line stderr warning for a fallback (see isFallback): cause, fix, how to silence it. */
export function fallbackWarning(o: Os): string {
  const m = /^auto: (.*); using the buffer backend \(fix: (.*)\)$/.exec(o.reason);
  const [cause, fix] = m === null ? [o.reason, "see backend().reason"] : [m[1], m[2]];
  return `tsmalloc: warning: using the buffer backend (JS memory, not native memory): ${cause}. Fix: ${fix}. ` +
    `Silence: TSMALLOC_WARN_FALLBACK=0 or configure({ warnFallback: false }).`;
}
