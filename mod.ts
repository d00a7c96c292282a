/**
 * tsmalloc: a mimalloc-class allocator for native (off-heap) memory on Node, Deno and Bun.
 *
 * The design is mimalloc's (Microsoft's allocator: size classes, pages, segments and arenas,
 * free lists kept inside the memory they manage, several free lists per page); names follow
 * mimalloc's API (`mi_malloc` is {@link malloc}, `mi_heap_new` is `Heap.create`, ...). The
 * memory comes from the OS through each runtime's
 * FFI (`mmap`/`madvise`/`mprotect` in libc): `node:ffi` or koffi on Node, `Deno.dlopen`,
 * `bun:ffi`. Where FFI is not allowed the same allocator runs on `ArrayBuffer` memory (the
 * buffer backend; {@link backend} says which one is live and why).
 *
 * Allocations are JS numbers holding real native addresses (FFI backends) or synthetic
 * ones (buffer backend); `0` is null. Sizes are in bytes. Read and write through
 * {@link bytes} / {@link dataView}; pass {@link pointer} to your own FFI calls. Memory
 * is freed when you call {@link free}, never by the garbage collector.
 *
 * Permissions: Deno needs `--allow-ffi` for native memory (without it tsmalloc falls
 * back to the buffer backend), and `--allow-env` to read the `TSMALLOC_*` variables.
 *
 * @example Allocate, write, free
 * ```ts
 * import { bytes, free, malloc } from "@tsmalloc/tsmalloc";
 *
 * const p = malloc(64);      // 64 bytes, 16-byte aligned; 0 if memory cannot be had
 * bytes(p, 64).fill(7);      // a Uint8Array over the native block
 * free(p);
 * ```
 *
 * @module
 */
import { threadId as jsThreadId } from "node:worker_threads";
import { readEnv } from "./ffi/env.ts";
import {
  checkNodeFfi, envNodeFfi, fallbackWarning, isFallback, type NodeFfiWant, selectOs, type BackendWant,
} from "./ffi/select.ts";
import {
  getOptionValue, initialize, isInitialized, isOptionChosen, setEnvReader, setOptionValue, setOsProvider,
} from "./src/allocator.ts";
import { arenaExists, reserveArena } from "./src/arena.ts";
import { ctx } from "./src/context.ts";
import { formatStats as formatStatsTable } from "./src/format.ts";
import { type OptionName as CoreOptionName, type Options, parseSize } from "./src/options.ts";
import { AllocationError, DoubleFreeError, InvalidPointerError } from "./src/errors.ts";
import { type ValidateReport, validateAll } from "./src/check.ts";
import { freeFn } from "./src/secure-free.ts";
import { defaultHeap, DETACHED, Heap as CoreHeap, MAX_ALIGNMENT, usableSize as usableSizeOf } from "./src/heap.ts";
import { bytesAt, checkView } from "./src/views.ts";
import { C_FUNCTIONS, CAllocatorCore, type CAllocatorStats, type CFunctionName } from "./src/c-allocator.ts";
import type { Os } from "./src/os.ts";
import { goodSizeOf } from "./src/bins.ts";
import { hugeFits } from "./src/huge.ts";
import { MAX_ALLOC_SIZE as MAX_SIZE } from "./src/layout.ts";
import { collectStats } from "./src/report.ts";
import type { Stats } from "./src/stats.ts";
import { checkPointer, checkSize } from "./src/validate.ts";
import { formatLeaks, heapTag, type LeakGroup, leakGroups, setHeapLister, setHeapTag } from "./src/track.ts";
import {
  Arena, type ArenaBucket, type ArenaBucketConfig, type ArenaLeak, ArenaPool, type ChunkHeap, type ArenaPoolConfig, type ArenaPoolStats,
} from "./src/arena-pool.ts";
import { Block, type BlockOptions, type OwnedBlockStats } from "./src/block.ts";
import {
  abandonedSegments, checkHandle, detachWorker, expireTombstones, finishDying, joinHandle, lockStats, makeHandle, reclaimAll, releaseDeadWorker,
  testLocks, type WorkerHandle,
} from "./src/shared.ts";

export { AllocationError, DoubleFreeError, InvalidPointerError };
export type { ValidateReport };
export type { Stats };
export type { ArenaStats, OsCallCounts, TagStats } from "./src/stats.ts";
export { Arena, ArenaPool, Block };
export type { ArenaBucket, ArenaBucketConfig, ArenaLeak, ChunkHeap, ArenaPoolConfig, ArenaPoolStats, BlockOptions, LeakGroup, OwnedBlockStats };
export type { BackendWant };

/**
 * Largest size in bytes a single allocation may request (2^46); larger requests make
 * {@link malloc} return 0 and {@link alloc} throw {@link AllocationError}.
 *
 * @example
 * ```ts
 * import { MAX_ALLOC_SIZE, malloc } from "@tsmalloc/tsmalloc";
 *
 * console.assert(malloc(MAX_ALLOC_SIZE + 1) === 0);
 * ```
 */
export const MAX_ALLOC_SIZE: number = MAX_SIZE;
/**
 * Largest alignment in bytes {@link mallocAligned} honours (1 GiB); a larger one returns 0.
 *
 * @example
 * ```ts
 * import { MAX_ALIGN, mallocAligned } from "@tsmalloc/tsmalloc";
 *
 * console.assert(mallocAligned(64, MAX_ALIGN * 2) === 0);
 * ```
 */
export const MAX_ALIGN: number = MAX_ALIGNMENT;

/**
 * Options for {@link configure}; call it before the first allocation.
 *
 * @example
 * ```ts
 * import { type ConfigureOptions, configure } from "@tsmalloc/tsmalloc";
 *
 * const options: ConfigureOptions = { backend: "auto", secure: 2, debugFill: false };
 * configure(options);
 * ```
 */
export interface ConfigureOptions {
  /**
   * "auto" (default: FFI when permitted, else buffer), "ffi" (fail loudly without FFI) or
   * "buffer" (`ArrayBuffer` memory, no FFI). Also the TSMALLOC_BACKEND environment variable.
   */
  backend?: BackendWant;
  /**
   * Secure level 0–4 (also TSMALLOC_SECURE). At every level free lists are kept out of band
   * (side tables in the arena's metadata: writes into freed blocks never reach a list;
   * DoubleFreeError; views of free blocks refused). 1 adds guard pages around segment
   * metadata and after each segment's last page, 2 freed huge mappings kept reserved and
   * PROT_NONE, 3 random free-list order, 4 a guard page after every page. Limits in
   * doc/SECURE.md.
   */
  secure?: number;
  /** Fill fresh blocks with 0xD0 and freed blocks with 0xDF (also TSMALLOC_DEBUG_FILL). */
  debugFill?: boolean;
  /**
   * Node only: which FFI reaches libc. "auto" (default; also TSMALLOC_NODE_FFI) uses the
   * built-in `node:ffi` where it exists (Node >= 26) and the koffi addon otherwise;
   * "node:ffi" or "koffi" use only that one (with `backend: "ffi"`, throws if it cannot
   * load). Ignored on Deno and Bun. A value outside these three throws RangeError.
   */
  nodeFfi?: "auto" | "node:ffi" | "koffi";
  /**
   * When `backend` is "auto" and no FFI is usable, print one line to stderr naming the
   * cause and the fix (default true). false silences it; so does the environment variable
   * TSMALLOC_WARN_FALLBACK=0. A non-boolean throws TypeError.
   */
  warnFallback?: boolean;
}

/** configure()'s option names (ConfigureOptions). */
const CONFIGURE_KEYS: readonly string[] = ["backend", "secure", "debugFill", "nodeFfi", "warnFallback"];

let wantBackend: BackendWant | null = null;
let wantNodeFfi: NodeFfiWant | null = null;
let warnFallback: boolean | null = null;

/** TSMALLOC_WARN_FALLBACK: 0/false silence the fallback warning, 1/true (or unset) keep it. */
function envWarnFallback(): boolean {
  const v = readEnv("TSMALLOC_WARN_FALLBACK");
  if (v === undefined || v === "" || v === "1" || v === "true") return true;
  if (v === "0" || v === "false") return false;
  throw new RangeError(`tsmalloc: TSMALLOC_WARN_FALLBACK must be 0, 1, true or false, got "${v}"`);
}

function envBackend(): BackendWant {
  const v = readEnv("TSMALLOC_BACKEND");
  if (v === undefined || v === "") return "auto";
  if (v !== "auto" && v !== "ffi" && v !== "buffer") throw new RangeError(`tsmalloc: TSMALLOC_BACKEND must be auto, ffi or buffer, got "${v}"`);
  return v;
}

setEnvReader(readEnv);
setOsProvider(() => {
  const warn = warnFallback ?? envWarnFallback(); // a bad value throws even when FFI is live
  const o = selectOs(wantBackend ?? envBackend(), wantNodeFfi ?? envNodeFfi());
  // once per worker that initializes on its own (attach() asks for a backend explicitly)
  if (warn && isFallback(o)) console.error(fallbackWarning(o));
  if (ctx.options.showStats) installExitHook();
  if (ctx.options.leakCheck) installLeakCheck();
  return o;
});

/**
 * Chooses the backend and options, once, before the first allocation (values not given
 * keep their defaults or TSMALLOC_* environment values).
 *
 * @throws {Error} when the allocator is already in use (something was allocated), or with
 *   `backend: "ffi"` when no FFI is available (the message says why: e.g. Deno without
 *   `--allow-ffi`).
 * @throws {RangeError} for an unknown backend or nodeFfi, or a secure level outside 0..4.
 * @throws {TypeError} when debugFill or warnFallback is not a boolean, or for a key that is
 *   not one of ConfigureOptions' (a typo, or an option of {@link setOption}'s).
 * @example
 * ```ts
 * import { configure, malloc } from "@tsmalloc/tsmalloc";
 *
 * configure({ secure: 3 });   // guard pages, free lists in random order
 * const p = malloc(32);
 * ```
 */
