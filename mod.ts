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
import { threadId as jsThreadId } from "node:worker_threads";
import { readEnv } from "./ffi/env.ts";
import { selectOs, type BackendWant } from "./ffi/select.ts";
import {
  getOptionValue, initialize, isInitialized, setEnvReader, setOptionValue, setOsProvider,
} from "./src/allocator.ts";
import { arenaExists, reserveArena } from "./src/arena.ts";
import { ctx } from "./src/context.ts";
import { formatStats as formatStatsTable } from "./src/format.ts";
import { type OptionName, type Options, parseSize } from "./src/options.ts";
import { AllocationError, DoubleFreeError, InvalidPointerError } from "./src/errors.ts";
import { type ValidateReport, validateAll } from "./src/check.ts";
import { freeFn } from "./src/secure-free.ts";
import { defaultHeap, Heap as CoreHeap, MAX_ALIGNMENT, usableSize as usableSizeOf } from "./src/heap.ts";
import { bytesAt } from "./src/views.ts";
import { goodSizeOf } from "./src/bins.ts";
import { MAX_ALLOC_SIZE as MAX_SIZE } from "./src/layout.ts";
import { collectStats } from "./src/report.ts";
import type { Stats } from "./src/stats.ts";
import { checkPointer, checkSize } from "./src/validate.ts";
import {
  abandonedSegments, checkHandle, detachWorker, finishDying, joinHandle, lockStats, makeHandle, reclaimAll, releaseDeadWorker,
  testLocks, type WorkerHandle,
} from "./src/shared.ts";

export { AllocationError, DoubleFreeError, InvalidPointerError };
export type { ValidateReport };
export type { Stats };
export type { ArenaStats, OsCallCounts } from "./src/stats.ts";

/** Largest size a single allocation may request; larger requests return 0. */
export const MAX_ALLOC_SIZE: number = MAX_SIZE;
/** Largest alignment `mallocAligned` honours; larger returns 0. */
export const MAX_ALIGN: number = MAX_ALIGNMENT;

/** Options for {@link configure}; call it before the first allocation. */
export interface ConfigureOptions {
  /** "auto" (default: FFI when permitted, else buffer), "ffi" (fail loudly without FFI) or "buffer". */
  backend?: BackendWant;
  /**
   * Secure level 0–4 (0 = off; also TSMALLOC_SECURE): 1 guard pages around segment metadata
   * and after each segment's last page, 2 also encoded free lists (a corrupted link is
   * reported, never followed), 3 also random free-list order and DoubleFreeError, 4 also a
   * guard page after every page. See doc/SECURE.md.
   */
  secure?: number;
  /** Fill fresh blocks with 0xD0 and freed blocks with 0xDF (also TSMALLOC_DEBUG_FILL). */
  debugFill?: boolean;
}

let wantBackend: BackendWant | null = null;

function envBackend(): BackendWant {
  const v = readEnv("TSMALLOC_BACKEND");
  if (v === undefined || v === "") return "auto";
  if (v !== "auto" && v !== "ffi" && v !== "buffer") throw new RangeError(`tsmalloc: TSMALLOC_BACKEND must be auto, ffi or buffer, got "${v}"`);
  return v;
}

setEnvReader(readEnv);
setOsProvider(() => {
  const o = selectOs(wantBackend ?? envBackend());
  if (ctx.options.showStats) installExitHook();
  return o;
});

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
    setOptionValue("secure", options.secure);
  }
  if (options.debugFill !== undefined) {
    if (typeof options.debugFill !== "boolean") throw new TypeError(`tsmalloc: debugFill must be a boolean, got ${String(options.debugFill)}`);
    setOptionValue("debugFill", options.debugFill);
  }
  if (options.backend === "ffi") initialize(); // fail loudly now, not at the first malloc
}

/** What {@link backend} reports. */
export interface BackendInfo {
  kind: "node" | "deno" | "bun" | "buffer";
  reason: string;
  /**
   * Guard pages really fault (the backend can make memory inaccessible). false on the buffer
   * backend: there secure-mode guard pages and guarded allocations are a no-op (the reason
   * says so when they were asked for); the other secure features work on every backend.
   */
  guardPages: boolean;
}

/** Which backend is live and why (initializes the allocator if needed). */
export function backend(): BackendInfo {
  const o = initialize();
  let reason = o.reason;
  if (!o.canProtect && (ctx.options.secure >= 1 || ctx.options.guardedSampleRate > 0)) {
    reason += "; guard pages unavailable: this backend cannot protect memory, so secure-mode guard pages and guarded allocations are a no-op";
  }
  return { kind: o.kind, reason, guardPages: o.canProtect };
}

