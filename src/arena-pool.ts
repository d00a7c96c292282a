/**
 * Bump arenas for task lifetimes, pooled in four buckets (after Lightpanda's ArenaPool.zig).
 *
 * An arena owns a list of chunks, each an ordinary block of a tsmalloc heap (so chunks are
 * counted in stats() like any block); `alloc` bumps `cur` towards `end` inside the current
 * chunk with integer math only: no JS object and no FFI call per allocation. A single
 * arena block cannot be freed; `reset` gives everything back at once and keeps chunks up to
 * the bucket's retain limit; `release` does the same and parks the chunks on the bucket's
 * free list, so the next acquire of that bucket reuses them without touching the heap or
 * the OS.
 *
 * Invariants:
 * - a live arena: chunks[0..idx] are in use, chunks[idx+1..] retained and empty;
 *   chunk idx spans [start - CHUNK_HEAD, end), blocks are bumped from start, cur is in
 *   [start, end]; fill[i] (i < idx) is the end of what chunk i handed out. No arena block
 *   starts where its chunk (a heap block) starts.
 * - only handles in `arenas` (made by acquire) are arenas: release/contains checks never trust
 *   an object's prototype chain (Object.create(arena) and Proxies are refused).
 * - a released arena has end = 0 and no chunks: every alloc takes the slow path and throws,
 *   and the handle never reaches memory the pool gave to another task (each acquire returns
 *   a fresh handle; only the chunk lists are pooled).
 * - the leak counter of a tag = arenas acquired with that tag and not yet released.
 */
import { MAX_ALLOC_SIZE } from "./layout.ts";
import { defaultHeap, destroyHooks, DETACHED, Heap as CoreHeap } from "./heap.ts";
import { ctx } from "./context.ts";
import { AllocationError } from "./errors.ts";
import { withTrackTag } from "./track.ts";

/**
 * The four buckets of an {@link ArenaPool}, smallest first (Lightpanda's `BucketSize`).
 *
 * @example
 * ```ts
 * import { type ArenaBucket, ArenaPool } from "@tsmalloc/tsmalloc";
 *
 * using pool = new ArenaPool();
 * const bucket: ArenaBucket = "medium";
 * using arena = pool.acquire(bucket, "page");
 * ```
 */
export type ArenaBucket = "tiny" | "small" | "medium" | "large";

/**
 * Per-bucket limits of an {@link ArenaPool} (bytes and a count).
 *
 * @example
 * ```ts
 * import { ArenaPool, type ArenaBucketConfig } from "@tsmalloc/tsmalloc";
 *
 * const small: ArenaBucketConfig = { retain: 128 * 1024, maxFree: 256 };
 * using pool = new ArenaPool({ small });
 * console.log(pool.config("small")); // { retain: 131072, maxFree: 256 }
 * ```
 */
export interface ArenaBucketConfig {
  /** Bytes of chunks an arena keeps after reset/release (the rest goes back to the heap). */
  retain?: number;
  /** Arenas kept on the bucket's free list; a release beyond it frees the arena's chunks. */
  maxFree?: number;
}

/**
 * Where an {@link ArenaPool} takes its chunks from: any tsmalloc {@link Heap} fits.
 *
 * @example
 * ```ts
 * import { ArenaPool, type ChunkHeap, Heap } from "@tsmalloc/tsmalloc";
 *
 * const heap: ChunkHeap = Heap.create({ tag: "arenas" });
 * using pool = new ArenaPool({ heap });
 * ```
 */
export interface ChunkHeap {
  /** Allocates `size` bytes or throws AllocationError. */
  alloc(size: number): number;
  /** Frees a block from `alloc`. */
  free(ptr: number): void;
}

