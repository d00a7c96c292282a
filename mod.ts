/**
 * tsmalloc: a mimalloc-class allocator for native (off-heap) memory on Node, Deno and Bun.
 *
 * Allocations are JS numbers holding real native addresses (FFI backends) or synthetic
 * ones (buffer backend); `0` is null. Read and write through {@link bytes} /
 * {@link dataView}; pass {@link pointer} to your own FFI calls.
 *
 * @example
 * ```ts
 * import { malloc, free, bytes } from "@tsmalloc/tsmalloc";
 * const p = malloc(64);
 * bytes(p, 64).fill(7);
 * free(p);
 * ```
 *
 * @module
 */
import { selectOs, type BackendWant } from "./ffi/select.ts";
import { initialize, isInitialized, setOsProvider } from "./src/allocator.ts";
import { ctx } from "./src/context.ts";
import { AllocationError, InvalidPointerError } from "./src/errors.ts";
import { free as freeBlock } from "./src/free.ts";
import { bytesAt, defaultHeap, Heap as CoreHeap, MAX_ALIGNMENT, usableSize as usableSizeOf } from "./src/heap.ts";
import { goodSizeOf } from "./src/bins.ts";
import { MAX_ALLOC_SIZE as MAX_SIZE } from "./src/layout.ts";
import { collectStats } from "./src/report.ts";
import type { Stats } from "./src/stats.ts";
import { checkPointer, checkSize } from "./src/validate.ts";

export { AllocationError, InvalidPointerError };
export type { Stats };

/** Largest size a single allocation may request; larger requests return 0. */
export const MAX_ALLOC_SIZE: number = MAX_SIZE;
/** Largest alignment `mallocAligned` honours; larger returns 0. */
export const MAX_ALIGN: number = MAX_ALIGNMENT;

/** Options for {@link configure}; call it before the first allocation. */
export interface ConfigureOptions {
  /** "auto" (default: FFI when permitted, else buffer), "ffi" (fail loudly without FFI) or "buffer". */
  backend?: BackendWant;
  /** Secure level 0–4 (0 = off). Levels above 0 are not implemented yet and are refused. */
  secure?: number;
}

let wantBackend: BackendWant | null = null;

function envBackend(): BackendWant {
  let v: string | undefined;
  try {
    const g = globalThis as { Deno?: { env: { get(k: string): string | undefined } }; process?: { env: Record<string, string | undefined> } };
    v = g.Deno !== undefined ? g.Deno.env.get("TSMALLOC_BACKEND") : g.process?.env.TSMALLOC_BACKEND;
  } catch {
    v = undefined; // Deno without --allow-env
  }
  if (v === undefined || v === "") return "auto";
  if (v !== "auto" && v !== "ffi" && v !== "buffer") throw new RangeError(`tsmalloc: TSMALLOC_BACKEND must be auto, ffi or buffer, got "${v}"`);
  return v;
}

setOsProvider(() => selectOs(wantBackend ?? envBackend()));

/** Chooses the backend and options. Throws if the allocator is already in use. */
export function configure(options: ConfigureOptions): void {
  if (isInitialized()) throw new Error("tsmalloc: configure() must be called before the first allocation");
  if (options.backend !== undefined) {
    if (options.backend !== "auto" && options.backend !== "ffi" && options.backend !== "buffer") {
      throw new RangeError(`tsmalloc: backend must be "auto", "ffi" or "buffer", got "${options.backend}"`);
    }
    wantBackend = options.backend;
  }
  if (options.secure !== undefined) {
    if (!Number.isInteger(options.secure) || options.secure < 0 || options.secure > 4) {
      throw new RangeError(`tsmalloc: secure must be an integer 0..4, got ${options.secure}`);
    }
    if (options.secure !== 0) throw new Error("tsmalloc: secure mode is not implemented yet");
  }
  if (options.backend === "ffi") initialize(); // fail loudly now, not at the first malloc
}

