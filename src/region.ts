/**
 * A region is one OS reservation the allocator manages: an arena (segments carved from
 * it) or a huge block's own mapping. Each has one set of typed-array views; addresses are
 * region.base + byte offset.
 */
import type { Os } from "./os.ts";
import type { Heap } from "./heap.ts";
import type { Arena } from "./arena.ts";
import { HEADER_WORD_SHIFT, S_PAGES, S_SEC, SEGMENT_SIZE, TABLE_COLUMN_ENTRIES, TABLE_SEGMENT_ENTRIES } from "./layout.ts";

export const enum RegionKind { Arena = 0, Huge = 1, Sentinel = 2 }

const NO_TABLE = new Uint16Array(0);

export class Region {
  /** Address of byte 0. */
  declare base: number;
  /** Bytes reserved. */
  declare size: number;
  /** Offsets below this may take the free fast path (arenas: size; huge: 0). */
  declare limit: number;
  /**
   * base / SEGMENT_SIZE (an integer for arenas, whose bases are segment-aligned): what a
   * cross-worker free records of its arena (secure.ts pushThreadFreeChecked), kept so the
   * free does not divide.
   */
  declare baseSegment: number;
  /**
   * Arenas: word index in i32 of the arena's segment map (arena.ts), one word per segment:
   * the page shift of a live segment of pages, else <= 0. 0 for other regions.
   */
  declare segMap: number;
  declare kind: RegionKind;
  declare i32: Int32Array;
  declare u8: Uint8Array;
  /**
   * Arenas: the side tables (src/secure.ts "side table"), after the arena's metadata,
   * TABLE_SEGMENT_ENTRIES per segment; empty for other regions.
   */
  declare tbl: Uint16Array;
  declare f64: Float64Array;
  /** Page handles by page slot (segment index * 64 + page index); created on first use. */
  declare pages: (PageRef | undefined)[];
  /** Bytes covered by the views (a huge region larger than the runtime's view limit is viewed in part). */
  declare viewSize: number;
  /** Huge regions: the block's memory still reads as zero (fresh or purged mapping). */
  fresh = false;
  /**
   * Huge regions: region offset of the block last handed out here, as this worker last saw it
   * (-1 unknown). Kept in JS after the block is freed, when its header is gone: an address
   * inside a freed huge block is then "not the start of a block", not a double free.
   */
  blockStart = -1;
  /**
   * Arenas: huge blocks carved from this arena (runs of whole segments), sorted by base;
   * address lookups prefer them. null for other regions.
   */
  declare children: Region[] | null;
  /** A huge block carved from an arena: the arena's region (else null). */
  parent: Region | null = null;
  /**
   * This worker's own live huge block carved from an arena (huge.ts fromArena): the arena and
   * its segment run; null for every other region (a field, not a Map: a Map's delete on every
   * huge free shrank and reallocated its table, a quarter of a shared huge malloc+free).
   */
  hugeRun: { arena: Arena; idx: number; n: number } | null = null;
  /** A huge block placed flush against its guard page (a guarded allocation): never resized in place. */
  flush = false;
  /**
   * A freed huge mapping in the huge cache (huge.ts HugeCache): when it was freed (ms,
   * ctx.now() clock), whether it was not purged or reset since, and whether it is counted in
   * `committed`. Fields here, not an entry object per free: nothing is allocated per huge pair.
   */
  cachedAt = 0.5; // (not an integer: V8 makes the field a double from the start, no map change later)
  cacheDirty = false;
  cacheCommitted = false;