/**
 * Configuration of an {@link ArenaPool}; every field is optional. Defaults per bucket
 * (retain limit / free-list length): tiny 4 KiB / 128, small 64 KiB / 64, medium 1 MiB / 16,
 * large 8 MiB / 4.
 *
 * @example
 * ```ts
 * import { ArenaPool, type ArenaPoolConfig } from "@tsmalloc/tsmalloc";
 *
 * const config: ArenaPoolConfig = { large: { retain: 32 << 20, maxFree: 2 }, onLeak: "warn" };
 * using pool = new ArenaPool(config);
 * ```
 */
export interface ArenaPoolConfig {
  /** The "tiny" bucket's limits (default retain 4 KiB, maxFree 128). */
  tiny?: ArenaBucketConfig;
  /** The "small" bucket's limits (default retain 64 KiB, maxFree 64). */
  small?: ArenaBucketConfig;
  /** The "medium" bucket's limits (default retain 1 MiB, maxFree 16). */
  medium?: ArenaBucketConfig;
  /** The "large" bucket's limits (default retain 8 MiB, maxFree 4). */
  large?: ArenaBucketConfig;
  /**
   * Where chunks come from (default: this worker's default heap). Destroying that heap frees
   * every chunk: arenas still acquired must not be used after it, and acquire then throws.
   */
  heap?: ChunkHeap;
  /** What `close()` does when a tag still holds arenas: "throw" (default) or "warn" (to console.error). */
  onLeak?: "throw" | "warn";
}

/**
 * One group of {@link ArenaPool.leaks}: arenas of one tag acquired and not released.
 *
 * @example
 * ```ts
 * import { type ArenaLeak, ArenaPool } from "@tsmalloc/tsmalloc";
 *
 * const pool = new ArenaPool({ onLeak: "warn" });
 * pool.acquire("tiny", "request");        // never released
 * const leaks: ArenaLeak[] = pool.leaks(); // [{ tag: "request", count: 1, bytes: 0 }]
 * pool.close();                           // warns on stderr
 * ```
 */
export interface ArenaLeak {
  /** The tag given to `acquire`. */
  tag: string;
  /** Arenas of that tag still acquired. */
  count: number;
  /** Bytes of chunks those arenas hold. */
  bytes: number;
}

/**
 * `stats().arenaPools`: totals over this worker's open pools (bytes unless a count).
 *
 * @example
 * ```ts
 * import { type ArenaPoolStats, stats } from "@tsmalloc/tsmalloc";
 *
 * const s: ArenaPoolStats = stats().arenaPools;
 * console.log(s.live, s.pooled, s.capacity);
 * ```
 */
export interface ArenaPoolStats {
  /** Pools created and not closed. */
  pools: number;
  /** Arenas acquired and not released. */
  live: number;
  /** Arenas parked on bucket free lists. */
  pooled: number;
  /** Bytes of chunks held by live and pooled arenas (a part of `inUse`). */
  capacity: number;
  /** Bytes handed out by live arenas (alignment padding included). */
  used: number;
  /** acquire() calls. */
  acquires: number;
  /** acquire() calls that took an arena with chunks from a bucket's free list. */
  reused: number;
  /** release() calls (dispose included). */
  releases: number;
  /** Chunks allocated from the heap. */
  chunkAllocs: number;
  /** Chunks freed to the heap. */
  chunkFrees: number;
}

const KiB = 1024, MiB = 1024 * KiB;

/** Defaults for request/page-sized work: retain limit (bytes) and free-list length per bucket. */
export const ARENA_BUCKET_DEFAULTS: Readonly<Record<ArenaBucket, Required<ArenaBucketConfig>>> = {
  tiny: { retain: 4 * KiB, maxFree: 128 },
  small: { retain: 64 * KiB, maxFree: 64 },
  medium: { retain: 1 * MiB, maxFree: 16 },
  large: { retain: 8 * MiB, maxFree: 4 },
};
const BUCKETS: readonly ArenaBucket[] = ["tiny", "small", "medium", "large"];
/** Smallest and largest chunk an arena grows by (a larger request gets a chunk of its own size). */
const CHUNK_MIN = 4 * KiB, CHUNK_MAX = 8 * MiB;
/**
 * Bytes at the start of every chunk an arena never hands out: a chunk is a heap block, so no
 * arena block may start where it starts (free/realloc/usableSize of an arena block must throw
 * InvalidPointerError, never free the chunk under the arena's other blocks).
 */
