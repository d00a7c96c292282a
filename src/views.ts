/**
 * Byte access to our memory: views over [p, p+len) and copies/fills between blocks, through a
 * region's own view when it covers the range, else through a fresh view from the backend.
 */
import { arenaInternal } from "./arena.ts";
import { ctx, LOCATE_MISS_MAX, sharedHooks } from "./context.ts";
import {
  P_BSIZE, P_END, P_START, P_THREAD_FREE, PAGE_WORDS, S_COOKIE, S_HUGE_SIZE_F64, S_PAGES, SEGMENT_MASK, SEGMENT_SIZE, headerOf,
} from "./layout.ts";
import { type Region, RegionKind } from "./region.ts";
import { guardedBlocks, isFreeBlock } from "./secure.ts";
import { segmentCookie } from "./segment.ts";

/** Fills [p, p+len) with a byte (chunked: huge blocks may exceed one view). */
export function fillBytes(p: number, len: number, v: number): void {
  const CHUNK = 1 << 30;
  for (let done = 0; done < len; done += CHUNK) bytesAt(p + done, Math.min(CHUNK, len - done)).fill(v);
}

/**
 * Zeroes a fresh block, except a huge block on a mapping that still reads as zero. Works on
 * blocks larger than the runtime's largest view (4 GiB on koffi and bun:ffi): the whole
 * pages of a huge block are purged (they read as zero after; no RAM is touched), the rest
 * is filled through views of at most 1 GiB.
 */
export function zeroBlock(p: number, size: number): void {
  const r = ctx.regions.find(p)!;
  if (r.kind === RegionKind.Huge && r.fresh) {
    r.fresh = false;
    return;
  }
  const off = p - r.base;
  if (off + size <= r.viewSize && (r.kind !== RegionKind.Huge || size < PURGE_ZERO_MIN)) {
    r.u8.fill(0, off, off + size);
    return;
  }
  const o = ctx.os!;
  const P = o.pageSize;
  const a = Math.ceil(p / P) * P, b = Math.floor((p + size) / P) * P;
  if (r.kind === RegionKind.Huge && b - a >= PURGE_ZERO_MIN) {
    fillBytes(p, a - p, 0);
    o.purge(a, b - a);
    fillBytes(b, p + size - b, 0);
  } else fillBytes(p, size, 0);
}

/** Huge blocks from this size on are zeroed by a purge (madvise) rather than by writing. */
const PURGE_ZERO_MIN = 1 << 20;

/** A Uint8Array over [p, p+len): a sub-view of the region's view when it covers the range. */
export function bytesAt(p: number, len: number): Uint8Array {
  let r = ctx.regions.find(p);
  // shared allocator: memory another worker reserved since we last looked
  for (let again = 0; again < LOCATE_MISS_MAX && (r === null || (r.kind === RegionKind.Arena && p + len > r.base + r.size)) && sharedHooks.locateMiss !== null && sharedHooks.locateMiss(p); again++) r = ctx.regions.find(p);
  if (r !== null) {
    const off = p - r.base;
    if (off + len <= r.viewSize) return new Uint8Array(r.u8.buffer, r.u8.byteOffset + off, len);
  }
  const o = ctx.os;
  if (o === null || o.kind === "buffer") throw new RangeError(`tsmalloc: no memory of ours at 0x${p.toString(16)} (+${len})`);
  return new Uint8Array(o.view(p, len));
}

/** memmove of len bytes between blocks (possibly in different regions). */
export function copyBytes(dst: number, src: number, len: number): void {
  // common case: both blocks in one region's view — one memmove, no view objects
  const r = ctx.regions.find(src);
  if (r !== null && dst >= r.base && dst + len <= r.base + r.viewSize && src + len <= r.base + r.viewSize) {
    const s = src - r.base;
    r.u8.copyWithin(dst - r.base, s, s + len);
    return;
  }
  const CHUNK = 1 << 30;
  for (let done = 0; done < len; done += CHUNK) {
    const n = Math.min(CHUNK, len - done);
    bytesAt(dst + done, n).set(bytesAt(src + done, n));
  }
}

