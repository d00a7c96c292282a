/**
 * Segments: 4 MiB slices of an arena holding pages of one kind (64 small, 8 medium or
 * one large page), described by a header with the page descriptors that lies out of band, in
 * the arena's header slot (layout.ts headerOf), never in the segment. Segments belong to a
 * worker; the pages in them to that worker's heaps.
 *
 * Commit tracking: a segment is 64 slices of 64 KiB; the header keeps a mask of committed
 * slices (slice 0 holds the head guard at secure levels 1+ and is committed while the segment
 * lives; at level 0 it is page 0's, as any other slice is its page's: firstSlice) and a mask of
 * committed slices of free page slots waiting to be purged. Page slots commit their slices
 * when claimed (the whole segment at once with eagerCommit); freed page slots inside a
 * live segment are purged after purgeDelay, freed segments after purgeDelay *
 * arenaPurgeMult (arena.ts), cached huge blocks likewise (huge.ts).
 */
import { type Arena, claimSegments, popcount } from "./arena.ts";
import { allowCommit, budgetAnywhere, setRelief } from "./budget.ts";
import { ctx, os } from "./context.ts";
import {
  LARGE_PAGE_SHIFT, MEDIUM_PAGE_SHIFT, P_BSIZE, P_RESERVED, P_START, PAGE_WORDS, type PageKind, S_COMMIT_HI,
  S_COMMIT_LO, S_COOKIE, S_KIND, S_OWNER, S_PAGE_COUNT, S_PAGE_SHIFT, S_PAGES, S_PURGE_HI, S_PURGE_LO, S_USED_PAGES,
  SEGMENT_COOKIE, SEGMENT_SHIFT, SEGMENT_SIZE, SLICE_SHIFT, SLICE_SIZE, SMALL_PAGE_SHIFT, headerOf, HEADER_WORD_SHIFT, segmentOfHeader,
} from "./layout.ts";
import { message } from "./log.ts";
import { formatSize } from "./options.ts";
import { arenaDelay, noteRecommit, pageDelay, setWaiting } from "./purge-delay.ts";
import { PageRef, type Region } from "./region.ts";
import { guardPageEnd, guardSegment, pageGuardBytes, sec } from "./secure.ts";
import { dropPage } from "./usage.ts";

const PAGE_SHIFT_OF_KIND = [SMALL_PAGE_SHIFT, MEDIUM_PAGE_SHIFT, LARGE_PAGE_SHIFT];
const SLICES = SEGMENT_SIZE >>> SLICE_SHIFT; // 64

/** Value of S_COOKIE for a live segment at byte offset seg (never 0). */
export function segmentCookie(seg: number): number {
  return (SEGMENT_COOKIE ^ seg) | 1;
}

/** A worker's handle on one of its segments. */
/**
 * Page slots and page shift of a segment, from this worker's own record of its kind, never from
 * its header's S_PAGE_COUNT / S_PAGE_SHIFT: a wild write may change those, and pages set up or
 * purged from a forged shift lay over live ones (session 30 review).
 */
export function pageSlotsOf(ref: SegmentRef): number {
  return 1 << (SEGMENT_SHIFT - PAGE_SHIFT_OF_KIND[ref.kind]);
}
function pageShiftOf(ref: SegmentRef): number {
  return PAGE_SHIFT_OF_KIND[ref.kind];
}
/** pageShiftOf for this worker's segment at region offset seg of r. */
function pageShiftAt(r: Region, seg: number): number {
  return PAGE_SHIFT_OF_KIND[refs.get(r)![seg >>> SEGMENT_SHIFT]!.kind];
}

export class SegmentRef {
  declare readonly arena: Arena;
  declare readonly r: Region;
  /** Byte offset in the arena, and segment index. */
  declare readonly seg: number;
  declare readonly idx: number;
  declare readonly kind: PageKind;
  /** Arena id the heaps using it are bound to (0 = the shared arenas). */
  declare readonly pool: number;
  /** Position in the worker's list of segments with free page slots, or -1. */
  availIndex = -1;
  /** When the free page slots marked in S_PURGE_* are due for purging (0 = nothing pending). */
  purgeDue = 0;
  /** When page slots of it were last decommitted (ms; 0 = never): see noteRecommit. */
  purgedAt = 0;
  constructor(arena: Arena, seg: number, kind: PageKind, pool: number) {
    this.arena = arena;
    this.r = arena.region;
    this.seg = seg;
    this.idx = seg >>> SEGMENT_SHIFT;
    this.kind = kind;
    this.pool = pool;
  }
}