export function configure(options: ConfigureOptions): void {
  if (typeof options !== "object" || options === null) throw new TypeError("tsmalloc: configure() takes an options object");
  for (const k of Object.keys(options)) {
    // a typo, or an option of setOption's (guardedSampleRate, ...), would else be ignored
    if (!CONFIGURE_KEYS.includes(k)) throw new TypeError(`tsmalloc: configure() has no option "${k}" (its options: ${CONFIGURE_KEYS.join(", ")}; the others are setOption's)`);
  }
  if (isInitialized()) throw new Error("tsmalloc: configure() must be called before the first allocation");
  if (options.backend !== undefined) {
    if (options.backend !== "auto" && options.backend !== "ffi" && options.backend !== "buffer") {
      throw new RangeError(`tsmalloc: backend must be "auto", "ffi" or "buffer", got "${options.backend}"`);
    }
    wantBackend = options.backend;
  }
  // both checked before either is applied
  const nodeFfi = options.nodeFfi === undefined ? undefined : checkNodeFfi(options.nodeFfi, "nodeFfi");
  if (options.warnFallback !== undefined && typeof options.warnFallback !== "boolean") {
    throw new TypeError(`tsmalloc: warnFallback must be a boolean, got ${String(options.warnFallback)}`);
  }
  if (nodeFfi !== undefined) wantNodeFfi = nodeFfi;
  if (options.warnFallback !== undefined) warnFallback = options.warnFallback;
  if (options.secure !== undefined) {
    if (!Number.isInteger(options.secure) || options.secure < 0 || options.secure > 4) {
      throw new RangeError(`tsmalloc: secure must be an integer 0..4, got ${options.secure}`);
    }
    setOptionValue("secure", options.secure);
  }
  if (options.debugFill !== undefined) {
    if (typeof options.debugFill !== "boolean") throw new TypeError(`tsmalloc: debugFill must be a boolean, got ${String(options.debugFill)}`);
    setOptionValue("debugFill", options.debugFill);
  }
  if (options.backend === "ffi") initialize(); // fail loudly now, not at the first malloc
}

/**
 * What {@link backend} reports.
 *
 * @example
 * ```ts
 * import { backend, type BackendInfo } from "@tsmalloc/tsmalloc";
 *
 * const info: BackendInfo = backend();
 * if (info.kind === "buffer") console.warn(`no native memory: ${info.reason}`);
 * ```
 */
export interface BackendInfo {
  /** The FFI in use ("node", "deno", "bun"), or "buffer" for `ArrayBuffer` memory. */
  kind: "node" | "deno" | "bun" | "buffer";
  /**
   * The FFI that reaches libc: "node:ffi" (Node >= 26, built in) or "koffi" (the addon) on
   * Node, "deno" (Deno.dlopen), "bun" (bun:ffi); null on the buffer backend.
   */
  ffi: "node:ffi" | "koffi" | "deno" | "bun" | null;
  /** How the backend was chosen, and why FFI was not used when it was not. */
  reason: string;
  /**
   * Guard pages really fault (the backend can make memory inaccessible). false on the buffer
   * backend: there secure-mode guard pages and guarded allocations are a no-op (the reason
   * says so when they were asked for); the other secure features work on every backend.
   */
  guardPages: boolean;
}

/**
 * Which backend is live and why (initializes the allocator if needed).
 *
 * @throws {Error} when `configure({ backend: "ffi" })` or TSMALLOC_BACKEND=ffi asked for
 *   FFI and none is available.
 * @example
 * ```ts
 * import { backend } from "@tsmalloc/tsmalloc";
 *
 * const { kind, reason, guardPages } = backend();
 * console.log(kind, reason, guardPages); // e.g. "deno", "auto: Deno FFI (Deno.dlopen)", true
 * ```
 */
export function backend(): BackendInfo {
  const o = initialize();
  let reason = o.reason;
  if (!o.canProtect && (ctx.options.secure >= 1 || ctx.options.guardedSampleRate > 0)) {
    reason += "; guard pages unavailable: this backend cannot protect memory, so secure-mode guard pages and guarded allocations are a no-op";
  }
  return { kind: o.kind, ffi: o.ffi, reason, guardPages: o.canProtect };
}

/**
 * Walks every page and huge block of this worker and checks the free-list invariants
 * (side tables of checked pages included; under debugFill also that free blocks were not written). Also
 * reports corrupted free lists secure mode detected and dropped at run time. Never throws
 * for a corrupted heap: problems are listed in the report. Walks every page: slow, for
 * tests and debugging (what mimalloc checks in its debug builds, `MI_DEBUG`).
 *
 * @example
 * ```ts
 * import { free, malloc, validate } from "@tsmalloc/tsmalloc";
 *
 * free(malloc(100));
 * const report = validate();
 * if (!report.ok) throw new Error(report.problems.join("\n"));
 * ```
 */
export function validate(): ValidateReport {
  return validateAll();
}

const heap: CoreHeap = defaultHeap();

/**
 * Allocates `size` bytes, 16-byte aligned, from this worker's default heap (mimalloc's
 * `mi_malloc`). Returns the block's address, or 0 when memory cannot be had (the OS or a
 * budget refused, or `size` > {@link MAX_ALLOC_SIZE}), as C's malloc does: the result can
 * be passed through to native code. {@link alloc} throws instead of returning 0.
 *
 * @throws {TypeError} when a size is not a number.
 * @throws {RangeError} when a size is negative, fractional, NaN or infinite.
 * @example
 * ```ts
 * import { free, malloc, usableSize } from "@tsmalloc/tsmalloc";
 *
 * const p = malloc(100);
 * if (p === 0) throw new Error("out of memory");
 * console.assert(usableSize(p) >= 100 && p % 16 === 0);
 * free(p);
 * ```
 */
export function malloc(size: number): number {
  return heap.malloc(size);
}
/**
 * Allocates `count * size` zeroed bytes (mimalloc's `mi_calloc`); 0 when the product
 * overflows {@link MAX_ALLOC_SIZE} or memory cannot be had.
 *
 * @throws {TypeError} when a size is not a number.
 * @throws {RangeError} when a size is negative, fractional, NaN or infinite.
 * @example
 * ```ts
 * import { bytes, calloc, free } from "@tsmalloc/tsmalloc";
 *
 * const p = calloc(10, 8);   // 10 elements of 8 bytes, all zero
 * console.assert(bytes(p, 80).every((b) => b === 0));
 * free(p);
 * ```
 */
export function calloc(count: number, size: number): number {
  return heap.calloc(count, size);
}
/**
 * Allocates `size` zeroed bytes (mimalloc's `mi_zalloc`); 0 when memory cannot be had.
 *
 * @throws {TypeError} when a size is not a number.
 * @throws {RangeError} when a size is negative, fractional, NaN or infinite.
 * @example
 * ```ts
 * import { bytes, free, zalloc } from "@tsmalloc/tsmalloc";
 *
 * const p = zalloc(256);
 * console.assert(bytes(p, 256).every((b) => b === 0));
 * free(p);
 * ```
 */
export function zalloc(size: number): number {
  return heap.zalloc(size);
}
/**
 * Resizes a block to `size` bytes, keeping its contents up to the smaller size (mimalloc's
 * `mi_realloc`): in place when the block's size class allows, else by moving it. Returns
 * the new address; 0 on failure, and then the old block stays valid and unchanged.
 * `realloc(0, n)` is `malloc(n)`.
 *
 * @throws {TypeError} when a size is not a number.
 * @throws {RangeError} when a size is negative, fractional, NaN or infinite.
 * @throws {InvalidPointerError} when `ptr` is not 0 and not a live block of any heap
 *   (outside our memory, in a free page, a freed huge block, or not a block's start).
 * @throws {DoubleFreeError} for a block already freed (every secure level).
 * @example
 * ```ts
 * import { bytes, free, malloc, realloc } from "@tsmalloc/tsmalloc";
 *
 * let p = malloc(16);
 * bytes(p, 16).fill(1);
 * p = realloc(p, 4096);      // the first 16 bytes are kept
 * console.assert(bytes(p, 16).every((b) => b === 1));
 * free(p);
 * ```
 */
export function realloc(ptr: number, size: number): number {
  return heap.realloc(ptr, size);
}
/**
 * Frees a block (mimalloc's `mi_free`); `free(0)` does nothing. Any worker may free a block
 * another worker of the same allocator allocated (see {@link workerHandle}).
 *
 * @throws {InvalidPointerError} when `ptr` is not 0 and not a live block of any heap
 *   (outside our memory, in a free page, a freed huge block, or not a block's start).
 * @throws {DoubleFreeError} for a block already freed, at every secure level (mimalloc
 *   detects it only in its secure/debug builds): its page's side table says it is not live.
 *   Two frees of one block by two workers at the same moment: exactly one wins.
 * @example
 * ```ts
 * import { free, InvalidPointerError, malloc } from "@tsmalloc/tsmalloc";
 *
 * const p = malloc(64);
 * free(p);
 * try {
 *   free(p + 8);             // not the start of a block
 * } catch (e) {
 *   console.assert(e instanceof InvalidPointerError);
 * }
 * ```
 */
