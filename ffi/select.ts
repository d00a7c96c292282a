/**
 * Picks the `Os` backend for the running runtime, synchronously: Deno (checked first,
 * since Deno also has `process`), then Bun (`process.versions.bun`), then Node.
 * `"auto"` falls back to the buffer backend when FFI is unavailable and says why;
 * `"ffi"` throws instead.
 *
 * @module
 */
import type { Os } from "../src/os.ts";
import { createBufferOs } from "./buffer.ts";
import { createBunOs } from "./bun.ts";
import { createDenoOs } from "./deno.ts";
import { createNodeOs } from "./node.ts";

/** Which backend the caller wants. */
export type BackendWant = "auto" | "ffi" | "buffer";

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

const FACTORIES: Record<Exclude<Runtime, "unknown">, { name: string; create: (reason: string) => Os }> = {
  deno: { name: "Deno", create: createDenoOs },
  bun: { name: "Bun", create: createBunOs },
  node: { name: "Node", create: createNodeOs },
};

/** Create the backend for `want`. Never throws for "auto" or "buffer"; throws for "ffi" without FFI. */
export function selectOs(want: BackendWant): Os {
  if (want === "buffer") return createBufferOs("buffer: requested");
  if (want !== "auto" && want !== "ffi") {
    throw new RangeError(`unknown backend "${want}" (expected "auto", "ffi" or "buffer")`);
  }
  const runtime = detectRuntime();
  if (runtime === "unknown") {
    if (want === "ffi") throw new Error("ffi backend requested, but the runtime is not Node, Deno or Bun");
    return createBufferOs("auto: unknown runtime, no FFI");
  }
  const { name, create } = FACTORIES[runtime];
  try {
    return create(`${want}: ${name} FFI (${runtime === "node" ? "koffi" : runtime === "deno" ? "Deno.dlopen" : "bun:ffi"})`);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    if (want === "ffi") throw new Error(`ffi backend requested, but FFI is unavailable on ${name}: ${why}`, { cause: e });
    return createBufferOs(`auto: ${/^Deno without/.test(why) ? why : `${name} FFI unavailable: ${why}`}; using the buffer backend`);
  }
}
