/**
 * A heap: per size class a queue of pages to allocate from (its front page is what malloc
 * pops inline), a queue of full pages and the list of huge blocks. Heaps are owned by one
 * worker; their pages live in that worker's segments.
 */
import { BIN_COUNT, BIN_FULL, BIN_SIZE, binOf, goodSizeOf, hugeBlockSize, pageKindOfBin } from "./bins.ts";
import { budgetAnywhere } from "./budget.ts";
import { outOfLine2, outOfLine3, registerExit } from "./out-of-line.ts";
import { ctx, sharedHooks } from "./context.ts";
import { AllocationError, DoubleFreeError, InvalidPointerError } from "./errors.ts";
import { free, freeGeneric, locate, located } from "./free.ts";
import { ALIGNED_BIN, ALIGNED_FRONT, ALIGNED_IN_PAGES_MAX, alignedClassSize, copyInRegion, freeOwnEntry, ownLiveEntry, pageOfEntry, zeroClassBlock } from "./alloc-fast.ts";
import { allocHuge, freeHuge, hugeFreed, hugeSize, resizeHuge } from "./huge.ts";
import {
  DIRECT_SIZE_MAX, LARGE_OBJ_MAX, MAX_ALLOC_SIZE, MEDIUM_OBJ_MAX, P_BSIZE, P_CAPACITY, P_FLAGS,
  P_HEAP, P_OWNER, P_START, P_THREAD_FREE, P_USED, PF_HAS_ALIGNED, PF_IN_FULL, PF_RETIRE, SEGMENT_SHIFT,
} from "./layout.ts";
import { extendPage, initPage, setPageFlags, verifyEmpty } from "./page.ts";
import { PageRef, sentinelRegion } from "./region.ts";
import { pageDelay } from "./purge-delay.ts";
import { claimPage, needsSegment, purgeExpired, releasePage, scheduleKept, segmentRefOf, setKeptSweep, slotCommittedBytes } from "./segment.ts";
import {
  addGuarded, cacheChecked, collectChecked, forEachFree, type GuardedBlock, guardedActive, guardedBlocks, guardRoom, isFreeBlock,
  liveChecked, noteGuardSkipped, popChecked, randomInt32, removeGuarded, sec,
} from "./secure.ts";
import { trackMalloc } from "./track.ts";
import { syncPage } from "./usage.ts";
import { copyBytes, fillBytes, zeroBlock } from "./views.ts";
import { checkAlignment, checkPointer, checkSize } from "./validate.ts";

/** Queue of a heap's huge blocks. */
export const BIN_HUGE = BIN_FULL + 1;
/** Queue BIN_KEPT + bin: kept empty pages of class `bin`, off its class queue (keep). */
export const BIN_KEPT = BIN_HUGE + 1;
const QUEUES = BIN_KEPT + BIN_COUNT;
/** The size class of each 16-byte unit count up to DIRECT_SIZE_MAX (classes are multiples of 16). */
const DIRECT_BIN: Uint8Array = Uint8Array.from({ length: (DIRECT_SIZE_MAX >>> 4) + 1 }, (_, u) => binOf(Math.max(u << 4, 1)));
/**
 * ZERO_BY_UNITS[bsize / 16]: bsize zero bytes (views of one 4 KiB buffer), for calloc's inline
 * path (block sizes up to DIRECT_SIZE_MAX are multiples of 16).
 */
const ZERO_BY_UNITS: Uint8Array[] = (() => {
  const z = new Uint8Array(DIRECT_SIZE_MAX);
  return Array.from({ length: (DIRECT_SIZE_MAX >>> 4) + 1 }, (_, u) => z.subarray(0, u << 4));
})();
/** The first DIRECT_BIN index of each class (DIRECT_BIN.length for classes above it). */
const DIRECT_FIRST: Uint16Array = (() => {
  const first = new Uint16Array(BIN_COUNT).fill(DIRECT_BIN.length);
  for (let u = DIRECT_BIN.length - 1; u >= 0; u--) first[DIRECT_BIN[u]] = u;
  return first;
})();
/** Slow-path allocations between sweeps for empty pages. */
export const COLLECT_EVERY = 1024;
/**
 * Kept pages one slow-path sweep (mallocSlow, every COLLECT_EVERY slow calls) gives back at
 * most; the rest go at the next one, or when the purge timer runs (on the event loop, off any
 * caller's clock). Each is a purge of its slot (~20 µs here): 620 at once, a 200 MB live set
 * freed 160 ms before, stalled one malloc for 20-27 ms (session 22).
 */
export const SWEEP_SLOW_MAX = 16;
/** sweepKept's `max` for no bound: a small integer (with Infinity there, Deno's V8 deoptimized sweepKept on "not a Smi" once the bounded calls had run). */
const ALL_PAGES = 2 ** 30;

/** A page handle whose free list is always empty: directs malloc to the generic path. */
const EMPTY: PageRef = new PageRef(sentinelRegion(), 0, 0);

/** Called once before the first real allocation (the backend is picked lazily). */
let ensureInit: () => void = () => {};
export function setInitHook(f: () => void): void {
  ensureInit = f;
}

const heaps: (Heap | undefined)[] = [];
let defaultHeapRef: Heap | null = null;

export function heapById(id: number): Heap | undefined {
  return heaps[id];
}

export function defaultHeap(): Heap {
  return defaultHeapRef ??= new Heap();
}

/**
 * malloc's inline pop as a function, for mallocAligned and calloc: the address of a block
 * popped from pr's free list, or 0 (an empty page, or an entry that is not a free one: the caller's
 * generic path then finds this same page and popChecked reports it). The same text as
 * malloc's (test/layout.test.ts compares them). mallocAligned calling this.malloc made the
 * two together overrun V8's inlining budget beside free in a caller's loop, so one stayed a
 * call and every address it returned was boxed (37 against 20 ns a pair, session 25); malloc
 * keeps its own copy, since calling this from malloc measured slower on Bun.
 */
function popFront(pr: PageRef): number {
  const m = pr.m;
  const h = pr.sec;
  let n = m[h]; //                                           SEC_FREE: block index + 1, 0 = empty
  if (n === 0 && (n = m[h + 1]) !== 0) { //                  SEC_LOCAL: the owner's frees are the next free list
    m[h] = n;
    m[h + 1] = 0;
  }
  if (n !== 0) {
    const t = pr.t16;
    const x = pr.table + n - 1; //                           block n's entry (PageRef.table: the page's column)
    const e = t[x];
    if (e <= m[pr.pg + 4]) { //                              P_CAPACITY: the next free block or 0 (every mark is larger)
      m[h] = e;
      t[x] = 0xffff; //                                      ENTRY_LIVE
      m[pr.pg + 3]++; //                                     P_USED
      return pr.first + n * pr.bsize; //                     (first: the address before block 0, cached by setFront)
    }
  }
  return 0;
}

/** The front-page index of a size in (DIRECT_SIZE_MAX, LARGE_OBJ_MAX]: binOf above 64 B, computed (malloc, realloc). */
function frontIndex(size: number): number {
  const x = ((size + 7) >>> 3) - 1;
  const k = 31 - Math.clz32(x);
  return (k << 2) + ((x >>> (k - 2)) & 3) - 7;
}