/** Which backend is live and why (initializes the allocator if needed). */
export function backend(): { kind: "node" | "deno" | "bun" | "buffer"; reason: string } {
  const o = initialize();
  return { kind: o.kind, reason: o.reason };
}

const heap: CoreHeap = defaultHeap();

/** Allocates `size` bytes (16-byte aligned); 0 when memory cannot be had. */
export function malloc(size: number): number {
  return heap.malloc(size);
}
/** Allocates `count * size` zeroed bytes; 0 on overflow or when memory cannot be had. */
export function calloc(count: number, size: number): number {
  return heap.calloc(count, size);
}
/** Allocates `size` zeroed bytes. */
export function zalloc(size: number): number {
  return heap.zalloc(size);
}
/** Resizes a block, keeping its contents; 0 on failure (the old block stays valid). */
export function realloc(ptr: number, size: number): number {
  return heap.realloc(ptr, size);
}
/** Frees a block; `free(0)` does nothing. */
export function free(ptr: number): void {
  freeBlock(ptr);
}
/** Allocates `size` bytes at a multiple of `alignment` (a power of two). */
export function mallocAligned(size: number, alignment: number): number {
  return heap.mallocAligned(size, alignment);
}
/** Like {@link mallocAligned}, zeroed. */
export function zallocAligned(size: number, alignment: number): number {
  return heap.zallocAligned(size, alignment);
}
/** Resizes a block keeping it aligned. */
export function reallocAligned(ptr: number, size: number, alignment: number): number {
  return heap.reallocAligned(ptr, size, alignment);
}
/** Bytes usable from `ptr` to the end of its block (>= the size requested). */
export function usableSize(ptr: number): number {
  return usableSizeOf(ptr);
}
/** The usable size `malloc(size)` would give. */
export function goodSize(size: number): number {
  checkSize(size);
  return size > MAX_ALLOC_SIZE ? size : goodSizeOf(size);
}
/** Like {@link malloc}, but throws {@link AllocationError} instead of returning 0. */
export function alloc(size: number): number {
  return heap.alloc(size);
}

function checkRange(ptr: number, len: number): void {
  checkPointer(ptr);
  checkSize(len, "length");
  if (ptr === 0) throw new RangeError("tsmalloc: null pointer");
}
/** A Uint8Array over native memory [ptr, ptr+len). */
export function bytes(ptr: number, len: number): Uint8Array {
  checkRange(ptr, len);
  initialize();
  return bytesAt(ptr, len);
}
/** A DataView over native memory [ptr, ptr+len). */
export function dataView(ptr: number, len: number): DataView {
  const b = bytes(ptr, len);
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
/** The runtime's FFI pointer for an address (bigint on Node/koffi, a pointer object on Deno, a number on Bun). */
export function pointer(ptr: number): unknown {
  checkPointer(ptr);
  return initialize().pointer(ptr);
}

/** A snapshot of the allocator's accounting, in bytes. */
export function stats(): Stats {
  return collectStats();
}

/** Frees empty pages of every heap; `force` also purges freed memory now instead of after the delay. */
export function collect(force = false): void {
  if (!isInitialized()) return;
  for (const h of liveHeaps) if (h.isLive) h.collect(force);
  heap.collect(force);
}

const liveHeaps = new Set<Heap>();

/** A first-class heap: allocate from it, then `destroy()` it to free everything at once. */
export class Heap extends CoreHeap {
  /** Creates a heap owned by the calling worker. */
  static create(_options?: Record<string, never>): Heap {
    const h = new Heap();
    liveHeaps.add(h);
    return h;
  }
  /** Frees every block of this heap at once. */
  override destroy(): void {
    super.destroy();
    liveHeaps.delete(this);
  }
  /** Live blocks move to the default heap; this heap can no longer allocate. */
  override delete(): void {
    super.delete();
    liveHeaps.delete(this);
  }
  /** `using heap = Heap.create()` destroys the heap at scope end. */
  [Symbol.dispose](): void {
    this.destroy();
  }
}

void ctx;
