/**
 * Huge blocks (> LARGE_OBJ_MAX, or alignments beyond what pages give). For heaps not bound
 * to an arena each gets its own mapping with a one-page segment header; freed mappings are
 * cached (up to hugeCacheMax bytes) for reuse and purged after the arena delay, so
 * alloc/free loops do not unmap and remap. Heaps bound to an arena carve huge blocks from
 * runs of whole segments of that arena instead (a region nested in the arena's), so an
 * exclusive arena is all the memory such a heap ever uses.
 */
import { type Arena, arenaSegmentsMax, claimSegments } from "./arena.ts";
import { hugeBlockSize } from "./bins.ts";
import { allowCommit, allowReserve, noteFailure } from "./budget.ts";
import { ctx, os } from "./context.ts";
import {
  HUGE_HEADER_SIZE, HUGE_ROUND, P_BSIZE, P_CAPACITY, P_END, P_FLAGS, P_HEAP, P_OWNER, P_RESERVED, P_START, P_THREAD_FREE, PF_HAS_ALIGNED,
  P_USED, PAGE_WORDS, PageKind, S_COOKIE, S_HUGE_SIZE_F64, S_KIND, S_OWNER, S_PAGE_COUNT,
  S_PAGE_SHIFT, S_PAGES, S_USED_PAGES, SEGMENT_HEADER_SIZE, SEGMENT_SIZE, headerOf,
} from "./layout.ts";
import { message } from "./log.ts";
import { formatSize } from "./options.ts";
import { insertSorted, PageRef, Region, RegionKind } from "./region.ts";
import { arenaDelay } from "./purge-delay.ts";
import { hugeClock, maybePurgeHuge, schedulePurge, segmentCookie } from "./segment.ts";
import { guardHuge, hugeTailGuard, sec, unguardHuge } from "./secure.ts";
import { addHuge } from "./usage.ts";
import { fillBytes } from "./views.ts";

/** Header word of a huge block carved from an arena: the run's segment count (for other workers). */
export const S_HUGE_RUN = 12;

/**
 * Most retired huge mappings kept reserved (each is one kernel mapping; Linux allows 65,530
 * by default), and their bytes: 4 x hugeCacheMax, at least RETIRED_MIN_BYTES (a program whose
 * huge blocks keep growing never reuses a retired mapping: the bound on its virtual growth).
 */
const RETIRED_MAX = 1024;
const RETIRED_MIN_BYTES = 1024 * 1024 * 1024;

/** Bytes of a huge mapping's JS-side header: the segment fields and one page descriptor. */
const HEADER_JS_BYTES = (S_PAGES + PAGE_WORDS) * 4;

export class HugeCache {
  /** Freed mappings kept for reuse, oldest first (their cache fields: Region.cachedAt and after). */
  private cached: Region[] = [];
  cachedBytes = 0;
  /**
   * Secure level 2+ and debugFill (sec.retire), on a backend with real guards: freed mappings
   * that do not stay cached are purged and made PROT_NONE, kept reserved, not unmapped — the
   * kernel would hand an unmapped range to the next mapping (an arena, whose metadata and side
   * tables would lie where a stale pointer still points: review round 13). A stale write there
   * faults, as into a guard page. Reused by later huge blocks (their headers are in JS memory);
   * unmapped only when a reserve budget needs the room (releaseAll).
   */
  private retired: Region[] = [];
  retiredBytes = 0;

  /** A cached mapping that fits `bsize` at an `align`-aligned offset (block offset and zero in `took`), or null. */
  take(bsize: number, align: number): Region | null {
    const l = this.cached;
    for (let i = 0; i < l.length; i++) {
      const c = l[i];
      const start = blockOffset(c.base, align);
      const need = start + bsize;
      // reuse only when it fits and wastes at most half the mapping
      if (need > c.size || need < c.size / 2) continue;
      // (a commit relief only purges cached entries, it never removes them)
      if (!c.cacheCommitted && !allowCommit(c.size)) return null;
      for (let j = i + 1; j < l.length; j++) l[j - 1] = l[j]; // (splice(i, 1) allocates its result)
      l.pop();
      this.cachedBytes -= c.size;
      if (!c.cacheCommitted) ctx.counters.commit(c.size);
      return took(c, start, !c.cacheCommitted);
    }
    const max = ctx.options.maxCommitted;
    for (let i = 0; i < this.retired.length; i++) {
      const r = this.retired[i];
      const start = blockOffset(r.base, align);
      const need = start + bsize;
      // reused whole (committed whole), so only when it wastes at most an eighth; and never
      // against the budget (fresh() asks it, and counts a refusal only if that fails too)
      if (need > r.size || need < r.size - r.size / 8 || (max > 0 && ctx.counters.committed + r.size > max)) continue;
      this.retired.splice(i, 1);
      this.retiredBytes -= r.size;
      os().unprotect(r.base, r.size);
      ctx.counters.commit(r.size);
      return took(r, start, true);
    }
    return null;
  }