/** Segments with at least one free page slot, per pool (bound arena id) and page kind. */
const avail = new Map<number, SegmentRef[][]>();
/** SegmentRef by region and segment index. */
const refs = new Map<Region, (SegmentRef | undefined)[]>();
/** Segments with free page slots waiting to be purged. */
const pending = new Set<SegmentRef>();

function availOf(pool: number, kind: PageKind): SegmentRef[] {
  let l = avail.get(pool);
  if (l === undefined) avail.set(pool, l = [[], [], []]);
  return l[kind];
}

function addAvail(s: SegmentRef): void {
  const l = availOf(s.pool, s.kind);
  s.availIndex = l.length;
  l.push(s);
}

function removeAvail(s: SegmentRef): void {
  const l = availOf(s.pool, s.kind);
  const last = l.pop()!;
  if (last !== s) {
    l[s.availIndex] = last;
    last.availIndex = s.availIndex;
  }
  s.availIndex = -1;
}

// ---- slice masks (two words each in the segment header)

function bitOf(m: Int32Array, word: number, k: number): boolean {
  return (m[word + (k >>> 5)] & (1 << (k & 31))) !== 0;
}
function setBit(m: Int32Array, word: number, k: number, on: boolean): void {
  if (on) m[word + (k >>> 5)] |= 1 << (k & 31);
  else m[word + (k >>> 5)] &= ~(1 << (k & 31));
}

function uncommitted(m: Int32Array, sw: number, first: number, n: number): number {
  let c = 0;
  for (let k = first; k < first + n; k++) if (!bitOf(m, sw + S_COMMIT_LO, k)) c++;
  return c;
}

/** A header commit mask worth trusting: slice 0 set where it always is (firstSlice), and exactly `bytes` worth of slices. */
function maskMatches(lo: number, hi: number, bytes: number): boolean {
  return ((lo & 1) !== 0 || firstSlice() === 0) && (popcount(lo) + popcount(hi)) * SLICE_SIZE === bytes;
}

/**
 * The first slice page slots commit and purge: 1 at secure levels 1+ (slice 0 holds the head
 * guard, committed with the segment), else 0 (page 0 starts at the segment's first byte; the
 * header lies out of band).
 */
function firstSlice(): number {
  return sec.headGuard === 0 ? 0 : 1;
}

/**
 * Highest segment index that may hold pages: page offsets and ends are int32 (the fast paths,
 * P_START/P_END), so a segment must end below 2^31. Arenas are at most 510 segments
 * (ARENA_MAX), but one made for a huge block of more (a shared allocator, a backend whose
 * views reach past 2 GiB) has segments past that, for huge runs only (review round 16).
 */
const PAGE_SEGMENT_MAX = Math.floor((2 ** 31 - 1) / SEGMENT_SIZE) - 1;

function newSegment(kind: PageKind, pool: number): SegmentRef | null {
  maybePurge();
  const got = claimSegments(pool, 1, PAGE_SEGMENT_MAX);
  if (got === null) return null;
  const { arena, idx } = got;
  const seg = idx << SEGMENT_SHIFT;
  const m = arena.region.i32;
  const s = headerOf(seg);
  // A clean segment commits its head guard's slice at levels 1+ (all of it with eagerCommit). A segment that
  // still holds memory keeps the commit mask its header remembers when that mask accounts
  // for exactly its committed bytes (a segment freed by pages); else it counts as wholly
  // committed (it held a huge block, or a reset may have zeroed its header).
  const prev = arena.committedOf(idx);
  if (prev === 0) noteRecommit(arena.purgedAtOf(idx));
  let lo = firstSlice() === 0 ? 0 : 1, hi = 0;
  if (ctx.options.eagerCommit || (prev > 0 && !(prev < SEGMENT_SIZE && maskMatches(m[s + S_COMMIT_LO], m[s + S_COMMIT_HI], prev)))) {
    lo = hi = -1;
  } else if (prev > 0) {
    lo = m[s + S_COMMIT_LO];
    hi = m[s + S_COMMIT_HI];
  }
  const target = (popcount(lo) + popcount(hi)) * SLICE_SIZE;
  if (!allowCommit(target - arena.committedOf(idx))) {
    arena.release(idx, 1);
    return null;
  }
  arena.setCommitted(idx, target);
  const shift = PAGE_SHIFT_OF_KIND[kind];
  const count = 1 << (SEGMENT_SHIFT - shift);
  // side-table columns a segment of another kind left (64 small pages' columns under one large page's) go now: no page of this one reaches them
  if (prev > 0) arena.purgeColumns(idx, (col) => col >= count, true);
  // the owner word first and never 0 on the way: 0 means "abandoned", and a reclaim whose read of
  // the segment map predates this segment's last release takes any live-looking segment whose
  // owner word is 0 (a fill through it let a reclaimer win here, and two workers shared one
  // segment: a block handed out twice, found by a stress of terminated workers, session 27)
  Atomics.store(m, s + S_OWNER, ctx.tag);
  m.fill(0, s, s + S_OWNER);
  m.fill(0, s + S_OWNER + 1, s + S_PAGES + count * PAGE_WORDS);
  m[s + S_KIND] = kind;
  m[s + S_PAGE_SHIFT] = shift;
  m[s + S_PAGE_COUNT] = count;
  m[s + S_COMMIT_LO] = lo;
  m[s + S_COMMIT_HI] = hi;
  m[s + S_COOKIE] = segmentCookie(seg);
  arena.setSegKind(idx, 1, shift); // last: from here on addresses in it are looked up
  guardSegment(arena.region, seg, true); // secure level 1+: head and tail guards
  const ref = new SegmentRef(arena, seg, kind, pool);
  let l = refs.get(arena.region);
  if (l === undefined) refs.set(arena.region, l = []);
  l[idx] = ref;
  addAvail(ref);
  return ref;
}

