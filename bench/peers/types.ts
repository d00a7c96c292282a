// What every benchmark row ("peer") provides. The loops in bench/workloads.ts call only
// these functions, so every peer runs the very same loop text (a private copy each).

// deno-lint-ignore no-explicit-any
export type Handle = any;

export type Capability = "malloc" | "calloc" | "realloc" | "aligned";

/** One live allocator instance, made fresh for every workload. */
export interface Ops {
  /** The null handle (0, 0n or null). */
  nil: Handle;
  /** Size argument in the representation this peer's calls want (number, or BigInt on Deno FFI). */
  size(n: number): unknown;
  malloc(n: unknown): Handle;
  free(h: Handle): void;
  calloc?(count: unknown, n: unknown): Handle;
  realloc?(h: Handle, n: unknown): Handle;
  /** Aligned allocation, arguments (size, alignment) whatever the underlying order. */
  aligned?(n: unknown, alignment: unknown): Handle;
  /** Teardown: true when `release()` drops every block at once (no per-block free). */
  bulkRelease?: boolean;
  release?(): void;
  /** With bulkRelease: the O(1) "free every block" call (memory workloads). */
  freeAll?(): void;
  /** Memory workloads: write `n` bytes of the block (so the pages are really resident). */
  touch?(h: Handle, n: number): void;
  /** The peer's own "give memory back now" call; returns what was called. */
  collect?(): string;
  /** Extra numbers for the memory report (e.g. tsmalloc stats()). */
  extra?(): Record<string, unknown>;
}

export interface InstanceHint {
  workload: string; // workload kind: pairs, mixed, realloc, ...
  liveBlocks: number; // most blocks live at once
  liveBytes: number; // most bytes live at once (upper estimate)
}

export interface Peer {
  /** Stable key used in JSON and RESULTS.md. */
  id: string;
  /** Display name. */
  label: string;
  /** Set when this peer cannot run here: the reason is reported, never silently dropped. */
  unavailable?: string;
  /** Version or provenance string. */
  version?: string;
  /** Capabilities or workload kinds this peer cannot run, with the reason (e.g. no aligned API); a kind listed here is n/a even with the capability. */
  na?: Record<string, string>;
  caps: Capability[];
  instance(hint: InstanceHint): Ops;
  /** Free-form facts (backend chosen, library path, ...). */
  info?: Record<string, unknown>;
}

export function unavailablePeer(id: string, label: string, reason: string): Peer {
  return {
    id,
    label,
    unavailable: reason,
    caps: [],
    instance() {
      throw new Error(`${label} unavailable: ${reason}`);
    },
  };
}

export function errorMessage(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split("\n")[0].slice(0, 200);
}
