/**
 * Byte access to our memory: views over [p, p+len) and copies/fills between blocks, through a
 * region's own view when it covers the range, else through a fresh view from the backend.
 */
import { ctx, sharedHooks } from "./context.ts";
import { RegionKind } from "./region.ts";

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
  if ((r === null || (r.kind === RegionKind.Arena && p + len > r.base + r.size)) && sharedHooks.locateMiss !== null && sharedHooks.locateMiss(p)) r = ctx.regions.find(p);
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