const CHUNK_HEAD = 16;
/** Largest alignment arena.alloc honours (a chunk is padded by it). */
const ARENA_MAX_ALIGN = 1 * MiB;

const totals = { acquires: 0, reused: 0, releases: 0, chunkAllocs: 0, chunkFrees: 0 };
const openPools = new Set<ArenaPool>();

/** stats().arenaPools: totals over this worker's open pools. */
export function arenaPoolStats(): ArenaPoolStats {
  let live = 0, pooled = 0, capacity = 0, used = 0;
  for (const pool of openPools) {
    for (const a of pool.liveArenas) {
      live++;
      capacity += a.capacity;
      used += a.used;
    }
    for (const b of BUCKETS) {
      for (const r of pool.free[b]) {
        pooled++;
        for (const s of r.sizes) capacity += s;
      }
    }
  }
  return { pools: openPools.size, live, pooled, capacity, used, ...totals };
}

/** The chunk lists an arena owns; what a bucket's free list holds between tasks. */
interface Chunks {
  addrs: number[];
  sizes: number[];
}

function checkBytes(fn: string, name: string, v: unknown, max: number): number {
  if (typeof v !== "number") throw new TypeError(`tsmalloc: ${fn}: ${name} must be a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`tsmalloc: ${fn}: ${name} must be an integer in [0, ${max}], got ${v}`);
  return v;
}

/**
 * A bump arena from {@link ArenaPool.acquire} (the Zig `ArenaAllocator` that Lightpanda's
 * pool hands out). `alloc` returns real addresses in tsmalloc memory (use them with
 * `bytes`/`dataView`/`pointer` and in FFI calls), bumped inside chunks taken from a heap:
 * no FFI call and no JS object per allocation. A single arena block cannot be freed: the
 * whole arena is, by `reset()`, `pool.release(arena)` or `using`. Sizes in bytes.
 *
 * @example
 * ```ts
 * import { ArenaPool, bytes } from "@tsmalloc/tsmalloc";
 *
 * using pool = new ArenaPool();
 * {
 *   using arena = pool.acquire("small", "request"); // released at the end of the block
 *   const p = arena.alloc(256);
 *   bytes(p, 256).fill(1);
 *   const q = arena.alloc(100, 64);                  // 64-byte aligned
 *   console.assert(arena.contains(p) && q % 64 === 0 && arena.used >= 356);
 * }
 * ```
 */
export class Arena {
  /** Next free byte of the current chunk. */
  private cur = 0;
  /** End of the current chunk; 0 when the arena has no chunk or was released. */
  private end = 0;
  private start = 0;
  private idx = -1;
  private usedBefore = 0;
  private fill: number[] = [];
  private chunks: Chunks;
  private released = false;
  private heapGone = false;
  /** The pool that handed it out. */
  readonly pool: ArenaPool;
  /** The bucket it came from. */
  readonly bucket: ArenaBucket;
  /** The tag given to acquire (the leak-counter key). */
  readonly tag: string;

  /** @internal Made by ArenaPool.acquire only. */
  constructor(pool: ArenaPool, bucket: ArenaBucket, tag: string, chunks: Chunks, key: symbol) {
    if (key !== ARENA_KEY) throw new TypeError("tsmalloc: arenas are made by ArenaPool.acquire");
    this.pool = pool;
    this.bucket = bucket;
    this.tag = tag;
    this.chunks = chunks;
    arenas.add(this);
    if (chunks.addrs.length > 0) this.enter(0);
  }

  /**
   * Bump-allocates `size` bytes (0 counts as 1, so every address is distinct) at a multiple
   * of `align` (a power of two up to 1 MiB; default 16). Grows by a new chunk from the heap
   * when the current one is full.
   *
   * @throws {TypeError} when size or align is not a number.
   * @throws {RangeError} for a negative, fractional or too large size, or an align that is
   *   not a power of two in [1, 1 MiB].
   * @throws {Error} after the arena was released (or its pool closed).
   * @throws {AllocationError} when the heap cannot give a chunk.
   */
  alloc(size: number, align = 16): number {
    // fast path: integer size, small power-of-two align, room in the chunk (released: end = 0)
    if (typeof size === "number" && typeof align === "number" && (size >>> 0) === size && (align >>> 0) === align && (align & (align - 1)) === 0 && align !== 0 && align <= 1048576) {
      const p = this.cur + ((-this.cur) & (align - 1));
      const q = p + (size === 0 ? 1 : size);
      if (q <= this.end) {
        this.cur = q;
        return p;
      }
    }
    return this.allocSlow(size, align);
  }

  /** alloc when the current chunk has no room, or for arguments the fast path does not take. */
  private allocSlow(size: number, align: number): number {
    checkBytes("arena.alloc", "size", size, MAX_ALLOC_SIZE);
    if (typeof align !== "number") throw new TypeError(`tsmalloc: arena.alloc: align must be a number, got ${typeof align}`);
    if (!Number.isInteger(align) || align <= 0 || (align & (align - 1)) !== 0 || align > ARENA_MAX_ALIGN) {
      throw new RangeError(`tsmalloc: arena.alloc: align must be a power of two in [1, ${ARENA_MAX_ALIGN}], got ${align}`);
    }
    if (this.released) throw new Error(`tsmalloc: arena.alloc: the arena (tag "${this.tag}") was released`);
    if (this.heapGone) throw new Error(`tsmalloc: arena.alloc: the pool's heap was destroyed, and every block of the arena (tag "${this.tag}") with it`);
    const n = size === 0 ? 1 : size;
    const p0 = this.cur + ((-this.cur) & (align - 1));
    if (this.end !== 0 && p0 + n <= this.end) { // (sizes past 2^32 reach here)
      this.cur = p0 + n;
      return p0;
    }
    // a retained chunk that fits, else a new one (at least double the last, padded for align)
    const need = n + Math.max(CHUNK_HEAD, align);
    const c = this.chunks;
    let i = this.idx + 1;
    while (i < c.addrs.length && c.sizes[i] < need) i++;
    if (i >= c.addrs.length) {
      const last = c.sizes.length > 0 ? c.sizes[c.sizes.length - 1] : 0;
      const first = Math.max(CHUNK_MIN, Math.min(this.pool.retainOf(this.bucket), 1 * MiB));
      const grow = Math.max(need, last === 0 ? first : Math.min(last * 2, CHUNK_MAX));
      const chunk = this.pool.chunkAlloc(grow);
      c.addrs.push(chunk);
      c.sizes.push(grow);
      i = c.addrs.length - 1;
    }
    // skipped retained chunks stay in the list (empty) for later requests of this task
    if (this.idx >= 0) this.leave();
    this.enter(i);
    const p = this.cur + ((-this.cur) & (align - 1));
    this.cur = p + n;
    return p;
  }

  /** Makes chunk i current (chunks after the old current one and before i stay empty). */
  private enter(i: number): void {
    const c = this.chunks;
    // move chunk i to idx+1 so chunks[0..idx] are exactly the used ones
    const j = this.idx + 1;
    if (i !== j) {
      const a = c.addrs[i], s = c.sizes[i];
      c.addrs.splice(i, 1);
      c.sizes.splice(i, 1);
      c.addrs.splice(j, 0, a);
      c.sizes.splice(j, 0, s);
    }
    this.idx = j;
    this.start = c.addrs[j] + CHUNK_HEAD;
    this.cur = this.start;
    this.end = c.addrs[j] + c.sizes[j];
  }

  /** Closes the current chunk: its fill is recorded for used/contains. */
  private leave(): void {
    this.fill[this.idx] = this.cur;
    this.usedBefore += this.cur - this.start;
  }

  /**
   * Frees every block of this arena at once; chunks up to the bucket's retain limit are kept
   * (empty) for the next allocations, the rest go back to the heap.
   *
   * @throws {Error} after the arena was released.
   */
  reset(): void {
    if (this.released) throw new Error(`tsmalloc: arena.reset: the arena (tag "${this.tag}") was released`);
    this.trim(this.pool.retainOf(this.bucket));
  }

  /** @internal reset keeping chunks while their total is <= retain (in order). */
  trim(retain: number): void {
    const c = this.chunks;
    let kept = 0, n = 0;
    while (n < c.sizes.length && kept + c.sizes[n] <= retain) kept += c.sizes[n++];
    for (let i = n; i < c.addrs.length; i++) this.pool.chunkFree(c.addrs[i]);
    c.addrs.length = n;
    c.sizes.length = n;
    this.fill.length = 0;
    this.usedBefore = 0;
    this.idx = -1;
    this.cur = this.start = this.end = 0;
    if (n > 0) this.enter(0);
  }

  /**
   * @internal The pool's heap is being destroyed: its chunks are about to be freed, so this
   * arena may never bump into them again. Returns how many chunks it held.
   */
  heapDestroyed(): number {
    const n = this.chunks.addrs.length;
    this.chunks = { addrs: [], sizes: [] };
    this.heapGone = true;
    this.fill.length = 0;
    this.usedBefore = 0;
    this.idx = -1;
    this.cur = this.start = this.end = 0;
    return n;
  }

  /** @internal Detaches the chunks (release): the handle is dead from here on. */
  detach(): Chunks {
    const c = this.chunks;
    this.chunks = { addrs: [], sizes: [] };
    this.released = true;
    this.fill.length = 0;
    this.usedBefore = 0;
    this.idx = -1;
    this.cur = this.start = this.end = 0;
    return c;
  }

  /** True once released (by pool.release, dispose or pool.close). */
  get isReleased(): boolean {
    return this.released;
  }

  /** Bytes handed out since the last reset (alignment padding included). */
  get used(): number {
    return this.idx < 0 ? 0 : this.usedBefore + (this.cur - this.start);
  }

  /** Bytes of chunks this arena holds (used, retained and the unused rest of the current chunk). */
  get capacity(): number {
    let s = 0;
    for (const x of this.chunks.sizes) s += x;
    return s;
  }

  /**
   * True when `ptr` lies in memory this arena handed out since its last reset (any address
   * inside a block, not only its start); false for anything else, including non-numbers.
   */
  contains(ptr: number): boolean {
    if (typeof ptr !== "number" || this.idx < 0) return false;
    const a = this.chunks.addrs;
    for (let i = 0; i < this.idx; i++) if (ptr >= a[i] + CHUNK_HEAD && ptr < this.fill[i]) return true;
    return ptr >= this.start && ptr < this.cur;
  }

  /** `using arena = pool.acquire(...)` releases it at scope end (nothing if already released). */
  [Symbol.dispose](): void {
    if (!this.released) this.pool.release(this);
  }
}

