/**
 * Per-worker allocator state: the OS backend, the regions this worker can see, its
 * thread tag and counters. One instance, `ctx`, mutated in place (module bindings cannot
 * be reassigned from other modules).
 */
import type { Os } from "./os.ts";
import { type Region, RegionTable, sentinelRegion } from "./region.ts";
import type { Arena } from "./arena.ts";
import type { Heap } from "./heap.ts";
import type { PageRef } from "./region.ts";
import type { HugeCache } from "./huge.ts";
import { defaultOptions, type Options } from "./options.ts";
import { OsCounters } from "./stats.ts";
import { CHECKED_KEY } from "./layout.ts";

export class Context {
  os: Os | null = null;
  /** Nonzero id of this worker, stored as the owner of its pages. */
  tag = 0;
  /**
   * P_KEY of this worker's checked pages (tag | CHECKED_KEY): what the checked free fast path
   * compares; -1 (no page's key) once the allocator is shared, so that every free of a checked
   * page takes the compare-exchange in freeCheckedPage (another worker may free the same block).
   */
  checkedTag = 0;
  /** P_KEY of this worker's checked pages, shared or not (tag | CHECKED_KEY): secure-free.ts freeCheckedShared. */
  ownKey = 0;
  regions: RegionTable = new RegionTable();
  /** Region of the last freed block: the free fast path's first guess. */
  lastRegion: Region = sentinelRegion();
  arenas: Arena[] = [];
  huge: HugeCache | null = null;
  options: Options = defaultOptions();
  counters: OsCounters = new OsCounters();
  /** Why the last allocation failed (budget, exclusive arena full, OS refusal); for AllocationError. */
  refusal = "";
  /** The allocator is shared with other workers (workerHandle/attach, src/shared.ts). */
  shared = false;
  /** This worker detached (src/shared.ts): it may free, but never allocate or reserve again (its tag is gone). */
  detached = false;
  /**
   * Where this worker records the cross-worker free in flight (secure.ts pushThreadFreeChecked):
   * words [inflightAt, +4) of `inflight` hold the arena's base / 4 MiB, the page's descriptor
   * word, the block's number (0: none) and 1 once the claim happened. Its slot in the shared root while attached (the
   * releaser of a stopped worker finishes the push: shared.ts), else a scratch array.
   */
  inflight: Int32Array = new Int32Array(4);
  inflightAt = 0;
  setTag(tag: number): void {
    this.tag = tag;
    this.ownKey = tag | CHECKED_KEY;
    this.checkedTag = this.shared ? -1 : this.ownKey;
  }
  /** Monotonic ms clock for purge delays. */
  now: () => number = () => performance.now();
}

export const ctx: Context = new Context();

/** Slow-path hooks installed by src/shared.ts once the allocator is shared between workers. */
export const sharedHooks: {
  /** Reclaims abandoned segments into `heap`; true when it got any. */
  reclaim: ((heap: Heap) => boolean) | null;
  /** An address no known region (or no live segment) covers: learn what other workers made; true when something new is known. */
  locateMiss: ((addr: number) => boolean) | null;
  /** Frees a huge block owned by another (or no) worker. */
  freeForeignHuge: ((pr: PageRef) => void) | null;
} = { reclaim: null, locateMiss: null, freeForeignHuge: null };

/**
 * Lookups of one address after locateMiss learned something: each learns more (an arena,
 * then a run in it; a stale view dropped), so a few settle it; the bound keeps a bug from
 * looping forever.
 */
export const LOCATE_MISS_MAX = 8;

/** The OS backend; only valid after initialization (generic paths call this). */
export function os(): Os {
  const o = ctx.os;
  if (o === null) throw new Error("tsmalloc: not initialized");
  return o;
}