/** An empty segment goes back to its arena (purged after the arena delay). */
function releaseSegment(ref: SegmentRef): void {
  const m = ref.r.i32;
  if (ref.availIndex >= 0) removeAvail(ref);
  pending.delete(ref);
  ref.purgeDue = 0;
  m[headerOf(ref.seg) + S_COOKIE] = 0;
  guardSegment(ref.r, ref.seg, false);
  refs.get(ref.r)![ref.idx] = undefined;
  ref.arena.release(ref.idx, 1);
  schedulePurge(ctx.now() + arenaDelay());
}

/** Byte range [start, end) of page slot i in a segment. */
export function pageArea(seg: number, shift: number, i: number): [number, number] {
  // secure level 1+: page 0 starts after a head guard, the last page (level 4: every page) ends before a guard
  const start = i === 0 ? seg + sec.page0 : seg + i * (1 << shift);
  return [start, seg + (i + 1) * (1 << shift) - pageGuardBytes(shift, i)];
}

/** The handle of page slot i of the segment at `seg` in region r. */
export function pageRefAt(r: Region, seg: number, i: number): PageRef {
  const slot = ((seg >>> SEGMENT_SHIFT) << 6) + i;
  let pr = r.pages[slot];
  if (pr === undefined) r.pages[slot] = pr = new PageRef(r, headerOf(seg) + S_PAGES + i * PAGE_WORDS, seg);
  return pr;
}

/** The handle of the page whose descriptor is at word pg of arena region r (another worker's page this worker never looked at has none yet). */
export function pageRefOf(r: Region, pg: number): PageRef {
  const s = pg & -(1 << HEADER_WORD_SHIFT); // the header's first word
  const i = (pg - s - S_PAGES) >> 4; //         PAGE_WORDS
  return r.pages[((s >>> HEADER_WORD_SHIFT) << 6) + i] ?? pageRefAt(r, segmentOfHeader(s), i);
}

/** True when claimPage(kind, arenaId) would have to claim a new segment (none has a free slot). */
export function needsSegment(kind: PageKind, arenaId = 0): boolean {
  return availOf(arenaId, kind).length === 0;
}

/**
 * Claims a free page slot of `kind` for a heap bound to arena `arenaId` (0 = none) and
 * commits its slices; the caller initializes the descriptor. null when no segment can be
 * had or the commit budget says no.
 */
