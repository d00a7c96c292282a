/**
 * Geometry and the word layout of metadata kept inside native memory.
 *
 * Every region (arena or huge mapping) is viewed as one Int32Array; metadata fields are
 * word indices into it. Offsets inside a region stay below 2^31 for arenas, so plain
 * `| 0` / `>> 2` integer math applies on the fast paths.
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** Segments are 4 MiB and 4 MiB-aligned inside their arena. */
export const SEGMENT_SHIFT = 22;
export const SEGMENT_SIZE = 1 << SEGMENT_SHIFT;
export const SEGMENT_MASK = SEGMENT_SIZE - 1;
/**
 * Segment header: segment fields + up to 64 page descriptors (and, for checked pages, their
 * secure records). Headers live out of band, never in a segment: an arena's first 4 MiB
 * (segment slot 0, never a segment) holds them, the header of the segment at region byte
 * offset `seg` at word `headerOf(seg)`. Page 0 starts at the segment's first byte at level 0;
 * with guards (level 1+) after a head guard past the first SEGMENT_HEADER_SIZE bytes (secure.ts segmentStart).
 */
export const SEGMENT_HEADER_SIZE = 8 * KiB;
/** log2 of a header's words: the header of segment x (region offset x << SEGMENT_SHIFT) starts at word x << HEADER_WORD_SHIFT. */
export const HEADER_WORD_SHIFT = 11;
/** Word index in the arena's i32 of the header of the segment at region byte offset seg (a multiple of SEGMENT_SIZE or inside it). */
export function headerOf(seg: number): number {
  return Math.floor(seg / SEGMENT_SIZE) << HEADER_WORD_SHIFT; // (an arena viewed past 2 GiB: offsets over 2^31)
}
/** Region byte offset of the segment whose header starts at (or contains) word s: headerOf's inverse. */
export function segmentOfHeader(s: number): number {
  return (s >>> HEADER_WORD_SHIFT) * SEGMENT_SIZE;
}

export const SMALL_PAGE_SHIFT = 16; //  64 KiB pages, 64 per segment
export const MEDIUM_PAGE_SHIFT = 19; // 512 KiB pages, 8 per segment
export const LARGE_PAGE_SHIFT = SEGMENT_SHIFT; // one page per segment

/** Commit and purge granularity inside a segment (64 per segment); slice 0 holds the header. */
export const SLICE_SHIFT = 16;
export const SLICE_SIZE = 1 << SLICE_SHIFT;

/** Blocks up to 1 KiB use small pages (at least 64 blocks each): fewer blocks per page means
 * more full/unfull page churn, which costs far more in JS than in C (bench mixed-1000). */
export const SMALL_OBJ_MAX = 1 * KiB;
export const MEDIUM_OBJ_MAX = 64 * KiB;
export const LARGE_OBJ_MAX = 2 * MiB;
/**
 * Sizes up to this use the per-heap direct table (mimalloc's MI_SMALL_SIZE_MAX, which is
 * 1 KiB there): one load instead of binOf's clz, and no branch between the two lookups for
 * sizes up to 4 KiB, which mispredicted on mixed sizes (session 24: mixed-1000 -6% on Deno,
 * -18% on Bun). A class of up to 4 KiB covers at most 32 entries, rewritten when its front
 * page changes (a slow-path event).
 */
export const DIRECT_SIZE_MAX = 4096;

/** Huge blocks get their own mapping; the block starts after a 64 KiB header. */
export const HUGE_HEADER_SIZE = 64 * KiB;
/** Huge mappings are rounded to this (block sizes round coarser: bins.ts hugeBlockSize). */
export const HUGE_ROUND = 64 * KiB;

/** Every block is at least this aligned. */
export const MAX_ALIGN_SIZE = 16;
/** Largest allocation accepted; larger requests return 0. */
export const MAX_ALLOC_SIZE = 2 ** 46;

export const enum PageKind { Small = 0, Medium = 1, Large = 2, Huge = 3 }

