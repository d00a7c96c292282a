/**
 * Huge blocks (> LARGE_OBJ_MAX, or alignments beyond what pages give): each gets its own
 * mapping with a one-page segment header. Freed mappings are cached for reuse and purged
 * after the delay, so alloc/free loops do not unmap and remap.
 */
import { hugeBlockSize } from "./bins.ts";
import { ctx, os } from "./context.ts";
import {
  HUGE_HEADER_SIZE, HUGE_ROUND, P_BSIZE, P_CAPACITY, P_END, P_HEAP, P_OWNER, P_RESERVED, P_START,
  P_USED, PAGE_WORDS, PageKind, S_COOKIE, S_HUGE_SIZE_F64, S_KIND, S_OWNER, S_PAGE_COUNT,
  S_PAGE_SHIFT, S_PAGES, S_USED_PAGES,
} from "./layout.ts";
import { PageRef, Region, RegionKind } from "./region.ts";
import { segmentCookie } from "./segment.ts";

interface Cached { r: Region; freedAt: number; dirty: boolean }

export class HugeCache {
  private cached: Cached[] = [];
  cachedBytes = 0;
  dirtyBytes = 0;

  /** A cached mapping that fits `bsize` at an `align`-aligned offset, or null. */
  take(bsize: number, align: number): { r: Region; start: number; zero: boolean } | null {
    for (let i = 0; i < this.cached.length; i++) {
      const c = this.cached[i];
      const start = blockOffset(c.r.base, align);
      const need = start + bsize;
      // reuse only when it fits and wastes at most half the mapping
      if (need > c.r.size || need < c.r.size / 2) continue;
      this.cached.splice(i, 1);
      this.cachedBytes -= c.r.size;
      if (c.dirty) this.dirtyBytes -= c.r.size;
      else ctx.counters.commit(c.r.size);
      return { r: c.r, start, zero: !c.dirty };
    }
    return null;
  }

  /** Keeps a freed mapping if the cache has room; otherwise unmaps it. */
  put(r: Region): void {
    const max = ctx.options.hugeCacheMax;
    if (this.cachedBytes + r.size > max) {
      ctx.regions.remove(r);
      os().release(r.base, r.size);
      ctx.counters.unreserve(r.size);
      ctx.counters.decommit(r.size);
      return;
    }
    this.cached.push({ r, freedAt: ctx.now(), dirty: true });
    this.cachedBytes += r.size;
    this.dirtyBytes += r.size;
  }

  purge(now: number, delay: number, force: boolean): void {
    for (const c of this.cached) {
      if (!c.dirty || (!force && now - c.freedAt < delay)) continue;
      os().purge(c.r.base, c.r.size);
      ctx.counters.purge(c.r.size);
      ctx.counters.decommit(c.r.size);
      c.dirty = false;
      this.dirtyBytes -= c.r.size;
    }
  }
}

/** First offset >= HUGE_HEADER_SIZE at which base+offset is align-aligned. */
function blockOffset(base: number, align: number): number {
  if (align <= HUGE_HEADER_SIZE) return HUGE_HEADER_SIZE;
  return Math.ceil((base + HUGE_HEADER_SIZE) / align) * align - base;
}

/**
 * Maps a huge block of at least `size` bytes whose address is a multiple of `align`.
 * Returns its page handle (block at pr.base + start) or null when the OS refuses.
 */
export function allocHuge(size: number, align: number, heapId: number): { pr: PageRef } | null {
  const bsize = hugeBlockSize(size);
  const cache = ctx.huge ??= new HugeCache();
  let got = cache.take(bsize, align);
  if (got === null) {
    const o = os();
    const start = align <= HUGE_HEADER_SIZE ? HUGE_HEADER_SIZE : align;
    const mapSize = Math.ceil((start + bsize) / HUGE_ROUND) * HUGE_ROUND;
    const base = o.reserve(mapSize, Math.max(align, HUGE_ROUND));
    ctx.counters.osCall("reserve");
    if (base === 0) return null;
    ctx.counters.reserve(mapSize);
    ctx.counters.commit(mapSize);
    const r = new Region(base, mapSize, RegionKind.Huge, o.view(base, Math.min(mapSize, o.maxView)));
    ctx.regions.add(r);
    got = { r, start: blockOffset(base, align), zero: true };
  }
  const { r, start } = got;
  r.fresh = got.zero;
  const m = r.i32;
  m.fill(0, 0, S_PAGES + PAGE_WORDS);
  m[S_KIND] = PageKind.Huge;
  m[S_PAGE_SHIFT] = 31;
  m[S_PAGE_COUNT] = 1;
  m[S_USED_PAGES] = 1;
  m[S_OWNER] = ctx.tag;
  r.f64[S_HUGE_SIZE_F64] = bsize;
  const pg = S_PAGES;
  m[pg + P_BSIZE] = -1;
  m[pg + P_START] = start;
  m[pg + P_END] = start + 1;
  m[pg + P_USED] = 1;
  m[pg + P_CAPACITY] = 1;
  m[pg + P_RESERVED] = 1;
  m[pg + P_HEAP] = heapId;
  m[pg + P_OWNER] = ctx.tag;
  m[S_COOKIE] = segmentCookie(0);
  let pr = r.pages[0];
  if (pr === undefined) r.pages[0] = pr = new PageRef(r, pg, 0);
  return { pr };
}

/** Frees a huge block's mapping (cached for reuse). */
export function freeHuge(pr: PageRef): void {
  const m = pr.m;
  m.fill(0, 0, S_PAGES + PAGE_WORDS);
  ctx.huge!.put(pr.r);
}

export function hugeSize(r: Region): number {
  return r.f64[S_HUGE_SIZE_F64];
}