/**
 * Throws RangeError unless [p, p+len) lies inside one block of ours: a block of a live page
 * (from its start to its end; for a guarded allocation, the object before its guard page)
 * or a live huge block, and len fits one view of this backend. Interior addresses are
 * fine (a view of part of a block). Decided from records no block covers (the region
 * table, the arena's segment map, page descriptors, a huge block's header, a page's side table).
 * A free block (freed, or never handed out) throws too, told by its page's side table. Anything else —
 * unmapped, never handed out, a freed huge block, a freed page, across a block's end or
 * into a guard page — throws, so a view never reaches memory that could fault.
 */
export function checkView(p: number, len: number): void {
  const o = ctx.os;
  if (o !== null && len > o.maxView) {
    throw new RangeError(`tsmalloc: a view of ${len} bytes is larger than this backend allows (${o.maxView}); view a large block in parts`);
  }
  for (let again = 0; ; again++) {
    const r = ctx.regions.find(p);
    const ext = r === null ? null : blockExtent(r, p - r.base);
    if (ext !== null) {
      const off = p - r!.base;
      if (off + len > ext[1]) {
        throw new RangeError(`tsmalloc: view [0x${p.toString(16)}, +${len}) runs past the end of its block (${ext[1] - off} bytes left)`);
      }
      return;
    }
    // shared allocator: memory another worker reserved or carved since we last looked (one
    // lookup may need several: a new arena, then the run in it)
    if (again >= LOCATE_MISS_MAX || sharedHooks.locateMiss === null || !sharedHooks.locateMiss(p)) break;
  }
  const internal = arenaInternal(p);
  throw new RangeError(`tsmalloc: no block of ours at 0x${p.toString(16)} (+${len})${internal !== null ? `: ${internal}` : ""}: views must lie inside a live block`);
}

/** [start, end) of the block containing region offset off (as region offsets), or null. */
function blockExtent(r: Region, off: number): [number, number] | null {
  const m = r.i32;
  if (r.kind === RegionKind.Huge) {
    // a live huge block: its header (before the block) is intact and no other worker freed it
    if (m[S_COOKIE] !== segmentCookie(0) || m[S_PAGES + P_BSIZE] !== -1 || (Atomics.load(m, S_PAGES + P_THREAD_FREE) & 1) !== 0) return null;
    const start = m[S_PAGES + P_START];
    const end = start + r.f64[S_HUGE_SIZE_F64];
    return off >= start && off < end ? [start, end] : null;
  }
  if (r.kind !== RegionKind.Arena || off >= r.size) return null;
  const seg = off - (off & SEGMENT_MASK);
  const shift = Atomics.load(m, r.segMap + seg / SEGMENT_SIZE);
  if (shift <= 0) return null; // a free segment, or a huge block (its own region when this worker knows it)
  const pg = headerOf(seg) + S_PAGES + ((off - seg) >>> shift) * PAGE_WORDS;
  const bsize = m[pg + P_BSIZE];
  const start = m[pg + P_START];
  if (bsize <= 0 || off < start || off >= m[pg + P_END]) return null;
  const blk = start + Math.floor((off - start) / bsize) * bsize;
  if (isFreeBlock(m, pg, blk)) {
    throw new RangeError(`tsmalloc: view at 0x${(r.base + off).toString(16)}: the block at 0x${(r.base + blk).toString(16)} is free (freed, or never handed out); views must lie inside a live block`);
  }
  if (guardedBlocks.size !== 0) {
    const g = guardedBlocks.get(r.base + blk);
    if (g !== undefined) {
      const lo = g.p - r.base;
      return off >= lo ? [lo, lo + g.usable] : null;
    }
  }
  return [blk, blk + bsize];
}