/** malloc's and mallocAligned's exits to their generic paths (src/out-of-line.ts). */
const EXIT_MALLOC = registerExit((h: Heap, size: number) => h.mallocGeneric(size));
const EXIT_ALIGNED = registerExit((h: Heap, size: number, alignment: number) => h.mallocAlignedGeneric(size, alignment));
const EXIT_CALLOC = registerExit((h: Heap, count: number, size: number) => h.callocGeneric(count, size));

export class Heap {
  declare readonly id: number;
  private first: (PageRef | null)[] = new Array<PageRef | null>(QUEUES).fill(null);
  /** first[bin] for the size classes, EMPTY for none: what malloc pops inline. */
  private front: PageRef[] = new Array<PageRef>(BIN_COUNT).fill(EMPTY);
  /** front[] by 16-byte unit count up to DIRECT_SIZE_MAX: one load for small sizes. */
  private direct: PageRef[] = new Array<PageRef>(DIRECT_BIN.length).fill(EMPTY);
  private last: (PageRef | null)[] = new Array<PageRef | null>(QUEUES).fill(null);
  private state: "live" | "deleted" | "destroyed" | "detached" = "live";
  /** Pages (including huge) owned by this heap. */
  pageCount = 0;
  /** Generic-path calls since empty pages were last given back. */
  private slowCalls = 0;
  /** Empty pages kept for the page delay (keep); an entry counts only while its page's keptBy is this heap. */
  private kept: PageRef[] = [];

  /** Arena id this heap is bound to (0 = the shared arenas): its pages and huge blocks come only from there. */
  declare readonly arenaId: number;

  constructor(arenaId = 0) {
    if (ctx.detached) throw new Error(DETACHED);
    this.arenaId = arenaId;
    let id = heaps.indexOf(undefined, 1);
    if (id < 0) id = Math.max(heaps.length, 1);
    this.id = id;
    heaps[id] = this;
    if (ctx.os !== null) this.setMode();
  }

  // ---------------------------------------------------------------- malloc

  malloc(size: number): number {
    // Pops from the front page's side-table column (src/secure.ts "side table"), never reading
    // a block. Literal offsets: see HOT_PATH_LITERALS in layout.ts. Everything up to
    // LARGE_OBJ_MAX pops inline: a call that returns an address boxes it (V8). Kept small: V8
    // inlines it only while it and free fit its inlining budget together. The unary + on the
    // calls keeps the result an unboxed float64 where this is inlined.
    let pr = EMPTY; // (other sizes: its lists are empty)
    if (typeof size === "number" && (size >>> 0) === size) {
      if (size <= 4096) pr = this.direct[(size + 15) >>> 4]; //  DIRECT_SIZE_MAX
      else if (size <= 2097152) { //                          LARGE_OBJ_MAX
        pr = this.front[frontIndex(size)];
      }
    }
    // popChecked inline; mallocGeneric takes the rest: an empty page, and an entry that is not a
    // free one (findPage stops at this same page, whose list is not empty, and popChecked reports it)
    const m = pr.m;
    const h = pr.sec;
    let n = m[h]; //                                           SEC_FREE: block index + 1, 0 = empty
    if (n === 0 && (n = m[h + 1]) !== 0) { //                  SEC_LOCAL: the owner's frees are the next free list
      m[h] = n;
      m[h + 1] = 0;
    }
    if (n !== 0) {
      const t = pr.t16;
      const x = pr.table + n - 1; //                           block n's entry (PageRef.table: the page's column)
      const e = t[x];
      if (e <= m[pr.pg + 4]) { //                              P_CAPACITY: the next free block or 0 (every mark is larger)
        m[h] = e;
        t[x] = 0xffff; //                                      ENTRY_LIVE
        m[pr.pg + 3]++; //                                     P_USED
        return pr.first + n * pr.bsize; //                     (first: the address before block 0, cached by setFront)
      }
    }
    return +outOfLine2(EXIT_MALLOC, this, size); // (+: a number, so the fast path's result is never boxed; exits: src/out-of-line.ts)
  }

  /** What malloc's inline pop cannot serve: an empty front page, huge sizes, bad input, first use. */
  mallocGeneric(size: number): number {
    if (typeof size === "number" && (size >>> 0) === size && size <= LARGE_OBJ_MAX) return this.mallocSlow(binOf(size), size);
    checkSize(size);
    if (size > MAX_ALLOC_SIZE) return 0;
    return this.mallocHuge(size, 0);
  }

  private mallocSlow(bin: number, size: number): number {
    this.checkLive();
    if (ctx.os === null) {
      ensureInit();
      // the first allocation: the configuration may have given this heap another malloc
      if (this.malloc !== Heap.prototype.malloc) return this.malloc(size);
    }
    if (++this.slowCalls >= COLLECT_EVERY) {
      // (a loop that never yields to the purge timer still gives back pages kept too long)
      this.slowCalls = 0;
      this.freeEmptyPages(true);
      const now = ctx.now();
      if (this.sweepKept(now, KEPT_EXPIRED, SWEEP_SLOW_MAX) <= now) scheduleKept(now); // (expired pages left: the timer takes them)
    }
    let pr = this.findPage(bin);
    if (pr === null) return 0;
    // a corrupted list is dropped (popChecked returns 0): another page, or this one extended
    for (let tries = 0; ; tries++) {
      const b = popChecked(pr.m, pr.pg, pr.sec);
      if (b !== 0) return pr.base + b;
      if (tries === 8 || (pr = this.findPage(bin)) === null) return 0;
    }
  }

  /** flush: a guarded allocation of exactly `size` bytes ending at a guard page. */
  private mallocHuge(size: number, align: number, flush = false, room = 0): number {
    this.checkLive();
    if (ctx.os === null) {
      ensureInit();
      if (align === 0 && this.malloc !== Heap.prototype.malloc) return this.malloc(size);
    }
    if (ctx.shared) this.reapHuge();
    // carved from an arena: kept empty pages go back first (whole segments may free up there)
    if (keptPages > 0 && (ctx.shared || this.arenaId !== 0)) sweepAllKept(KEPT_ALL);
    const r0 = ctx.counters.budgetRefusals;
    let pr = allocHuge(size, align, this.id, this.arenaId, flush, room);
    if (pr === null) {
      collectBeforeRefusal(this);
      pr = allocHuge(size, align, this.id, this.arenaId, flush, room);
    }
    // (also after a first attempt that succeeded: a cached mapping the budget refused before fresh memory fit is no refusal)
    settleRefusals(r0, pr === null);
    if (pr === null) return 0;
    pr.heap = this;
    this.push(pr, BIN_HUGE);
    this.pageCount++;
    const p = pr.base + pr.m[pr.pg + P_START];
    if (sec.fill) {
      pr.r.fresh = false;
      try {
        fillBytes(p, hugeSize(pr.r), 0xd0);
      } catch (e) {
        free(p); // never orphan a block taken
        throw e;
      }
    }
    return p;
  }