  /** A freed mapping leaves the cache: unmapped, or at secure level 2+ and with debugFill retired (see `retired`). */
  private drop(r: Region, committed: boolean): void {
    const o = os();
    if (!sec.retire || !o.canProtect) {
      unmap(r, committed);
      return;
    }
    o.purge(r.base, r.size);
    ctx.counters.purge(r.size);
    if (committed) ctx.counters.decommit(r.size);
    o.protect(r.base, r.size);
    this.retired.push(r);
    this.retiredBytes += r.size;
    // bounded (a program whose huge sizes keep growing never reuses old ranges): past the
    // bounds the oldest are unmapped after all, the documented limit (doc/SECURE.md)
    const cap = Math.max(RETIRED_MIN_BYTES, 4 * ctx.options.hugeCacheMax);
    while (this.retired.length > RETIRED_MAX || this.retiredBytes > cap) {
      const old = this.retired.shift()!;
      this.retiredBytes -= old.size;
      unmap(old, false);
    }
  }

  /** Unmaps the retired mappings (the OS refused a new mapping: give it the room). True when there were any. */
  releaseRetired(): boolean {
    const any = this.retired.length > 0;
    for (const r of this.retired) unmap(r, false);
    this.retired = [];
    this.retiredBytes = 0;
    return any;
  }

  /** Keeps a freed mapping if the cache has room; otherwise unmaps it. */
  put(r: Region): void {
    if (this.cachedBytes + r.size > ctx.options.hugeCacheMax) {
      this.drop(r, true);
      return;
    }
    const now = hugeClock();
    r.cachedAt = now;
    r.cacheDirty = true;
    r.cacheCommitted = true;
    this.cached.push(r);
    this.cachedBytes += r.size;
    schedulePurge(now + arenaDelay());
  }

  /** Purges (decommit) or resets cached mappings freed at least `delay` ms ago (all when force). */
  purge(now: number, delay: number, force: boolean, decommit: boolean): void {
    for (const c of this.cached) {
      if (!(c.cacheDirty || (decommit && c.cacheCommitted)) || (!force && now - c.cachedAt < delay)) continue;
      if (decommit) {
        os().purge(c.base, c.size);
        ctx.counters.purge(c.size);
        if (c.cacheCommitted) ctx.counters.decommit(c.size);
        c.cacheCommitted = false;
      } else {
        os().reset(c.base, c.size);
        ctx.counters.reset(c.size);
      }
      c.cacheDirty = false;
      message(2, `${decommit ? "purged" : "reset"} a cached huge mapping of ${formatSize(c.size)}`);
    }
  }

  /** Unmaps every cached and retired mapping (a reserve budget is about to refuse). */
  releaseAll(): void {
    for (const c of this.cached) unmap(c, c.cacheCommitted);
    this.cached = [];
    this.cachedBytes = 0;
    this.releaseRetired();
  }

  /** Unmaps the oldest cached mappings until the cache fits hugeCacheMax. */
  trim(): void {
    while (this.cachedBytes > ctx.options.hugeCacheMax) {
      const c = this.cached.shift()!;
      this.cachedBytes -= c.size;
      this.drop(c, c.cacheCommitted);
    }
  }

  /** Committed bytes held by the cache. */
  committedBytes(): number {
    let n = 0;
    for (const c of this.cached) if (c.cacheCommitted) n += c.size;
    return n;
  }