export function claimPage(kind: PageKind, arenaId = 0, bsize = 0): { pr: PageRef; start: number; end: number } | null {
  const l = availOf(arenaId, kind);
  const s = l.length > 0 ? l[l.length - 1] : newSegment(kind, arenaId);
  if (s === null) return null;
  const m = s.r.i32;
  const sw = headerOf(s.seg);
  const count = pageSlotsOf(s);
  let i = 0;
  while (i < count && m[sw + S_PAGES + i * PAGE_WORDS + P_BSIZE] !== 0) i++;
  if (i === count) throw new Error("tsmalloc: segment page count is inconsistent");
  const shift = pageShiftOf(s);
  const [start, end] = pageArea(s.seg, shift, i);
  const first = i << (shift - SLICE_SHIFT);
  // the slices the page's blocks can reach: a large page of 1-2 MiB blocks leaves up to
  // half of its slot past the last block, never committed
  const n = Math.ceil((start + usedBytes(start, end, bsize) - s.seg) / SLICE_SIZE) - first;
  // the side-table units its blocks' entries need (src/secure.ts "side table")
  const blocks = bsize > 0 ? Math.floor((end - start) / bsize) : 0;
  // commit those slices (a budget relief may purge this very slot: count again after it)
  for (;;) {
    const need = uncommitted(m, sw, first, n) * SLICE_SIZE + s.arena.tableNeed(s.idx, i, blocks);
    if (!allowCommit(need)) {
      if (m[sw + S_USED_PAGES] === 0) releaseSegment(s);
      return null;
    }
    if (uncommitted(m, sw, first, n) * SLICE_SIZE + s.arena.tableNeed(s.idx, i, blocks) === need) break;
  }
  s.arena.ensureTable(s.idx, i, blocks);
  let added = 0;
  for (let k = first; k < first + n; k++) {
    if (!bitOf(m, sw + S_COMMIT_LO, k)) {
      setBit(m, sw + S_COMMIT_LO, k, true);
      added += SLICE_SIZE;
    }
    setBit(m, sw + S_PURGE_LO, k, false);
  }
  if (added > 0) {
    s.arena.setCommitted(s.idx, s.arena.committedOf(s.idx) + added);
    noteRecommit(s.purgedAt);
  }
  if (s.purgeDue !== 0 && m[sw + S_PURGE_LO] === 0 && m[sw + S_PURGE_HI] === 0) {
    pending.delete(s);
    s.purgeDue = 0;
  }
  if (++m[sw + S_USED_PAGES] === count) removeAvail(s);
  guardPageEnd(s.r, s.seg, shift, i, true);
  return { pr: pageRefAt(s.r, s.seg, i), start, end };
}

/** Bytes of [start, end) that blocks of bsize cover (all of it when bsize is 0). */
function usedBytes(start: number, end: number, bsize: number): number {
  if (bsize <= 0) return end - start;
  return Math.floor((end - start) / bsize) * bsize;
}

/**
 * Returns a page slot to its segment: an empty segment goes back to its arena; otherwise
 * the slot's committed slices (slice 0 only at level 0: firstSlice) are purged after purgeDelay,
 * less `idle` ms the page already sat empty with its heap (Heap.keep).
 */
export function releasePage(pr: PageRef, idle = 0): void {
  const m = pr.m;
  const sw = headerOf(pr.seg);
  dropPage(pr);
  const ref = refs.get(pr.r)![pr.seg >>> SEGMENT_SHIFT]!;
  const shift = pageShiftOf(ref);
  guardPageEnd(pr.r, pr.seg, shift, (pr.pg - sw - S_PAGES) / PAGE_WORDS, false);
  m.fill(0, pr.pg, pr.pg + PAGE_WORDS);
  const count = pageSlotsOf(ref);
  const used = --m[sw + S_USED_PAGES];
  if (used === 0) {
    releaseSegment(ref);
    maybePurge();
    return;
  }
  if (used === count - 1) addAvail(ref);
  const full = pageDelay();
  if (full < 0) {
    unmarked = true; // (replanPurge marks such slots once purgeDelay is not negative)
    return;
  }
  // once a worker sharing the allocator has a budget, at once: only this worker can purge its
  // live segments' slots, and it may block (Atomics.wait) with its timer stopped while
  // another worker's refusal needs the memory (session 16: 4 MiB held so, a test failed)
  const delay = budgetAnywhere() ? 0 : Math.max(0, full - idle);
  const n = 1 << (shift - SLICE_SHIFT); // the slot's slices
  const first = ((pr.pg - sw - S_PAGES) / PAGE_WORDS) * n;
  let marked = false;
  for (let k = Math.max(first, firstSlice()); k < first + n; k++) {
    if (bitOf(m, sw + S_COMMIT_LO, k)) {
      setBit(m, sw + S_PURGE_LO, k, true);
      marked = true;
    }
  }
  if (!marked) return;
  if (delay === 0) {
    purgePages(ref, ctx.options.purgeDecommits, false);
    return;
  }
  // mimalloc's schedule (mi_segment_schedule_purge): the first freed slot sets the deadline;
  // each further one pushes it back a little, so a series of frees (a live set shrinking,
  // then growing again) does not purge pages the program is about to reuse
  const now = ctx.now();
  if (ref.purgeDue === 0) {
    ref.purgeDue = now + delay;
    pending.add(ref);
    schedulePurge(ref.purgeDue);
  } else if (ref.purgeDue > now) {
    // (bounded: a page waits at most as long as a free segment does)
    ref.purgeDue = Math.min(ref.purgeDue + PURGE_EXTEND_DELAY, now + arenaDelay());
  }
  else if (ref.purgeDue + PURGE_EXTEND_DELAY > now) ref.purgeDue = now + PURGE_EXTEND_DELAY;
  maybePurge();
}

