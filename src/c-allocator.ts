/**
 * The C allocator bridge (after Lightpanda's ZigToCurlAllocator): native function pointers
 * with C's malloc family signatures that allocate from a tsmalloc heap, made with the
 * runtime's own callback mechanism (Os.callback). Runtime-neutral: the shims in ffi/ make
 * the trampolines, this file decides what each call does.
 *
 * Invariants:
 * - no handler throws: every failure reaches C as NULL (0) or, for free, as a counted no-op;
 * - `live` holds exactly the blocks this bridge handed out and did not take back, with their
 *   usable sizes; free/realloc/usableSize accept only those addresses (decided from this map,
 *   never from bytes C can write), so a bad pointer from C never frees another block;
 * - the heap is touched only on the thread that made the bridge (checked with gettid when
 *   `checkThread` is on);
 * - the heap outlives the library's blocks: its destroy() refuses while the bridge is open
 *   and `live` is not empty; after a forced close, destroy() frees those blocks and `live`
 *   forgets them, so the counters never name memory that is gone.
 */
import { goodSizeOf } from "./bins.ts";
import { destroyGuards, destroyHooks, type Heap } from "./heap.ts";
import { MAX_ALLOC_SIZE } from "./layout.ts";
import type { CType, NativeCallback, Os } from "./os.ts";

/** The C functions a bridge provides (names of the `address` and pointer fields). */
export const C_FUNCTIONS = [
  "malloc", "calloc", "realloc", "free", "strdup", "usableSize", "goodSize",
  "zalloc", "zfree",
  "sqliteMalloc", "sqliteFree", "sqliteRealloc", "sqliteSize", "sqliteRoundup", "sqliteInit", "sqliteShutdown",
] as const;
export type CFunctionName = typeof C_FUNCTIONS[number];

/** C signatures: [result, ...arguments]. */
const SIGNATURES: Record<CFunctionName, [CType, CType[]]> = {
  malloc: ["ptr", ["size"]], // void *malloc(size_t)
  calloc: ["ptr", ["size", "size"]], // void *calloc(size_t, size_t)
  realloc: ["ptr", ["ptr", "size"]], // void *realloc(void *, size_t)
  free: ["void", ["ptr"]], // void free(void *)
  strdup: ["ptr", ["ptr"]], // char *strdup(const char *)
  usableSize: ["size", ["ptr"]], // size_t malloc_usable_size(void *)
  goodSize: ["size", ["size"]], // size_t mi_good_size(size_t)
  zalloc: ["ptr", ["ptr", "u32", "u32"]], // zlib alloc_func: voidpf (voidpf opaque, uInt items, uInt size)
  zfree: ["void", ["ptr", "ptr"]], // zlib free_func: void (voidpf opaque, voidpf address)
  sqliteMalloc: ["ptr", ["i32"]], // sqlite3_mem_methods.xMalloc: void *(int)
  sqliteFree: ["void", ["ptr"]], // xFree: void (void *)
  sqliteRealloc: ["ptr", ["ptr", "i32"]], // xRealloc: void *(void *, int)
  sqliteSize: ["i32", ["ptr"]], // xSize: int (void *)
  sqliteRoundup: ["i32", ["i32"]], // xRoundup: int (int)
  sqliteInit: ["i32", ["ptr"]], // xInit: int (void *)
  sqliteShutdown: ["void", ["ptr"]], // xShutdown: void (void *)
};

/** Counters of one bridge; bytes are usable bytes of the live blocks. */
export interface CAllocatorStats {
  /** The bridge's tag. */
  tag: string;
  /** Blocks allocated through the bridge and not freed yet. */
  liveBlocks: number;
  /** Usable bytes of those blocks. */
  liveBytes: number;
  /** Highest liveBytes seen. */
  peakBytes: number;
  /** Successful allocations (malloc, calloc, strdup, zalloc, realloc that moved or made a block). */
  allocations: number;
  /** Blocks given back (free, zfree, realloc that moved a block; after a forced close, the heap's destroy()). */
  frees: number;
  /** Calls answered with NULL because memory could not be had (budget, OS, size too large). */
  failures: number;
  /** Bad calls from C: free/realloc/usableSize of an address this bridge did not hand out (or already took back), strdup(NULL), an internal error. Each was answered without touching the heap. */
  errors: number;
  /** Calls that arrived on another OS thread than the creating one (answered NULL / ignored). */
  foreignThreadCalls: number;
  /** What the last error was, "" when none. */
  lastError: string;
}

/** Options of {@link createCAllocator}. */
export interface CAllocatorConfig {
  heap: Heap;
  tag: string;
  /** Compare gettid on every call with the creating thread's (one syscall per call). */
  checkThread: boolean;
}