// ---- segment header (word indices relative to the header's first word, headerOf) ----
export const S_COOKIE = 0; //      nonzero while the segment is live; checked before trusting a pointer
export const S_KIND = 1; //        PageKind
export const S_PAGE_SHIFT = 2; //  log2 of the page size
export const S_PAGE_COUNT = 3; //  page slots in this segment
export const S_USED_PAGES = 4; //  page slots in use
export const S_OWNER = 5; //       thread tag of the owning worker (0 = abandoned)
export const S_COMMIT_LO = 6; //   arena segments: committed 64 KiB slices 0..31 (bit i = slice i)
export const S_COMMIT_HI = 7; //   ... slices 32..63
export const S_PURGE_LO = 10; //   arena segments: committed slices of free page slots awaiting purge, 0..31
export const S_PURGE_HI = 11; //   ... slices 32..63
export const S_HUGE_SIZE_F64 = 4; // float64 index (bytes 32..39): a huge block's size
export const S_PAGES = 16; //      first page descriptor

// ---- page descriptor (16 words, 64 bytes) ----
export const PAGE_WORDS = 16;
export const P_FREE = 0; //        free list head (region byte offset, 0 = empty)
export const P_LOCAL_FREE = 1; //  blocks freed by the owner
export const P_THREAD_FREE = 2; // blocks freed by other workers: atomic LIFO, low 4 bits reserved for flags
export const P_USED = 3; //        blocks handed out and not yet collected back
export const P_CAPACITY = 4; //    blocks whose memory has been threaded into the free list
export const P_RESERVED = 5; //    blocks that fit in the page
export const P_BSIZE = 6; //       block size in bytes; 0 = page slot unused; -1 = huge (see S_HUGE_SIZE_F64)
export const P_START = 7; //       region byte offset of block 0
export const P_KEY = 8; //         owner | CHECKED_KEY when the free fast path applies (secure-free.ts), else 0
export const P_FLAGS = 9; //       PF_* bits
export const P_HEAP = 10; //       owning heap id
export const P_OWNER = 11; //      owning worker's thread tag
export const P_END = 12; //        region byte offset just past the last block threaded so far

export const PF_IN_FULL = 1;
export const PF_HAS_ALIGNED = 2;
/** Not its queue's allocation page: give it back as soon as it is empty. Does not affect P_KEY. */
export const PF_RETIRE = 4;
/**
 * A checked page (every page, at every level since session 15; src/secure.ts): its free lists
 * are kept out of band, in a 16-bit side table in its arena's metadata (TABLE_* below), their
 * heads in the segment's secure records; P_FREE and P_LOCAL_FREE stay 0 (the heads of the
 * in-block lists pages had before) and P_KEY is the owner's tag | CHECKED_KEY (see CHECKED_KEY).
 */
export const PF_CHECKED = 8;
/** A corrupted free list was detected on this page and dropped (its blocks leak until the page empties). */
export const PF_CORRUPT = 16;
/** Flags that send free off the fast path. */
export const PF_SLOW_FREE = PF_HAS_ALIGNED | PF_CHECKED;
/**
 * Set in P_KEY (with the owner's tag) for a checked page with no other slow-free flag: the
 * checked free fast path (src/secure-free.ts) compares P_KEY with `ctx.checkedTag` (the tag | CHECKED_KEY).
 * Thread tags never have this bit, so the plain fast path never matches a checked page.
 */
export const CHECKED_KEY = 0x40000000;

// ---- secure table: one record per page slot after the descriptors (checked pages only) ----
export const S_SEC = S_PAGES + 64 * PAGE_WORDS; // word 1040 (byte 4160)
export const SEC_WORDS = 4;
export const SEC_FREE = 0; //      free list head: block index + 1 (0 = empty)
export const SEC_LOCAL = 1; //     local-free list head: block index + 1 (0 = empty)
// (words 2-3 unused)

// ---- side tables (src/secure.ts "side table"): after the arena's metadata, never in a segment ----
/**
 * Entries per segment in Region.tbl: 64 columns (one per page descriptor) of 4,096 entries
 * (the most blocks a page holds: 64 KiB of 16-byte blocks), 512 KiB. Block j of the page with
 * descriptor i in segment s: (s << 18) + (i << 12) + j. A column is contiguous (8 KiB, two OS
 * pages), so a page touches only the OS pages its own blocks' entries lie in.
 */