  /** Earliest time a dirty cached mapping is due for purging. */
  nextDue(delay: number): number {
    let t = Infinity;
    for (const c of this.cached) if (c.cacheDirty && c.cachedAt + delay < t) t = c.cachedAt + delay;
    return t;
  }
}

function unmap(r: Region, committed: boolean): void {
  ctx.regions.remove(r);
  os().release(r.base, r.size);
  ctx.counters.unreserve(r.size);
  if (committed) ctx.counters.decommit(r.size);
}

/** First offset >= HUGE_HEADER_SIZE at which base+offset is align-aligned. */
function blockOffset(base: number, align: number): number {
  if (align <= HUGE_HEADER_SIZE) return HUGE_HEADER_SIZE;
  return Math.ceil((base + HUGE_HEADER_SIZE) / align) * align - base;
}

/** A run of segments of arena `arenaId` holding a huge block of bsize bytes at an align-aligned address. */
function fromArena(bsize: number, align: number, arenaId: number): Region | null {
  // run starts are segment-aligned, so the block offset is at most max(header, align)
  const n = arenaRunSegments(bsize, align);
  const got = claimSegments(arenaId, n);
  if (got === null) return null;
  const { arena, idx } = got;
  let prev = 0;
  let zero = true;
  for (let k = idx; k < idx + n; k++) {
    prev += arena.committedOf(k);
    if (arena.committedOf(k) !== 0) zero = false;
  }
  if (!allowCommit(n * SEGMENT_SIZE - prev)) {
    arena.release(idx, n);
    return null;
  }
  // relief may have purged nothing of ours (the run is claimed), so prev still holds
  for (let k = idx; k < idx + n; k++) arena.setCommitted(k, SEGMENT_SIZE);
  const parent = arena.region;
  const off = idx * SEGMENT_SIZE;
  const kept = freedRuns.get(arena);
  let r = kept?.[idx];
  if (r === undefined || r.size !== n * SEGMENT_SIZE) r = carvedRegion(parent, off, n);
  else kept![idx] = undefined;
  r.parent = parent;
  dropOverlappingViews(parent, r.base, r.size);
  insertSorted(parent.children!, r);
  r.hugeRun = { arena, idx, n };
  return took(r, blockOffset(r.base, align), zero);
}

/**
 * Regions of this worker's freed runs, by arena and first segment: the next run of the same
 * length there reuses it (a Region and its views cost about 1 µs on Bun: two thirds of a
 * shared huge malloc+free). At most one per segment; never found by address (not in the
 * arena's children) while kept.
 */
const freedRuns = new WeakMap<Arena, (Region | undefined)[]>();

/**
 * Whether a huge block of `bsize` bytes (a hugeBlockSize) fits in one mapping this
 * configuration can make at all (budgets and the OS may still refuse): with a shared
 * allocator one arena (arenaSegmentsMax), else one reservation (the backend's maxReserve).
 */
export function hugeFits(bsize: number): boolean {
  const o = os();
  const space = bsize + hugeTailGuard(false);
  if (ctx.shared) return arenaRunSegments(space, 0) <= arenaSegmentsMax();
  return o.maxReserve === undefined || freshMapSize(space, 0) <= o.maxReserve;
}

/** Segments of the arena run for a huge block of `space` bytes (run starts are segment-aligned: the block starts at max(header, align)). */
function arenaRunSegments(space: number, align: number): number {
  return Math.ceil((Math.max(HUGE_HEADER_SIZE, align) + space) / SEGMENT_SIZE);
}

/** Bytes of a fresh mapping for a huge block of `space` bytes aligned to `align`. */
function freshMapSize(space: number, align: number): number {
  return Math.ceil((Math.max(HUGE_HEADER_SIZE, align) + space) / HUGE_ROUND) * HUGE_ROUND;
}