/** ms a freed page slot pushes back its segment's pending purge (mimalloc's purge_extend_delay). */
const PURGE_EXTEND_DELAY = 1;

/**
 * Purges slices of free page slots of a live segment, one OS call per run of adjacent
 * slices: those marked for purging, or (all) every committed slice of a free slot but the
 * header's. decommit: MADV_DONTNEED and the slices leave `committed`; else MADV_FREE.
 * Returns the bytes decommitted.
 */
function purgePages(ref: SegmentRef, decommit: boolean, all: boolean): number {
  const m = ref.r.i32;
  const sw = headerOf(ref.seg);
  const shift = pageShiftOf(ref);
  const perPage = shift - SLICE_SHIFT;
  let dropped = 0;
  let runStart = -1;
  for (let k = firstSlice(); k <= SLICES; k++) {
    const take = k < SLICES && (all ? bitOf(m, sw + S_COMMIT_LO, k) : bitOf(m, sw + S_PURGE_LO, k)) &&
      !sliceInUse(m, sw, ref.seg + k * SLICE_SIZE, k >>> perPage);
    if (take) {
      if (runStart < 0) runStart = k;
      continue;
    }
    if (runStart < 0) continue;
    const addr = ref.r.base + ref.seg + runStart * SLICE_SIZE;
    const bytes = (k - runStart) * SLICE_SIZE;
    if (decommit) {
      os().purge(addr, bytes);
      ctx.counters.purge(bytes);
      for (let j = runStart; j < k; j++) setBit(m, sw + S_COMMIT_LO, j, false);
      dropped += bytes;
    } else {
      os().reset(addr, bytes);
      ctx.counters.reset(bytes);
    }
    message(2, `${decommit ? "purged" : "reset"} ${formatSize(bytes)} of free pages in arena ${ref.arena.id} segment ${ref.idx}`);
    runStart = -1;
  }
  // the free slots' side-table columns go with their slices (a live segment keeps only its live pages' columns)
  const count = pageSlotsOf(ref);
  const tableDropped = ref.arena.purgeColumns(ref.idx, (col) => col >= count || m[sw + S_PAGES + col * PAGE_WORDS + P_BSIZE] === 0, decommit);
  if (tableDropped > 0) message(2, `purged ${formatSize(tableDropped)} of free pages' side tables in arena ${ref.arena.id} segment ${ref.idx}`);
  if (dropped > 0) {
    ref.arena.setCommitted(ref.idx, ref.arena.committedOf(ref.idx) - dropped);
    if (!all) ref.purgedAt = ctx.now(); // (a purge the program asked for, collect(true) or a budget, is never premature)
  }
  m[sw + S_PURGE_LO] = 0;
  m[sw + S_PURGE_HI] = 0;
  pending.delete(ref);
  ref.purgeDue = 0;
  return dropped;
}

/** Whether the slice at region offset `at` lies under the blocks of page slot i (never purged then). */
function sliceInUse(m: Int32Array, sw: number, at: number, i: number): boolean {
  const pg = sw + S_PAGES + i * PAGE_WORDS;
  const bsize = m[pg + P_BSIZE];
  return bsize !== 0 && at < m[pg + P_START] + m[pg + P_RESERVED] * bsize;
}

/** Every live segment of this worker (for stats and visits). */
export function liveSegments(): SegmentRef[] {
  const out: SegmentRef[] = [];
  for (const l of refs.values()) for (const s of l) if (s !== undefined) out.push(s);
  return out;
}

/**
 * Committed bytes of every free page slot of this worker's live segments, whether a purge is
 * scheduled for it or not (purgeDelay -1 never purges; a reset leaves slices committed): what
 * stats().pendingPurge counts (review round 16: only scheduled slots were, 576 KiB went
 * uncounted with purgeDelay -1).
 */