/**
 * Every bridge not closed yet. C may hold its function pointers however long it likes, so
 * a bridge (and the runtime callback objects behind its trampolines) must never be collected
 * before close(): this set keeps it reachable.
 */
/** Trampolines of closed bridges: kept alive (and callable) for the life of the process. */
const retired: NativeCallback[] = [];
const openBridges = new Set<CAllocatorCore>();
/** Bridges open or still holding blocks (closed with force): stats().byTag counts their blocks under their tags. */
const heldBridges = new Set<CAllocatorCore>();

/** Bridges open or holding live blocks, for stats().byTag. */
export function bridgeList(): CAllocatorCore[] {
  return [...heldBridges];
}

/** A bridge: the native pointers, accounting, and close. */
export class CAllocatorCore {
  readonly tag: string;
  readonly heap: Heap;
  /** Each function's address as a number. */
  readonly address: Readonly<Record<CFunctionName, number>>;
  /** Each function in the runtime's FFI pointer form. */
  readonly pointers: Readonly<Record<CFunctionName, unknown>>;
  private readonly callbacks: NativeCallback[] = [];
  /** address -> usable size of every live block handed out by this bridge. */
  private readonly live = new Map<number, number>();
  private liveBytes = 0;
  private peakBytes = 0;
  private allocations = 0;
  private frees = 0;
  private failures = 0;
  private errors = 0;
  private foreign = 0;
  private lastError = "";
  private open = true;
  /** Refuses the heap's destroy() while open with live blocks (in destroyGuards). */
  private readonly guard = (): void => {
    if (!this.open || this.live.size === 0) return;
    throw new Error(
      `tsmalloc: heap ${this.heap.id} cannot be destroyed: cAllocator "${this.tag}" allocates from it and ${this.live.size} blocks ` +
        `(${this.liveBytes} bytes) it handed to the library are live, so the library may still use them; release the library's ` +
        `memory first (deflateEnd, sqlite3_shutdown, curl_global_cleanup, ...) and close the bridge, or close({ force: true }) it`,
    );
  };

  constructor(private readonly os: Os, config: CAllocatorConfig) {
    if (os.callback === undefined) {
      throw new Error(
        `tsmalloc: cAllocator needs an FFI backend to make native callbacks; the ${os.kind} backend has none (${os.reason})`,
      );
    }
    this.tag = config.tag;
    this.heap = config.heap;
    const h = this.handlers(config.checkThread ? os.threadId() : -1);
    const address = {} as Record<CFunctionName, number>;
    const pointers = {} as Record<CFunctionName, unknown>;
    try {
      for (const name of C_FUNCTIONS) {
        const [result, args] = SIGNATURES[name];
        const cb = os.callback(result, args, h[name]);
        this.callbacks.push(cb);
        address[name] = cb.address;
        pointers[name] = cb.pointer;
      }
    } catch (e) {
      for (const cb of this.callbacks) cb.close();
      throw e;
    }
    this.address = Object.freeze(address);
    this.pointers = Object.freeze(pointers);
    openBridges.add(this);
    heldBridges.add(this);
    let guards = destroyGuards.get(this.heap);
    if (guards === undefined) destroyGuards.set(this.heap, guards = new Set());
    guards.add(this.guard);
    const hooks = destroyHooks.get(this.heap) ?? [];
    hooks.push(this.onDestroy);
    destroyHooks.set(this.heap, hooks);
  }

  /** In the heap's destroyHooks while the bridge is open or holds blocks (then removed: a long-lived heap does not keep closed bridges). */
  private readonly onDestroy = (): void => this.heapDestroyed();

  /** Closed and holding nothing: the bridge lets go of its heap's hooks and of stats().byTag. */
  private forgetIfDone(): void {
    if (this.open || this.live.size > 0) return;
    heldBridges.delete(this);
    const hooks = destroyHooks.get(this.heap);
    const i = hooks?.indexOf(this.onDestroy) ?? -1;
    if (i >= 0) hooks!.splice(i, 1);
  }

  /** The heap is being destroyed (the guard let it: closed, or no live block): its blocks go with it. */
  private heapDestroyed(): void {
    this.frees += this.live.size;
    this.live.clear();
    this.liveBytes = 0;
    if (!this.open) heldBridges.delete(this); // (destroy() drops the heap's hook list itself)
  }