  /** A page of class `bin` with a free block, moved to the front of its queue. */
  private findPage(bin: number): PageRef | null {
    let pr = this.first[bin];
    if (pr !== null) syncPage(pr); // peakInUse sample: the page fast-path mallocs took from
    pr = this.scanQueue(pr);
    if (pr === null && (pr = this.first[BIN_KEPT + bin]) !== null) {
      // a kept empty page of the class, only once no page in use has room (keep)
      this.remove(pr);
      pr.emptiedAt = 0; // in use again (its kept entry is dropped by the next sweep, or counts again once re-kept)
      this.pushFront(pr, bin);
      return pr;
    }
    // shared allocator: blocks other workers freed into full pages, and abandoned segments, before new memory
    if (pr === null && ctx.shared && this.rescue()) pr = this.scanQueue(this.first[bin]);
    if (pr === null) {
      const r0 = ctx.counters.budgetRefusals;
      pr = this.freshPage(bin);
      if (pr === null) {
        collectBeforeRefusal(this);
        pr = this.freshPage(bin);
      }
      settleRefusals(r0, pr === null); // (also after a first attempt that succeeded after a refusal)
      if (pr === null) return null;
    } else if (pr !== this.first[bin]) {
      this.remove(pr);
      this.pushFront(pr, bin);
    }
    return pr;
  }

  /** The first page from pr on with a free block (or room to extend); full ones move to the full queue. */
  private scanQueue(pr: PageRef | null): PageRef | null {
    while (pr !== null) {
      const next = pr.next;
      const m = pr.m;
      collectChecked(m, pr.pg);
      if (m[pr.sec] !== 0 || extendPage(m, pr.pg)) break; // (SEC_FREE: the free list's head)
      this.toFull(pr);
      pr = next;
    }
    return pr;
  }

  /**
   * Shared allocator, before taking new memory: pages parked in the full queue that other
   * workers freed blocks into go back to their class queues (no cross-worker free is lost:
   * this runs whenever the heap would otherwise claim a fresh page); huge blocks other
   * workers freed are reaped; then abandoned segments are reclaimed. True when anything changed.
   */
  rescue(): boolean {
    let got = false;
    for (let pr = this.first[BIN_FULL]; pr !== null;) {
      const next = pr.next;
      const m = pr.m;
      if ((Atomics.load(m, pr.pg + P_THREAD_FREE) & ~15) !== 0) {
        collectChecked(m, pr.pg);
        this.unfull(pr);
        if (m[pr.pg + P_USED] === 0) this.pageEmptied(pr);
        got = true;
      }
      pr = next;
    }
    this.reapHuge();
    if (sharedHooks.reclaim !== null && sharedHooks.reclaim(this)) got = true; // (a bound heap: from its arena only)
    return got;
  }

  /** Frees huge blocks of this heap that other workers freed (they set bit 0 of the thread-free word). */
  reapHuge(): void {
    for (let pr = this.first[BIN_HUGE]; pr !== null;) {
      const next = pr.next;
      if (hugeFreed(pr.r)) {
        this.removeHuge(pr);
        freeHuge(pr);
      }
      pr = next;
    }
  }

  /** Takes over a live page of a reclaimed segment (its owner word already names this worker). */
  reclaimPage(pr: PageRef): void {
    const m = pr.m;
    const pg = pr.pg;
    m[pg + P_OWNER] = ctx.tag;
    setPageFlags(m, pg, m[pg + P_FLAGS] & ~(PF_IN_FULL | PF_RETIRE));
    const bin = binOf(m[pg + P_BSIZE]);
    pr.bin = bin;
    this.adopt(pr, bin);
    collectChecked(m, pg);
    if (m[pg + P_USED] === 0) this.pageEmptied(pr);
  }

  /**
   * Detach: gives back empty pages; returns the pages still holding live blocks (the
   * caller abandons their segments) and retires the heap.
   */
  abandon(): PageRef[] {
    const live: PageRef[] = [];
    if (this.state !== "live") return live;
    for (const pr of this.pages()) {
      if (pr.queue === BIN_HUGE) {
        this.remove(pr);
        this.pageCount--;
        pr.heap = null;
        live.push(pr);
        continue;
      }
      collectChecked(pr.m, pr.pg);
      if (pr.m[pr.pg + P_USED] === 0 && verifyEmpty(pr.m, pr.pg)) this.freePage(pr, true);
      else {
        this.remove(pr);
        this.pageCount--;
        pr.heap = null;
        live.push(pr);
      }
    }
    this.retire("detached");
    return live;
  }

  private freshPage(bin: number): PageRef | null {
    // kept empty pages (any heap's) go back before a new segment is claimed: those of this
    // kind first (their slots serve it), else all (whole segments may go back to the arena)
    const kind = pageKindOfBin(bin);
    if (keptPages > 0 && needsSegment(kind, this.arenaId)) {
      // only until a slot is free, and not purged now (the new page takes the slot: a purge
      // would be faulted back at once; the others, whose segments may go back to the arena,
      // wait for their purge delay). All at once and purged, 160-620 expired pages stalled one
      // malloc for up to 27 ms (session 22)
      const enough = () => !needsSegment(kind, this.arenaId);
      for (const h of heaps) {
        if (h !== undefined && h.isLive && h.arenaId === this.arenaId && !enough()) h.releaseKeptOfKind(kind, enough);
      }
      if (keptPages > 0 && needsSegment(kind, this.arenaId)) sweepAllKept(KEPT_ALL, ALL_PAGES, true);
    }
    const got = claimPage(kind, this.arenaId, BIN_SIZE[bin]);
    if (got === null) return null;
    const { pr, start, end } = got;
    initPage(pr.m, pr.pg, bin, start, end, this.id, ctx.tag);
    pr.heap = this;
    this.pushFront(pr, bin);
    this.pageCount++;
    return pr;
  }

  // ---------------------------------------------------------------- page queues

  private pushFront(pr: PageRef, q: number): void {
    pr.queue = q;
    pr.prev = null;
    pr.next = this.first[q];
    if (pr.next !== null) {
      pr.next.prev = pr;
      setRetire(pr.next, true);
    } else this.last[q] = pr;
    this.first[q] = pr;
    if (q < BIN_FULL) this.setFront(q, pr);
    setRetire(pr, q >= BIN_FULL);
  }

  private push(pr: PageRef, q: number): void {
    pr.queue = q;
    pr.next = null;
    pr.prev = this.last[q];
    if (pr.prev !== null) pr.prev.next = pr;
    else {
      this.first[q] = pr;
      if (q < BIN_FULL) this.setFront(q, pr);
    }
    this.last[q] = pr;
    setRetire(pr, q >= BIN_FULL || pr.prev !== null);
  }

  /** A class queue's first page changed. */
  private setFront(bin: number, pr: PageRef): void {
    cacheChecked(pr);
    this.front[bin] = pr;
    for (let u = DIRECT_FIRST[bin]; u < DIRECT_BIN.length && DIRECT_BIN[u] === bin; u++) this.direct[u] = pr;
  }

  private remove(pr: PageRef): void {
    const q = pr.queue;
    if (pr.prev !== null) pr.prev.next = pr.next;
    else {
      this.first[q] = pr.next;
      if (q < BIN_FULL) {
        this.setFront(q, pr.next ?? EMPTY);
        if (pr.next !== null) setRetire(pr.next, false);
      }
    }
    if (pr.next !== null) pr.next.prev = pr.prev;
    else this.last[q] = pr.prev;
    pr.next = pr.prev = null;
    pr.queue = -1;
  }