/** A fresh mapping for a huge block (heaps not bound to an arena). */
function fresh(bsize: number, align: number): Region | null {
  const o = os();
  const mapSize = freshMapSize(bsize, align);
  if (!allowReserve(mapSize) || !allowCommit(mapSize)) return null;
  let base = o.reserve(mapSize, Math.max(align, HUGE_ROUND));
  // the OS refused (address space: RLIMIT_AS, overcommit): retired mappings give it back first
  if (base === 0 && ctx.huge !== null && ctx.huge.releaseRetired()) base = o.reserve(mapSize, Math.max(align, HUGE_ROUND));
  if (base === 0) {
    noteFailure(`the OS refused to map ${formatSize(mapSize)} for a huge block`);
    return null;
  }
  ctx.counters.reserve(mapSize);
  ctx.counters.commit(mapSize);
  // its header lives in JS memory (the mapping's first HUGE_HEADER_SIZE bytes stay unused): once
  // a mapping is unmapped the kernel may place this one where a freed block was, and a stale
  // pointer's write would otherwise land in this header (review round 13)
  const r = new Region(base, mapSize, RegionKind.Huge, o.view(base, Math.min(mapSize, o.maxView)), 0, undefined, new Int32Array(HEADER_JS_BYTES / 4));
  ctx.regions.add(r);
  return took(r, blockOffset(base, align), true);
}

/** What the last take, fromArena or fresh found besides its region: the block's offset, and whether its bytes are zero. */
let tookStart = 0;
let tookZero = false;
function took(r: Region, start: number, zero: boolean): Region {
  tookStart = start;
  tookZero = zero;
  return r;
}

/**
 * A huge block of at least `size` bytes whose address is a multiple of `align`, for a heap
 * bound to arena `arenaId` (0 = none). Returns its page handle (block at pr.base + start)
 * or null when the OS, the arena or a budget refuses.
 */
export function allocHuge(size: number, align: number, heapId: number, arenaId = 0, flush = false, room = 0): PageRef | null {
  maybePurgeHuge();
  // flush (a guarded allocation): exactly `size` bytes ending at a page boundary, then a guard page
  const bsize = flush ? size : hugeBlockSize(size);
  const body = flush ? Math.ceil(size / sec.pageSize) * sec.pageSize : bsize;
  // room: a realloc that moved asks for a mapping it can grow in place into (resizeHuge)
  const space = Math.max(body, flush ? 0 : hugeBlockSize(room)) + hugeTailGuard(flush); // and the guard after the block (secure level 1+)
  let r: Region | null;
  // shared between workers: from arena segment runs, which every worker can find and view
  if (arenaId !== 0 || ctx.shared) r = fromArena(space, align, arenaId);
  else {
    const cache = ctx.huge ??= new HugeCache();
    r = cache.take(space, align) ?? fresh(space, align);
  }
  if (r === null) return null;
  const start = tookStart + body - bsize;
  r.fresh = tookZero;
  const m = r.i32;
  // the owner word first and never 0 on the way (segment.ts newSegment says why; here a reaper
  // would also find the thread-free bit the last block's clearHeader kept)
  Atomics.store(m, S_OWNER, ctx.tag);
  for (let w = 0; w < S_PAGES + PAGE_WORDS; w++) if (w !== S_OWNER) m[w] = 0; // (a loop: fill's builtin call cost more than these 32 stores)
  m[S_KIND] = PageKind.Huge;
  m[S_PAGE_SHIFT] = 31;
  m[S_PAGE_COUNT] = 1;
  m[S_USED_PAGES] = 1;
  r.f64[S_HUGE_SIZE_F64] = bsize;
  const pg = S_PAGES;
  m[pg + P_BSIZE] = -1;
  m[pg + P_START] = start;
  r.blockStart = start;
  m[pg + P_END] = start + 1;
  m[pg + P_USED] = 1;
  m[pg + P_CAPACITY] = 1;
  m[pg + P_RESERVED] = 1;
  m[pg + P_HEAP] = heapId;
  m[pg + P_OWNER] = ctx.tag;
  const run = r.hugeRun;
  if (run !== null) {
    m[S_HUGE_RUN] = run.n;
    // a run is inside an arena: the free fast path (which sees the arena) must send it to freeGeneric
    m[pg + P_FLAGS] = PF_HAS_ALIGNED;
  }
  m[S_COOKIE] = segmentCookie(0);
  if (run !== null) run.arena.setHugeRun(run.idx, run.n); // the segment map, not these headers, says what the run is
  let pr = r.pages[0];
  if (pr === undefined) r.pages[0] = pr = new PageRef(r, pg, 0);
  addHuge(bsize);
  guardHuge(r, start, bsize, flush);
  r.flush = flush;
  return pr;
}