const ARENA_KEY = Symbol("ArenaPool");
/** Every Arena made by acquire (a brand: `instanceof` would accept Object.create(arena)). */
const arenas = new WeakSet<Arena>();

/**
 * Arenas for task lifetimes in four buckets, each with a retain limit (bytes kept when an
 * arena is released) and a maximum free-list length, and a leak counter per tag: after
 * Lightpanda's `ArenaPool.zig`. `acquire(bucketOrSizeHint, tag)` hands out an {@link Arena};
 * `release` (or `using`) resets it to the retain limit and keeps it for the next task, so a
 * steady stream of tasks makes no heap or OS call. `leaks()` lists tags with arenas not
 * released; `close()` frees everything and throws (or warns) when there are any. Chunks are
 * ordinary tsmalloc blocks, counted in `stats()` (and in `stats().arenaPools`).
 * A pool belongs to the worker that created it.
 *
 * @example
 * ```ts
 * import { ArenaPool, bytes } from "@tsmalloc/tsmalloc";
 *
 * using pool = new ArenaPool();               // closed at scope end: throws if a tag leaked
 * for (let task = 0; task < 3; task++) {
 *   using arena = pool.acquire(64 * 1024, "request"); // size hint: the "small" bucket
 *   for (let i = 0; i < 100; i++) bytes(arena.alloc(16 + i), 16).fill(i);
 * }                                           // released: the next task reuses the memory
 * console.log(pool.leaks());                  // []
 * ```
 */