export function free(ptr: number): void {
  if (typeof ptr !== "number") checkPointer(ptr); // TypeError, before any coercion
  freeFn(ptr);
}
/**
 * Allocates `size` bytes at an address that is a multiple of `alignment` (mimalloc's
 * `mi_malloc_aligned`); 0 when memory cannot be had or `alignment` > {@link MAX_ALIGN}.
 * The address returned is always the start of its block, so it is the only address
 * {@link free}, {@link realloc} and {@link usableSize} accept for it. Alignments up to 8 KiB
 * come from a size class that is a multiple of the alignment (at most twice
 * `max(size, alignment)`); larger ones get a huge block of their own (at least 128 KiB of
 * mapping, a whole 4 MiB segment once workers share the allocator).
 *
 * @throws {TypeError} when a size is not a number.
 * @throws {RangeError} when a size is negative, fractional, NaN or infinite.
 * @throws {RangeError} when `alignment` is not a power of two.
 * @example
 * ```ts
 * import { free, mallocAligned } from "@tsmalloc/tsmalloc";
 *
 * const p = mallocAligned(1000, 4096);
 * console.assert(p % 4096 === 0);
 * free(p);
 * ```
 */
export function mallocAligned(size: number, alignment: number): number {
  return heap.mallocAligned(size, alignment);
}
/**
 * Like {@link mallocAligned}, with the bytes zeroed (mimalloc's `mi_zalloc_aligned`).
 *
 * @throws {TypeError} when a size is not a number.
 * @throws {RangeError} when a size is negative, fractional, NaN or infinite.
 * @throws {RangeError} when `alignment` is not a power of two.
 * @example
 * ```ts
 * import { bytes, free, zallocAligned } from "@tsmalloc/tsmalloc";
 *
 * const p = zallocAligned(64, 256);
 * console.assert(p % 256 === 0 && bytes(p, 64).every((b) => b === 0));
 * free(p);
 * ```
 */
export function zallocAligned(size: number, alignment: number): number {
  return heap.zallocAligned(size, alignment);
}
/**
 * Resizes a block to `size` bytes at a multiple of `alignment`, keeping its contents
 * (mimalloc's `mi_realloc_aligned`); 0 on failure, and then the old block stays valid.
 *
 * @throws {TypeError} when a size is not a number.
 * @throws {RangeError} when a size is negative, fractional, NaN or infinite.
 * @throws {RangeError} when `alignment` is not a power of two.
 * @throws {InvalidPointerError} when `ptr` is not 0 and not a live block of any heap
 *   (outside our memory, in a free page, a freed huge block, or not a block's start).
 * @example
 * ```ts
 * import { free, mallocAligned, reallocAligned } from "@tsmalloc/tsmalloc";
 *
 * let p = mallocAligned(100, 64);
 * p = reallocAligned(p, 10_000, 64);
 * console.assert(p % 64 === 0);
 * free(p);
 * ```
 */
export function reallocAligned(ptr: number, size: number, alignment: number): number {
  return heap.reallocAligned(ptr, size, alignment);
}
/**
 * Bytes usable from `ptr` to the end of its block: at least the size requested, and what
 * {@link goodSize} promised (mimalloc's `mi_usable_size`). 0 for `ptr` 0.
 *
 * @throws {InvalidPointerError} when `ptr` is not 0 and not a live block of any heap
 *   (outside our memory, in a free page, a freed huge block, or not a block's start).
 * @example
 * ```ts
 * import { free, malloc, usableSize } from "@tsmalloc/tsmalloc";
 *
 * const p = malloc(100);
 * console.assert(usableSize(p) >= 100);   // 112: the 100-byte request's size class
 * free(p);
 * ```
 */
export function usableSize(ptr: number): number {
  return usableSizeOf(ptr);
}
/**
 * The usable size in bytes `malloc(size)` would give: `size` rounded up to its size class
 * (mimalloc's `mi_good_size`); always equal to `usableSize(malloc(size))`, guarded
 * allocations included. Sizes above {@link MAX_ALLOC_SIZE} give 0, as `malloc` does, and so
 * do sizes no mapping of this backend can hold (the buffer backend: one ArrayBuffer of at most
 * 4 GiB; a shared allocator: one arena, at most the runtime's largest view). Asking about a
 * size over 2 GiB initializes the allocator, since the answer depends on the backend.
 *
 * @throws {TypeError} when a size is not a number.
 * @throws {RangeError} when a size is negative, fractional, NaN or infinite.
 * @example
 * ```ts
 * import { free, goodSize, malloc, usableSize } from "@tsmalloc/tsmalloc";
 *
 * const p = malloc(100);
 * console.assert(usableSize(p) === goodSize(100));
 * free(p);
 * ```
 */
export function goodSize(size: number): number {
  checkSize(size);
  if (size > MAX_ALLOC_SIZE) return 0;
  const g = goodSizeOf(size);
  if (g > HUGE_LIMITS_FROM) {
    if (!isInitialized()) initialize();
    if (!hugeFits(g)) return 0;
  }
  return g;
}
/** No backend limits one mapping below this (bytes): goodSize of smaller sizes needs no backend. */
const HUGE_LIMITS_FROM = 2 * 1024 ** 3;
/**
 * Like {@link malloc}, but throws {@link AllocationError} (carrying a {@link stats}
 * snapshot and the reason) instead of returning 0: the JS-friendly variant.
 *
 * @throws {TypeError} when a size is not a number.
 * @throws {RangeError} when a size is negative, fractional, NaN or infinite.
 * @throws {AllocationError} when memory cannot be had or `size` > {@link MAX_ALLOC_SIZE}.
 * @example
 * ```ts
 * import { AllocationError, alloc, free, MAX_ALLOC_SIZE } from "@tsmalloc/tsmalloc";
 *
 * free(alloc(64));
 * try {
 *   alloc(MAX_ALLOC_SIZE + 1);
 * } catch (e) {
 *   if (e instanceof AllocationError) console.log(e.size, e.stats?.committed);
 * }
 * ```
 */
export function alloc(size: number): number {
  return heap.alloc(size);
}

function checkRange(ptr: number, len: number): void {
  checkPointer(ptr);
  checkSize(len, "length");
  if (ptr === 0) throw new RangeError("tsmalloc: null pointer");
}
/**
 * A `Uint8Array` over the `len` bytes of memory at `ptr`: reads and writes go straight to
 * the native block (no copy). It stays valid while the block is live; do not keep it
 * after {@link free}. `[ptr, ptr + len)` must lie inside one live block (all of it or a
 * part; a guarded allocation ends before its guard page), so a view never reaches memory
 * that is not mapped or not tsmalloc's.
 *
 * @throws {TypeError} when `ptr` or `len` is not a number.
 * @throws {RangeError} when `ptr` is 0, negative or fractional, or `len` is negative,
 *   fractional or NaN; when the range is not inside one live block; when `len` is larger
 *   than the runtime's largest view (4 GiB on koffi and bun:ffi).
 * @example
 * ```ts
 * import { bytes, free, malloc } from "@tsmalloc/tsmalloc";
 *
 * const p = malloc(5);
 * bytes(p, 5).set([104, 101, 108, 108, 111]);
 * console.log(new TextDecoder().decode(bytes(p, 5))); // "hello"
 * free(p);
 * ```
 */
export function bytes(ptr: number, len: number): Uint8Array {
  checkRange(ptr, len);
  initialize();
  checkView(ptr, len);
  return bytesAt(ptr, len);
}
/**
 * A `DataView` over the `len` bytes of memory at `ptr` (see {@link bytes}: the range must
 * lie inside one live block), for reading and writing structs field by field.
 *
 * @throws {TypeError} when `ptr` or `len` is not a number.
 * @throws {RangeError} when `ptr` is 0, negative or fractional, or `len` is negative,
 *   fractional or NaN; when the range is not inside one live block.
 * @example
 * ```ts
 * import { dataView, free, malloc } from "@tsmalloc/tsmalloc";
 *
 * const p = malloc(16);
 * const v = dataView(p, 16);
 * v.setFloat64(0, Math.PI, true);
 * v.setUint32(8, 42, true);
 * free(p);
 * ```
 */