  private toFull(pr: PageRef): void {
    const bin = pr.queue;
    pr.emptiedAt = 0; // in use (a page kept as its queue's first and filled again by the inline pop: not kept any more)
    this.remove(pr);
    this.push(pr, BIN_FULL);
    setPageFlags(pr.m, pr.pg, pr.m[pr.pg + P_FLAGS] | PF_IN_FULL);
    pr.bin = bin;
  }

  /** A block was freed into a page parked as full: it goes back to its class queue. */
  unfull(pr: PageRef): void {
    if (this.foreignPool(pr)) return; // stays parked: an exclusive arena serves only heaps bound to it
    const bin = pr.bin;
    this.remove(pr);
    this.push(pr, bin);
    setPageFlags(pr.m, pr.pg, pr.m[pr.pg + P_FLAGS] & ~PF_IN_FULL);
  }

  /** The last live block of a page was freed locally. */
  pageEmptied(pr: PageRef): void {
    const q = pr.queue;
    const first = q < BIN_FULL && this.first[q] === pr;
    // a class's allocation page stays (allocating again right away is the common case:
    // mimalloc's mi_page_retire) and counts in pendingPurge (keptBytes); a large one (4 MiB
    // slot), or any while a budget binds a shared allocator, only for the delay: see setRetire
    if (first && pr.m[pr.pg + P_BSIZE] <= MEDIUM_OBJ_MAX && !budgetAnywhere()) return;
    this.keep(pr, first);
  }

  /**
   * Keeps an empty page for the page purge delay instead of giving it back at once: a live
   * set that shrinks and grows again takes its pages back with their free lists as they are
   * (no verifyEmpty walk, no extension, no refault). A kept page leaves its class queue for
   * the class's kept queue (BIN_KEPT + bin), and findPage takes it back only when no page in
   * use has room: as a fresh page would be. (Left in the class queue, 650 kept pages of a
   * freed 100,000-block live set took a new live set's allocations in turn: spread over all
   * of them, larson ran 17-25% slower for as long as they were kept; session 23.) Pages still
   * empty when the delay runs out are verified and released (sweepKept, from the purge
   * timer and slow paths); before this heap's class would need a new segment, the kept
   * pages of that segment kind go back first, so keeping never grows the footprint.
   * mimalloc keeps only a queue's last page (mi_page_retire); see doc/PERFORMANCE.md.
   */
  private keep(pr: PageRef, first = false): void {
    // already kept: its deadline stands (an allocation page emptied by every free of a
    // malloc/free loop would otherwise read the clock each time; at worst such a page is
    // released once per delay while in use, and taken again) — unless it is to leave its
    // class queue now (kept as the queue's first page, then pushed behind another)
    const q = pr.queue;
    const behind = q < BIN_FULL && this.first[q] !== pr;
    if (pr.keptBy === this && pr.emptiedAt !== 0 && !behind) return;
    const delay = pageDelay();
    // a shared allocator keeps no page (a refusal could not take another worker's back: review
    // round 7; keeping them while no worker had a budget made the session-10 soak's committed
    // and resident trend upward: not done until that is understood). A class's allocation page
    // (first) is kept until the next purge tick at least (else a malloc/free loop would give
    // it back and claim it again at every call)
    if (!first && (delay <= 0 || ctx.shared)) {
      this.freePage(pr);
      return;
    }
    const now = ctx.now();
    pr.emptiedAt = now;
    if (behind) {
      this.remove(pr);
      pr.bin = q;
      this.pushFront(pr, BIN_KEPT + q);
    }
    if (pr.keptBy !== this) {
      pr.keptBy = this;
      this.kept.push(pr);
      keptPages++;
    }
    scheduleKept(now + Math.max(delay, 0));
  }

  /**
   * Gives back this heap's kept empty pages of page kind `kind` until `enough()`, as if just
   * emptied (a new page is about to take a slot: their purge waits a delay); one pass. Entries
   * of pages released meanwhile or in use again are dropped, as sweepKept drops them.
   */
  releaseKeptOfKind(kind: number, enough: () => boolean): void {
    const l = this.kept;
    let n = 0;
    let done = false;
    for (let i = 0; i < l.length; i++) {
      const pr = l[i];
      if (pr.keptBy !== this) continue; // another heap keeps it now
      if (pr.heap !== this || pr.emptiedAt === 0) { // released meanwhile, or in use again
        pr.keptBy = null;
        pr.emptiedAt = 0;
        continue;
      }
      // (the bin of a kept page, or of one Heap.delete parked as full, is pr.bin)
      if (!done && pageKindOfBin(pr.queue < BIN_FULL ? pr.queue : pr.bin) === kind) {
        collectChecked(pr.m, pr.pg);
        pr.keptBy = null;
        if (pr.m[pr.pg + P_USED] === 0) {
          this.freePage(pr, false, 0);
          done = enough();
        } else pr.emptiedAt = 0; // in use again
        continue;
      }
      l[n++] = pr;
    }
    keptPages -= l.length - n;
    l.length = n;
  }

  /**
   * Releases kept pages still empty after the page delay (every one with KEPT_ALL: new memory
   * is about to be claimed; one page kind's: releaseKeptOfKind); drops
   * entries of pages in use again; at most `max` pages are released (the rest stay, due);
   * `reuse`: a new page is about to take the slot, so it is released as if just emptied (its
   * purge waits a delay instead of happening now). Returns the earliest deadline among those
   * left (Infinity: none). Never nested in another walk of this heap's pages (the timer, mallocSlow).
   */
  sweepKept(now: number, kind = KEPT_EXPIRED, max = ALL_PAGES, reuse = false): number {
    const delay = pageDelay();
    const l = this.kept;
    let n = 0;
    let due = Infinity;
    let released = 0;
    for (let i = 0; i < l.length; i++) {
      const pr = l[i];
      if (pr.keptBy !== this) continue; // another heap keeps it now
      if (pr.heap === this && pr.emptiedAt !== 0) {
        collectChecked(pr.m, pr.pg);
        if (pr.m[pr.pg + P_USED] === 0) {
          const idle = now - pr.emptiedAt;
          if ((idle < delay && kind === KEPT_EXPIRED) || released >= max) {
            l[n++] = pr;
            if (pr.emptiedAt + delay < due) due = pr.emptiedAt + delay;
            continue;
          }
          pr.keptBy = null;
          released++;
          this.freePage(pr, false, reuse ? 0 : idle);
          continue;
        }
      }
      pr.keptBy = null; // released meanwhile, or in use again
      pr.emptiedAt = 0;
    }
    keptPages -= l.length - n;
    l.length = n;
    return due;
  }

  /**
   * Committed bytes of this heap's kept pages that are still empty, and of its classes'
   * allocation pages that are empty (pageEmptied leaves those where they are).
   */
  keptBytes(): number {
    let n = 0;
    for (const pr of this.kept) {
      if (pr.keptBy === this && pr.heap === this && pr.emptiedAt !== 0 && liveChecked(pr.m, pr.pg) === 0) n += slotCommittedBytes(pr);
    }
    for (let q = 0; q < BIN_FULL; q++) {
      const pr = this.first[q];
      if (pr !== null && pr.m !== EMPTY.m && !(pr.keptBy === this && pr.emptiedAt !== 0) && liveChecked(pr.m, pr.pg) === 0) n += slotCommittedBytes(pr);
    }
    return n;
  }