export class ArenaPool {
  /** @internal per bucket: chunk lists of released arenas, ready for reuse. */
  readonly free: Record<ArenaBucket, Chunks[]> = { tiny: [], small: [], medium: [], large: [] };
  /** @internal arenas acquired and not released. */
  readonly liveArenas: Set<Arena> = new Set();
  private readonly limits: Record<ArenaBucket, Required<ArenaBucketConfig>>;
  private readonly heap: ChunkHeap;
  private readonly onLeak: "throw" | "warn";
  private readonly tags = new Map<string, number>();
  private closed = false;
  /** Set by the heap's destroy hook: every chunk was freed with the heap. */
  private heapDestroyed = false;
  private onHeapDestroy: (() => void) | null = null;

  /**
   * A pool with the given limits (see {@link ArenaPoolConfig}); chunks come from `config.heap`
   * or this worker's default heap.
   *
   * @throws {TypeError} for a config that is not an object, or fields of the wrong type.
   * @throws {RangeError} for unknown fields, negative or fractional limits.
   */
  constructor(config: ArenaPoolConfig = {}) {
    if (typeof config !== "object" || config === null) throw new TypeError("tsmalloc: new ArenaPool: config must be an object");
    const known = [...BUCKETS, "heap", "onLeak"];
    for (const k of Object.keys(config)) if (!known.includes(k)) throw new RangeError(`tsmalloc: new ArenaPool: unknown option "${k}" (known: ${known.join(", ")})`);
    const limits = {} as Record<ArenaBucket, Required<ArenaBucketConfig>>;
    for (const b of BUCKETS) {
      const given = config[b] ?? {};
      if (typeof given !== "object" || given === null) throw new TypeError(`tsmalloc: new ArenaPool: ${b} must be an object`);
      for (const k of Object.keys(given)) if (k !== "retain" && k !== "maxFree") throw new RangeError(`tsmalloc: new ArenaPool: unknown option "${b}.${k}" (known: retain, maxFree)`);
      limits[b] = {
        retain: checkBytes("new ArenaPool", `${b}.retain`, given.retain ?? ARENA_BUCKET_DEFAULTS[b].retain, MAX_ALLOC_SIZE),
        maxFree: checkBytes("new ArenaPool", `${b}.maxFree`, given.maxFree ?? ARENA_BUCKET_DEFAULTS[b].maxFree, 2 ** 31 - 1),
      };
    }
    this.limits = limits;
    const heap = config.heap ?? defaultHeap();
    if (typeof heap !== "object" || heap === null || typeof heap.alloc !== "function" || typeof heap.free !== "function") {
      throw new TypeError("tsmalloc: new ArenaPool: heap must be a Heap");
    }
    this.heap = heap;
    if (heap instanceof CoreHeap) {
      // destroying the heap frees every chunk: live arenas stop, pooled chunks are dropped
      // (counted as freed); close() removes the hook, so a closed pool is not kept alive
      this.onHeapDestroy = () => {
        this.heapDestroyed = true;
        for (const a of this.liveArenas) totals.chunkFrees += a.heapDestroyed();
        for (const b of BUCKETS) {
          for (const c of this.free[b]) totals.chunkFrees += c.addrs.length;
          this.free[b].length = 0;
        }
      };
      const hooks = destroyHooks.get(heap) ?? [];
      hooks.push(this.onHeapDestroy);
      destroyHooks.set(heap, hooks);
    }
    const onLeak = config.onLeak ?? "throw";
    if (onLeak !== "throw" && onLeak !== "warn") throw new RangeError(`tsmalloc: new ArenaPool: onLeak must be "throw" or "warn", got ${String(onLeak)}`);
    this.onLeak = onLeak;
    openPools.add(this);
  }

