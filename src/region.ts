/**
 * A region is one OS reservation the allocator manages: an arena (segments carved from
 * it) or a huge block's own mapping. Each has one set of typed-array views; addresses are
 * region.base + byte offset.
 */
import type { Os } from "./os.ts";
import type { Heap } from "./heap.ts";

export const enum RegionKind { Arena = 0, Huge = 1, Sentinel = 2 }

export class Region {
  /** Address of byte 0. */
  base: number;
  /** Bytes reserved. */
  size: number;
  /** Offsets below this may take the free fast path (arenas: size; huge: 0). */
  limit: number;
  kind: RegionKind;
  i32: Int32Array;
  u8: Uint8Array;
  f64: Float64Array;
  /** Page handles by page slot (segment index * 64 + page index); created on first use. */
  pages: (PageRef | undefined)[];
  /** Bytes covered by the views (a huge region larger than the runtime's view limit is viewed in part). */
  viewSize: number;
  /** Huge regions: the block's memory still reads as zero (fresh or purged mapping). */
  fresh = false;

  constructor(base: number, size: number, kind: RegionKind, buffer: ArrayBuffer) {
    this.base = base;
    this.size = size;
    this.kind = kind;
    this.limit = kind === RegionKind.Arena ? size : 0;
    this.viewSize = buffer.byteLength;
    // byteLength may be 2^32 (the largest view on Node and Bun): no 32-bit shifts here
    this.i32 = new Int32Array(buffer, 0, Math.floor(buffer.byteLength / 4));
    this.u8 = new Uint8Array(buffer, 0, buffer.byteLength);
    this.f64 = new Float64Array(buffer, 0, Math.floor(buffer.byteLength / 8));
    // dense from the start: a sparse array would fall back to dictionary lookups
    const slots = kind === RegionKind.Arena ? Math.ceil(size / 2 ** 22) * 64 : 1;
    this.pages = new Array<PageRef | undefined>(slots).fill(undefined);
  }
}

/**
 * A JS handle on one page descriptor, kept for the page's life in a heap's queues.
 * Created once per page slot and reused, never per allocation.
 */
export class PageRef {
  r: Region;
  m: Int32Array;
  base: number;
  /** Word index of the page descriptor in r.i32. */
  pg: number;
  /** Byte offset of the segment holding this page. */
  seg: number;
  next: PageRef | null = null;
  prev: PageRef | null = null;
  /** Queue index in the owning heap (a bin, or BIN_FULL); -1 when in no queue. */
  queue = -1;
  heap: Heap | null = null;
  /** Size class (kept while the page is parked in the full queue). */
  bin = 0;

  constructor(r: Region, pg: number, seg: number) {
    this.r = r;
    this.m = r.i32;
    this.base = r.base;
    this.pg = pg;
    this.seg = seg;
  }
}

/** All live regions, sorted by base, for address lookups off the fast path. */
export class RegionTable {
  private list: Region[] = [];

  add(r: Region): void {
    let i = this.list.length;
    this.list.push(r);
    while (i > 0 && this.list[i - 1].base > r.base) {
      this.list[i] = this.list[i - 1];
      i--;
    }
    this.list[i] = r;
  }

  remove(r: Region): void {
    const i = this.list.indexOf(r);
    if (i >= 0) this.list.splice(i, 1);
  }

  /** The region containing addr, or null. */
  find(addr: number): Region | null {
    const l = this.list;
    let lo = 0, hi = l.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = l[mid];
      if (addr < r.base) hi = mid - 1;
      else if (addr >= r.base + r.size) lo = mid + 1;
      else return r;
    }
    return null;
  }

  all(): readonly Region[] {
    return this.list;
  }
}

/** Placeholder region whose single page has an empty free list: sends malloc to the generic path. */
export function sentinelRegion(): Region {
  return new Region(0, 0, RegionKind.Sentinel, new ArrayBuffer(256));
}

export type { Os };