  /** Addresses of the live blocks handed out (stats().byTag). */
  liveAddresses(): IterableIterator<number> {
    return this.live.keys();
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** True when `p` is a live block handed out by this bridge. */
  owns(p: number): boolean {
    return this.live.has(p);
  }

  stats(): CAllocatorStats {
    return {
      tag: this.tag,
      liveBlocks: this.live.size,
      liveBytes: this.liveBytes,
      peakBytes: this.peakBytes,
      allocations: this.allocations,
      frees: this.frees,
      failures: this.failures,
      errors: this.errors,
      foreignThreadCalls: this.foreign,
      lastError: this.lastError,
    };
  }

  /**
   * Retires the bridge. Refuses (throws) while blocks allocated through the bridge are live,
   * since the library that holds them may still call free/realloc; `force` closes anyway and
   * leaves those blocks allocated in the heap (the library's later free of one still frees it;
   * the heap's destroy() frees the rest, and then the bridge's counters drop them). The native
   * trampolines are never freed: a library still pointing at them (curl before
   * curl_global_cleanup) gets NULL from every allocating call, counted in `errors`, instead of
   * a jump into freed code. They stay allocated (with the JS closures they call) for the life
   * of the process: make one bridge per library, not one per task.
   */
  closeBridge(force: boolean): void {
    if (!this.open) return;
    if (this.live.size > 0 && !force) {
      throw new Error(
        `tsmalloc: cAllocator "${this.tag}" cannot close: ${this.live.size} blocks (${this.liveBytes} bytes) allocated ` +
          `through it are live, so the library may still call it; release the library's memory first ` +
          `(deflateEnd, sqlite3_shutdown, curl_global_cleanup, ...) or close({ force: true })`,
      );
    }
    this.open = false;
    retired.push(...this.callbacks); // never cb.close(): see above
    openBridges.delete(this);
    destroyGuards.get(this.heap)?.delete(this.guard);
    this.forgetIfDone();
  }

  // ---------------------------------------------------------------- the C entry points

  /** The JS side of each C function. `tid` is the creating thread's id, -1 for no check. */
  private handlers(tid: number): Record<CFunctionName, (...a: (number | bigint)[]) => number> {
    const os = this.os;
    const onThread = tid < 0 ? () => true : () => {
      if (os.threadId() === tid) return true;
      this.foreign++;
      return false;
    };
    /** Counts a call that allocates after close (NULL to C). */
    const closed = (what: string): boolean => {
      if (this.open) return false;
      this.errors++;
      this.lastError = `${what}: cAllocator "${this.tag}" was closed`;
      return true;
    };
    const fail = (what: string, e: unknown): number => {
      this.errors++;
      this.lastError = `${what}: ${e instanceof Error ? e.message : String(e)}`;
      return 0;
    };
    const malloc = (size: number | bigint): number => {
      try {
        if (!onThread() || closed("malloc")) return 0;
        return this.allocated(this.heap.malloc(sizeArg(size)));
      } catch (e) {
        return fail("malloc", e);
      }
    };
    const free = (ptr: number | bigint): number => {
      try {
        if (!onThread()) return 0; // leaked rather than touched from the wrong thread
        const p = addrArg(ptr);
        if (p !== 0) this.release(p, "free");
      } catch (e) {
        fail("free", e);
      }
      return 0;
    };
    const realloc = (ptr: number | bigint, size: number | bigint): number => {
      try {
        if (!onThread() || closed("realloc")) return 0; // C: NULL, the old block stays valid
        const p = addrArg(ptr);
        const n = sizeArg(size);
        if (p === 0) return this.allocated(this.heap.malloc(n));
        const old = this.live.get(p);
        if (old === undefined) return this.bad("realloc", p);
        if (n > MAX_ALLOC_SIZE) return this.refused(); // C: NULL, the old block stays valid
        const q = this.heap.realloc(p, n); // realloc(p, 0) is a fresh minimal block (mimalloc), never NULL-and-freed
        if (q === 0) return this.refused();
        if (q !== p) {
          this.forget(p, old);
          this.frees++;
          return this.allocated(q);
        }
        const u = this.heap.usableSize(q);
        this.liveBytes += u - old;
        this.live.set(q, u);
        return q;
      } catch (e) {
        return fail("realloc", e);
      }
    };
    return {
      malloc,
      calloc: (count, size) => {
        try {
          if (!onThread() || closed("calloc")) return 0;
          const c = sizeArg(count);
          const s = sizeArg(size);
          if (c * s > MAX_ALLOC_SIZE) return this.refused();
          return this.allocated(this.heap.calloc(c, s));
        } catch (e) {
          return fail("calloc", e);
        }
      },
      realloc,
      free,
      strdup: (str) => {
        try {
          if (!onThread() || closed("strdup")) return 0;
          const s = addrArg(str);
          if (s === 0) return this.bad("strdup", 0);
          const len = cStrlen(os, s);
          const p = this.allocated(this.heap.malloc(len + 1));
          if (p !== 0) new Uint8Array(os.view(p, len + 1)).set(new Uint8Array(os.view(s, len + 1)));
          return p;
        } catch (e) {
          return fail("strdup", e);
        }
      },
      usableSize: (ptr) => {
        try {
          if (!onThread()) return 0;
          const p = addrArg(ptr);
          if (p === 0) return 0;
          return this.live.get(p) ?? this.bad("usableSize", p);
        } catch (e) {
          return fail("usableSize", e);
        }
      },
      goodSize: (size) => {
        try {
          const n = sizeArg(size);
          return n > MAX_ALLOC_SIZE ? n : goodSizeOf(n);
        } catch (e) {
          return fail("goodSize", e);
        }
      },
      zalloc: (_opaque, items, size) => {
        try {
          if (!onThread() || closed("zalloc")) return 0;
          return this.allocated(this.heap.malloc(sizeArg(items) * sizeArg(size)));
        } catch (e) {
          return fail("zalloc", e);
        }
      },
      zfree: (_opaque, ptr) => free(ptr),
      sqliteMalloc: (n) => (Number(n) < 0 ? this.refused() : malloc(n)),
      sqliteFree: free,
      sqliteRealloc: (p, n) => (Number(n) < 0 ? this.refused() : realloc(p, n)),
      sqliteSize: (ptr) => {
        try {
          if (!onThread()) return 0;
          const p = addrArg(ptr);
          if (p === 0) return 0;
          const u = this.live.get(p);
          return u === undefined ? this.bad("sqliteSize", p) : Math.min(u, 0x7fffffff);
        } catch (e) {
          return fail("sqliteSize", e);
        }
      },
      sqliteRoundup: (n) => {
        const v = Number(n);
        if (!(v > 0)) return v | 0;
        const g = goodSizeOf(Math.min(v, MAX_ALLOC_SIZE));
        return g > 0x7fffffff ? v : g; // SQLite rounds up only within int
      },
      sqliteInit: () => 0, // SQLITE_OK
      sqliteShutdown: () => 0,
    };
  }

  /** Records a block just allocated (0 passes through as a failure). */
  private allocated(p: number): number {
    if (p === 0) return this.refused();
    const u = this.heap.usableSize(p);
    this.live.set(p, u);
    this.allocations++;
    this.liveBytes += u;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    return p;
  }

  private refused(): number {
    this.failures++;
    return 0;
  }

  /** A call naming an address this bridge does not own: counted, the heap untouched, NULL. */
  private bad(what: string, p: number): number {
    this.errors++;
    this.lastError = p === 0
      ? `${what}: NULL argument`
      : `${what}: 0x${p.toString(16)} is not a live block of cAllocator "${this.tag}" (never allocated through it, or already freed)`;
    return 0;
  }

  private forget(p: number, usable: number): void {
    this.live.delete(p);
    this.liveBytes -= usable;
  }

  private release(p: number, what: string): void {
    const u = this.live.get(p);
    if (u === undefined) {
      this.bad(what, p);
      return;
    }
    this.heap.free(p); // (the heap is live or was destroyed without this block: destroy() refuses while `live` is not empty)
    this.forget(p, u);
    this.frees++;
  }
}

/**
 * A size_t argument as a number. koffi hands size_t >= 2^63 as a negative number and Deno
 * and Bun hand usize as bigint: anything above MAX_ALLOC_SIZE becomes MAX_ALLOC_SIZE + 1,
 * which the heap answers with 0 (NULL).
 */
export function sizeArg(v: number | bigint): number {
  if (typeof v === "bigint") return v >= 0n && v <= BigInt(MAX_ALLOC_SIZE) ? Number(v) : MAX_ALLOC_SIZE + 1;
  return v >= 0 && v <= MAX_ALLOC_SIZE ? Math.floor(v) : MAX_ALLOC_SIZE + 1;
}

/** A pointer argument as a number (user-space addresses fit in 48 bits). */
export function addrArg(v: number | bigint): number {
  const n = Number(v);
  return n >= 0 && n <= Number.MAX_SAFE_INTEGER ? n : -1;
}

/** strlen of the C string at `s`, read one page at a time (never past the page holding its NUL). */
function cStrlen(os: Os, s: number): number {
  if (s <= 0) throw new RangeError(`bad string address ${s}`);
  let len = 0;
  for (;;) {
    const a = s + len;
    const chunk = os.pageSize - (a % os.pageSize);
    const i = new Uint8Array(os.view(a, chunk)).indexOf(0);
    if (i >= 0) return len + i;
    len += chunk;
  }
}