  /** The limits in effect for a bucket (defaults merged with the config). */
  config(bucket: ArenaBucket): Required<ArenaBucketConfig> {
    this.bucketOf(bucket, "config");
    return { ...this.limits[bucket] };
  }

  /** @internal */
  retainOf(bucket: ArenaBucket): number {
    return this.limits[bucket].retain;
  }

  /** @internal a chunk from the heap, tagged for leak tracking as the pool's. */
  chunkAlloc(size: number): number {
    const p = withTrackTag("ArenaPool", () => this.heap.alloc(size));
    // a ChunkHeap must throw when it has no memory; 0 (or junk) must never become an arena block
    if (typeof p !== "number" || p <= 0) throw new AllocationError(size, null, `the pool's heap returned ${String(p)} for a ${size}-byte chunk`);
    totals.chunkAllocs++;
    return p;
  }

  /**
   * @internal A chunk goes back to the heap (not when that heap was destroyed: it freed them
   * all). A deleted heap's blocks live on in the default heap, and a detached worker can still
   * free: Heap.free frees any block, so those chunks are freed too.
   */
  chunkFree(p: number): void {
    if (this.heapDestroyed) return;
    this.heap.free(p);
    totals.chunkFrees++;
  }

  /** False once the chunk heap (a tsmalloc Heap) was destroyed or deleted. */
  private heapLive(): boolean {
    return (this.heap as { isLive?: boolean }).isLive !== false;
  }