  /** Gives an emptied page back to its segment; unless `trusted`, only once its lists prove it empty (verifyEmpty). */
  private freePage(pr: PageRef, trusted = false, idle = 0): void {
    if (!trusted && !verifyEmpty(pr.m, pr.pg)) return; // a wild write into the side table made the used count lie: the page stays
    this.remove(pr);
    pr.heap = null;
    pr.emptiedAt = 0;
    this.pageCount--;
    releasePage(pr, idle);
  }

  removeHuge(pr: PageRef): void {
    this.remove(pr);
    pr.heap = null;
    this.pageCount--;
  }

  // ---------------------------------------------------------------- other entry points

  zalloc(size: number): number {
    return zeroed(this.malloc(size), size);
  }

  calloc(count: number, size: number): number {
    // Up to DIRECT_SIZE_MAX: malloc's pop (popFront, as mallocAligned), then the whole block
    // zeroed in place (mimalloc zeroes it all too) by a typed-array set from a zero view: a
    // builtin, no bytecode of ours against a caller's inlining budget. The rest through the exit
    // (src/out-of-line.ts). Kept small so that free still fits V8's inlining budget beside it in
    // a caller's loop. (typeof first: a non-number is never coerced, callocGeneric throws TypeError.)
    let pr = EMPTY;
    let n = 0;
    if (
      this.inlinePop && typeof count === "number" && typeof size === "number" && (count >>> 0) === count && (size >>> 0) === size &&
      (n = count * size) <= 4096 //                           DIRECT_SIZE_MAX
    ) pr = this.direct[(n + 15) >>> 4];
    const p = popFront(pr);
    if (p !== 0) {
      pr.r.u8.set(ZERO_BY_UNITS[pr.bsize >>> 4], p - pr.base);
      return p;
    }
    return +outOfLine3(EXIT_CALLOC, this, count, size);
  }

  /** What calloc's inline pop cannot serve (its exit: src/out-of-line.ts). */
  callocGeneric(count: number, size: number): number {
    if (typeof count === "number" && typeof size === "number" && (count >>> 0) === count && (size >>> 0) === size) {
      const total = count * size;
      if (total <= LARGE_OBJ_MAX) return zeroed(this.malloc(total), total);
    }
    checkSize(count, "count");
    checkSize(size);
    const total = count * size;
    if (total > MAX_ALLOC_SIZE) return 0;
    return this.zalloc(total);
  }

  /** Like malloc but throws AllocationError instead of returning 0. */
  alloc(size: number): number {
    ctx.refusal = "";
    const p = this.malloc(size);
    if (p === 0) throw new AllocationError(size, statsHook(), size > MAX_ALLOC_SIZE ? "larger than MAX_ALLOC_SIZE" : ctx.refusal || "out of memory");
    return p;
  }

  mallocAligned(size: number, alignment: number): number {
    // The common case first (mimalloc's naturally aligned classes, alloc-aligned.c): a class
    // whose block size is a multiple of the alignment. Its blocks are aligned (page starts are
    // ALIGNED_IN_PAGES_MAX aligned) and are the exact block starts malloc hands out.
    // inlinePop: no guarded sampling and no debug fill, so popping here is what the
    // prototype's malloc would do. Sizes up to ALIGNED_DIRECT_MAX (4096); the
    // table's rows for alignments past 8 KiB and for 0 hold class 0, whose front page is EMPTY.
    let pr = EMPTY;
    if (
      this.inlinePop && typeof size === "number" && typeof alignment === "number" && (size >>> 0) === size && size <= 4096 &&
      (alignment >>> 0) === alignment && (alignment & (alignment - 1)) === 0
    ) {
      pr = this.front[ALIGNED_FRONT[Math.clz32(alignment) * 513 + ((size + 7) >>> 3)]]; // 8-byte words
    }
    const p = popFront(pr);
    if (p !== 0) return p;
    return +outOfLine3(EXIT_ALIGNED, this, size, alignment);
  }

  /** What mallocAligned's inline pop cannot serve (its exit: src/out-of-line.ts). */
  mallocAlignedGeneric(size: number, alignment: number): number {
    checkSize(size);
    checkAlignment(alignment);
    if (size > MAX_ALLOC_SIZE || alignment > MAX_ALIGNMENT) return 0;
    if (alignment <= 16) return this.malloc(size);
    // Every address handed out is the start of its block (free, usableSize and views accept
    // only those): no block is shifted inside a larger one. Page starts are 8 KiB aligned, so
    // a class that is a multiple of the alignment gives aligned blocks (never a guarded
    // allocation here: those are only 16-byte aligned); larger alignments get a huge block
    // placed at an aligned address.
    if (alignment <= ALIGNED_IN_PAGES_MAX && size <= LARGE_OBJ_MAX) {
      const bin = ALIGNED_BIN[(26 - Math.clz32(alignment)) * BIN_COUNT + binOf(size > alignment ? size : alignment)]; // (log2 - 5)
      if (bin !== 0) return this.mallocUnsampled(BIN_SIZE[bin]);
    }
    return this.mallocHuge(Math.max(size, 1), alignment);
  }

  zallocAligned(size: number, alignment: number): number {
    return zeroed(this.mallocAligned(size, alignment), size);
  }

  realloc(p: number, size: number): number {
    // A live block of this worker's in the region of the last free, resized within the
    // classes (mimalloc's mi_heap_realloc): the free fast path's lookup instead of locate,
    // and bytes moved through the region's view. Everything else: reallocGeneric.
    if (typeof p === "number" && typeof size === "number" && (size >>> 0) === size && size <= 2097152) { // LARGE_OBJ_MAX
      const r = ctx.lastRegion;
      const x = ownLiveEntry(r, p);
      if (x >= 0) {
        const bsize = r.i32[pageOfEntry(x) + 6]; //              P_BSIZE
        if (size <= bsize && size >= (bsize >>> 1)) return p; // fits, and at most half of it unused
        // popFront, not this.malloc: a call V8 does not inline returns the address boxed (one
        // heap number per step of a chain; −40 to −90 ns a 12-step chain, session 30)
        let q = this.inlinePop ? popFront(size <= 4096 ? this.direct[(size + 15) >>> 4] : this.front[frontIndex(size)]) : 0; // DIRECT_SIZE_MAX
        if (q === 0 && (q = this.malloc(size)) === 0) return 0;
        const len = size < bsize ? size : bsize;
        const d = q - r.base;
        if (d > 0 && d + len <= r.limit) copyInRegion(r, d, p - r.base, len);
        else copyBytes(q, p, len); // (another arena; cannot throw: both blocks are live and ours)
        if (sec.fill) freeMoved(p, q);
        else freeOwnEntry(r, x); // (p is still live: nothing but this worker frees, and malloc pops free blocks)
        return q;
      }
    }
    return this.reallocGeneric(p, size);
  }