/**
 * Walks every page and huge block of this worker and checks the free-list invariants
 * (decoding encoded lists; under debugFill also that free blocks were not written). Also
 * reports corrupted free lists secure mode detected and dropped at run time.
 */
export function validate(): ValidateReport {
  return validateAll();
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
  freeFn(ptr);
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

/** A snapshot of the allocator's accounting, in bytes: plain JSON-able data. */
export function stats(): Stats {
  return collectStats();
}

/** Stats as a readable table (the current ones unless given). */
export function formatStats(s: Stats = collectStats()): string {
  return formatStatsTable(s);
}

/** Prints {@link formatStats} (to the console by default; pass a writer for a line-oriented sink). */
export function printStats(write: (text: string) => void = (t) => console.log(t)): void {
  write(formatStats());
}

/** Frees empty pages of every heap; `force` also purges freed memory now instead of after the delay. */
export function collect(force = false): void {
  if (!isInitialized()) return;
  const share = ctx.shared && !detached;
  if (share) {
    finishDying(); // releases waiting for a thread to stop
    if (force) reclaimAll(heap); // abandoned segments: empty ones go back below, live ones join this heap
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

/** Option names and value types for {@link getOption} / {@link setOption}. */
export type { OptionName };
export type OptionValues = Omit<Options, "arenaMax">;

/**
 * The current value of an option. The TSMALLOC_<NAME> environment variables (e.g.
 * TSMALLOC_PURGE_DELAY) are read once, at the first use of the allocator or of the options.
 * Unknown names throw RangeError.
 */
export function getOption<K extends OptionName>(name: K): OptionValues[K] {
  return getOptionValue(name) as OptionValues[K];
}

/**
 * Sets an option at once (overrides its environment variable). Booleans take booleans,
 * integer options numbers, sizes a byte count or a string like "64MiB". A wrong type
 * throws TypeError, an unknown name or a value out of range RangeError.
 */
export function setOption<K extends OptionName>(name: K, value: OptionValues[K] | (OptionValues[K] extends number ? string : never)): void {
  setOptionValue(name, value);
  if (name === "showStats" && value === true) installExitHook();
}

let exitHookInstalled = false;
/** showStats: print the stats table to stderr when the process exits (checked at exit). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const report = function tsmallocShowStats(): void {
    if (ctx.options.showStats && isInitialized()) console.error(formatStats());
  };
  const g = globalThis as {
    addEventListener?: (type: string, f: () => void) => void;
    process?: { on?: (ev: string, f: () => void) => void };
  };
  // Node, Bun and Deno 2 all emit process "exit"; a bare Deno-like host gets "unload"
  if (typeof g.process?.on === "function") g.process.on("exit", report);
  else if (typeof g.addEventListener === "function") g.addEventListener("unload", report);
}

// ---------------------------------------------------------------- arenas

/** Options for {@link reserveOsMemory}. */
export interface ReserveOptions {
  /** Only heaps created with `Heap.create({ arena: id })` use it, and they use nothing else. */
  exclusive?: boolean;
}

/**
 * Reserves `size` bytes (a byte count or a string like "256MiB"; rounded up to 4 MiB
 * segments) as an arena up front and returns its id. A non-exclusive arena serves every
 * heap; an exclusive one only heaps bound to it with `Heap.create({ arena: id })`, whose
 * allocations return 0 when it is full instead of taking memory elsewhere. Counts against
 * maxReserved; throws AllocationError when the budget or the OS refuses.
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

/** Options for {@link Heap.create}. */
export interface HeapOptions {
  /** An arena id from {@link reserveOsMemory}: the heap allocates only from that arena (0 when it is full). */
  arena?: number;
}

const liveHeaps = new Set<Heap>();

/** A first-class heap: allocate from it, then `destroy()` it to free everything at once. */
export class Heap extends CoreHeap {
  /** Creates a heap owned by the calling worker, optionally bound to an arena. */
  static create(options: HeapOptions = {}): Heap {
    if (typeof options !== "object" || options === null) throw new TypeError("tsmalloc: Heap.create: options must be an object");
    for (const k of Object.keys(options)) if (k !== "arena") throw new RangeError(`tsmalloc: Heap.create: unknown option "${k}" (known: arena)`);
    const arena = options.arena ?? 0;
    if (options.arena !== undefined) {
      if (typeof arena !== "number") throw new TypeError(`tsmalloc: Heap.create: arena must be an arena id (number), got ${typeof arena}`);
      if (!Number.isInteger(arena) || arena <= 0 || !arenaExists(arena)) {
        throw new RangeError(`tsmalloc: Heap.create: no arena with id ${arena} (reserveOsMemory returns arena ids)`);
      }
    }
    const h = new Heap(arena);
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

// ---------------------------------------------------------------- workers

export type { WorkerHandle };

/**
 * A structured-clonable ticket another worker passes to {@link attach} (in `workerData` or
 * `postMessage`) to allocate from this same allocator: the same arenas, each worker with its
 * own default heap. Either worker may free, realloc or ask the usable size of the other's
 * blocks. On the buffer backend the handle carries the SharedArrayBuffers.
 */
export function workerHandle(): WorkerHandle {
  initialize();
  return makeHandle(jsThreadId ?? 0);
}

/**
 * Joins the allocator a {@link workerHandle} came from. Call it before this worker allocates;
 * the backend follows the handle (a different configured backend is an error). Malformed,
 * stale or foreign handles throw.
 */
export function attach(handle: WorkerHandle): void {
  const h = checkHandle(handle);
  const want: BackendWant = h.backend === "buffer" ? "buffer" : "ffi";
  if (!isInitialized()) {
    if (wantBackend !== null && wantBackend !== "auto" && wantBackend !== want) {
      throw new Error(`tsmalloc: attach: this worker was configured for the ${wantBackend} backend, the handle is for ${h.backend}`);
    }
    wantBackend = want;
  }
  initialize();
  joinHandle(h, jsThreadId ?? 0);
  attachedHere = true;
  const proc = (globalThis as { process?: { on?: (ev: string, f: () => void) => void } }).process;
  // a worker that ends normally leaves by itself (a terminated one needs releaseWorker)
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
 * Afterwards this worker can still free blocks but no longer allocate.
 */
export function detach(): void {
  if (detached) return;
  detachWorker([heap, ...[...liveHeaps].filter((h) => h.isLive)]);
  detached = true;
  liveHeaps.clear();
}

/**
 * A worker that was terminated (or crashed) cannot detach: call this from another worker
 * with its `threadId` (or the Worker object). Marks it dead (locks it held become free) and
 * abandons its segments so others reclaim them. True when such a live worker was attached.
 *
 * Node and Bun set `worker.threadId` to -1 once the worker has exited, so read the id
 * before terminating it (`const id = worker.threadId`), or call {@link watchWorker} right
 * after creating the worker; a negative id throws RangeError instead of releasing nothing.
 */
export function releaseWorker(worker: number | { threadId: number }): boolean {
  const id = typeof worker === "number" ? worker : worker?.threadId;
  if (typeof id !== "number" || !Number.isInteger(id)) throw new TypeError("tsmalloc: releaseWorker: pass a Worker or its threadId");
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
function retryDying(delay: number): void {
  if (retrying) return;
  retrying = true;
  setTimeout(() => {
    retrying = false;
    if (finishDying() > 0) retryDying(Math.min(100, delay * 2));
  }, delay);
}

function exitedIdMessage(fn: string, id: number): string {
  return `tsmalloc: ${fn}: threadId ${id}: the worker has already exited (Node and Bun set worker.threadId to -1 then); ` +
    "read worker.threadId before terminating it, or call watchWorker(worker) when you create it";
}

/**
 * Calls {@link releaseWorker} when the worker exits (normally or terminated). Call it right
 * after creating the worker: it remembers the threadId, which Node and Bun reset on exit.
 */
export function watchWorker(worker: { threadId: number; on?: (ev: "exit", f: () => void) => unknown; addEventListener?: (ev: string, f: () => void) => void }): void {
  const id = worker.threadId;
  if (typeof id !== "number" || !Number.isInteger(id)) throw new TypeError("tsmalloc: watchWorker: pass a Worker");
  if (id < 0) throw new RangeError(exitedIdMessage("watchWorker", id));
  const f = () => {
    // Deno fires "exit" before the thread has stopped: then it stays dying until it has
    if (isInitialized() && releaseDeadWorker(id, true) === "running") retryDying(1);
  };
  if (typeof worker.on === "function") worker.on("exit", f);
  else worker.addEventListener?.("error", f);
}

/** Process-wide sharing state: abandoned segments waiting to be reclaimed, locks recovered by this worker. */
export function sharedStats(): { shared: boolean; tag: number; abandonedSegments: number; locksRecovered: number } {
  return { shared: ctx.shared, tag: ctx.tag, abandonedSegments: abandonedSegments(), locksRecovered: lockStats().recovered };
}

/** @internal test hooks (not API): the process-wide locks. */
export const _testing = { locks: testLocks };

void ctx;