  /** The bucket for a name or a size hint (bytes). */
  private bucketOf(x: unknown, fn: string): ArenaBucket {
    if (typeof x === "string") {
      if ((BUCKETS as readonly string[]).includes(x)) return x as ArenaBucket;
      throw new RangeError(`tsmalloc: ArenaPool.${fn}: no bucket "${x}" (buckets: ${BUCKETS.join(", ")})`);
    }
    if (typeof x === "number") {
      if (!Number.isInteger(x) || x < 0) throw new RangeError(`tsmalloc: ArenaPool.${fn}: a size hint must be a non-negative integer, got ${x}`);
      for (const b of BUCKETS) if (x <= this.limits[b].retain) return b;
      return "large";
    }
    throw new TypeError(`tsmalloc: ArenaPool.${fn}: expected a bucket name or a size hint in bytes, got ${typeof x}`);
  }

  /**
   * An arena from the bucket named, or for a size hint (bytes) the smallest bucket whose
   * retain limit covers it ("large" past all). Reuses a released arena's chunks when the
   * bucket has one. `tag` names the task for {@link ArenaPool.leaks}.
   *
   * @throws {TypeError} for a bucket that is neither a name nor a number, or a tag that is not a string.
   * @throws {RangeError} for an unknown bucket name or a negative/fractional hint.
   * @throws {Error} after close().
   */
  acquire(bucketOrSizeHint: ArenaBucket | number, tag = ""): Arena {
    const b = this.bucketOf(bucketOrSizeHint, "acquire");
    if (typeof tag !== "string") throw new TypeError(`tsmalloc: ArenaPool.acquire: tag must be a string, got ${typeof tag}`);
    if (this.closed) throw new Error("tsmalloc: ArenaPool.acquire: the pool was closed");
    // pooled chunks of a destroyed heap are freed memory: never hand them out
    if (ctx.detached) throw new Error(DETACHED);
    if (!this.heapLive()) throw new Error("tsmalloc: ArenaPool.acquire: the pool's heap was destroyed or deleted");
    const chunks = this.free[b].pop();
    totals.acquires++;
    if (chunks !== undefined) totals.reused++;
    const a = new Arena(this, b, tag, chunks ?? { addrs: [], sizes: [] }, ARENA_KEY);
    this.liveArenas.add(a);
    this.tags.set(tag, (this.tags.get(tag) ?? 0) + 1);
    return a;
  }