export function dataView(ptr: number, len: number): DataView {
  const b = bytes(ptr, len);
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
/**
 * The runtime's FFI pointer for an address, to pass a block to your own FFI calls: a
 * bigint on Node (node:ffi and koffi), a `Deno.PointerObject` on Deno, a number on Bun.
 * On the buffer backend there is no native memory to point at.
 *
 * @throws {TypeError} when `ptr` is not a number.
 * @throws {RangeError} when `ptr` is negative or fractional.
 * @throws {Error} on the buffer backend (its addresses are not native).
 * @example
 * ```ts
 * import { free, malloc, pointer } from "@tsmalloc/tsmalloc";
 *
 * const p = malloc(256);
 * const native = pointer(p); // hand it to e.g. a Deno.dlopen or bun:ffi symbol taking a pointer
 * free(p);
 * ```
 */
export function pointer(ptr: number): unknown {
  checkPointer(ptr);
  return initialize().pointer(ptr);
}

/**
 * A snapshot of this worker's accounting: plain JSON-able numbers, in bytes unless named a
 * count. Reserved (virtual), committed and resident (RAM, via `mincore`) bytes are kept
 * apart, as are bytes in use by live blocks; also peaks, purges, OS calls by kind, arenas
 * and size classes (mimalloc's statistics, `mi_stats_get`). The FFI backends ask the
 * kernel for `resident`, so this makes OS calls: not for hot loops. While workers share the
 * allocator ({@link attach}), `reserved`, `committed` and their peaks are the process's
 * totals and `workers` counts attached workers; counters are never negative. `byTag`
 * splits the live blocks by tag (each heap's `Heap.create({ tag })`, each {@link cAllocator}'s
 * `tag`: what a C library holds), computed from the pages when called (see {@link TagStats}).
 *
 * @example
 * ```ts
 * import { free, malloc, stats } from "@tsmalloc/tsmalloc";
 *
 * const p = malloc(1000);
 * const s = stats();
 * console.log(s.inUse, s.committed, s.reserved, s.resident); // bytes
 * for (const t of s.byTag) console.log(t.tag || "(default)", t.blocks, t.bytes);
 * free(p);
 * ```
 */
export function stats(): Stats {
  return collectStats();
}

/**
 * Stats as a readable multi-line table, sizes in KiB/MiB (the current stats unless given).
 *
 * @example
 * ```ts
 * import { formatStats, stats } from "@tsmalloc/tsmalloc";
 *
 * const before = stats();
 * console.log(formatStats(before));
 * ```
 */
export function formatStats(s: Stats = collectStats()): string {
  return formatStatsTable(s);
}

/**
 * Prints {@link formatStats} (to `console.log` by default; pass a writer for another sink),
 * like mimalloc's `mi_stats_print`.
 *
 * @example
 * ```ts
 * import { printStats } from "@tsmalloc/tsmalloc";
 *
 * printStats((text) => console.error(text));
 * ```
 */
export function printStats(write: (text: string) => void = (t) => console.log(t)): void {
  write(formatStats());
}

/**
 * Gives the empty pages of every heap of this worker back to their segments (mimalloc's
 * `mi_collect`); with `force`, freed memory is also returned to the OS now (`madvise`)
 * instead of after the purge delay, so it leaves RSS at once. While workers share the
 * allocator it also finishes pending {@link releaseWorker}s and frees huge blocks other
 * workers freed; with `force` it reclaims every abandoned segment (empty ones go back): into
 * the default heap, and those of an arena a live {@link Heap} is bound to into that heap (an
 * exclusive arena's are never taken by any other heap).
 *
 * @example
 * ```ts
 * import { collect, free, malloc, stats } from "@tsmalloc/tsmalloc";
 *
 * const ps = Array.from({ length: 1000 }, () => malloc(4096));
 * for (const p of ps) free(p);
 * collect(true);
 * console.log(stats().pendingPurge); // 0: nothing left waiting for the delay
 * ```
 */
export function collect(force = false): void {
  if (!isInitialized()) return;
  const share = ctx.shared && !detached;
  if (share) {
    finishDying(); // releases waiting for a thread to stop
    if (force) {
      reclaimAll(heap); // abandoned segments: empty ones go back below, live ones join this heap
      for (const h of liveHeaps) if (h.isLive && h.arenaId !== 0) reclaimAll(h); // those of a bound heap's arena join it
    }
  }
  for (const h of liveHeaps) {
    if (!h.isLive) continue;
    if (share) h.reapHuge(); // huge blocks other workers freed
    h.collect(force);
  }
  if (share) heap.reapHuge();
  heap.collect(force);
}

// ---------------------------------------------------------------- options

/**
 * The tunables of {@link getOption} / {@link setOption} and their value types: sizes are
 * byte counts, delays milliseconds. Each also reads the environment variable
 * TSMALLOC_<NAME> in upper snake case (e.g. TSMALLOC_PURGE_DELAY=100,
 * TSMALLOC_MAX_COMMITTED=1GiB). Details: doc/MEMORY.md and doc/SECURE.md.
 *
 * @example
 * ```ts
 * import { getOption, type OptionValues } from "@tsmalloc/tsmalloc";
 *
 * const delay: OptionValues["purgeDelay"] = getOption("purgeDelay");
 * ```
 */
export interface OptionValues {
  /** Milliseconds a freed page stays committed before it is purged (0 = at once, -1 = never). Default 10. */
  purgeDelay: number;
  /** Free segments and cached huge blocks wait purgeDelay * arenaPurgeMult ms (1..1000). Default 10. */
  arenaPurgeMult: number;
  /** true: purge with MADV_DONTNEED, memory leaves `committed` and RSS at once; false: MADV_FREE (reset), it stays committed. Default true. */
  purgeDecommits: boolean;
  /** Count a whole 4 MiB segment as committed when it is claimed (else 64 KiB slices as pages are claimed). Default false. */
  eagerCommit: boolean;
  /** Bytes of the first arena reservation (4 MiB up to 2 GiB - 8 MiB); later ones double. Default 1 GiB. */
  arenaReserve: number;
  /** Budget of reserved (virtual) bytes, for the whole process while workers share the allocator; 0 = unlimited (the default). */
  maxReserved: number;
  /** Budget of committed bytes, for the whole process while workers share the allocator; 0 = unlimited (the default). */
  maxCommitted: number;
  /** Bytes of freed huge mappings kept for reuse (purged after the arena delay). Default 256 MiB. At secure level 2+ / debugFill (FFI) the rest stay reserved, PROT_NONE (doc/MEMORY.md). */
  hugeCacheMax: number;
  /** Messages to stderr: 0 quiet (default), 1 arenas and budget refusals, 2 also every purge. */
  verbose: number;
  /** Print the stats table to stderr when the process exits. Default false. */
  showStats: boolean;
  /** Secure level 0..4 (see {@link ConfigureOptions}); only before the first allocation. Default 0. */
  secure: number;
  /** Fill fresh blocks with 0xD0 and freed blocks with 0xDF (and retire freed huge mappings, as level 2); only before the first allocation. Default false. */
  debugFill: boolean;
  /** Smallest size in bytes of a guarded allocation (a block ending at a guard page). Default 0. */
  guardedMin: number;
  /** Largest size in bytes of a guarded allocation (below guardedMin counts as guardedMin). Default 1 GiB. */
  guardedMax: number;
  /** Guard one in this many allocations in [guardedMin, guardedMax] (0 = off, the default; 1 = all). */
  guardedSampleRate: number;
  /**
   * Record, for every block allocated while on, its heap's tag and (see trackSampleRate) its
   * allocation site, for {@link leaks}. Any time; off (the default) costs the fast paths nothing.
   */
  track: boolean;
  /** With track: take the allocation site (a stack) of one in this many allocations (1 = all, the default; 0 = none). */
  trackSampleRate: number;
  /**
   * At process exit, print {@link leaks} to stderr and set exit code 1 when live blocks are
   * left (Zig's `detectLeaks`, for test suites). Default false.
   */
  leakCheck: boolean;
}

/**
 * The name of an option of {@link getOption} / {@link setOption}.
 *
 * @example
 * ```ts
 * import { getOption, type OptionName } from "@tsmalloc/tsmalloc";
 *
 * const names: OptionName[] = ["purgeDelay", "maxCommitted"];
 * for (const n of names) console.log(n, getOption(n));
 * ```
 */
export type OptionName = keyof OptionValues;

// The public option table is the core's, field for field (a compile error otherwise).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const optionTablesAgree: Same<OptionValues, Omit<Options, "arenaMax">> & Same<OptionName, CoreOptionName> = true;
void optionTablesAgree;

/**
 * The current value of an option. The TSMALLOC_<NAME> environment variables (e.g.
 * TSMALLOC_PURGE_DELAY) are read once, at the first use of the allocator or of the options.
 *
 * @throws {TypeError} when `name` is not a string.
 * @throws {RangeError} for an unknown name, or a TSMALLOC_<NAME> variable that does not parse.
 * @example
 * ```ts
 * import { getOption } from "@tsmalloc/tsmalloc";
 *
 * const budget = getOption("maxCommitted"); // bytes, 0 = unlimited
 * ```
 */
export function getOption<K extends OptionName>(name: K): OptionValues[K] {
  return getOptionValue(name) as OptionValues[K];
}

/**
 * Sets an option at once (overrides its environment variable). Booleans take booleans,
 * integer options numbers, sizes a byte count or a string like "64MiB" (mimalloc's
 * `mi_option_set`).
 *
 * @throws {TypeError} for a value of the wrong type.
 * @throws {RangeError} for an unknown name or a value out of range.
 * @throws {Error} for `secure` or `debugFill` after the first allocation, and for
 *   guardedSampleRate > 0 while the allocator is shared between workers.
 * @example
 * ```ts
 * import { setOption } from "@tsmalloc/tsmalloc";
 *
 * setOption("maxCommitted", "512MiB"); // allocations beyond it return 0
 * setOption("purgeDelay", 0);           // return freed memory to the OS at once
 * ```
 */
export function setOption<K extends OptionName>(name: K, value: OptionValues[K] | (OptionValues[K] extends number ? string : never)): void {
  setOptionValue(name, value);
  if (name === "showStats" && value === true) installExitHook();
  if (name === "leakCheck" && value === true) installLeakCheck();
}

let exitHookInstalled = false;
/** showStats: print the stats table to stderr when the process exits (checked at exit). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  let done = false;
  const report = function tsmallocShowStats(): void {
    if (done) return;
    done = true;
    if (ctx.options.showStats && isInitialized()) console.error(formatStats());
  };
  onProcessExit(report);
}

/**
 * Runs f once when the process exits. Node, Bun and Deno 2 emit process "exit" on a normal
 * end and on process.exit(); Deno.exit() skips that event but dispatches "unload" (measured,
 * Deno 2.9.6; an exit code set there is the process's), so on Deno f also listens there.
 * f must ignore its second call (a normal end on Deno fires both).
 */
function onProcessExit(f: () => void): void {
  const g = globalThis as {
    addEventListener?: (type: string, f: () => void) => void;
    process?: { on?: (ev: string, f: () => void) => void };
    Deno?: unknown;
  };
  const hasExit = typeof g.process?.on === "function";
  if (hasExit) g.process!.on!("exit", f);
  if ((g.Deno !== undefined || !hasExit) && typeof g.addEventListener === "function") g.addEventListener("unload", f);
}

let leakCheckInstalled = false;
/** leakCheck: at exit, print the live blocks and set exit code 1 when any are left (checked at exit). */
function installLeakCheck(): void {
  if (leakCheckInstalled) return;
  leakCheckInstalled = true;
  const g = globalThis as { process?: { on?: (ev: string, f: () => void) => void; exitCode?: number | string } };
  let done = false;
  const check = function tsmallocLeakCheck(): void {
    if (done) return;
    done = true;
    if (!ctx.options.leakCheck || !isInitialized()) return;
    const groups = leakGroups();
    if (groups.length === 0) return;
    console.error(formatLeaks(groups));
    console.error("tsmalloc: leakCheck: live blocks at exit (exit code 1)");
    if (g.process !== undefined && (g.process.exitCode === undefined || Number(g.process.exitCode) === 0)) g.process.exitCode = 1;
  };
  onProcessExit(check);
}

// ---------------------------------------------------------------- leak tracking

/**
 * The live blocks of this worker's heaps grouped by tag and allocation site, most bytes
 * first, as plain objects `{ tag, site, count, bytes }` (bytes: usable bytes). `tag` is
 * the heap's tag at allocation ({@link HeapOptions.tag}; "" for the default heap), or the
 * owner's: a {@link Block}'s tag, "ArenaPool" for arena chunks. `site` (up to three stack
 * frames outside tsmalloc) is recorded only while the `track` option is on, for one in
 * `trackSampleRate` allocations; otherwise it is "" (turning `track` off drops the sites
 * recorded: frees are no longer seen, so a site could not be told from a later block at the
 * same address). Liveness comes from the allocator's
 * metadata (a heap walk, as {@link Heap.visit}), so the list is exact; the walk costs time
 * in proportion to the heaps' pages: a diagnostic, not for hot loops. After Zig's
 * `std.heap.DebugAllocator` leak report.
 *
 * @example
 * ```ts
 * import { Heap, leaks, setOption } from "@tsmalloc/tsmalloc";
 *
 * setOption("track", true);
 * const heap = Heap.create({ tag: "parser" });
 * heap.malloc(100);                       // never freed
 * const g = leaks().find((x) => x.tag === "parser");
 * console.log(g?.count, g?.bytes, g?.site); // 1 112 "parse (file:///app.ts:5:6) < ..."
 * heap.destroy();
 * setOption("track", false);
 * ```
 */
export function leaks(): LeakGroup[] {
  if (!isInitialized()) return [];
  return leakGroups();
}

/**
 * Prints {@link leaks} as a table, one line per tag and site (to `console.error` by default).
 *
 * @example
 * ```ts
 * import { printLeaks } from "@tsmalloc/tsmalloc";
 *
 * printLeaks((text) => console.log(text));
 * ```
 */
export function printLeaks(write: (text: string) => void = (t) => console.error(t)): void {
  write(formatLeaks(leaks()));
}

// ---------------------------------------------------------------- arenas

/**
 * Options for {@link reserveOsMemory}.
 *
 * @example
 * ```ts
 * import { type ReserveOptions, reserveOsMemory } from "@tsmalloc/tsmalloc";
 *
 * const options: ReserveOptions = { exclusive: true };
 * const arena = reserveOsMemory("64MiB", options);
 * ```
 */
export interface ReserveOptions {
  /** Only heaps created with `Heap.create({ arena: id })` use it, and they use nothing else. */
  exclusive?: boolean;
}

/**
 * Reserves `size` bytes (a byte count or a string like "256MiB"; rounded up to 4 MiB
 * segments) as an arena up front and returns its id. A non-exclusive arena serves every
 * heap; an exclusive one only heaps bound to it with `Heap.create({ arena: id })`, whose
 * allocations return 0 when it is full instead of taking memory elsewhere. Counts against
 * maxReserved (mimalloc's `mi_reserve_os_memory_ex`). Reserving is virtual: nothing is
 * committed or resident until blocks are allocated.
 *
 * @throws {AllocationError} when the maxReserved budget or the OS refuses.
 * @throws {TypeError} for a size or option of the wrong type.
 * @throws {RangeError} for a size that is 0, does not parse, or exceeds
 *   {@link MAX_ALLOC_SIZE}, and for unknown options.
 * @example
 * ```ts
 * import { Heap, reserveOsMemory } from "@tsmalloc/tsmalloc";
 *
 * const arena = reserveOsMemory("64MiB", { exclusive: true });
 * using heap = Heap.create({ arena });   // allocates only from those 64 MiB
 * const p = heap.malloc(1024);
 * ```
 */
export function reserveOsMemory(size: number | string, options: ReserveOptions = {}): number {
  let bytes: number;
  if (typeof size === "string") {
    bytes = parseSize(size);
    if (Number.isNaN(bytes)) throw new RangeError(`tsmalloc: reserveOsMemory: size must be a byte count like 4096, "64MiB" or "1G", got ${JSON.stringify(size)}`);
  } else {
    checkSize(size);
    bytes = size;
  }
  if (bytes === 0) throw new RangeError("tsmalloc: reserveOsMemory: size must be positive");
  if (ctx.detached) throw new Error(DETACHED);
  if (bytes > MAX_SIZE) throw new RangeError(`tsmalloc: reserveOsMemory: size ${bytes} is larger than MAX_ALLOC_SIZE`);
  if (typeof options !== "object" || options === null) throw new TypeError("tsmalloc: reserveOsMemory: options must be an object");
  for (const k of Object.keys(options)) if (k !== "exclusive") throw new RangeError(`tsmalloc: reserveOsMemory: unknown option "${k}" (known: exclusive)`);
  if (options.exclusive !== undefined && typeof options.exclusive !== "boolean") {
    throw new TypeError(`tsmalloc: reserveOsMemory: exclusive must be a boolean, got ${String(options.exclusive)}`);
  }
  initialize();
  ctx.refusal = "";
  const id = reserveArena(bytes, options.exclusive ?? false);
  if (id === 0) throw new AllocationError(bytes, collectStats(), ctx.refusal || "the OS refused the reservation");
  return id;
}

// ---------------------------------------------------------------- heaps

/**
 * Options for {@link HeapConstructor.create | Heap.create}.
 *
 * @example
 * ```ts
 * import { Heap, type HeapOptions, reserveOsMemory } from "@tsmalloc/tsmalloc";
 *
 * const options: HeapOptions = { arena: reserveOsMemory("16MiB", { exclusive: true }) };
 * using heap = Heap.create(options);
 * ```
 */
export interface HeapOptions {
  /** An arena id from {@link reserveOsMemory}: the heap allocates only from that arena (0 when it is full). */
  arena?: number;
  /** A name for the heap's blocks in {@link leaks} (default ""). */
  tag?: string;
}

const liveHeaps = new Set<HeapImpl>();
setHeapLister(() => [heap, ...liveHeaps]);

/**
 * A first-class heap (mimalloc's `mi_heap_t`): allocate from it, then `destroy()` it to
 * free all its blocks at once, or `delete()` it to hand them to the default heap. Created
 * by {@link HeapConstructor.create | Heap.create}; owned by the worker that created it
 * (only that worker allocates from it; any worker may free its blocks). Every size is in
 * bytes; the allocation methods behave as the module-level functions of the same name
 * ({@link malloc} etc.): 0 when memory cannot be had, TypeError/RangeError for bad sizes.
 * A heap that was destroyed or deleted throws Error from its allocation methods and
 * `visit`.
 *
 * @example
 * ```ts
 * import { bytes, Heap } from "@tsmalloc/tsmalloc";
 *
 * {
 *   using heap = Heap.create();        // destroyed at the end of the block
 *   const a = heap.malloc(100);
 *   const b = heap.zalloc(1 << 20);
 *   bytes(a, 100).fill(1);
 *   console.assert(heap.contains(a) && heap.contains(b));
 * }                                    // a and b are freed here
 * ```
 */
export interface Heap {
  /** This heap's id (a small integer, unique among the live heaps of this worker). */
  readonly id: number;
  /** The arena id this heap is bound to ({@link HeapOptions.arena}), 0 for the shared arenas. */
  readonly arenaId: number;
  /** False once the heap was destroyed or deleted. */
  readonly isLive: boolean;
  /** The tag given to `Heap.create({ tag })` ("" when none): its blocks' group in {@link leaks}. */
  readonly tag: string;
  /**
   * Allocates `size` bytes, 16-byte aligned; 0 when memory cannot be had (as {@link malloc}).
   *
   * @throws {TypeError} when `size` is not a number.
   * @throws {RangeError} when `size` is negative, fractional, NaN or infinite.
   * @throws {Error} when the heap was destroyed or deleted.
   */
  malloc(size: number): number;
  /** Allocates `size` zeroed bytes (as {@link zalloc}). */
  zalloc(size: number): number;
  /** Allocates `count * size` zeroed bytes; 0 on overflow (as {@link calloc}). */
  calloc(count: number, size: number): number;
  /** Like `malloc`, but throws {@link AllocationError} instead of returning 0 (as {@link alloc}). */
  alloc(size: number): number;
  /** Allocates at a multiple of `alignment`, a power of two (as {@link mallocAligned}). */
  mallocAligned(size: number, alignment: number): number;
  /** Like `mallocAligned`, zeroed (as {@link zallocAligned}). */
  zallocAligned(size: number, alignment: number): number;
  /**
   * Resizes a block of any heap, keeping its contents; a moved block is allocated from this
   * heap. 0 on failure, the old block then stays valid (as {@link realloc}).
   *
   * @throws {InvalidPointerError} when `ptr` is not 0 and not a live block.
   */
  realloc(ptr: number, size: number): number;
  /** Resizes keeping the block aligned (as {@link reallocAligned}). */
  reallocAligned(ptr: number, size: number, alignment: number): number;
  /**
   * Frees a block of any heap (as {@link free}).
   *
   * @throws {InvalidPointerError} when `ptr` is not 0 and not a live block.
   */
  free(ptr: number): void;
  /** Bytes usable in the block at `ptr` (as {@link usableSize}). */
  usableSize(ptr: number): number;
  /**
   * Calls `callback(ptr, usableSize)` for each live block of this heap (mimalloc's
   * `mi_heap_visit_blocks`); stops early when the callback returns false. Do not allocate
   * from or free into this heap inside the callback.
   *
   * @throws {Error} when the heap was destroyed or deleted.
   */
  visit(callback: (ptr: number, usableSize: number) => boolean | void): void;
  /**
   * True when `ptr` is the address of a live block of this heap (mimalloc's
   * `mi_heap_check_owned`); false for anything else, including values that are not numbers.
   * Decided from the allocator's own metadata, never from the block's bytes.
   */
  contains(ptr: number): boolean;
  /** Gives this heap's empty pages back; `force` also returns freed memory to the OS now (see {@link collect}). */
  collect(force: boolean): void;
  /**
   * Frees every block of this heap at once (mimalloc's `mi_heap_destroy`); a second call does nothing.
   *
   * @throws {Error} while an open {@link cAllocator} bridge of this heap has handed blocks to
   *   its library that are still live (the library may still use them); the heap is unchanged.
   *   Release the library's memory and close the bridge first, or `close({ force: true })` it.
   */
  destroy(): void;
  /**
   * This heap can no longer allocate; its live blocks move to the default heap and stay
   * valid (mimalloc's `mi_heap_delete`). A second call does nothing.
   */
  delete(): void;
  /** `using heap = Heap.create()` destroys the heap at scope end. */
  [Symbol.dispose](): void;
}

/**
 * The `Heap` value: creates heaps, and `x instanceof Heap` tells a heap.
 *
 * @example
 * ```ts
 * import { Heap } from "@tsmalloc/tsmalloc";
 *
 * const h: unknown = Heap.create();
 * if (h instanceof Heap) h.destroy();
 * ```
 */
export interface HeapConstructor extends Function {
  /**
   * Creates a heap owned by the calling worker, optionally bound to an arena from
   * {@link reserveOsMemory} (mimalloc's `mi_heap_new` / `mi_heap_new_in_arena`).
   *
   * @throws {TypeError} when `options` is not an object or `arena` not a number.
   * @throws {RangeError} for an unknown option or an `arena` that is no arena id.
   * @example
   * ```ts
   * import { Heap } from "@tsmalloc/tsmalloc";
   *
   * const heap = Heap.create();
   * const p = heap.malloc(64);
   * heap.destroy();                    // p is freed with it
   * ```
   */
  create(options?: HeapOptions): Heap;
  /** The prototype every heap inherits from: `x instanceof Heap` narrows `x` to {@link Heap}. */
  readonly prototype: Heap;
}

// The class behind Heap: the core heap itself (its malloc is the fast path, no wrapper).
class HeapImpl extends CoreHeap implements Heap {
  /** Creates a heap owned by the calling worker, optionally bound to an arena. */
  static create(options: HeapOptions = {}): Heap {
    if (typeof options !== "object" || options === null) throw new TypeError("tsmalloc: Heap.create: options must be an object");
    for (const k of Object.keys(options)) if (k !== "arena" && k !== "tag") throw new RangeError(`tsmalloc: Heap.create: unknown option "${k}" (known: arena, tag)`);
    if (options.tag !== undefined && typeof options.tag !== "string") throw new TypeError(`tsmalloc: Heap.create: tag must be a string, got ${typeof options.tag}`);
    const arena = options.arena ?? 0;
    if (options.arena !== undefined) {
      if (typeof arena !== "number") throw new TypeError(`tsmalloc: Heap.create: arena must be an arena id (number), got ${typeof arena}`);
      if (!Number.isInteger(arena) || arena <= 0 || !arenaExists(arena)) {
        throw new RangeError(`tsmalloc: Heap.create: no arena with id ${arena} (reserveOsMemory returns arena ids)`);
      }
    }
    const h = new HeapImpl(arena);
    if (options.tag !== undefined) setHeapTag(h, options.tag);
    liveHeaps.add(h);
    return h;
  }
  /** The tag given to Heap.create ("" when none). */
  get tag(): string {
    return heapTag(this);
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

/** Creates heaps ({@link HeapConstructor.create | Heap.create}) and tells them (`instanceof`); see {@link Heap}. */
export const Heap: HeapConstructor = HeapImpl;

// ---------------------------------------------------------------- the C allocator bridge

/**
 * Options for {@link cAllocator}.
 *
 * @example
 * ```ts
 * import { type CAllocatorOptions, Heap } from "@tsmalloc/tsmalloc";
 *
 * const options: CAllocatorOptions = { heap: Heap.create(), tag: "zlib" };
 * options.heap?.destroy();
 * ```
 */
export interface CAllocatorOptions {
  /** The heap the library's blocks come from (default: this worker's default heap). Use a heap of its own to see, bound and free the library's memory apart from yours. */
  heap?: Heap;
  /** A name for the library's memory in {@link CAllocator.stats} and error messages (default "c"). */
  tag?: string;
  /**
   * Also compare the OS thread id (gettid, one FFI call) on every call with the creating
   * thread's, and answer a call from any other thread with NULL (free: a counted no-op)
   * without touching the heap (default false). Every runtime already keeps such calls off
   * the JS thread's heap (node:ffi aborts the process, koffi and Deno run the call on the JS
   * thread's event loop, Bun never returns to the calling thread; see doc/C-ALLOCATOR.md), so
   * this is a second line of defence; it cost 0.7–5 µs per call here (bench/c-allocator.ts).
   */
  checkThread?: boolean;
}

/** The runtime's FFI form of a native function pointer: bigint on Node (node:ffi and koffi), `Deno.PointerObject` on Deno, number on Bun. */
export type NativePointer = unknown;

/**
 * A C allocator bridge made by {@link cAllocator}: native function pointers with C's
 * signatures that allocate from a tsmalloc heap. Pass the pointer fields (the runtime's FFI
 * pointer form) straight to a library's set-up call, or store {@link CAllocator.address}
 * numbers into a C struct. No entry point ever throws into C: a failure is NULL (0), and a
 * free/realloc of an address the bridge did not hand out is refused without touching the heap
 * and counted in `stats().errors`. Sizes are in bytes.
 *
 * @example
 * ```ts
 * import { cAllocator, Heap } from "@tsmalloc/tsmalloc";
 *
 * using heap = Heap.create();
 * const c = cAllocator({ heap, tag: "curl" });
 * // curl_global_init_mem(CURL_GLOBAL_DEFAULT, c.malloc, c.free, c.realloc, c.strdup, c.calloc)
 * console.log(c.stats().liveBytes);
 * c.close();
 * ```
 */
export interface CAllocator {
  /** `void *malloc(size_t size)`: malloc(0) returns a unique block; NULL when memory cannot be had. */
  readonly malloc: NativePointer;
  /** `void *calloc(size_t count, size_t size)`: zeroed; NULL on overflow of count * size. */
  readonly calloc: NativePointer;
  /** `void *realloc(void *p, size_t size)`: realloc(NULL, n) is malloc(n); realloc(p, 0) returns a fresh minimal block and frees p; NULL on failure with p unchanged. */
  readonly realloc: NativePointer;
  /** `void free(void *p)`: free(NULL) does nothing. */
  readonly free: NativePointer;
  /** `char *strdup(const char *s)`: NULL for strdup(NULL). */
  readonly strdup: NativePointer;
  /** `size_t usableSize(void *p)` (as `malloc_usable_size`): 0 for NULL or an address not handed out here. */
  readonly usableSize: NativePointer;
  /** `size_t goodSize(size_t n)` (as mimalloc's `mi_good_size`): the usable size malloc(n) would give. */
  readonly goodSize: NativePointer;
  /** zlib's `alloc_func` `voidpf zalloc(voidpf opaque, uInt items, uInt size)` for `z_stream.zalloc` (opaque is ignored). */
  readonly zalloc: NativePointer;
  /** zlib's `free_func` `void zfree(voidpf opaque, voidpf p)` for `z_stream.zfree`. */
  readonly zfree: NativePointer;
  /** `sqlite3_mem_methods.xMalloc`: `void *(int)`. */
  readonly sqliteMalloc: NativePointer;
  /** `sqlite3_mem_methods.xFree`: `void (void *)`. */
  readonly sqliteFree: NativePointer;
  /** `sqlite3_mem_methods.xRealloc`: `void *(void *, int)`. */
  readonly sqliteRealloc: NativePointer;
  /** `sqlite3_mem_methods.xSize`: `int (void *)`, tsmalloc's {@link usableSize}. */
  readonly sqliteSize: NativePointer;
  /** `sqlite3_mem_methods.xRoundup`: `int (int)`, tsmalloc's {@link goodSize}. */
  readonly sqliteRoundup: NativePointer;
  /** `sqlite3_mem_methods.xInit`: `int (void *)`, returns SQLITE_OK. */
  readonly sqliteInit: NativePointer;
  /** `sqlite3_mem_methods.xShutdown`: `void (void *)`. */
  readonly sqliteShutdown: NativePointer;
  /** The same functions' addresses as numbers, for C structs (`z_stream`, `sqlite3_mem_methods`). */
  readonly address: Readonly<Record<CAllocatorFunction, number>>;
  /** The tag given to {@link cAllocator}. */
  readonly tag: string;
  /** The heap the blocks come from. */
  readonly heap: Heap;
  /** False once closed. */
  readonly isOpen: boolean;
  /** True when `ptr` is a live block this bridge handed out. */
  owns(ptr: number): boolean;
  /** Live blocks and bytes, peaks and counters of this bridge (see {@link CAllocatorStats}). */
  stats(): CAllocatorStats;
  /**
   * Retires the bridge: from then on its `malloc`, `calloc`, `realloc`, `strdup` and `zalloc`
   * answer NULL to C (counted in `errors`), while `free` of a block it handed out still frees
   * it. The native trampolines are never freed, so a library that still calls them (curl
   * before `curl_global_cleanup`) gets NULL, never a jump into freed code; they stay allocated
   * for the life of the process (make one bridge per library, not per task). A second call
   * does nothing.
   *
   * @throws {Error} while blocks allocated through the bridge are live (the library may still
   *   free or realloc them), unless `force` is true; forced, those blocks stay allocated in
   *   the heap (its `destroy()` frees them).
   */
  close(options?: { force?: boolean }): void;
  /** `using c = cAllocator()` closes it at scope end (throws as `close()` does). */
  [Symbol.dispose](): void;
}

export type { CAllocatorStats };
/** The names of a {@link CAllocator}'s C functions. */
export type CAllocatorFunction = CFunctionName;

class CAllocatorImpl extends CAllocatorCore {
  declare readonly malloc: NativePointer;
  declare readonly calloc: NativePointer;
  declare readonly realloc: NativePointer;
  declare readonly free: NativePointer;
  declare readonly strdup: NativePointer;
  declare readonly usableSize: NativePointer;
  declare readonly goodSize: NativePointer;
  declare readonly zalloc: NativePointer;
  declare readonly zfree: NativePointer;
  declare readonly sqliteMalloc: NativePointer;
  declare readonly sqliteFree: NativePointer;
  declare readonly sqliteRealloc: NativePointer;
  declare readonly sqliteSize: NativePointer;
  declare readonly sqliteRoundup: NativePointer;
  declare readonly sqliteInit: NativePointer;
  declare readonly sqliteShutdown: NativePointer;
  declare readonly heap: HeapImpl;
  constructor(o: Os, heap: HeapImpl, tag: string, checkThread: boolean) {
    super(o, { heap, tag, checkThread });
    for (const name of C_FUNCTIONS) Object.defineProperty(this, name, { value: this.pointers[name], enumerable: true });
  }
  close(options: { force?: boolean } = {}): void {
    this.closeBridge(options?.force === true);
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Makes a C allocator bridge (after Lightpanda's ZigToCurlAllocator): native `malloc`,
 * `calloc`, `realloc`, `free`, `strdup` (plus `usableSize`, `goodSize`, zlib's
 * `zalloc`/`zfree` and SQLite's `sqlite3_mem_methods` entries) that a C library calls for its
 * memory, so that memory is counted, budgeted (`maxCommitted`, `maxReserved`) and freed with a
 * tsmalloc heap. Made with the live backend's callback mechanism (`node:ffi`
 * `registerCallback`, koffi `register`, `Deno.UnsafeCallback`, `bun:ffi` `JSCallback`); load
 * the C library through the same FFI ({@link backend}`().ffi`): on Node 26, C code entered
 * through koffi must not call a `node:ffi` callback (V8 aborts). Only the creating thread may
 * call the functions; bridge libraries that allocate on the calling thread (zlib per stream,
 * SQLite, curl's easy interface), see doc/C-ALLOCATOR.md.
 *
 * @throws {Error} on the buffer backend (no FFI, so no native callbacks).
 * @throws {TypeError} when `heap` is not a live {@link Heap}, `tag` not a string or `checkThread` not a boolean.
 * @throws {RangeError} for an unknown option.
 * @example SQLite's memory in a heap of its own
 * ```ts
 * import { cAllocator, Heap } from "@tsmalloc/tsmalloc";
 *
 * using heap = Heap.create();
 * const c = cAllocator({ heap, tag: "sqlite" });
 * // write c.address.sqliteMalloc ... c.address.sqliteShutdown into a sqlite3_mem_methods,
 * // sqlite3_config(SQLITE_CONFIG_MALLOC, &methods); ...; sqlite3_shutdown();
 * c.close();
 * ```
 */
export function cAllocator(options: CAllocatorOptions = {}): CAllocator {
  if (typeof options !== "object" || options === null) throw new TypeError("tsmalloc: cAllocator: options must be an object");
  for (const k of Object.keys(options)) {
    if (k !== "heap" && k !== "tag" && k !== "checkThread") throw new RangeError(`tsmalloc: cAllocator: unknown option "${k}" (known: heap, tag, checkThread)`);
  }
  if (ctx.detached) throw new Error(DETACHED);
  const h = options.heap ?? heap;
  if (!(h instanceof CoreHeap) || (options.heap !== undefined && !(h as HeapImpl).isLive)) {
    throw new TypeError("tsmalloc: cAllocator: heap must be a live Heap (Heap.create())");
  }
  const tag = options.tag ?? "c";
  if (typeof tag !== "string") throw new TypeError(`tsmalloc: cAllocator: tag must be a string, got ${typeof tag}`);
  const checkThread = options.checkThread ?? false;
  if (typeof checkThread !== "boolean") throw new TypeError(`tsmalloc: cAllocator: checkThread must be a boolean, got ${typeof checkThread}`);
  return new CAllocatorImpl(initialize(), h as HeapImpl, tag, checkThread);
}

// ---------------------------------------------------------------- workers

export type { WorkerHandle };

/**
 * A structured-clonable ticket another worker passes to {@link attach} (in `workerData` or
 * `postMessage`) to allocate from this same allocator: the same arenas, each worker with its
 * own default heap (mimalloc's thread model: a foreign free goes onto the page's atomic
 * thread-free list). Either worker may free, realloc or ask the usable size of the other's
 * blocks. On the buffer backend the handle carries the SharedArrayBuffers.
 *
 * @throws {Error} in secure mode with guard pages (level 1+ on an FFI backend) or with
 *   guarded allocations, which do not support sharing.
 * @example
 * ```ts
 * import { Worker } from "node:worker_threads";
 * import { watchWorker, workerHandle } from "@tsmalloc/tsmalloc";
 *
 * const w = new Worker(new URL("./worker.js", import.meta.url), { workerData: { handle: workerHandle() } });
 * watchWorker(w);
 * ```
 */
export function workerHandle(): WorkerHandle {
  initialize();
  const h = makeHandle(jsThreadId ?? 0);
  // a worker (not the main thread) that created the allocator leaves it at exit too, so a
  // handle it gave out names an allocator whose creator is gone, not one held alive (round 9)
  if ((jsThreadId ?? 0) !== 0) leaveAtExit();
  return h;
}

/**
 * Joins the allocator a {@link workerHandle} came from. Call it before this worker allocates;
 * the backend follows the handle (a different configured backend is an error), and so do the
 * secure level and debugFill: the worker runs as the allocator does (checked against the
 * allocator's shared root), and a worker configured or initialized otherwise is refused.
 *
 * A handle is untrusted input: nothing at its root address is read until the kernel
 * confirms the range is mapped and readable, and the root must then carry the handle's
 * random id, pid and version. A forged handle throws; it never faults.
 *
 * @throws {TypeError} for something that is not a handle.
 * @throws {Error} for a stale, forged or foreign handle ("does not name a live
 *   allocator"), when this worker was configured for another backend or another secure
 *   level or debugFill, in secure mode with guard pages, or after this worker called
 *   {@link detach} (a worker attaches once; calling attach again while attached does nothing).
 * @example
 * ```ts
 * // worker.js, started with { workerData: { handle: workerHandle() } }
 * import { workerData } from "node:worker_threads";
 * import { attach, malloc } from "@tsmalloc/tsmalloc";
 *
 * attach(workerData.handle);  // first: join the parent's allocator
 * const p = malloc(64);       // the parent may free p
 * ```
 */
export function attach(handle: WorkerHandle): void {
  const h = checkHandle(handle);
  if (detached) throw new Error("tsmalloc: attach: this worker has detached and cannot attach again (start a new worker)");
  const want: BackendWant = h.backend === "buffer" ? "buffer" : "ffi";
  if (!isInitialized()) {
    if (wantBackend !== null && wantBackend !== "auto" && wantBackend !== want) {
      throw new Error(`tsmalloc: attach: this worker was configured for the ${wantBackend} backend, the handle is for ${h.backend}`);
    }
    wantBackend = want;
    // the allocator's secure level and debugFill, unless this worker set others (joinHandle
    // checks them against the allocator's root, never trusting the handle alone)
    // (set in this worker's code, even to the default: `configure({ secure: 0 })` is a choice,
    // refused when it differs; TSMALLOC_SECURE is the whole process's and gives way)
    if (!isOptionChosen("secure")) setOptionValue("secure", h.secure);
    if (!isOptionChosen("debugFill")) setOptionValue("debugFill", h.debugFill);
  }
  initialize();
  joinHandle(h, jsThreadId ?? 0);
  leaveAtExit();
}

/** A worker that ends normally leaves the shared allocator by itself (a terminated one needs releaseWorker). */
function leaveAtExit(): void {
  attachedHere = true;
  const proc = (globalThis as { process?: { on?: (ev: string, f: () => void) => void } }).process;
  if (!exitDetachInstalled && typeof proc?.on === "function") {
    exitDetachInstalled = true;
    proc.on("exit", () => {
      if (attachedHere && !detached) {
        try {
          detach();
        } catch { /* exiting anyway */ }
      }
    });
  }
}
let attachedHere = false;
let exitDetachInstalled = false;
let detached = false;

/**
 * This worker leaves the shared allocator: empty pages go back, segments with live blocks
 * are abandoned (other workers reclaim them; the blocks stay valid and freeable anywhere).
 * Afterwards this worker can still free blocks but no longer allocate: `malloc` and the other
 * allocating calls, `Heap.create`, `reserveOsMemory` and `cAllocator` throw an `Error` (its
 * thread tag is gone, so locks it took would look free to others). A worker that ends
 * normally detaches by itself at process exit; a second call does nothing.
 *
 * @example
 * ```ts
 * import { detach } from "@tsmalloc/tsmalloc";
 *
 * // in a worker that attached, before it closes
 * detach();
 * ```
 */
export function detach(): void {
  if (detached) return;
  detachWorker([heap, ...[...liveHeaps].filter((h) => h.isLive)]);
  detached = true;
  liveHeaps.clear();
}

/**
 * A worker that was terminated (or crashed) cannot detach: call this from another worker
 * with its `threadId` (or the Worker object). Once the kernel confirms its OS thread is gone
 * (Deno fires "exit" early and does not stop a busy thread), marks it dead (locks it held
 * become free) and abandons its segments so others reclaim them. Waits up to 200 ms for the
 * thread to stop. True when such a worker was attached and is now released, false when
 * none with that id is attached.
 *
 * Node and Bun set `worker.threadId` to -1 once the worker has exited, so read the id
 * before terminating it (`const id = worker.threadId`), or call {@link watchWorker} right
 * after creating the worker.
 *
 * @throws {TypeError} when given neither a Worker nor a number.
 * @throws {RangeError} for a fractional, NaN or infinite id, or a negative one (a worker that has already exited).
 * @throws {Error} for threadId 0 (the main thread), the caller's own id, or a worker whose
 *   thread still runs after 200 ms (use {@link watchWorker}, which waits). On the Deno buffer
 *   backend without `--allow-all` no thread can be seen to end, so every worker counts as running.
 * @example
 * ```ts
 * import { Worker } from "node:worker_threads";
 * import { releaseWorker, workerHandle } from "@tsmalloc/tsmalloc";
 *
 * const w = new Worker(new URL("./worker.js", import.meta.url), { workerData: { handle: workerHandle() } });
 * const id = w.threadId;      // read it before the worker exits
 * await w.terminate();
 * releaseWorker(id);
 * ```
 */
export function releaseWorker(worker: number | { threadId: number }): boolean {
  const id = typeof worker === "number" ? worker : worker?.threadId;
  if (typeof id !== "number") throw new TypeError("tsmalloc: releaseWorker: pass a Worker or its threadId");
  if (!Number.isSafeInteger(id)) throw new RangeError(`tsmalloc: releaseWorker: threadId ${id} is not a safe integer`);
  if (id < 0) throw new RangeError(exitedIdMessage("releaseWorker", id));
  if (id === 0) releaseDeadWorker(0, false); // throws: the main thread
  if (!isInitialized()) return false;
  // a terminated thread may take a moment to stop (Deno): wait up to 200 ms, then it is live
  for (let waited = 0; ; waited++) {
    const r = releaseDeadWorker(id, false);
    if (r !== "running") return r === "released";
    if (waited >= 200) {
      throw new Error(`tsmalloc: releaseWorker: the worker with threadId ${id} is still running; terminate it first, or use watchWorker(), which waits for its thread to end`);
    }
    pause(1);
  }
}

let pauser: Int32Array | null = null;
function pause(ms: number): void {
  pauser ??= new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(pauser, 0, 0, ms);
}

/** Retries releases whose threads still ran (watchWorker), backing off to 100 ms; slow paths retry too. */
let retrying = false;
/** Until then the timer runs on even when no one is dying yet (a Deno worker whose exit came before it attached). */
let retryUntil = 0;
/** Deno: threadIds whose "exit" came before they had attached, with the time until which the timer looks for their entry. */
const lateExits = new Map<number, number>();
/** How long after an early "exit" (Deno) a late attach is watched for by the timer (slow paths and collect() look later too). */
const LATE_ATTACH_MS = 10_000;
function retryDying(delay: number, until = 0): void {
  retryUntil = Math.max(retryUntil, until);
  if (retrying) return;
  retrying = true;
  const timer: unknown = setTimeout(() => {
    retrying = false;
    const now = Date.now();
    for (const [id, until] of lateExits) {
      // "running" marks it dying (finishDying completes it); "released": done
      const r = releaseDeadWorker(id, true, false);
      if (r !== "none" || now >= until) lateExits.delete(id);
    }
    if (finishDying() > 0 || now < retryUntil) retryDying(Math.min(100, delay * 2));
    else if (retryUntil !== 0) {
      retryUntil = 0;
      expireTombstones(); // every early exit is LATE_ATTACH_MS old: its worker never attached
    }
  }, delay);
  // never keeps the process alive (Deno does not stop a busy terminated worker's thread, so
  // the retry may wait forever); slow paths and collect() retry too
  if (typeof timer === "number") (globalThis as { Deno?: { unrefTimer?(id: number): void } }).Deno?.unrefTimer?.(timer);
  else (timer as { unref?(): void }).unref?.();
}

function exitedIdMessage(fn: string, id: number): string {
  return `tsmalloc: ${fn}: threadId ${id}: the worker has already exited (Node and Bun set worker.threadId to -1 then); ` +
    "read worker.threadId before terminating it, or call watchWorker(worker) when you create it";
}

/**
 * Calls {@link releaseWorker} when the worker exits (normally or terminated). Call it right
 * after creating the worker: it remembers the threadId, which Node and Bun reset on exit.
 * The release happens only once the worker's OS thread is gone; until then the worker stays
 * attached and the release is retried (a timer, any worker's slow path, {@link collect}).
 * Takes a `node:worker_threads` Worker (`on("exit")`) or a Web Worker (`addEventListener`).
 *
 * @throws {TypeError} when `worker` has no numeric threadId.
 * @throws {RangeError} when the threadId is not an integer, or the worker has already exited (threadId -1).
 * @example
 * ```ts
 * import { Worker } from "node:worker_threads";
 * import { watchWorker, workerHandle } from "@tsmalloc/tsmalloc";
 *
 * const w = new Worker(new URL("./worker.js", import.meta.url), { workerData: { handle: workerHandle() } });
 * watchWorker(w);             // its memory is abandoned, not lost, if it is terminated
 * ```
 */
export function watchWorker(worker: { threadId: number; on?: (ev: "exit", f: () => void) => unknown; addEventListener?: (ev: string, f: () => void) => void }): void {
  const id = worker?.threadId;
  if (typeof id !== "number") throw new TypeError("tsmalloc: watchWorker: pass a Worker");
  if (typeof worker.on !== "function" && typeof worker.addEventListener !== "function") {
    throw new TypeError("tsmalloc: watchWorker: pass a Worker (it has neither on() nor addEventListener(), so its exit cannot be seen)");
  }
  if (!Number.isSafeInteger(id)) throw new RangeError(`tsmalloc: watchWorker: threadId ${id} is not a safe integer`);
  if (id === 0) throw new Error("tsmalloc: watchWorker: threadId 0 is the main thread, which is never released (it can detach())");
  if (id < 0) throw new RangeError(exitedIdMessage("watchWorker", id));
  // Deno fires "exit" before the thread has stopped (even before it attached): then the entry
  // stays dying until the thread has, and a worker that attaches later finds its exit recorded
  const early = (globalThis as { Deno?: unknown }).Deno !== undefined;
  const f = () => {
    if (!isInitialized()) return;
    const r = releaseDeadWorker(id, true, early);
    if (r === "running") retryDying(1);
    else if (r === "none" && early) {
      // the worker may still register; it checks for our tombstone, but termination can stop it
      // between registering and checking, so the timer looks for its entry too until the deadline
      lateExits.set(id, Date.now() + LATE_ATTACH_MS);
      retryDying(1, Date.now() + LATE_ATTACH_MS);
    }
  };
  if (typeof worker.on === "function") worker.on("exit", f);
  else worker.addEventListener?.("error", f);
}

/**
 * Process-wide sharing state: whether the allocator is shared between workers, this
 * worker's tag, the count of abandoned segments waiting to be reclaimed, and the locks this
 * worker recovered from dead holders.
 *
 * @example
 * ```ts
 * import { sharedStats } from "@tsmalloc/tsmalloc";
 *
 * const { shared, abandonedSegments } = sharedStats();
 * console.log(shared, abandonedSegments);
 * ```
 */
export function sharedStats(): { shared: boolean; tag: number; abandonedSegments: number; locksRecovered: number } {
  return { shared: ctx.shared, tag: ctx.tag, abandonedSegments: abandonedSegments(), locksRecovered: lockStats().recovered };
}

/** @internal test hooks (not API): the process-wide locks. */
export const _testing = { locks: testLocks };

void ctx;