  private reallocGeneric(p: number, size: number): number {
    if (p === 0) return this.malloc(size);
    checkPointer(p);
    checkSize(size);
    const usable = usableSizeFor(p, "realloc");
    if (size <= usable && size >= Math.floor(usable / 2)) return p;
    if (size > MAX_ALLOC_SIZE) return 0;
    // amortized growth: a huge block grows in place while its mapping has room, and one
    // that moves to a huge size gets a mapping with room for half as much again
    if (size > LARGE_OBJ_MAX && usable > LARGE_OBJ_MAX && size > usable && resizeHuge(locate(p, "realloc"), size)) return p;
    // (a block grown this way is never a guarded sample: amortized growth comes first; review round 7)
    const q = size > usable && size > LARGE_OBJ_MAX ? this.mallocGrown(size, 0) : this.malloc(size);
    if (q === 0) return 0;
    moveBlock(q, p, Math.min(usable, size));
    return q;
  }

  /**
   * A huge block for realloc growth: its mapping has room to grow in place to 1.5 * size
   * (without the room when that is refused). Refused both ways, it counts as one refusal.
   */
  private mallocGrown(size: number, alignment: number): number {
    const r0 = ctx.counters.budgetRefusals;
    const q = this.mallocHuge(size, alignment, false, size + Math.floor(size / 2)) || this.mallocHuge(size, alignment);
    settleRefusals(r0, q === 0);
    return q;
  }

  reallocAligned(p: number, size: number, alignment: number): number {
    if (p === 0) return this.mallocAligned(size, alignment);
    checkPointer(p);
    checkSize(size);
    checkAlignment(alignment);
    const usable = usableSizeFor(p, "realloc");
    if (p % alignment === 0 && size <= usable && size >= Math.floor(usable / 2)) return p;
    if (size > MAX_ALLOC_SIZE || alignment > MAX_ALIGNMENT) return 0;
    // a smaller size whose fresh aligned block would be no smaller stays (review round 7: a huge
    // aligned block of 256 KiB moved on every reallocAligned below 128 KiB)
    if (p % alignment === 0 && size <= usable && alignedUsable(size, alignment) >= usable) return p;
    // amortized growth as realloc's (review round 6: 79 moves, 18.6x the final size copied)
    const grow = size > usable && size > LARGE_OBJ_MAX;
    if (grow && usable > LARGE_OBJ_MAX && p % alignment === 0 && resizeHuge(locate(p, "realloc"), size)) return p;
    const q = grow ? this.mallocGrown(size, alignment > 16 ? alignment : 0) : this.mallocAligned(size, alignment);
    if (q === 0) return 0;
    moveBlock(q, p, Math.min(usable, size));
    return q;
  }

  usableSize(p: number): number {
    return usableSize(p);
  }

  free(p: number): void {
    free(p);
  }

  // ---------------------------------------------------------------- heap lifetime

  private checkLive(): void {
    if (this.state !== "live") throw new Error(this.state === "detached" ? DETACHED : `tsmalloc: heap ${this.id} was ${this.state}`);
  }

  /** Every page of this heap, over all queues. */
  pages(): PageRef[] {
    const out: PageRef[] = [];
    for (let q = 0; q < QUEUES; q++) for (let pr = this.first[q]; pr !== null; pr = pr.next) out.push(pr);
    return out;
  }

  /** Frees empty pages; with force also purges expired (or all) free memory. */
  collect(force: boolean): void {
    this.freeEmptyPages();
    purgeExpired(force);
  }

  /**
   * Gives pages without live blocks back to their segments (the free fast path leaves a
   * queue's first page queued, and blocks other workers freed are only seen here). With
   * `keep`, pages not yet kept are kept for the page delay instead (the periodic slow-path
   * visit); else every empty page goes now, kept ones included (collect, budgets, detach).
   */
  freeEmptyPages(keep = false): void {
    for (const pr of this.pages()) {
      if (pr.queue === BIN_HUGE) continue;
      collectChecked(pr.m, pr.pg);
      if (pr.m[pr.pg + P_USED] !== 0) continue;
      if (!keep) this.freePage(pr);
      else if (pr.keptBy !== this) this.keep(pr);
    }
    if (!keep) this.dropKept();
  }

  /** Empties the kept list (its pages were released or stay as live pages). */
  private dropKept(): void {
    for (const pr of this.kept) {
      if (pr.keptBy !== this) continue;
      pr.keptBy = null;
      pr.emptiedAt = 0;
    }
    keptPages -= this.kept.length;
    this.kept.length = 0;
  }

  /** Frees every block of the heap at once. */
  destroy(): void {
    if (this.state !== "live") return;
    // holders that refuse: a guard throws before anything changed (an open cAllocator with live blocks)
    const guards = destroyGuards.get(this);
    if (guards !== undefined) for (const g of guards) g();
    // users of this heap's blocks that must stop first (ArenaPool: its live arenas' chunks)
    const hooks = destroyHooks.get(this);
    if (hooks !== undefined) {
      destroyHooks.delete(this);
      for (const f of hooks) f();
    }
    // guard pages of live guarded allocations go before their pages are reused
    for (const [block, g] of guardedBlocks) if (g.pr.heap === this) removeGuarded(block, g);
    for (const pr of this.pages()) {
      if (pr.queue === BIN_HUGE) {
        this.removeHuge(pr);
        freeHuge(pr);
      } else {
        this.freePage(pr, true);
      }
    }
    this.retire("destroyed");
  }

  /** Live blocks move to the default heap; this heap can no longer allocate. */
  delete(): void {
    if (this.state !== "live") return;
    const target = defaultHeap();
    if (target === this) throw new Error("tsmalloc: the default heap cannot be deleted");
    this.freeEmptyPages(); // (kept ones included: only pages with live blocks move)
    for (const pr of this.pages()) {
      const q = pr.queue >= BIN_KEPT ? pr.queue - BIN_KEPT : pr.queue; // (a kept page verifyEmpty refused stays: to its class)
      this.remove(pr);
      this.pageCount--;
      if (q < BIN_FULL && target.foreignPool(pr)) {
        // a page of an arena the target is not bound to: its live blocks stay valid, but the
        // target never allocates from it (parked as full until it empties)
        target.adopt(pr, BIN_FULL);
        setPageFlags(pr.m, pr.pg, pr.m[pr.pg + P_FLAGS] | PF_IN_FULL);
        pr.bin = q;
      } else target.adopt(pr, q);
    }
    this.retire("deleted");
  }

  /** True when pr's segment serves heaps bound to another arena than this heap's (Heap.delete moved it here). */
  foreignPool(pr: PageRef): boolean {
    const ref = segmentRefOf(pr.r, pr.seg >>> SEGMENT_SHIFT);
    return ref !== undefined && ref.pool !== this.arenaId;
  }

  private adopt(pr: PageRef, q: number): void {
    pr.heap = this;
    pr.m[pr.pg + P_HEAP] = this.id;
    this.push(pr, q);
    this.pageCount++;
  }

  private retire(state: "deleted" | "destroyed" | "detached"): void {
    this.dropKept();
    this.state = state;
    this.front.fill(EMPTY);
    this.direct.fill(EMPTY);
    this.first.fill(null);
    this.last.fill(null);
    heaps[this.id] = undefined;
  }

  get isLive(): boolean {
    return this.state === "live";
  }

