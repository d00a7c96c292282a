/**
 * The buffer backend: no FFI. "OS memory" is a `SharedArrayBuffer` per reservation (an
 * `ArrayBuffer` where shared memory is unavailable), and addresses are synthetic:
 * handed out from a counter that starts at 4 GiB, aligned as asked, and never reused,
 * so a stale address is detected instead of aliasing newer memory.
 *
 * Views alias, never copy: `view(addr, size)` must name exactly one whole reservation
 * and returns its buffer. The core keeps one view per reservation and only asks for
 * whole ones; any other range throws.
 *
 * @module
 */
import { readFileSync, statSync } from "node:fs";
import { threadId as workerThreadId } from "node:worker_threads";
import type { Os } from "../src/os.ts";
import { isPowerOfTwo } from "./posix.ts";

const PAGE = 4096;
/** First synthetic address; keeps small integers (and 0) out of the address space. */
const FIRST_ADDRESS = 0x1_0000_0000;
/** Gap left after every reservation so an overrun never lands in the next one. */
const GAP = 64 * 1024;
/** Typed arrays over a buffer are limited to 4 GiB on Node 20 and Bun. */
const BUFFER_MAX_VIEW = 4 * 1024 ** 3;

/**
 * Linux: the calling thread's OS id from /proc/thread-self (no FFI needed). When that cannot
 * be read: 0 where a Worker's "exit" event means its thread has stopped (Node, Bun), -1 on
 * Deno, whose "exit" comes while the thread may still run and which allows /proc only with
 * --allow-all (so such a worker is never released as dead).
 */
function osThreadId(): number {
  try {
    return Number(String(readFileSync("/proc/thread-self/stat", "utf8")).split(" ")[0]) || 0;
  } catch {
    return (globalThis as { Deno?: unknown }).Deno !== undefined ? -1 : 0;
  }
}

/** True while OS thread `tid` of this process exists (/proc/self/task/<tid>); true when it cannot be told. */
function threadAlive(tid: number): boolean {
  if (tid < 0) return true;
  try {
    statSync(`/proc/self/task/${tid}`);
    return true;
  } catch (e) {
    return (e as { code?: string }).code !== "ENOENT" && !String(e).includes("NotFound");
  }
}

/** Where the shared pool lives (synthetic addresses): far above the per-reservation counter. */
const POOL_BASE = 2 ** 44;
/** Pool reservations are rounded to this unit (the pool's bump pointer counts units). */
const POOL_UNIT = 64 * 1024;

/**
 * What a worker needs to see this backend's memory: the shared pool (a growable
 * SharedArrayBuffer every worker carves reservations from once the allocator is shared)
 * and the reservations made before sharing began. Structured-clonable.
 */
export interface BufferShareState {
  pool: SharedArrayBuffer;
  poolBase: number;
  reservations: { base: number; size: number; buffer: ArrayBuffer }[];
}

interface Reservation {
  base: number;
  size: number;
  /** Bytes not yet released; the buffer is dropped when this reaches 0. */
  live: number;
  buffer: ArrayBuffer;
}