/**
 * Resizes this worker's huge block pr in place to hugeBlockSize(size) when its mapping (or
 * arena run) holds that much after the block start, guard included; true when done. The
 * bytes kept are untouched; grown bytes are whatever the mapping held (0xD0 with debugFill).
 */
export function resizeHuge(pr: PageRef, size: number): boolean {
  const r = pr.r;
  const m = r.i32;
  if (r.flush || m[pr.pg + P_OWNER] !== ctx.tag) return false;
  const start = m[pr.pg + P_START];
  const old = hugeSize(r);
  const bsize = hugeBlockSize(size);
  if (start + bsize + hugeTailGuard(false) > r.size) return false;
  unguardHuge(r);
  r.f64[S_HUGE_SIZE_F64] = bsize;
  addHuge(bsize - old);
  guardHuge(r, start, bsize, false);
  if (sec.fill && bsize > old) fillBytes(r.base + start + old, bsize - old, 0xd0);
  return true;
}

/**
 * Clears a freed huge block's header. The owner word becomes OWNER_RELEASED first, never 0:
 * 0 means "abandoned, its owner left", and another worker whose free of this block raced
 * with the owner's reaping would otherwise take the zeroed word for that and release the
 * run a second time (found by the soak: a run released twice, its segments handed out again).
 */
function clearHeader(m: Int32Array): void {
  Atomics.store(m, S_OWNER, OWNER_RELEASED);
  // kept: the block's start (while the owner word says released, locate tells a freed block's
  // start from an address inside it), and the thread-free word with its bit 0 set (freeHuge),
  // so a free racing with this one always finds the block taken (a loop: four fills' builtin calls cost more)
  // (P_THREAD_FREE < P_START)
  for (let w = 0; w < S_OWNER; w++) m[w] = 0;
  for (let w = S_OWNER + 1; w < S_PAGES + P_THREAD_FREE; w++) m[w] = 0;
  for (let w = S_PAGES + P_THREAD_FREE + 1; w < S_PAGES + P_START; w++) m[w] = 0;
  for (let w = S_PAGES + P_START + 1; w < S_PAGES + PAGE_WORDS; w++) m[w] = 0;
}

/** S_OWNER of a huge run's header once the block is freed (no worker's tag, not "abandoned"). */
export const OWNER_RELEASED = -1;

/** Frees a huge block: its segment run goes back to its arena, or its mapping to the cache. */
export function freeHuge(pr: PageRef): void {
  const r = pr.r;
  Atomics.or(r.i32, S_PAGES + P_THREAD_FREE, 1); // (taken: see clearHeader; the owner's free set it already)
  unguardHuge(r);
  addHuge(-hugeSize(r));
  const run = r.hugeRun;
  if (run !== null) run.arena.own(run.idx, run.n); // before the header says released (Arena.recoverClaims)
  clearHeader(r.i32);
  if (run !== null) {
    r.hugeRun = null;
    const kids = r.parent!.children!;
    const i = kids.indexOf(r);
    if (i >= 0) kids.splice(i, 1); // (splice(-1) would drop another region's view)
    const now = hugeClock();
    run.arena.release(run.idx, run.n, now);
    let kept = freedRuns.get(run.arena);
    if (kept === undefined) freedRuns.set(run.arena, kept = new Array<Region | undefined>(run.arena.segCount).fill(undefined));
    kept[run.idx] = r;
    schedulePurge(now + arenaDelay());
    return;
  }
  (ctx.huge ??= new HugeCache()).put(r);
}

export function hugeSize(r: Region): number {
  return r.f64[S_HUGE_SIZE_F64];
}

/** This worker's live huge blocks (its own mappings and the arena runs it carved; none another worker freed). */
export function hugeRegions(): Region[] {
  const out: Region[] = [];
  for (const r of ctx.regions.all()) {
    if (r.kind === RegionKind.Huge && r.i32[S_PAGES + P_BSIZE] === -1 && !hugeFreed(r)) out.push(r);
    // (views of other workers' blocks this worker looked up are not its blocks)
    if (r.children !== null) for (const c of r.children) if (c.hugeRun !== null && !hugeFreed(c)) out.push(c);
  }
  return out;
}