  /** Calls cb(ptr, usableSize) for each live block; stops when cb returns false. */
  visit(cb: (ptr: number, usableSize: number) => boolean | void): void {
    this.checkLive();
    for (const pr of this.pages()) {
      if (!visitPage(pr, cb)) return;
    }
  }

  /** True when p is the address of a live block of this heap. */
  contains(p: number): boolean {
    if (typeof p !== "number" || !Number.isInteger(p) || p <= 0) return false;
    let pr: PageRef;
    try {
      pr = locate(p, "contains");
    } catch {
      return false;
    }
    if (pr.heap !== this) return false;
    if (pr.m[pr.pg + P_BSIZE] === -1) return !hugeFreed(pr.r);
    return !isOnFreeList(pr, located.off); // (locate accepts only addresses handed out)
  }

  // ---------------------------------------------------------------- secure mode, debug fill, guarded allocations

  /** Allocations in guarded range until the next guarded one (guardedSampleRate). */
  private guardCount = 0;
  /**
   * True while setMode finds neither guarded sampling nor debug fill: mallocAligned and calloc
   * then pop inline (popFront) as the prototype's malloc would. False before initialization
   * (the configuration may still turn either on).
   */
  private inlinePop = false;

  /**
   * Picks this heap's malloc for the process's configuration (src/secure.ts). Without
   * debugFill and guarded sampling nothing changes: the prototype's malloc, the fast path.
   * Otherwise `malloc` becomes an own property: mallocFill (debug fill) or mallocSampled
   * (guarded allocations, then either).
   */
  setMode(): void {
    const sampled = guardedActive();
    // track on: a recording wrapper around the pick (src/track.ts)
    const want = trackMalloc(this, sampled ? this.mallocSampled : this.baseMalloc());
    if (this.malloc !== want) this.malloc = want;
    this.inlinePop = !sampled && !sec.fill; // (track on: its own mallocAligned and calloc wrappers record the block)
    if (sampled) {
      const rate = ctx.options.guardedSampleRate;
      this.guardCount = rate > 1 ? ((randomInt32() >>> 0) % rate) + 1 : 1; // as mimalloc: a random start
    }
  }

  /** The malloc without guarded sampling: the prototype's, or mallocFill. */
  private baseMalloc(): (size: number) => number {
    return sec.fill ? this.mallocFill : Heap.prototype.malloc;
  }

  /** malloc with debug fill: the whole block reads 0xD0 (huge blocks are filled by mallocHuge). */
  mallocFill(size: number): number {
    const p = Heap.prototype.malloc.call(this, size);
    if (p !== 0 && size <= LARGE_OBJ_MAX) fillBytes(p, usableSize(p), 0xd0);
    return p;
  }

  /** malloc without guarded sampling (aligned allocations, the block behind a guarded one). */
  private mallocUnsampled(size: number): number {
    if (!guardedActive()) return this.malloc(size); // (this.malloc may be track's wrapper around mallocSampled)
    return this.baseMalloc().call(this, size);
  }

  /** malloc with guarded sampling: one in guardedSampleRate allocations in [guardedMin, guardedMax]. */
  private mallocSampled(size: number): number {
    const o = ctx.options;
    if (typeof size === "number" && size >= o.guardedMin && size <= Math.max(o.guardedMin, o.guardedMax) && --this.guardCount <= 0) {
      this.guardCount = o.guardedSampleRate;
      if (Number.isInteger(size) && size <= MAX_ALLOC_SIZE) {
        if (guardRoom(1)) return this.mallocGuarded(size);
        noteGuardSkipped(); // an ordinary block instead
      }
    }
    return this.baseMalloc().call(this, size);
  }

  /**
   * A guarded allocation (mimalloc MI_GUARDED): the object ends flush against a PROT_NONE
   * page at the end of its block, which is a run of whole OS pages. The object is
   * goodSize(size) bytes, so usableSize is what an unsampled malloc(size) would give (and
   * every byte of it is writable). Larger ones are huge blocks placed the same way. Where
   * the object starts inside its block is recorded only in guardedBlocks (JS-side: guarded
   * allocations are never shared between workers).
   */
  private mallocGuarded(size: number): number {
    const P = sec.pageSize;
    const obj = goodSizeOf(size);
    for (let req = Math.ceil((obj + 16) / P) * P + P; req <= LARGE_OBJ_MAX; req += P) {
      const b = this.baseMalloc().call(this, req);
      if (b === 0) return 0;
      const pr = locate(b, "malloc");
      const m = pr.m;
      const pg = pr.pg;
      const guard = Math.floor((b + m[pg + P_BSIZE] - P) / P) * P;
      const p = guard - obj;
      if (p < b + 16) { // the block is not page aligned enough: a larger class
        free(b);
        continue;
      }
      setPageFlags(m, pg, m[pg + P_FLAGS] | PF_HAS_ALIGNED);
      addGuarded(b, { p, usable: obj, guard, pr });
      return p;
    }
    return this.mallocHuge(obj, 0, true);
  }
}

/** Entries in all heaps' kept lists (an upper bound on kept pages: some may be in use again). */
let keptPages = 0;

/** Committed bytes of the empty pages live heaps keep (stats().pendingPurge counts them). */
export function keptBytes(): number {
  let n = 0;
  for (const h of heaps) if (h !== undefined && h.isLive) n += h.keptBytes();
  return n;
}

/** Why a worker that detached cannot make a heap or reserve memory again. */
export const DETACHED = "tsmalloc: this worker has detached from the shared allocator: it can still free blocks, but no longer allocate, create heaps or reserve memory";

/** sweepKept's modes: only pages whose delay ran out, or every kept page. */
const KEPT_EXPIRED = -1, KEPT_ALL = -2;

/** Every live heap releases its kept pages whose delay ran out (KEPT_ALL: all); returns the next deadline. */
function sweepAllKept(kind = KEPT_EXPIRED, max = ALL_PAGES, reuse = false): number {
  const now = ctx.now();
  let due = Infinity;
  for (const h of heaps) if (h !== undefined && h.isLive) due = Math.min(due, h.sweepKept(now, kind, max, reuse));
  return due;
}
// the purge timer (segment.ts) releases kept pages whose delay ran out (all: purgeDelay became 0)
setKeptSweep((all) => sweepAllKept(all ? KEPT_ALL : KEPT_EXPIRED));

/**
 * After an allocation's attempts (the retry that follows collectBeforeRefusal included): a
 * refused allocation counts once in budgetRefusals (both attempts may have been refused), one
 * that was served not at all, even if a step inside refused (a cached huge mapping the budget
 * refused before fresh memory fit; review round 17). r0: the count before the first attempt.
 */
function settleRefusals(r0: number, failed: boolean): void {
  const c = ctx.counters;
  c.budgetRefusals = failed && c.budgetRefusals > r0 ? r0 + 1 : r0;
}

/**
 * Before an allocation is refused (a budget, an exclusive arena that is full, the OS): gives
 * back what this worker holds without using it — empty pages of every live heap (the free
 * fast path leaves them queued), with a shared allocator huge blocks other workers freed and
 * abandoned segments — and purges free memory now (cached huge mappings included). The
 * caller retries once. A heap bound to an arena only frees the empty pages of the heaps
 * bound to that arena: nothing else could make room there.
 */
