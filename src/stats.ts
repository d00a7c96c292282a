/** Counters kept at OS-call and page granularity (never on the fast paths). */
import type { ArenaPoolStats } from "./arena-pool.ts";
import type { OwnedBlockStats } from "./block.ts";

/** OS calls by kind: every call the core makes through `Os` is counted (src/oscount.ts). */
export interface OsCallCounts {
  /** mmap reservations (arenas, huge blocks). */
  reserve: number;
  /** munmap calls. */
  release: number;
  /** madvise(MADV_DONTNEED) purges. */
  purge: number;
  /** madvise(MADV_FREE) resets. */
  reset: number;
  /** mprotect(PROT_NONE) calls (guard pages). */
  protect: number;
  /** mprotect back to read-write. */
  unprotect: number;
  /** Views created over a reserved range. */
  view: number;
  /** mincore calls behind `resident` (stats() asks the kernel). */
  resident: number;
  /** futex waits of the process-wide locks (FFI backends on Linux, shared mode). */
  futexWait: number;
  /** futex wakes of the process-wide locks. */
  futexWake: number;
}

/** Process-wide byte counters in the shared root (BigInt64 slots), once workers share the allocator. */
export interface SharedCounters {
  b: BigInt64Array;
  /** Slot indices: committed, reserved, and their peaks. */
  committed: number;
  reserved: number;
  peakCommitted: number;
  peakReserved: number;
  /** Workers attached now (alive, or exited with their thread not yet confirmed stopped). */
  workers: () => number;
  /**
   * The root's int32 words and the index of its budget flag: nonzero once any worker of the
   * allocator checked a maxCommitted/maxReserved budget (sticky). While it is 0 no refusal can
   * happen anywhere, so a class's emptied allocation page may stay with its heap (src/heap.ts
   * pageEmptied); once raised, only for the page delay.
   */
  i32: Int32Array;
  budgeted: number;
}

function raisePeak(sc: SharedCounters, peak: number, v: bigint): void {
  for (let p = Atomics.load(sc.b, peak); v > p;) {
    const q = Atomics.compareExchange(sc.b, peak, p, v);
    if (q === p) break;
    p = q;
  }
}

/** moveCommitted's record for commit/decommit, which have none of their own. */
const NO_RECORD = new Int32Array(1);

export class OsCounters {
  /**
   * This worker's own bytes. Once shared, a worker may decommit what another committed
   * (a reclaimed segment), so per-worker values mean nothing alone; `shared` holds the
   * process-wide totals stats() reports and budgets check.
   */
  reserved = 0;
  committed = 0;
  peakReserved = 0;
  peakCommitted = 0;
  peakResident = 0;
  /** Process-wide totals (src/shared.ts installs them); null while not shared. */
  shared: SharedCounters | null = null;
  /**
   * Bytes a budget check already added to the shared totals ahead of the commit/reserve it
   * allowed (so two workers cannot both pass a check for the last bytes); the next
   * commit/reserve consumes them instead of adding again.
   */
  commitCredit = 0;
  reserveCredit = 0;
  /** Purge operations (MADV_DONTNEED, batched: one per coalesced run) and bytes purged. */
  purges = 0;
  purged = 0;
  /** Reset operations (MADV_FREE, purgeDecommits = false) and bytes reset. */
  resets = 0;
  resetBytes = 0;
  /** Allocations refused by maxReserved / maxCommitted (after purging cached memory). */
  budgetRefusals = 0;
  calls: OsCallCounts = { reserve: 0, release: 0, purge: 0, reset: 0, protect: 0, unprotect: 0, view: 0, resident: 0, futexWait: 0, futexWake: 0 };