  /**
   * `buffer` holds the region's bytes from `byteOffset` on (0 for a region that owns its
   * mapping; a segment offset for a huge block carved from an arena, whose views alias the
   * arena's). The views cover `length` bytes (default: the rest of the buffer). `header`: the
   * words that i32 and f64 view instead, for a huge block: JS memory for one with its own
   * mapping, its head segment's out-of-band header (layout.ts headerOf) for one carved from an
   * arena — memory no write through a block reaches (src/huge.ts); u8 still views the block's memory.
   */
  constructor(base: number, size: number, kind: RegionKind, buffer: ArrayBuffer, byteOffset = 0, viewLength?: number, header?: Int32Array) {
    const length = viewLength ?? buffer.byteLength - byteOffset;
    this.base = base;
    this.size = size;
    this.kind = kind;
    this.limit = kind === RegionKind.Arena ? size : 0;
    this.baseSegment = Math.floor(base / SEGMENT_SIZE);
    this.segMap = 0;
    this.viewSize = length;
    // length may be 2^32 (the largest view on Node and Bun): no 32-bit shifts here
    this.i32 = header ?? new Int32Array(buffer, byteOffset, Math.floor(length / 4));
    this.u8 = new Uint8Array(buffer, byteOffset, length);
    this.tbl = NO_TABLE;
    this.f64 = header !== undefined
      ? new Float64Array(header.buffer, header.byteOffset, header.length >> 1)
      : new Float64Array(buffer, byteOffset, Math.floor(length / 8));
    this.children = kind === RegionKind.Arena ? [] : null;
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
  declare r: Region;
  declare m: Int32Array;
  declare base: number;
  /** Word index of the page descriptor in r.i32. */
  declare pg: number;
  /** Byte offset of the segment holding this page. */
  declare seg: number;
  next: PageRef | null = null;
  prev: PageRef | null = null;
  /** Queue index in the owning heap (a bin, BIN_FULL, or a kept queue: heap.ts); -1 when in no queue. */
  queue = -1;
  heap: Heap | null = null;
  /** Size class (kept while the page is parked in the full queue or a kept queue). */
  bin = 0;
  /** Used blocks as of the last slow-path visit (src/usage.ts, for peakInUse). */
  syncedUsed = 0;
  /** ms (ctx.now()) this page was last seen emptied while kept with its heap (Heap.keep); 0 when not kept. */
  emptiedAt = 0;
  /** The heap whose kept list holds this page (at most one entry per heap). */
  keptBy: Heap | null = null;
  /** Word index of the page's secure record (checked pages: list heads); 0 outside arenas. */
  declare sec: number;
  /** The region's side tables (Region.tbl). */
  declare t16: Uint16Array;
  /**
   * A checked page in a class queue's front (the one mallocChecked pops): the address of the
   * block before block 0 (so block index + 1 = n is at first + n * bsize) and the block size,
   * copied from its descriptor (Heap.setFront).
   */
  first = 0;
  bsize = 0;
  /** Index in t16 of the page's side-table column: block j's entry is t16[table + j] (layout.ts TABLE_SEGMENT_ENTRIES). */
  declare table: number;

  constructor(r: Region, pg: number, seg: number) {
    this.r = r;
    this.m = r.i32;
    this.t16 = r.tbl;
    this.base = r.base;
    this.pg = pg;
    this.seg = seg;
    this.sec = r.kind === RegionKind.Arena ? secOf(pg) : 0;
    this.table = r.kind === RegionKind.Arena ? tableBase(pg) : 0;
  }
}

/** Word index of the secure record of the page whose descriptor is at word pg (arena segments; layout.ts S_SEC). */
export function secOf(pg: number): number {
  const s = pg & -(1 << HEADER_WORD_SHIFT);
  return s + S_SEC + ((pg - s - S_PAGES) >> 2);
}

/** Index in Region.tbl of the side-table column of the page whose descriptor is at word pg (layout.ts TABLE_SEGMENT_ENTRIES). */
export function tableBase(pg: number): number {
  const s = pg & -(1 << HEADER_WORD_SHIFT);
  return (s >>> HEADER_WORD_SHIFT) * TABLE_SEGMENT_ENTRIES + ((pg - s - S_PAGES) >> 4) * TABLE_COLUMN_ENTRIES;
}

/** All live regions, sorted by base, for address lookups off the fast path. */
export class RegionTable {
  private list: Region[] = [];

  add(r: Region): void {
    insertSorted(this.list, r);
  }

  remove(r: Region): void {
    const i = this.list.indexOf(r);
    if (i >= 0) this.list.splice(i, 1);
  }

  /** The region containing addr (a huge block carved from an arena before the arena), or null. */
  find(addr: number): Region | null {
    const r = search(this.list, addr);
    if (r === null || r.children === null || r.children.length === 0) return r;
    return search(r.children, addr) ?? r;
  }

  all(): readonly Region[] {
    return this.list;
  }
}

/** Binary search of a base-sorted list of disjoint regions. */
function search(l: Region[], addr: number): Region | null {
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

/** Inserts r into a base-sorted list. */
export function insertSorted(l: Region[], r: Region): void {
  let i = l.length;
  l.push(r);
  while (i > 0 && l[i - 1].base > r.base) {
    l[i] = l[i - 1];
    i--;
  }
  l[i] = r;
}

/** Placeholder region whose single page has an empty free list: sends malloc to the generic path. */
export function sentinelRegion(): Region {
  return new Region(0, 0, RegionKind.Sentinel, new ArrayBuffer(256));
}

export type { Os };