export const TABLE_SEGMENT_ENTRIES = 1 << 18;
/** Bytes of side table per segment. */
export const TABLE_SEGMENT_BYTES = TABLE_SEGMENT_ENTRIES * 2;
/** Entries of one page's column: the most blocks a page holds. */
export const TABLE_COLUMN_ENTRIES = 4096;
/** Commit granularity of the side tables (one OS page on x86-64; 128 per segment). */
export const TABLE_UNIT = 4096;

// ---- side-table entries (src/secure.ts "side table"): 0..capacity = free, the next block's index + 1 ----
/** The block is handed out. */
export const ENTRY_LIVE = 0xffff;
/** The owner's free with a shared allocator has claimed the block and is linking it onto its local-free list. */
export const ENTRY_PENDING = 0xfffe;
/**
 * Another worker's free has claimed the block: ENTRY_PUSHING + the next thread-free block
 * (0..capacity), written before the push publishes it; the owner's collection turns it into a
 * plain link. On the thread-free list or not yet (a worker terminated before its push leaves
 * it so: a known state, like ENTRY_PENDING).
 */
export const ENTRY_PUSHING = 0xe000;

/** Cookie mixed into S_COOKIE so stale or foreign memory is not mistaken for a segment. */
export const SEGMENT_COOKIE = 0x7a11_0c5e;

// ---- block-start check without division (exact divisibility by bsize = odd * 2^k) ----
export const P_DIV_SHIFT = 14; //  bits 0-4: k; bits 5-31: the wake count (P_WAKE_SHIFT, signed), below
export const P_DIV_INV = 15; //    multiplicative inverse of odd mod 2^32
export const P_DIV_LIMIT = 13; //  floor((2^32-1)/odd) with the sign bit flipped (unsigned compare as int32)
/**
 * The owner's free calls its heap when a page's used count drops to the wake count or
 * below: -1 (never) for a class queue's allocation page, 0 for other pages in a class
 * queue (emptied: give it back), and for a page parked in the full queue the count at
 * which an eighth of it is free again (unpark it). Packed above k: JS shift counts use
 * only the low five bits, so the fast path reads k and the wake count from one word.
 */
export const P_WAKE_SHIFT = 5;

/**
 * The malloc/free fast paths (heap.ts `malloc`; free.ts `free`; src/secure-free.ts) spell these
 * as number literals: Deno and Bun run the .ts sources and do not fold imported constants.
 * test/layout.test.ts fails if a constant here drifts from its literal.
 */
export const HOT_PATH_LITERALS: Readonly<Record<string, number>> = {
  SEGMENT_MASK_INVERTED: -4194304, SEGMENT_SHIFT: 22, S_PAGES: 16, S_PAGE_SHIFT: 2, PAGE_WORDS: 16,
  P_FREE: 0, P_LOCAL_FREE: 1, P_USED: 3, P_START: 7, P_KEY: 8, P_FLAGS: 9, P_END: 12,
  P_DIV_LIMIT: 13, P_DIV_SHIFT: 14, P_DIV_INV: 15, P_WAKE_SHIFT: 5, DIRECT_SIZE_MAX: 4096, LARGE_OBJ_MAX: 2097152,
  PAGES_PER_SEGMENT_SHIFT: 6, SEGMENT_MASK: 4194303, HEADER_WORD_SHIFT: 11,
  // the checked (secure) fast paths: src/secure-free.ts, src/secure.ts popChecked, heap.ts mallocChecked
  PF_HAS_ALIGNED: 2, CHECKED_KEY: 0x40000000, S_SEC: 1040, SEC_WORDS_SHIFT: 2,
  SEC_LOCAL: 1, P_CAPACITY: 4, ENTRY_LIVE: 0xffff, TABLE_SEGMENT_SHIFT: 18, TABLE_COLUMN_SHIFT: 12,
};