export function freeSlotBytes(): number {
  let n = 0;
  for (const l of refs.values()) {
    for (const ref of l) {
      if (ref === undefined) continue;
      const m = ref.r.i32;
      const sw = headerOf(ref.seg);
      const perPage = pageShiftOf(ref) - SLICE_SHIFT;
      for (let k = firstSlice(); k < SLICES; k++) {
        if (bitOf(m, sw + S_COMMIT_LO, k) && !sliceInUse(m, sw, ref.seg + k * SLICE_SIZE, k >>> perPage)) n += SLICE_SIZE;
      }
    }
  }
  return n;
}

/** Committed bytes of free page slots waiting for their purge. */
export function pendingPageBytes(): number {
  let n = 0;
  for (const ref of pending) {
    const m = ref.r.i32;
    const sw = headerOf(ref.seg);
    for (let k = firstSlice(); k < SLICES; k++) if (bitOf(m, sw + S_PURGE_LO, k) && bitOf(m, sw + S_COMMIT_LO, k)) n += SLICE_SIZE;
  }
  return n;
}

/**
 * Committed bytes of the slices under pr's blocks (slice 0 not counted where it holds the head
 * guard: firstSlice). The slot's committed tail beyond the blocks' reach (a larger class
 * committed it before) is a free slot's, counted by freeSlotBytes: counting the whole slot here
 * counted it twice (pendingPurge above committed: session 18 review).
 */
export function slotCommittedBytes(pr: PageRef): number {
  const m = pr.m;
  const sw = headerOf(pr.seg);
  const n = 1 << (pageShiftAt(pr.r, pr.seg) - SLICE_SHIFT);
  const i = (pr.pg - sw - S_PAGES) / PAGE_WORDS;
  const first = i * n;
  let c = 0;
  for (let k = Math.max(first, firstSlice()); k < first + n; k++) {
    if (bitOf(m, sw + S_COMMIT_LO, k) && sliceInUse(m, sw, pr.seg + k * SLICE_SIZE, i)) c += SLICE_SIZE;
  }
  return c;
}

// ---- delayed purge

let purgeTimer: ReturnType<typeof setTimeout> | null = null;
/** When the armed timer fires (Infinity: none armed). */
let timerDue = Infinity;
/**
 * Earliest deadline purgeExpired can act on (checked at slow-path events: loops that never
 * yield still purge). Kept pages' deadline (keptDue) is not in it: only the timer and
 * mallocSlow sweep those, so a passed keptDue here made every slow-path event and huge
 * malloc in a loop that never yields run a whole purgeExpired (an 8 MiB pair 400 -> 740 ns).
 */
let nextDue = Infinity;
/** Releases kept empty pages whose delay ran out (src/heap.ts); returns the next such deadline (Infinity: none). */
let keptSweep: ((all: boolean) => number) | null = null;
/** Earliest deadline of a kept empty page (Infinity: none kept). */
let keptDue = Infinity;


/**
 * Segments whose free page slots one slow-path event purges at most (maybePurge); the rest
 * stay due for the next event or the timer. Unbounded, slots given back unpurged by a new
 * page (heap.ts freshPage) came due together and one malloc purged 39 MiB in 3.35 ms
 * (session 22's review). mimalloc bounds its arena purges the same way (mi_arenas_try_purge:
 * one arena per call unless forced).
 */
export const PURGE_SLOW_MAX = 4;
/** purgeExpired's `max` for no bound (a small integer, as heap.ts ALL_PAGES). */
const PURGE_ALL = 2 ** 30;

/**
 * Purges what has waited its delay (everything when force), batched per segment and arena;
 * at most `max` segments' page slots unless forced (free segments go per arena, in runs).
 */
export function purgeExpired(force: boolean, max = PURGE_ALL): void {
  const delay = ctx.options.purgeDelay;
  if (ctx.os === null || (delay < 0 && !force)) return;
  const decommit = ctx.options.purgeDecommits;
  const now = ctx.now();
  if (force) {
    // every free page slot of every live segment, also ones never marked (purgeDelay -1, or reset before)
    for (const ref of liveSegments()) purgePages(ref, decommit, true);
  } else {
    let n = 0;
    for (const ref of [...pending]) {
      if (now < ref.purgeDue) continue;
      if (n++ === max) break;
      purgePages(ref, decommit, false);
    }
  }
  const adelay = arenaDelay();
  for (const a of ctx.arenas) a.purge(now, adelay, force, decommit);
  ctx.huge?.purge(now, adelay, force, decommit);
  nextDue = dueTime();
}

