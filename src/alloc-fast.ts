/**
 * What the fast paths of mallocAligned, realloc and calloc/zalloc share (heap.ts): the
 * aligned size-class table (mimalloc's "naturally aligned" classes), the lookup and free of a
 * live block of this worker's (the free fast path's test and push), and byte moves inside one region
 * view without creating view objects.
 */
import { BIN_COUNT, BIN_SIZE, binOf } from "./bins.ts";
import { ctx } from "./context.ts";
import { wake } from "./free.ts";
import type { Region } from "./region.ts";
import { pageRefOf } from "./segment.ts";

/** Largest alignment served from pages (page starts are 8 KiB aligned); larger ones get huge blocks. */
export const ALIGNED_IN_PAGES_MAX = 8192;

/**
 * The smallest size class >= size whose block size is a multiple of alignment (a power of
 * two, 32..ALIGNED_IN_PAGES_MAX), or 0 when none is <= LARGE_OBJ_MAX. Classes are 2^k and
 * 5, 6, 7 * 2^(k-2), so the one found is below 2 * max(size, alignment).
 */
export function alignedClassSize(size: number, alignment: number): number {
  for (let b = binOf(Math.max(size, alignment)); b < BIN_COUNT; b++) {
    if (BIN_SIZE[b] % alignment === 0) return BIN_SIZE[b];
  }
  return 0;
}

/** Largest size mallocAligned's inline path serves (ALIGNED_FRONT); larger ones take mallocAlignedGeneric. */
export const ALIGNED_DIRECT_MAX = 4096;

/**
 * ALIGNED_FRONT[clz32(alignment) * 513 + ceil(size / 8)], for sizes up to ALIGNED_DIRECT_MAX:
 * the class to pop an alignment-aligned block from — the size's own class up to 16-byte
 * alignment, else the first class whose block size is a multiple of the alignment
 * (alignedClassSize); 0 (no class: its front page is always EMPTY) for size 0 and in the rows
 * of alignments past ALIGNED_IN_PAGES_MAX and of 0 (clz32 32). One load instead of binOf and
 * ALIGNED_BIN, and every row in bounds: mallocAligned stays small enough for V8 to inline it
 * with free into a caller's loop (sessions 17 and 25).
 */
export const ALIGNED_FRONT: Uint8Array = (() => {
  const t = new Uint8Array(33 * 513);
  for (let j = 0; j <= 13; j++) {
    for (let w = 1; w <= ALIGNED_DIRECT_MAX >>> 3; w++) {
      const s = j <= 4 ? w << 3 : alignedClassSize(w << 3, 1 << j);
      if (s === 0) throw new Error(`tsmalloc: internal: no aligned class for ${w << 3} at ${1 << j}`);
      t[(31 - j) * 513 + w] = binOf(s);
    }
  }
  return t;
})();

/**
 * ALIGNED_BIN[(log2(alignment) - 5) * BIN_COUNT + bin]: the first class >= bin whose block
 * size is a multiple of alignment (32..ALIGNED_IN_PAGES_MAX), 0 for none. Blocks of such a
 * class are aligned because every page starts at a multiple of ALIGNED_IN_PAGES_MAX.
 */
export const ALIGNED_BIN: Uint8Array = (() => {
  const t = new Uint8Array(9 * BIN_COUNT);
  for (let j = 5; j <= 13; j++) {
    for (let bin = 1; bin < BIN_COUNT; bin++) {
      const s = alignedClassSize(BIN_SIZE[bin], 1 << j);
      t[(j - 5) * BIN_COUNT + bin] = s === 0 ? 0 : binOf(s);
    }
  }
  return t;
})();

/**
 * The side-table entry (index in r.tbl) of p when p is the start of a live block (its entry
 * says live) of a page this worker owns in arena region r, with no guarded or aligned-shifted
 * block, and the allocator is not shared; -1 otherwise (a free block included: the caller's
 * generic path throws for it). The same test as the free fast path (secure-free.ts), decided
 * only from records no block covers (the segment map, the page descriptor, the side table).
 * The entry index says where the rest is: segment g = x >>> 18, page slot i = (x >>> 12) & 63,
 * block index x & 4095 (TABLE_SEGMENT_SHIFT, TABLE_COLUMN_SHIFT; see pageOfEntry).
 */