  /**
   * Ends an arena's task: every block of it is freed; its chunks, trimmed to the bucket's
   * retain limit, go on the bucket's free list (or back to the heap when the list is full).
   * The handle is dead afterwards: alloc/reset on it throw.
   *
   * @throws {TypeError} when `arena` is not an Arena.
   * @throws {Error} when it belongs to another pool or was already released.
   */
  release(arena: Arena): void {
    if (!arenas.has(arena)) throw new TypeError("tsmalloc: ArenaPool.release: not an arena (only what acquire returned)");
    if (arena.pool !== this) throw new Error(`tsmalloc: ArenaPool.release: the arena (tag "${arena.tag}") belongs to another pool`);
    if (arena.isReleased) throw new Error(`tsmalloc: ArenaPool.release: the arena (tag "${arena.tag}") was already released`);
    totals.releases++;
    arena.trim(this.limits[arena.bucket].retain);
    const chunks = arena.detach();
    this.liveArenas.delete(arena);
    const n = this.tags.get(arena.tag)! - 1;
    if (n === 0) this.tags.delete(arena.tag);
    else this.tags.set(arena.tag, n);
    const list = this.free[arena.bucket];
    if (chunks.addrs.length > 0 && list.length < this.limits[arena.bucket].maxFree) list.push(chunks);
    else for (const p of chunks.addrs) this.chunkFree(p);
  }

  /** Tags with arenas acquired and not released, most arenas first. */
  leaks(): ArenaLeak[] {
    const bytes = new Map<string, number>();
    for (const a of this.liveArenas) bytes.set(a.tag, (bytes.get(a.tag) ?? 0) + a.capacity);
    return [...this.tags].map(([tag, count]) => ({ tag, count, bytes: bytes.get(tag) ?? 0 }))
      .sort((x, y) => y.count - x.count || y.bytes - x.bytes || (x.tag < y.tag ? -1 : 1));
  }

  /**
   * Frees every chunk (pooled and live arenas alike; live handles die) and closes the pool.
   * Then, when tags still held arenas, throws (onLeak "throw") or prints them to
   * console.error (onLeak "warn"). A second call does nothing.
   *
   * @throws {Error} naming each tag with arenas not released (onLeak "throw").
   */
  close(): void {
    if (this.closed) return;
    const leaks = this.leaks();
    for (const a of this.liveArenas) for (const p of a.detach().addrs) this.chunkFree(p);
    this.liveArenas.clear();
    for (const b of BUCKETS) {
      for (const c of this.free[b]) for (const p of c.addrs) this.chunkFree(p);
      this.free[b].length = 0;
    }
    this.tags.clear();
    this.closed = true;
    openPools.delete(this);
    if (this.onHeapDestroy !== null) {
      const hooks = destroyHooks.get(this.heap as CoreHeap);
      const i = hooks?.indexOf(this.onHeapDestroy) ?? -1;
      if (i >= 0) hooks!.splice(i, 1);
      this.onHeapDestroy = null;
    }
    if (leaks.length === 0) return;
    const msg = `tsmalloc: ArenaPool.close: arenas not released: ${leaks.map((l) => `"${l.tag}" x${l.count} (${l.bytes} bytes)`).join(", ")}`;
    if (this.onLeak === "throw") throw new Error(msg);
    console.error(msg);
  }

  /** `using pool = new ArenaPool()` closes it at scope end. */
  [Symbol.dispose](): void {
    this.close();
  }
}
