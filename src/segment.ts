/**
 * Segments: 4 MiB slices of an arena holding pages of one kind (64 small, 8 medium or
 * one large page) behind a header with the page descriptors. Segments belong to a worker;
 * the pages in them to that worker's heaps.
 */
import { type Arena, arenaOf, claimSegment } from "./arena.ts";
import { ctx } from "./context.ts";
import {
  LARGE_PAGE_SHIFT, MEDIUM_PAGE_SHIFT, P_BSIZE, PAGE_WORDS, PageKind, S_COOKIE, S_KIND, S_OWNER,
  S_PAGE_COUNT, S_PAGE_SHIFT, S_PAGES, S_USED_PAGES, SEGMENT_COOKIE, SEGMENT_HEADER_SIZE,
  SEGMENT_SHIFT, SMALL_PAGE_SHIFT,
} from "./layout.ts";
import { PageRef, type Region } from "./region.ts";

const PAGE_SHIFT_OF_KIND = [SMALL_PAGE_SHIFT, MEDIUM_PAGE_SHIFT, LARGE_PAGE_SHIFT];

/** Value of S_COOKIE for a live segment at byte offset seg (never 0). */
export function segmentCookie(seg: number): number {
  return (SEGMENT_COOKIE ^ seg) | 1;
}

/** A worker's handle on one of its segments. */
export class SegmentRef {
  readonly arena: Arena;
  readonly r: Region;
  readonly seg: number;
  readonly kind: PageKind;
  /** Position in the worker's list of segments with free page slots, or -1. */
  availIndex = -1;
  constructor(arena: Arena, seg: number, kind: PageKind) {
    this.arena = arena;
    this.r = arena.region;
    this.seg = seg;
    this.kind = kind;
  }
}

/** Segments with at least one free page slot, per page kind. */
const avail: SegmentRef[][] = [[], [], []];
/** SegmentRef by region and segment index. */
const refs = new Map<Region, (SegmentRef | undefined)[]>();

function addAvail(s: SegmentRef): void {
  const l = avail[s.kind];
  s.availIndex = l.length;
  l.push(s);
}

function removeAvail(s: SegmentRef): void {
  const l = avail[s.kind];
  const last = l.pop()!;
  if (last !== s) {
    l[s.availIndex] = last;
    last.availIndex = s.availIndex;
  }
  s.availIndex = -1;
}

function newSegment(kind: PageKind): SegmentRef | null {
  const got = claimSegment();
  if (got === null) return null;
  const { arena, seg } = got;
  const m = arena.region.i32;
  const s = seg >> 2;
  const shift = PAGE_SHIFT_OF_KIND[kind];
  const count = 1 << (SEGMENT_SHIFT - shift);
  m.fill(0, s, s + S_PAGES + count * PAGE_WORDS);
  m[s + S_KIND] = kind;
  m[s + S_PAGE_SHIFT] = shift;
  m[s + S_PAGE_COUNT] = count;
  m[s + S_OWNER] = ctx.tag;
  m[s + S_COOKIE] = segmentCookie(seg);
  const ref = new SegmentRef(arena, seg, kind);
  let l = refs.get(arena.region);
  if (l === undefined) refs.set(arena.region, l = []);
  l[seg >>> SEGMENT_SHIFT] = ref;
  addAvail(ref);
  return ref;
}

/** Byte range [start, end) of page slot i in a segment. */
export function pageArea(seg: number, shift: number, i: number): [number, number] {
  const start = i === 0 ? seg + SEGMENT_HEADER_SIZE : seg + i * (1 << shift);
  return [start, seg + (i + 1) * (1 << shift)];
}

/** The handle of page slot i of the segment at `seg` in region r. */
export function pageRefAt(r: Region, seg: number, i: number): PageRef {
  const slot = ((seg >>> SEGMENT_SHIFT) << 6) + i;
  let pr = r.pages[slot];
  if (pr === undefined) r.pages[slot] = pr = new PageRef(r, (seg >> 2) + S_PAGES + i * PAGE_WORDS, seg);
  return pr;
}

/** Claims a free page slot of `kind`; the caller initializes the descriptor. */
export function claimPage(kind: PageKind): { pr: PageRef; start: number; end: number } | null {
  const l = avail[kind];
  const s = l.length > 0 ? l[l.length - 1] : newSegment(kind);
  if (s === null) return null;
  const m = s.r.i32;
  const sw = s.seg >> 2;
  const count = m[sw + S_PAGE_COUNT];
  let i = 0;
  while (i < count && m[sw + S_PAGES + i * PAGE_WORDS + P_BSIZE] !== 0) i++;
  if (i === count) throw new Error("tsmalloc: segment page count is inconsistent");
  if (++m[sw + S_USED_PAGES] === count) removeAvail(s);
  const [start, end] = pageArea(s.seg, m[sw + S_PAGE_SHIFT], i);
  return { pr: pageRefAt(s.r, s.seg, i), start, end };
}

/** Returns a page slot to its segment; an empty segment goes back to its arena. */
export function releasePage(pr: PageRef): void {
  const m = pr.m;
  const sw = pr.seg >> 2;
  m.fill(0, pr.pg, pr.pg + PAGE_WORDS);
  const count = m[sw + S_PAGE_COUNT];
  const used = --m[sw + S_USED_PAGES];
  const ref = refs.get(pr.r)![pr.seg >>> SEGMENT_SHIFT]!;
  if (used === 0) {
    if (ref.availIndex >= 0) removeAvail(ref);
    m[sw + S_COOKIE] = 0;
    refs.get(pr.r)![pr.seg >>> SEGMENT_SHIFT] = undefined;
    const arena = arenaOf(pr.r)!;
    arena.release(pr.seg);
    schedulePurge();
  } else if (used === count - 1) {
    addAvail(ref);
  }
}

/** Every live segment of this worker (for stats and visits). */
export function liveSegments(): SegmentRef[] {
  const out: SegmentRef[] = [];
  for (const l of refs.values()) for (const s of l) if (s !== undefined) out.push(s);
  return out;
}

// ---- delayed purge ----

let purgeTimer: ReturnType<typeof setTimeout> | null = null;

/** Purges what has been free for purgeDelay ms (everything when force). */
export function purgeExpired(force: boolean): void {
  const delay = ctx.options.purgeDelay;
  if (delay < 0 && !force) return;
  const now = ctx.now();
  for (const a of ctx.arenas) a.purge(now, delay, force);
  ctx.huge?.purge(now, delay, force);
}

/** Arms a timer so freed memory returns to the OS after the delay even when the program idles. */
export function schedulePurge(): void {
  const delay = ctx.options.purgeDelay;
  if (delay === 0) { purgeExpired(false); return; }
  if (delay < 0 || purgeTimer !== null || typeof setTimeout !== "function") return;
  purgeTimer = setTimeout(() => {
    purgeTimer = null;
    purgeExpired(false);
    if (hasDirty()) schedulePurge();
  }, delay + 1);
  const t = purgeTimer as { unref?: () => void };
  if (typeof t.unref === "function") t.unref();
}

function hasDirty(): boolean {
  for (const a of ctx.arenas) if (a.dirty > 0) return true;
  return ctx.huge !== null && ctx.huge.dirtyBytes > 0;
}