  osCall(kind: keyof OsCallCounts): void {
    this.calls[kind]++;
  }
  reserve(bytes: number): void {
    this.moveReserved(bytes, NO_RECORD, 0, 0);
  }
  unreserve(bytes: number): void {
    this.moveReserved(-bytes, NO_RECORD, 0, 0);
  }
  /** reserve(d) or unreserve(-d) together with a record of those bytes, `m[w] = v`: both or neither, as moveCommitted. */
  moveReserved(d: number, m: Int32Array, w: number, v: number): void {
    this.reserved += d;
    if (this.reserved > this.peakReserved) this.peakReserved = this.reserved;
    const pre = this.shared !== null && d > 0 ? Math.min(this.reserveCredit, d) : 0; // (a budget check added these already)
    this.reserveCredit -= pre;
    this.moveShared("reserved", d - pre, m, w, v);
  }
  commit(bytes: number): void {
    this.moveCommitted(bytes, NO_RECORD, 0, 0);
  }
  /**
   * commit(d) or decommit(-d) together with the arena's own record of those bytes, `m[w] = v`
   * (Arena.setCommitted, ensureTable): the store follows the shared total's Atomics.add with no
   * call between, so a worker terminated here (V8 stops before an Atomics call acts, see
   * secure.ts "side table") leaves both changed or neither — else a purge later subtracted
   * bytes the total never had, and the total went negative (review round 19).
   */
  moveCommitted(d: number, m: Int32Array, w: number, v: number): void {
    this.committed += d;
    if (this.committed > this.peakCommitted) this.peakCommitted = this.committed;
    const pre = this.shared !== null && d > 0 ? Math.min(this.commitCredit, d) : 0; // (a budget check added these already)
    this.commitCredit -= pre;
    this.moveShared("committed", d - pre, m, w, v);
  }
  /** Adds `add` to a shared total, then stores the record `m[w] = v` with no call between (not shared: the store alone). */
  private moveShared(kind: "committed" | "reserved", add: number, m: Int32Array, w: number, v: number): void {
    const sc = this.shared;
    if (sc === null || add === 0) {
      m[w] = v;
      return;
    }
    const big = BigInt(add);
    const old = Atomics.add(sc.b, sc[kind], big);
    m[w] = v;
    if (add > 0) raisePeak(sc, kind === "committed" ? sc.peakCommitted : sc.peakReserved, old + big);
  }

  decommit(bytes: number): void {
    this.moveCommitted(-bytes, NO_RECORD, 0, 0);
  }
  /** Gives back budget claims no commit/reserve consumed (a worker leaving). */
  dropCredit(): void {
    const sc = this.shared;
    if (sc === null) return;
    if (this.commitCredit > 0) Atomics.sub(sc.b, sc.committed, BigInt(this.commitCredit));
    if (this.reserveCredit > 0) Atomics.sub(sc.b, sc.reserved, BigInt(this.reserveCredit));
    this.commitCredit = this.reserveCredit = 0;
  }
  /** Process-wide committed bytes when shared, else this worker's. */
  get totalCommitted(): number {
    return this.shared === null ? this.committed : Number(Atomics.load(this.shared.b, this.shared.committed));
  }
  get totalReserved(): number {
    return this.shared === null ? this.reserved : Number(Atomics.load(this.shared.b, this.shared.reserved));
  }
  /**
   * Shared budgets: adds `bytes` to the process-wide total `i` only if it stays <= max
   * (compare-exchange, so concurrent checks cannot overshoot together); true when added.
   */
  claimShared(kind: "committed" | "reserved", bytes: number, max: number): boolean {
    const sc = this.shared!;
    const i = sc[kind];
    const add = BigInt(bytes);
    for (let cur = Atomics.load(sc.b, i); cur + add <= BigInt(max);) {
      const q = Atomics.compareExchange(sc.b, i, cur, cur + add);
      if (q === cur) {
        // the credit first, no call between: a worker stopped in raisePeak leaves it known to dropCredit
        if (kind === "committed") this.commitCredit += bytes;
        else this.reserveCredit += bytes;
        raisePeak(sc, kind === "committed" ? sc.peakCommitted : sc.peakReserved, cur + add);
        return true;
      }
      cur = q;
    }
    return false;
  }
  purge(bytes: number): void {
    this.purges++;
    this.purged += bytes;
  }
  reset(bytes: number): void {
    this.resets++;
    this.resetBytes += bytes;
  }
}

/** One arena in stats(). */
export interface ArenaStats {
  /** The id reserveOsMemory returned (auto-created arenas get ids too). */
  id: number;
  /** Address of the first segment. */
  base: number;
  /**
   * Bytes of segments, from `base` (the reservation also holds, before them, 4 MiB of segment
   * headers — out of band — and after them its metadata and side tables).
   */
  size: number;
  /** Reserved with `exclusive: true`: only heaps bound to it allocate there. */
  exclusive: boolean;
  /** 4 MiB segments in use (by pages or huge blocks). */
  segmentsUsed: number;
  /** Free 4 MiB segments whose memory is not purged yet. */
  segmentsDirty: number;
  /** All 4 MiB segments of the arena. */
  segments: number;
  /** Bytes counted as committed in this arena. */
  committed: number;
}