/** The buffer `Os`. Works everywhere; never throws for lack of FFI. */
export function createBufferOs(reason = "buffer"): Os & {
  shareState(): BufferShareState;
  adopt(state: BufferShareState): void;
} {
  const Shared = typeof SharedArrayBuffer === "function" ? SharedArrayBuffer : undefined;
  // Sorted by base: addresses only grow, so appending keeps the order.
  const list: Reservation[] = [];
  let next = FIRST_ADDRESS;
  /**
   * The shared pool, once the allocator is shared between workers: a growable
   * SharedArrayBuffer at synthetic address POOL_BASE; word 0 is the bump pointer (in
   * POOL_UNITs, Atomics), words 1-2 the first unit and unit count `reserveShared` gave out (the shared root), the
   * first unit is its header (no view of user memory reaches it). Every reservation made after sharing
   * comes from it, so any worker can view any of them (a worker cannot receive a
   * SharedArrayBuffer synchronously, but it sees the pool grow). Pool space is never
   * returned (released ranges are zeroed); in shared mode only arenas and the shared root
   * are reserved (huge blocks come from arena segment runs), and arenas are never released.
   */
  let pool: SharedArrayBuffer | null = null;
  let poolWords: Int32Array | null = null;

  function makePool(): SharedArrayBuffer {
    if (!Shared) throw new Error("buffer backend: SharedArrayBuffer is unavailable, so memory cannot be shared between workers");
    const Ctor = Shared as unknown as new (n: number, o: { maxByteLength: number }) => SharedArrayBuffer;
    for (const max of [2 ** 36, 2 ** 34, BUFFER_MAX_VIEW]) {
      try {
        return new Ctor(POOL_UNIT, { maxByteLength: max });
      } catch { /* too large for this runtime: try smaller */ }
    }
    throw new Error("buffer backend: cannot create a growable SharedArrayBuffer for the shared pool");
  }
  function usePool(p: SharedArrayBuffer): void {
    pool = p;
    poolWords = new Int32Array(p, 0, 4);
    Atomics.compareExchange(poolWords, 0, 0, 1); // unit 0 is the header
    if (!list.some((r) => r.base === POOL_BASE)) insert({ base: POOL_BASE, size: p.maxByteLength, live: p.maxByteLength, buffer: p as unknown as ArrayBuffer });
  }
  function insert(r: Reservation): void {
    let i = list.length;
    list.push(r);
    while (i > 0 && list[i - 1].base > r.base) {
      list[i] = list[i - 1];
      i--;
    }
    list[i] = r;
  }
  function reservePool(size: number, align: number): number {
    const p = pool!, w = poolWords!;
    const alignUnits = Math.max(1, Math.ceil(align / POOL_UNIT));
    const units = Math.ceil(size / POOL_UNIT);
    for (;;) {
      const cur = Atomics.load(w, 0);
      const first = Math.ceil(cur / alignUnits) * alignUnits;
      const end = (first + units) * POOL_UNIT;
      if (end > p.maxByteLength) return 0;
      if (Atomics.compareExchange(w, 0, cur, first + units) !== cur) continue;
      while (p.byteLength < end) {
        try {
          p.grow(end);
        } catch {
          // a concurrent grow past `end` makes ours throw (grow never shrinks); else out of memory
          if (p.byteLength < end) return 0;
        }
      }
      return POOL_BASE + first * POOL_UNIT;
    }
  }

  function find(addr: number): Reservation | undefined {
    let lo = 0, hi = list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = list[mid];
      if (addr < r.base) hi = mid - 1;
      else if (addr >= r.base + r.size) lo = mid + 1;
      else return r;
    }
    return undefined;
  }
  function owner(call: string, addr: number, size: number): Reservation {
    const r = find(addr);
    if (!r || size < 0 || addr + size > r.base + r.size) {
      throw new RangeError(`${call}: 0x${addr.toString(16)} + ${size} is not inside one live reservation of the buffer backend`);
    }
    return r;
  }
  /**
   * Zeroes a range page by page, skipping pages that already read as zero: writing zeroes
   * into never-touched pages would make them resident, so a purge would grow RSS.
   */
  function zero(r: Reservation, addr: number, size: number): void {
    const off = addr - r.base;
    if (off % PAGE !== 0 || size % PAGE !== 0) {
      new Uint8Array(r.buffer, off, size).fill(0);
      return;
    }
    const w = new Int32Array(r.buffer, off, size / 4);
    const PW = PAGE / 4;
    for (let p = 0; p < w.length; p += PW) {
      let any = 0;
      for (let i = p; i < p + PW; i++) any |= w[i];
      if (any !== 0) w.fill(0, p, p + PW);
    }
  }

  return {
    kind: "buffer",
    ffi: null,
    reason,
    pageSize: PAGE,
    canProtect: false,
    canPurge: false,
    maxView: BUFFER_MAX_VIEW,
    maxReserve: BUFFER_MAX_VIEW,

    reserve(size: number, align: number): number {
      if (!(size > 0 && size % PAGE === 0)) throw new RangeError(`reserve: size ${size} is not a positive multiple of ${PAGE}`);
      if (!isPowerOfTwo(align)) throw new RangeError(`reserve: alignment ${align} is not a power of two`);
      if (size > BUFFER_MAX_VIEW) return 0;
      if (pool !== null) return reservePool(size, align);
      const base = Math.ceil(next / align) * align;
      if (base + size + GAP > Number.MAX_SAFE_INTEGER) return 0;
      let buffer: ArrayBuffer;
      try {
        buffer = Shared ? (new Shared(size) as unknown as ArrayBuffer) : new ArrayBuffer(size);
      } catch {
        return 0; // RangeError: allocation failed
      }
      next = base + size + GAP;
      list.push({ base, size, live: size, buffer });
      return base;
    },

    reserveShared(size: number, align: number): number {
      if (pool === null) throw new Error("buffer backend: reserveShared needs the shared pool (call shareState first)");
      if (!(size > 0 && size % PAGE === 0) || !isPowerOfTwo(align)) throw new RangeError(`reserveShared: bad size ${size} or alignment ${align}`);
      const base = reservePool(size, align);
      if (base !== 0 && Atomics.compareExchange(poolWords!, 1, 0, (base - POOL_BASE) / POOL_UNIT) === 0) {
        Atomics.store(poolWords!, 2, Math.ceil(size / POOL_UNIT));
      }
      return base;
    },

    /** Only the pool header says which unit is the shared root; its bytes are not the user's. */
    isSharedMapping(addr: number, size: number): boolean {
      if (pool === null || addr <= POOL_BASE) return false;
      return Atomics.load(poolWords!, 1) === (addr - POOL_BASE) / POOL_UNIT && Atomics.load(poolWords!, 2) === size / POOL_UNIT;
    },

    release(addr: number, size: number): void {
      const r = owner("release", addr, size);
      if (r.base === POOL_BASE) {
        zero(r, addr, size); // pool space is not returned (see makePool)
        return;
      }
      if (size === r.size) r.live = 0;
      else {
        zero(r, addr, size);
        r.live -= size;
      }
      if (r.live <= 0) list.splice(list.indexOf(r), 1);
    },

    purge(addr: number, size: number): void {
      zero(owner("purge", addr, size), addr, size);
    },

    // No OS to tell: the contents stay (allowed: they are undefined after a reset).
    reset(addr: number, size: number): void {
      owner("reset", addr, size);
    },

    protect(): void {
      throw new Error("protect: the buffer backend cannot make memory inaccessible (canProtect is false)");
    },
    unprotect(): void {
      throw new Error("unprotect: the buffer backend cannot make memory inaccessible (canProtect is false)");
    },

    view(addr: number, size: number): ArrayBuffer {
      const r = owner("view", addr, size);
      if (addr !== r.base || size !== r.size) {
        throw new RangeError(
          `view: the buffer backend can only view a whole reservation (0x${r.base.toString(16)} + ${r.size}), ` +
            `not 0x${addr.toString(16)} + ${size}`,
        );
      }
      return r.buffer;
    },

    region(addr: number, size: number): { buffer: ArrayBuffer; byteOffset: number } {
      const r = owner("view", addr, size);
      if (r.base === POOL_BASE) return { buffer: r.buffer, byteOffset: addr - r.base };
      return { buffer: this.view(addr, size), byteOffset: 0 };
    },

    shareState(): BufferShareState {
      if (pool === null) usePool(makePool());
      return {
        pool: pool!,
        poolBase: POOL_BASE,
        reservations: list.filter((r) => r.base !== POOL_BASE).map((r) => ({ base: r.base, size: r.size, buffer: r.buffer })),
      };
    },

    adopt(state: BufferShareState): void {
      if (state.poolBase !== POOL_BASE) throw new Error("buffer backend: the shared pool is at an unexpected address");
      for (const r of state.reservations) {
        if (!list.some((x) => x.base === r.base)) insert({ base: r.base, size: r.size, live: r.size, buffer: r.buffer });
      }
      usePool(state.pool);
      // this worker's own reservations (none yet, or only private ones) must not collide with the others'
      next = Math.max(next, ...state.reservations.map((r) => r.base + r.size + GAP));
    },

    pointer(): never {
      throw new Error("pointer: the buffer backend has no native pointers (use an FFI backend to pass memory to C)");
    },

    resident: () => -1,
    pid: () => (globalThis as { process?: { pid?: number } }).process?.pid ?? 0,
    threadId: () => workerThreadId ?? 0,
    osThreadId,
    threadAlive,
  };
}