// the adaptive purge factor grows only while what waits for a purge is the smaller part of committed
setWaiting(() => {
  let n = pendingPageBytes();
  for (const a of ctx.arenas) n += a.freeCommittedBytes();
  if (ctx.huge !== null) n += ctx.huge.committedBytes();
  return n;
});

/** Gives back all cached memory at once, decommitting (a budget is about to refuse). */
function relieve(unmap: boolean): void {
  if (ctx.os === null) return;
  const now = ctx.now();
  for (const ref of liveSegments()) purgePages(ref, true, true);
  for (const a of ctx.arenas) a.purge(now, 0, true, true);
  if (ctx.huge !== null) {
    ctx.huge.purge(now, 0, true, true);
    if (unmap) ctx.huge.releaseAll();
  }
  nextDue = dueTime();
}
setRelief(relieve);

/** Earliest deadline of anything purgeExpired purges (Infinity when nothing waits; kept pages not included). */
function dueTime(): number {
  if (ctx.options.purgeDelay < 0) return Infinity;
  let t = Infinity;
  for (const ref of pending) if (ref.purgeDue < t) t = ref.purgeDue;
  const adelay = arenaDelay();
  for (const a of ctx.arenas) t = Math.min(t, a.nextDue(adelay));
  if (ctx.huge !== null) t = Math.min(t, ctx.huge.nextDue(adelay));
  return t;
}

/** Registers the sweep of kept empty pages (heap.ts; segment.ts does not import heaps). */
export function setKeptSweep(f: (all: boolean) => number): void {
  keptSweep = f;
}

/** A heap keeps an empty page until `due` (ms): the purge timer will sweep it then. */
export function scheduleKept(due: number): void {
  if (due >= keptDue) return;
  keptDue = due;
  armTimer(due);
}

/** Purges now, a bounded part (PURGE_SLOW_MAX), if a deadline has passed (called at slow-path events). */
export function maybePurge(): void {
  if (nextDue !== Infinity && ctx.now() >= nextDue) purgeExpired(false, PURGE_SLOW_MAX);
}

/** The clock's last reading by hugeClock (ms). */
let hugeSeen = 0;

/** ctx.now(), remembered for maybePurgeHuge: huge-block frees read the clock through this. */
export function hugeClock(): number {
  return (hugeSeen = ctx.now());
}

/**
 * maybePurge against the clock the last huge-block free read, not a new reading (one costs
 * 40-100 ns on this machine: two of them were a quarter of a huge malloc+free). An older time
 * only ever purges later, never early; the purge timer covers a program that stops freeing.
 */
export function maybePurgeHuge(): void {
  if (nextDue !== Infinity && hugeSeen >= nextDue) purgeExpired(false, PURGE_SLOW_MAX);
}

/**
 * Something becomes due for purging at `due` (ms, ctx.now() clock): arms a timer so freed
 * memory returns to the OS even when the program idles (slow-path events also check).
 */
export function schedulePurge(due: number): void {
  const delay = ctx.options.purgeDelay;
  if (delay < 0) return;
  if (delay === 0) {
    purgeExpired(false);
    return;
  }
  if (due < nextDue) nextDue = due;
  armTimer(due);
}

/** Arms the purge timer to fire at `due` (ms, ctx.now() clock) unless it fires earlier already (purgeDelay < 0: never). */
function armTimer(due: number): void {
  if (ctx.options.purgeDelay < 0 || due >= timerDue || typeof setTimeout !== "function") return;
  if (purgeTimer !== null) clearTimeout(purgeTimer);
  timerDue = due;
  // (timers take at most 2^31-1 ms: a longer delay would fire at once, over and over)
  purgeTimer = setTimeout(onTimer, Math.min(2147483647, Math.max(1, Math.ceil(due - ctx.now()) + 1)));
  const t = purgeTimer as { unref?: () => void };
  if (typeof t.unref === "function") t.unref();
}

function onTimer(): void {
  purgeTimer = null;
  timerDue = Infinity;
  // empty pages kept with their heaps whose delay ran out go back to their segments first
  // (only here, on the event loop: a sweep nested in an allocator call would release pages
  // a caller is iterating)
  // (all of them once a worker sharing the allocator has a budget: see budgetAnywhere)
  if (keptSweep !== null && keptDue <= ctx.now()) keptDue = keptSweep(budgetAnywhere());
  purgeExpired(false);
  rearm();
}