export function ownLiveEntry(r: Region, p: number): number {
  // literal offsets: see HOT_PATH_LITERALS in layout.ts
  const delta = p - r.base;
  if (!(delta > 0 && delta < r.limit)) return -1;
  const off = delta | 0;
  const m = r.i32;
  const g = off >>> 22; //                                   SEGMENT_SHIFT
  const sh = m[r.segMap + g]; //                             the page shift, <= 0 for no live segment of pages
  const i = ((off & 4194303) >>> sh) & 63; //                SEGMENT_MASK
  const pg = (g << 11) + 16 + (i << 4); //                   HEADER_WORD_SHIFT (layout.ts headerOf), S_PAGES, PAGE_WORDS
  const d = off - m[pg + 7]; //                              P_START
  const k = m[pg + 14]; //                                   P_DIV_SHIFT (low 5 bits)
  const q = Math.imul(d >> k, m[pg + 15]); //                P_DIV_INV: the block index, when d is a multiple of bsize
  const x = (g << 18) + (i << 12) + q; //                    the block's entry (TABLE_SEGMENT_SHIFT, TABLE_COLUMN_SHIFT)
  if (
    off === delta && sh > 0 && d >= 0 && off < m[pg + 12] && ((d >> k) << k) === d && //  P_END
    (q ^ -2147483648) <= m[pg + 13] && //                      P_DIV_LIMIT
    m[pg + 8] === ctx.checkedTag && //                       P_KEY: ours, no other flag, not shared (checkedTag -1)
    r.tbl[x] === 0xffff //                                   ENTRY_LIVE
  ) return x;
  return -1;
}

/** The page descriptor (word index in r.i32) of side-table entry x (ownLiveEntry). */
export function pageOfEntry(x: number): number {
  return ((x >>> 18) << 11) + 16 + (((x >>> 12) & 63) << 4); // HEADER_WORD_SHIFT, S_PAGES, PAGE_WORDS
}

/**
 * Frees the block whose entry is x (ownLiveEntry said live, and nothing freed it since: not
 * shared, and malloc pops only free blocks) without a second lookup: freeChecked's push onto
 * the local-free list. Not with debugFill (free.ts fills). The heap hears of the page as from
 * freeChecked (free.ts wake).
 */
export function freeOwnEntry(r: Region, x: number): void {
  const m = r.i32;
  const pg = pageOfEntry(x);
  const h = ((x >>> 18) << 11) + 1040 + (((x >>> 12) & 63) << 2); // S_SEC + page slot * SEC_WORDS
  r.tbl[x] = m[h + 1]; //                                    SEC_LOCAL
  m[h + 1] = (x & 4095) + 1;
  if (--m[pg + 3] <= (m[pg + 14] >> 5)) wake(pageRefOf(r, pg)); // P_USED, P_DIV_SHIFT >> P_WAKE_SHIFT
}

/** Up to this many bytes, zeroing is a word loop (cheaper than a builtin call). */
const WORD_LOOP_MAX = 256;
/** Up to this many bytes, copies are a word loop: at 256 B `copyWithin` costs less on every runtime (session 29). */
const COPY_LOOP_MAX = 128;

/**
 * Copies len bytes from region offset src to region offset dst of r (two distinct live
 * blocks, both inside r's view and 4-byte aligned; bytes up to the next multiple of 4 are
 * copied too, which stays inside blocks whose sizes are multiples of 16).
 */
export function copyInRegion(r: Region, dst: number, src: number, len: number): void {
  if (len <= COPY_LOOP_MAX) {
    const m = r.i32;
    const s = src >> 2;
    const d = dst >> 2;
    const n = (len + 3) >> 2;
    for (let i = 0; i < n; i++) m[d + i] = m[s + i];
    return;
  }
  r.u8.copyWithin(dst, src, src + len);
}

/** ZERO_BY_BIN[bin]: BIN_SIZE[bin] zero bytes (classes up to ZERO_MAX), made on first use. */
const ZERO_MAX = 65536;
let ZERO_BY_BIN: Uint8Array[] | null = null;

function zeroViews(): Uint8Array[] {
  const z = new Uint8Array(ZERO_MAX);
  const views: Uint8Array[] = [];
  for (let bin = 0; bin < BIN_COUNT; bin++) views.push(z.subarray(0, BIN_SIZE[bin] <= ZERO_MAX ? BIN_SIZE[bin] : 0));
  return views;
}

/**
 * Zeroes the whole block of class `bin` at region offset off of r (inside r's view, 16-byte
 * aligned), as mimalloc zeroes the whole block so a later in-place growth reads zeros.
 * A typed-array `set` from a zero view costs less than `fill` on V8 (a C++ builtin call).
 */
export function zeroClassBlock(r: Region, off: number, bin: number): void {
  const bsize = BIN_SIZE[bin];
  if (bsize <= WORD_LOOP_MAX) {
    const m = r.i32;
    for (let i = off >> 2, e = (off + bsize) >> 2; i < e; i++) m[i] = 0;
  } else if (bsize <= ZERO_MAX) {
    r.u8.set((ZERO_BY_BIN ??= zeroViews())[bin], off);
  } else r.u8.fill(0, off, off + bsize);
}