/**
 * One entry of `stats().byTag`: the live blocks of this worker's heaps counted under one tag.
 * Every live block of a heap of this worker is counted under exactly one tag: the tag of the
 * `cAllocator` bridge that handed it out and has not taken it back, else its heap's
 * tag (`Heap.create({ tag })`; "" for the default heap, untagged heaps, and pages no heap of
 * this worker owns). So the entries' `blocks` and `bytes` add up to `stats().blocks` and
 * `stats().inUse` (both this worker's). ArenaPool chunks and owned blocks (`Block`) count under
 * their heap's tag (their own totals are `arenaPools` and `ownedBlocks`).
 *
 * @example
 * ```ts
 * import { Heap, stats, type TagStats } from "@tsmalloc/tsmalloc";
 *
 * using heap = Heap.create({ tag: "parser" });
 * heap.malloc(100);
 * const t: TagStats | undefined = stats().byTag.find((x) => x.tag === "parser");
 * console.log(t?.blocks, t?.bytes); // 1 112
 * ```
 */
export interface TagStats {
  /** The tag ("" for the default heap and heaps created without one). */
  tag: string;
  /** Live blocks counted under it. */
  blocks: number;
  /** Their bytes (block sizes, as `inUse` counts them). */
  bytes: number;
  /** Live heaps of this worker with this tag (the default heap counts under ""). */
  heaps: number;
  /** Open cAllocator bridges with this tag. */
  bridges: number;
}

/** What `stats()` returns: plain JSON-able numbers (bytes unless named a count). */
export interface Stats {
  /** The live backend, as `backend().kind`. */
  backend: string;
  /** Virtual bytes reserved from the OS (arenas and huge mappings, cached ones included). */
  reserved: number;
  /**
   * Bytes counted as committed: page slots handed to heaps (64 KiB granularity, whole
   * segments with eagerCommit), huge blocks, and freed memory not yet purged.
   */
  committed: number;
  /** Bytes of our own ranges resident in RAM per the kernel (mincore); -1 when unknown (buffer backend). */
  resident: number;
  /**
   * Usable bytes of live blocks, the sum of their `usableSize`, except that a guarded
   * allocation counts its whole block, guard page included (doc/MEMORY.md).
   */
  inUse: number;
  /** Live blocks. */
  blocks: number;
  /** Highest `reserved` seen. */
  peakReserved: number;
  /** Highest `committed` seen. */
  peakCommitted: number;
  /** Highest `resident` seen by a stats() call (-1 when unknown). */
  peakResident: number;
  /**
   * Highest in-use bytes seen, sampled at slow-path events (a page taken or filled, a huge
   * block mapped) and at stats() calls: it can miss a spike served entirely by the fast
   * paths, by at most about one page per size class and heap.
   */
  peakInUse: number;
  /**
   * Committed bytes of freed memory (free segments, free page slots, empty pages their heaps
   * keep for reuse, cached huge blocks): what a purge can give back — waiting for its purge
   * delay, or for `collect(true)` when none is scheduled (`purgeDelay` -1, or slots only reset
   * with `purgeDecommits` false). Side-table units are not included.
   */
  pendingPurge: number;
  /** Purge operations (MADV_DONTNEED; adjacent ranges coalesced into one). */
  purges: number;
  /** Bytes purged. */
  purged: number;
  /** Reset operations (MADV_FREE, purgeDecommits = false). */
  resets: number;
  /** Bytes reset. */
  resetBytes: number;
  /** Allocations refused by maxReserved/maxCommitted. */
  budgetRefusals: number;
  /** OS calls by kind. */
  osCalls: OsCallCounts;
  /** Arenas reserved (auto-created and from reserveOsMemory). */
  arenas: number;
  /** Live 4 MiB segments (holding pages). */
  segments: number;
  /**
   * Pages heaps own (of 64 KiB, 512 KiB or 4 MiB), each huge block counted as one: pages with
   * live blocks, a size class's allocation page even when empty, and empty pages kept for the
   * page purge delay (`purgeDelay`; `collect()` gives those back at once). Not zero after every
   * block was freed.
   */
  pages: number;
  /** Live huge blocks (each mapped on its own). */
  hugeBlocks: number;
  /** Workers sharing this allocator (1 until workers attach). */
  workers: number;
  /** Per arena. */
  arenaList: ArenaStats[];
  /** Per size class (block size in bytes): live blocks, their bytes, and pages. */
  bins: { size: number; blocks: number; bytes: number; pages: number }[];
  /** This worker's ArenaPools: arenas live and pooled, chunk bytes, acquires and releases. */
  arenaPools: ArenaPoolStats;
  /** This worker's owned blocks (Block.alloc): live, collected while allocated. */
  ownedBlocks: OwnedBlockStats;
  /**
   * Live blocks and bytes by tag: each heap tag and cAllocator tag of this worker, with the
   * blocks counted under it (see {@link TagStats}); most bytes first, then by tag. Every live
   * tagged heap and open bridge has an entry, even with no blocks; "" is always listed.
   */
  byTag: TagStats[];
}