/** Arms the timer for what still waits: purges (nextDue) and kept pages (keptDue). */
function rearm(): void {
  if (nextDue !== Infinity) schedulePurge(nextDue);
  if (keptDue !== Infinity) armTimer(keptDue);
}

/**
 * Sharing starts: every heap of this worker gives its kept empty pages back and what waits
 * for a purge goes now (unless purgeDelay < 0), so another worker under a process-wide budget
 * is not refused memory this one merely caches.
 */
export function releaseCached(): void {
  if (keptSweep !== null) keptDue = keptSweep(true);
  if (ctx.options.purgeDelay >= 0) purgeExpired(true);
}

/** Page slots were given back while purgeDelay was negative: no purge was marked or scheduled for them. */
let unmarked = false;

/**
 * Marks every free, committed page slot of a live segment for a purge due `delay` ms from now
 * (slots given back while purgeDelay was -1: without this they stayed committed for good once
 * it was set again, found by an adversarial user in session 23).
 */
function markUnmarked(delay: number): void {
  const due = ctx.now() + delay;
  for (const ref of liveSegments()) {
    const m = ref.r.i32;
    const sw = headerOf(ref.seg);
    const perPage = pageShiftOf(ref) - SLICE_SHIFT;
    let marked = false;
    for (let k = firstSlice(); k < SLICES; k++) {
      if (bitOf(m, sw + S_COMMIT_LO, k) && !sliceInUse(m, sw, ref.seg + k * SLICE_SIZE, k >>> perPage)) {
        setBit(m, sw + S_PURGE_LO, k, true);
        marked = true;
      }
    }
    if (marked && ref.purgeDue === 0) {
      ref.purgeDue = due;
      pending.add(ref);
    }
  }
}

/** Drops the armed timer and re-plans (purgeDelay changed). */
export function replanPurge(): void {
  if (purgeTimer !== null) clearTimeout(purgeTimer);
  purgeTimer = null;
  timerDue = Infinity;
  if (unmarked && ctx.options.purgeDelay > 0 && ctx.os !== null) {
    unmarked = false;
    markUnmarked(pageDelay());
  }
  // purgeDelay 0 means at once: what already waits goes now (setOption, never nested in a heap walk)
  if (ctx.options.purgeDelay === 0 && ctx.os !== null) {
    if (keptSweep !== null) keptDue = keptSweep(true);
    purgeExpired(true); // (every free slot, marked or not)
    unmarked = false;
  }
  nextDue = ctx.os === null ? Infinity : dueTime();
  rearm();
}

// ---- shared allocator (src/shared.ts): segments change hands between workers

/** This worker's handle on segment idx of an arena, if it owns it. */
export function segmentRefOf(r: Region, idx: number): SegmentRef | undefined {
  return refs.get(r)?.[idx];
}

/**
 * Takes over a segment another worker abandoned (its header already names us as owner), into
 * the segment pool of heaps bound to arena `pool` (0: the shared arenas). null when it held no
 * page: then it went back to its arena at once, and any worker may claim it from there (its
 * descriptors are no longer ours to read: review of session 27).
 */
export function adoptSegment(arena: Arena, idx: number, pool: number): SegmentRef | null {
  const seg = idx << SEGMENT_SHIFT;
  const m = arena.region.i32;
  const sw = headerOf(seg);
  // its kind from the segment map's page shift (the header's S_KIND is user-reachable memory)
  const byMap = PAGE_SHIFT_OF_KIND.indexOf(arena.segKind(idx));
  const ref = new SegmentRef(arena, seg, (byMap >= 0 ? byMap : m[sw + S_KIND]) as PageKind, pool);
  let l = refs.get(arena.region);
  if (l === undefined) refs.set(arena.region, l = []);
  l[idx] = ref;
  if (m[sw + S_USED_PAGES] < pageSlotsOf(ref)) addAvail(ref);
  if (m[sw + S_USED_PAGES] === 0) {
    releaseSegment(ref);
    return null;
  }
  return ref;
}

/** Gives up this worker's handle on a segment it abandons (its pages are still live). */
export function forgetSegment(ref: SegmentRef): void {
  if (ref.availIndex >= 0) removeAvail(ref);
  pending.delete(ref);
  ref.purgeDue = 0;
  refs.get(ref.r)![ref.idx] = undefined;
}