function collectBeforeRefusal(heap: Heap): void {
  if (heap.arenaId !== 0) {
    // bound to one arena: only heaps bound to it can hold room there; other arenas are not touched
    for (const h of heaps) if (h !== undefined && h.isLive && h.arenaId === heap.arenaId) h.freeEmptyPages();
    if (ctx.options.maxCommitted > 0) purgeExpired(true); // (a budget refusal: committed memory can help)
    return;
  }
  for (const h of heaps) if (h !== undefined && h.isLive) h.freeEmptyPages();
  if (ctx.shared && heap.isLive) heap.rescue();
  purgeExpired(true);
}

/**
 * Zeroes at least the first `size` bytes of the fresh block p (0: none); an error gives the
 * block back before it propagates. A block up to LARGE_OBJ_MAX in the region of the last
 * free (the arena, as a rule) is zeroed through the region's view with no lookup, over
 * goodSize(size) bytes: the whole usable size of a malloc(size) block, guarded allocations
 * included, and no more than any block mallocAligned(size, a) returns.
 */
function zeroed(p: number, size: number): number {
  if (p === 0) return 0;
  const r = ctx.lastRegion;
  const off = p - r.base;
  if (size <= LARGE_OBJ_MAX && off > 0) {
    const bin = binOf(size);
    if (off + BIN_SIZE[bin] <= r.limit) {
      zeroClassBlock(r, off, bin);
      return p;
    }
  }
  try {
    zeroBlock(p, size);
  } catch (e) {
    free(p);
    throw e;
  }
  return p;
}

/** Re-picks every live heap's malloc (the configuration was fixed, or a guarded option changed). */
export function applyModes(): void {
  for (const h of heaps) if (h !== undefined) h.setMode();
}

/** The guarded allocation whose block starts at region offset off of pr's page, if any. */
function guardedAt(pr: PageRef, off: number): GuardedBlock | undefined {
  if (guardedBlocks.size === 0 || (pr.m[pr.pg + P_FLAGS] & PF_HAS_ALIGNED) === 0) return undefined;
  return guardedBlocks.get(pr.base + off);
}

/** Marks whether a page is given back as soon as it is empty (every page but a queue's first). */
function setRetire(pr: PageRef, retire: boolean): void {
  if (pr.m === EMPTY.m) return;
  // a large page hears of its last free even as its class's allocation page (pageEmptied),
  // and so does every page while a budget binds a shared allocator (kept for the delay only)
  if (pr.m[pr.pg + P_BSIZE] > MEDIUM_OBJ_MAX || budgetAnywhere()) retire = true;
  const f = pr.m[pr.pg + P_FLAGS];
  setPageFlags(pr.m, pr.pg, retire ? f | PF_RETIRE : f & ~PF_RETIRE);
}

/** usableSize of what mallocAligned(size, alignment) would return now (without guarded sampling). */
function alignedUsable(size: number, alignment: number): number {
  if (alignment <= 16) return goodSizeOf(size);
  if (alignment <= ALIGNED_IN_PAGES_MAX && size <= LARGE_OBJ_MAX) {
    const bsize = alignedClassSize(size, alignment);
    if (bsize !== 0) return goodSizeOf(bsize);
  }
  return hugeBlockSize(Math.max(size, 1));
}

/** Largest alignment mallocAligned honours (larger returns 0). */
export const MAX_ALIGNMENT = 1024 * 1024 * 1024;

/** Size of the block at p usable by the caller (from p to the block's end). */
export function usableSize(p: number): number {
  return usableSizeFor(p, "usableSize");
}

/** usableSize for `op` (realloc: a freed block is a double free there). A block that is already free throws. */
function usableSizeFor(p: number, op: string): number {
  if (p === 0) return 0;
  checkPointer(p);
  const pr = locate(p, op);
  const bsize = pr.m[pr.pg + P_BSIZE];
  if (bsize === -1) return hugeSize(pr.r);
  if (isFreeBlock(pr.m, pr.pg, located.off)) {
    throw op === "realloc" ? new DoubleFreeError(p) : new InvalidPointerError(p, `${op}: the block is free (use after free)`);
  }
  const g = guardedAt(pr, located.off);
  if (g !== undefined) return g.usable; // (locate checked p === g.p)
  return bsize;
}

function isOnFreeList(pr: PageRef, off: number): boolean {
  let found = false;
  forEachFree(pr.m, pr.pg, (b) => {
    if (b === off) found = true;
    return !found;
  });
  return found;
}

function visitPage(pr: PageRef, cb: (ptr: number, usableSize: number) => boolean | void): boolean {
  const m = pr.m;
  const pg = pr.pg;
  const bsize = m[pg + P_BSIZE];
  if (bsize === -1) return hugeFreed(pr.r) || cb(pr.base + m[pg + P_START], hugeSize(pr.r)) !== false;
  const start = m[pg + P_START];
  const cap = m[pg + P_CAPACITY];
  const isFree = new Uint8Array(cap);
  forEachFree(m, pg, (b) => {
    isFree[Math.floor((b - start) / bsize)] = 1;
  });
  for (let i = 0; i < cap; i++) {
    if (isFree[i]) continue;
    const off = start + i * bsize;
    const g = guardedAt(pr, off);
    if (g !== undefined) {
      if (cb(g.p, g.usable) === false) return false;
      continue;
    }
    if (cb(pr.base + off, bsize) === false) return false;
  }
  return true;
}

/** Live blocks and their bytes in one page (for stats). */
export function pageUsage(pr: PageRef): { blocks: number; bytes: number } {
  const bsize = pr.m[pr.pg + P_BSIZE];
  if (bsize === -1) return { blocks: 1, bytes: hugeSize(pr.r) };
  const n = Math.max(0, liveChecked(pr.m, pr.pg)); // (never a negative counter, whatever a wild write did)
  return { blocks: n, bytes: n * bsize };
}

let statsHook: () => import("./stats.ts").Stats | null = () => null;
export function setStatsHook(f: () => import("./stats.ts").Stats): void {
  statsHook = f;
}

export { BIN_COUNT, freeGeneric };

/**
 * Called at the start of a heap's destroy(), before its blocks are freed: for holders of
 * its blocks outside the heap's own records (ArenaPool's chunks), which must stop using them.
 */
export const destroyHooks: WeakMap<Heap, Array<() => void>> = new WeakMap();

/**
 * Called first in a heap's destroy(), before anything changes: a guard throws to refuse the
 * destroy, and the heap stays as it was (a cAllocator bridge whose library holds live blocks).
 */
export const destroyGuards: WeakMap<Heap, Set<() => void>> = new WeakMap();

/**
 * realloc moved block p to q: frees p, and q too when that free throws (p freed meanwhile by
 * another worker: DoubleFreeError), so the new block is never orphaned.
 */
function freeMoved(p: number, q: number): void {
  try {
    free(p);
  } catch (e) {
    free(q);
    throw e;
  }
}

/** realloc's move from p to its new block q: copies len bytes, then freeMoved; a failed copy frees q and leaves p as it was. */
function moveBlock(q: number, p: number, len: number): void {
  try {
    copyBytes(q, p, len);
  } catch (e) {
    free(q); // never orphan the new block
    throw e;
  }
  freeMoved(p, q);
}