/**
 * The huge block of region r is freed: bit 0 of its thread-free word, set by another worker's
 * free (the owner reaps the block at its next slow path) or by the owner's own (freeHuge).
 */
export function hugeFreed(r: Region): boolean {
  return (Atomics.load(r.i32, S_PAGES + P_THREAD_FREE) & 1) !== 0;
}

// ---- shared allocator: huge blocks other workers carved from arenas

/**
 * Forgets this worker's views of other workers' huge blocks overlapping [base, base+size):
 * their segments now hold a new run. A stale view left in place would be found first by
 * address and, its header checks passing for the new block, stand in for it (found by the
 * soak: a worker's own new huge block located through a stale foreign view without a heap).
 */
function dropOverlappingViews(parent: Region, base: number, size: number): void {
  const kids = parent.children!;
  for (let i = kids.length - 1; i >= 0; i--) {
    const c = kids[i];
    if (c.base < base + size && base < c.base + c.size && c.hugeRun === null) kids.splice(i, 1);
  }
}

/**
 * The region of a huge block carved from arena region `parent` at byte offset off (n segments):
 * its bytes alias the arena's; its header is the head segment's, out of band (layout.ts headerOf).
 */
function carvedRegion(parent: Region, off: number, n: number): Region {
  const header = new Int32Array(parent.i32.buffer, parent.i32.byteOffset + headerOf(off) * 4, SEGMENT_HEADER_SIZE / 4);
  return new Region(parent.base + off, n * SEGMENT_SIZE, RegionKind.Huge, parent.u8.buffer as ArrayBuffer, parent.u8.byteOffset + off, n * SEGMENT_SIZE, header);
}

/** This worker's view of a huge block another worker carved from `arena` at segment idx (n segments). */
export function adoptForeignRun(arena: Arena, idx: number, n: number): Region {
  const parent = arena.region;
  const off = idx * SEGMENT_SIZE;
  const r = carvedRegion(parent, off, n);
  r.parent = parent;
  dropOverlappingViews(parent, r.base, r.size);
  insertSorted(parent.children!, r);
  r.pages[0] = new PageRef(r, S_PAGES, 0);
  return r;
}

/**
 * True for this worker's view of another worker's huge block whose segments now start a run
 * of another length: the block was freed and its place reused (the header checks alone pass
 * when the new run starts at the same segment).
 */
export function staleForeignView(r: Region): boolean {
  return r.parent !== null && r.hugeRun === null && r.i32[S_HUGE_RUN] * SEGMENT_SIZE !== r.size;
}

/** Forgets this worker's view of another worker's huge block (not its own); true when dropped. */
export function dropStaleForeignRun(r: Region): boolean {
  if (r.parent === null || r.hugeRun !== null) return false;
  const kids = r.parent.children!;
  const i = kids.indexOf(r);
  if (i < 0) return false;
  kids.splice(i, 1);
  return true;
}

/** Frees another worker's huge block whose run this worker claimed (its owner is gone). */
export function releaseForeignRun(r: Region, arena: Arena): void {
  const idx = Math.round((r.base - arena.region.base) / SEGMENT_SIZE);
  // the run's length from the arena's segment map, never from our view: a stale view of an
  // earlier block at the same segment may be longer, and releasing its length would free
  // segments that hold other live blocks
  const run = arena.hugeRunAt(idx);
  // our own view too (a run this worker carved and abandoned when it detached): it goes with the
  // run, or it would be found first for whatever those segments hold next (review round 17)
  r.hugeRun = null;
  dropStaleForeignRun(r);
  if (run === null || run.idx !== idx) throw new Error(`tsmalloc: internal: no huge run starts at segment ${idx} of arena ${arena.id}`);
  arena.own(idx, run.n); // before the header says released (Arena.recoverClaims)
  clearHeader(r.i32);
  arena.release(idx, run.n);
  schedulePurge(ctx.now() + arenaDelay());
}

/** Run r is no longer this worker's (abandoned: detach); from now on it is a view like another worker's. */
export function disownRun(r: Region): void {
  r.hugeRun = null;
}

/** True when r is one of this worker's own huge blocks carved from an arena. */
export function isOwnRun(r: Region): boolean {
  return r.hugeRun !== null;
}
