/**
 * Secure mode and debug fill (doc/SECURE.md). Levels are cumulative, chosen once before
 * first use (`configure({ secure })`, TSMALLOC_SECURE):
 *
 * - 1: guard pages (PROT_NONE) between a segment's metadata and its first page and after
 *      its last page; around huge blocks likewise. Removed before the memory is reused,
 *      purged or given back.
 * - 2: checked pages: each free-list link x (0 ends the list) is stored encoded with two
 *      random keys per page, w = rotl(x ^ k1, k0) + k0, beside a check word (w + b) ^ k1
 *      that binds it to its block b. A link that fails its check or decodes outside its
 *      page is reported and the rest of that list dropped, never followed. malloc clears the
 *      link word. free is the secure fast path of src/secure-free.ts.
 * - 3: the blocks of each page extension are threaded in random order, and each segment keeps
 *      a free bitmap out of band (after its header, never in a block): free() of a block whose
 *      bit is set throws DoubleFreeError, malloc hands out only a block whose bit is set, and
 *      views of free blocks are refused (see "free bitmap" below).
 * - 4: also a guard page after every page.
 *
 * debugFill (any level) also makes pages checked: fresh blocks read 0xD0, freed blocks 0xDF
 * beyond their first 8 bytes (the encoded link and its check word), and it keeps the free
 * bitmap as level 3 does (double frees throw, views of free blocks are refused).
 *
 * A checked page keeps its list heads and keys in the segment's secure table (S_SEC), never
 * in P_FREE/P_LOCAL_FREE, and its P_KEY is the owner's tag | CHECKED_KEY (0 with another
 * slow-free flag): the plain free fast path never matches it, the heap's malloc is
 * mallocChecked (popChecked here), and the slow paths dispatch here on PF_CHECKED.
 */
import { ctx, os } from "./context.ts";
import {
  BITMAP_BYTES, P_BSIZE, P_CAPACITY, P_END, P_FLAGS, P_OWNER, P_RESERVED, P_START, P_THREAD_FREE, P_USED, PF_CORRUPT,
  S_BITMAP, S_PAGES, S_SEC, SEC_FREE, SEC_K0, SEC_K1, SEC_LOCAL, SEGMENT_HEADER_SIZE, SEGMENT_MASK, SEGMENT_SIZE,
} from "./layout.ts";
import type { PageRef, Region } from "./region.ts";
import { takeThreadFree } from "./thread-free.ts";

/** The process's secure configuration (fixed by configureSecure at first use). */
export const sec = {
  /** 0..4 */
  level: 0,
  /** Pages are checked: encoded lists in the secure table (level >= 2 or debugFill). */
  checked: false,
  /** debugFill: 0xD0 on malloc, 0xDF on free. */
  fill: false,
  /** free() looks for double frees (level >= 3 or debugFill): always with the free bitmap. */
  doubleFree: false,
  /** Segments keep the free bitmap (level >= 3 or debugFill; equal to doubleFree). */
  bitmap: false,
  /** Page extensions are threaded in random order (level >= 3). */
  shuffle: false,
  /** Bytes of one guard (the OS page size) when level >= 1, else 0. Geometry uses it on every backend. */
  guard: 0,
  /** Level 4: a guard after every page, not only the segment's last. */
  everyPage: false,
  /** Offset of page 0 in a segment: after the header and, with guards, the head guard (8 KiB aligned). */
  page0: SEGMENT_HEADER_SIZE,
  /** The head guard: [headGuard, page0) of each segment (0 = none). */
  headGuard: 0,
  /** The backend really protects memory (false on the buffer backend: guards are a no-op there). */
  protect: false,
  /** OS page size (guarded allocations). */
  pageSize: 4096,
};

/**
 * Fixes the configuration. Called once, when the backend is picked (before any segment
 * exists). `canProtect` false (buffer backend): the geometry is the same, nothing is protected.
 */
export function configureSecure(level: number, fill: boolean, pageSize: number, canProtect: boolean): void {
  sec.level = level;
  sec.fill = fill;
  sec.checked = level >= 2 || fill;
  sec.doubleFree = level >= 3 || fill;
  sec.bitmap = sec.doubleFree;
  sec.shuffle = level >= 3;
  sec.everyPage = level >= 4;
  sec.protect = canProtect;
  sec.pageSize = pageSize;
  sec.guard = level >= 1 ? pageSize : 0;
  [sec.headGuard, sec.page0] = segmentStart(level, fill, pageSize);
}

/**
 * [head guard, page 0] offsets in a segment for a configuration: the metadata (the header, and
 * at level 3+ or with debugFill the free bitmap after it), then with guards (level 1+) a head
 * guard; page starts stay 8 KiB aligned (mallocAligned relies on it). Head guard 0: none.
 */
export function segmentStart(level: number, fill: boolean, pageSize: number): [number, number] {
  const meta = SEGMENT_HEADER_SIZE + (level >= 3 || fill ? BITMAP_BYTES : 0);
  if (level < 1) return [0, alignUp(meta, 8192)];
  const headGuard = alignUp(meta, pageSize);
  return [headGuard, alignUp(headGuard + pageSize, 8192)];
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** Guard bytes at the end of page slot i of a segment with pages of 2^shift bytes (0 or sec.guard). */
export function pageGuardBytes(shift: number, i: number): number {
  if (sec.guard === 0) return 0;
  return sec.everyPage || ((i + 1) << shift) === SEGMENT_SIZE ? sec.guard : 0;
}

// ---------------------------------------------------------------- randomness

const pool = new Int32Array(256);
let poolAt = pool.length;

/** A random int32 from the platform CSPRNG (crypto.getRandomValues, batched). */
export function randomInt32(): number {
  if (poolAt === pool.length) {
    const c = (globalThis as { crypto?: { getRandomValues(a: Int32Array): Int32Array } }).crypto;
    if (c === undefined) throw new Error("tsmalloc: secure mode needs crypto.getRandomValues");
    c.getRandomValues(pool);
    poolAt = 0;
  }
  return pool[poolAt++];
}

// ---------------------------------------------------------------- encoding

/**
 * Encodes a link x (a region byte offset, 0 = the end of the list) with the page keys:
 * rotl(x ^ k1, k0 & 31) + k0. The end of the list is encoded like any other link.
 */
export function enc(x: number, k0: number, k1: number): number {
  const v = x ^ k1;
  return (((v << k0) | (v >>> (32 - k0))) + k0) | 0; // shift counts are mod 32 (written so V8 emits a rotate)
}

/** Inverse of enc. */
export function dec(w: number, k0: number, k1: number): number {
  const v = (w - k0) | 0;
  return ((v >>> k0) | (v << (32 - k0))) ^ k1;
}

/**
 * The check word stored beside the encoded link w in the free block at region offset b:
 * (w + b) ^ k1. It binds the link to its block: the same two words copied into another
 * block of the page never pass, copied from another page (other keys) or written blind
 * they pass with probability 2^-32, and overwriting either word alone is always caught.
 * malloc clears the link word, so the check word a caller finds in its block is keyed by
 * an encoded link it never sees.
 */
export function chk(w: number, b: number, k1: number): number {
  return (w + b) ^ k1;
}

/** Word index of the secure record of the page whose descriptor is at word pg (arena segments). */
export function secOf(pg: number): number {
  const s = pg & ~((SEGMENT_SIZE >>> 2) - 1);
  return s + S_SEC + ((pg - s - S_PAGES) >> 2);
}

// ---------------------------------------------------------------- free bitmap (level 3+, debugFill)

/*
 * The free bitmap: one bit per 16-byte granule of a segment, at S_BITMAP after its header
 * (layout.ts), where no block pointer reaches (at level 1+ behind the head guard). For a block
 * start b of a live checked page, b < P_END:
 *
 *   bit(b) set  <=>  b is free: threaded by extendPage or freed, and not handed out since.
 *
 * So every block on the page's free, local-free or thread-free list has its bit set; a block
 * with its bit set is on one of them, or is in transit (another worker's free between setting
 * the bit and its push), or was dropped with a corrupted list (never followed again). Every
 * other granule's bit is clear (a page's words are cleared when it is set up). Every free sets
 * the bit, and a bit already set is a double free (DoubleFreeError, nothing changed); every pop
 * needs the bit set and clears it, and a link to a block whose bit is clear (a live block: a
 * replayed link) is a corrupted list: reported, dropped, the block never handed out. malloc
 * therefore never returns a live block, whatever the user wrote into blocks. With a shared
 * allocator another worker's free sets a bit with Atomics.or and the owner clears with
 * Atomics.and (bits of one word belong to blocks of one page, freed by any worker), so of two
 * frees of one block at the same moment exactly one sees the bit clear.
 * Fast paths spell it out: word S_BITMAP + ((off & SEGMENT_MASK) >>> 9), bit 1 << (off >>> 4)
 * (JS shift counts are mod 32).
 */

/** Word index of the free-bitmap word holding region offset off's bit (arena segments). */
export function bitWord(off: number): number {
  return ((off >>> 22) << 20) + S_BITMAP + ((off & SEGMENT_MASK) >>> 9); // SEGMENT_SHIFT, SEGMENT_WORD_SHIFT
}

/** True when the block at region offset off is free (its bit is set; sec.bitmap only). */
export function freeBit(m: Int32Array, off: number): boolean {
  return (Atomics.load(m, bitWord(off)) & (1 << (off >>> 4))) !== 0;
}

/** Sets block off's bit; false when it was already set (a double free). Atomic: any worker. */
export function setFreeBit(m: Int32Array, off: number): boolean {
  const bit = 1 << (off >>> 4);
  return (Atomics.or(m, bitWord(off), bit) & bit) === 0;
}

/** Clears block off's bit; false when it was clear (the block is live). Atomic: see above. */
export function takeFreeBit(m: Int32Array, off: number): boolean {
  const bit = 1 << (off >>> 4);
  return (Atomics.and(m, bitWord(off), ~bit) & bit) !== 0;
}

/** Sets the bits of n fresh blocks of bsize bytes from `first`: one Atomics.or per word (other workers may free blocks of this page). */
export function setFreeBits(m: Int32Array, first: number, n: number, bsize: number): void {
  let w = bitWord(first), acc = 0;
  for (let j = 0, off = first; j < n; j++, off += bsize) {
    const wj = bitWord(off);
    if (wj !== w) {
      Atomics.or(m, w, acc);
      w = wj;
      acc = 0;
    }
    acc |= 1 << (off >>> 4);
  }
  if (acc !== 0) Atomics.or(m, w, acc);
}

/** Clears the bits of [start, end) (a page being set up: no block of it is free yet). 512-byte aligned ends. */
export function clearFreeBits(m: Int32Array, start: number, end: number): void {
  m.fill(0, bitWord(start), bitWord(end - 1) + 1);
}

/**
 * validate(): the free bitmap of a checked page against its lists (`listed[i]`: block i is on
 * one). A listed block's bit must be set; a set bit of a block on no list is reported unless
 * lists were dropped (`dropped`: their blocks keep their bits) or the allocator is shared
 * (another worker's free may be between its bit and its push). "" when they agree.
 */
export function bitmapProblem(m: Int32Array, pg: number, listed: Uint8Array, dropped: boolean): string {
  const start = m[pg + P_START], bsize = m[pg + P_BSIZE], cap = m[pg + P_CAPACITY];
  for (let i = 0; i < cap; i++) {
    const set = freeBit(m, start + i * bsize);
    if (listed[i] === 1 && !set) return `block ${i} is on a free list but its free bit is clear`;
    if (listed[i] !== 1 && set && !dropped && !ctx.shared) return `block ${i} has its free bit set but is on no free list`;
  }
  return "";
}

// ---------------------------------------------------------------- checked pages

/** Sets up the secure record of a fresh checked page of [start, end): empty lists, new keys, no free bit set. */
export function initChecked(m: Int32Array, h: number, start: number, end: number): void {
  if (sec.bitmap) clearFreeBits(m, start, end);
  m[h + SEC_FREE] = 0;
  m[h + SEC_LOCAL] = 0;
  m[h + SEC_K0] = randomInt32();
  m[h + SEC_K1] = randomInt32();
}

/** Copies a checked page's keys and link extent onto its handle for mallocChecked (heap.ts setFront). */
export function cacheChecked(pr: PageRef): void {
  const m = pr.m;
  pr.k0 = m[pr.sec + SEC_K0];
  pr.k1 = m[pr.sec + SEC_K1];
  pr.start = m[pr.pg + P_START];
  pr.span = m[pr.pg + P_RESERVED] * m[pr.pg + P_BSIZE];
}

/** Writes the encoded link to `next` (0 = end of list) and its check word into free block b. */
export function link(m: Int32Array, h: number, b: number, next: number): void {
  const k1 = m[h + SEC_K1];
  const w = enc(next, m[h + SEC_K0], k1);
  m[b >> 2] = w;
  m[(b >> 2) + 1] = chk(w, b, k1);
}

/**
 * The next block after free block b (0 at the end of the list), or -1 when b's link fails
 * its check or points outside the page: the corruption is reported and the page flagged.
 */
export function nextFree(m: Int32Array, pg: number, h: number, b: number, list: string): number {
  const k1 = m[h + SEC_K1];
  const w = m[b >> 2];
  if (m[(b >> 2) + 1] !== chk(w, b, k1)) return corrupt(m, pg, list, b, "its check word does not match");
  const x = dec(w, m[h + SEC_K0], k1);
  if (x === 0) return 0;
  const start = m[pg + P_START];
  if (((x - start) >>> 0) >= ((m[pg + P_END] - start) >>> 0)) return corrupt(m, pg, list, b, `it decodes to offset 0x${(x >>> 0).toString(16)}, outside the page`);
  return x;
}

/**
 * Pops the first block of a checked page's free list (region offset; 0 when empty) and
 * counts it used; an empty free list first takes the local-free list. A block whose own
 * link fails its check is never handed out (see popBad): 0 then, and the list is dropped.
 */
export function popChecked(m: Int32Array, pg: number, h: number): number {
  // literal offsets (hot): SEC_K0 2, SEC_K1 3, P_START 7, P_END 12, P_USED 3
  let b = m[h];
  if (b === 0) {
    b = m[h + 1]; // the owner's own frees are the next free list (SEC_LOCAL 1)
    if (b === 0) return 0;
    m[h] = b; // (on a list at every moment: another worker's double-free search must find it)
    m[h + 1] = 0;
  }
  const i = b >> 2;
  const k0 = m[h + 2], k1 = m[h + 3], w = m[i];
  const v = (w - k0) | 0;
  const x = ((v >>> k0) | (v << (32 - k0))) ^ k1; // dec (shift counts are mod 32)
  // the check word, then the link: the end of the list (0) or an offset inside the page
  const start = m[pg + 7];
  if (m[i + 1] !== ((w + b) ^ k1) || (x !== 0 && ((x - start) >>> 0) >= ((m[pg + 12] - start) >>> 0))) return popBad(m, pg, h, b);
  // level 3+: b must be free (its bit set: never a live block a replayed link led to), and is no more
  if (sec.bitmap && ((b & 15) !== 0 || !takeFreeBit(m, b))) return popBad(m, pg, h, b);
  m[h] = x;
  m[i] = 0; // the caller never sees the encoded link (the check word left is keyed by it)
  m[pg + 3]++;
  return b;
}

/**
 * popChecked with a bad link in block b, or (level 3+) a block b that is not free:
 * reported, and the list dropped from b on — b included. b was reached through a link that
 * passed its check, but that link may be a replay (a dangling pointer writing a freed block's
 * own old bytes back), and then b is a live block; a block whose own words fail, or whose
 * free bit is clear, is never handed out. The dropped blocks are neither free nor counted
 * used: the page is never given back (verifyEmpty).
 */
function popBad(m: Int32Array, pg: number, h: number, b: number): number {
  if (nextFree(m, pg, h, b, "free") >= 0) {
    corrupt(m, pg, "free", b, "", (b & 15) !== 0 ? "is not a block start" : "is live (its free bit is clear) — a replayed link: a dangling pointer writing a freed block's old bytes back?");
  }
  m[h] = 0;
  return 0;
}
/**
 * Threads n fresh blocks of bsize bytes from region offset `first` onto the free list (random
 * order at level 3+), recording the page's new capacity and end before it publishes the head
 * (page.ts extendPage says why).
 */
export function threadChecked(m: Int32Array, pg: number, first: number, n: number, bsize: number): void {
  const h = secOf(pg);
  if (sec.fill) new Uint8Array(m.buffer, m.byteOffset + first, n * bsize).fill(0xdf);
  if (sec.bitmap) setFreeBits(m, first, n, bsize);
  let next = m[h + SEC_FREE];
  if (sec.shuffle && n > 1) {
    const order = shuffled(n);
    for (let j = n - 1; j >= 0; j--) {
      const b = first + order[j] * bsize;
      link(m, h, b, next);
      next = b;
    }
  } else {
    for (let j = n - 1; j >= 0; j--) {
      const b = first + j * bsize;
      link(m, h, b, next);
      next = b;
    }
  }
  // capacity and end before the head is published (page.ts extendPage says why)
  m[pg + P_CAPACITY] += n;
  m[pg + P_END] = first + n * bsize;
  m[h + SEC_FREE] = next;
}

let order = new Uint16Array(1024);

/** A random permutation of 0..n-1 (Fisher-Yates, xorshift32 seeded from the CSPRNG). */
function shuffled(n: number): Uint16Array {
  if (order.length < n) order = new Uint16Array(n);
  let s = randomInt32() | 1;
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = (s >>> 0) % (i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/** Moves thread-free and local-free blocks of a checked page back to its free list. */
export function collectChecked(m: Int32Array, pg: number): void {
  const h = secOf(pg);
  if ((m[pg + P_THREAD_FREE] & ~15) !== 0) collectThreadFreeChecked(m, pg, h);
  const local = m[h + SEC_LOCAL];
  if (local === 0) return;
  const free = m[h + SEC_FREE];
  if (free !== 0) {
    // append the free list after the local list's last block (reached through checked links)
    const cap = m[pg + P_CAPACITY];
    let t = local;
    for (let n = 0; n < cap; n++) {
      const x = nextFree(m, pg, h, t, "local-free");
      if (x <= 0) break;
      t = x;
    }
    link(m, h, t, free);
  }
  m[h + SEC_FREE] = local;
  m[h + SEC_LOCAL] = 0;
}

function collectThreadFreeChecked(m: Int32Array, pg: number, h: number): void {
  const head = takeThreadFree(m, pg);
  if (head === 0) return;
  const cap = m[pg + P_CAPACITY];
  let count = 1;
  let t = head;
  for (; count <= cap; count++) {
    const x = nextFree(m, pg, h, t, "thread-free");
    if (x <= 0) break;
    t = x;
  }
  if (count > cap) count = cap; // a cycle (a double free below level 3): never count more than exist
  link(m, h, t, m[h + SEC_LOCAL]);
  m[h + SEC_LOCAL] = head;
  m[pg + P_USED] -= count;
}

/**
 * Pushes block `off` onto the local-free list of the checked page whose secure record is at
 * word h: the encoded link to the old head (0 = the end) and its check word. A function of
 * its own so that freeChecked3 (secure-free.ts) stays under V8's 460-byte limit for inlining one function
 * (V8 inlines this small one into it); freeChecked, smaller, keeps the same code inline.
 */
export function pushLocalChecked(m: Int32Array, h: number, off: number): void {
  const k0 = m[h + 2], k1 = m[h + 3]; //                                  SEC_K0, SEC_K1
  const v = m[h + 1] ^ k1; //                                             SEC_LOCAL
  const w = ((v << k0) | (v >>> (32 - k0))) + k0; //                     enc (a rotate)
  m[off >> 2] = w;
  m[(off >> 2) + 1] = (w + off) ^ k1; //                                  chk
  m[h + 1] = off;
}

/** Free from another worker: atomic push onto the thread-free list, the link encoded. */
export function pushThreadFreeChecked(m: Int32Array, pg: number, off: number): void {
  const h = secOf(pg);
  let tf = Atomics.load(m, pg + P_THREAD_FREE);
  for (;;) {
    link(m, h, off, tf & ~15);
    const seen = Atomics.compareExchange(m, pg + P_THREAD_FREE, tf, off | (tf & 15));
    if (seen === tf) return;
    tf = seen;
  }
}

/**
 * Double-free test for block start off of a checked page (with double-free checks on, so
 * with the free bitmap): its free bit. Decided from the bitmap only, never from the block's
 * bytes.
 */
export function isFreeBlock(m: Int32Array, _pg: number, off: number): boolean {
  return freeBit(m, off);
}

/** Live blocks of a checked page: used minus blocks waiting on the thread-free list. */
export function liveChecked(m: Int32Array, pg: number): number {
  let n = m[pg + P_USED];
  const h = secOf(pg);
  const cap = m[pg + P_CAPACITY];
  let t = Atomics.load(m, pg + P_THREAD_FREE) & ~15;
  for (let k = 0; t > 0; k++) {
    if (k >= cap) return m[pg + P_USED]; // a cycle: the owner's collection keeps those blocks live (page.ts liveBlocks)
    n--;
    t = nextFree(m, pg, h, t, "thread-free");
  }
  return n;
}

/**
 * Calls cb(offset, list) for each block on a page's free, local-free and thread-free lists
 * (plain or checked), stopping a list at a corrupted link or after `capacity` blocks, and
 * everything when cb returns false. Returns a description of the first bad link found, or "".
 */
export function forEachFree(m: Int32Array, pg: number, cb: (off: number, list: string) => boolean | void): string {
  const checked = (m[pg + P_FLAGS] & 8) !== 0; //                 PF_CHECKED
  const h = checked ? secOf(pg) : 0;
  const heads: [string, number][] = checked
    ? [["free", m[h + SEC_FREE]], ["local-free", m[h + SEC_LOCAL]], ["thread-free", Atomics.load(m, pg + P_THREAD_FREE) & ~15]]
    : [["free", m[pg]], ["local-free", m[pg + 1]], ["thread-free", Atomics.load(m, pg + P_THREAD_FREE) & ~15]];
  const cap = m[pg + P_CAPACITY];
  const start = m[pg + P_START], end = m[pg + P_END];
  let problem = "";
  for (const [list, head] of heads) {
    let b = head;
    for (let n = 0; b !== 0; n++) {
      if (n >= cap) {
        problem ||= `${list} list is longer than the page's capacity (a cycle: double free?)`;
        break;
      }
      if (b < start || b >= end) {
        problem ||= `${list} list links to offset 0x${(b >>> 0).toString(16)}, outside the page`;
        break;
      }
      if (cb(b, list) === false) return problem;
      if (checked) {
        const k1 = m[h + SEC_K1];
        const w = m[b >> 2];
        if (m[(b >> 2) + 1] !== chk(w, b, k1)) {
          problem ||= `${list} list: the link of the free block at offset 0x${b.toString(16)} fails its check word`;
          break;
        }
        b = dec(w, m[h + SEC_K0], k1);
      } else {
        b = m[b >> 2];
      }
    }
  }
  return problem;
}

// ---------------------------------------------------------------- corruption reports

/** Corruptions detected at run time (lists dropped): a count and the most recent messages. */
export const detected = { count: 0, recent: [] as string[] };
const RECENT_MAX = 64;

/** Records a detected corruption: counted, kept in `detected.recent`, printed once (every one with verbose >= 1). */
export function reportCorrupt(text: string, first = true): void {
  detected.count++;
  detected.recent.push(text);
  if (detected.recent.length > RECENT_MAX) detected.recent.shift();
  if (first || ctx.options.verbose >= 1) console.error("tsmalloc: " + text);
}

/** Reports a bad link in free block b (why), or with `reached`, a link that led to block b, which `reached`. */
function corrupt(m: Int32Array, pg: number, list: string, b: number, why: string, reached = ""): -1 {
  const already = (m[pg + P_FLAGS] & PF_CORRUPT) !== 0;
  m[pg + P_FLAGS] |= PF_CORRUPT;
  const r = regionOf(m);
  const addr = r === null ? `offset 0x${b.toString(16)}` : `0x${(r.base + b).toString(16)}`;
  const text = `corrupted ${list} list (page of ${m[pg + P_BSIZE]}-byte blocks, owner ${m[pg + P_OWNER]}): ` +
    (reached !== "" ? `a link leads to the block at ${addr}, which ${reached} ` : `the link in the free block at ${addr} is invalid (${why}) — a write after free or an overflow? `) +
    `The rest of the list was dropped, never followed; that block was not handed out.`;
  reportCorrupt(text, !already);
  return -1;
}

function regionOf(m: Int32Array): Region | null {
  for (const r of ctx.regions.all()) {
    if (r.i32 === m) return r;
    if (r.children !== null) for (const c of r.children) if (c.i32 === m) return c;
  }
  return null;
}

// ---------------------------------------------------------------- guard pages

/**
 * Every protected range splits its mapping: up to two more kernel mappings each, and Linux
 * allows 65,530 per process by default (vm.max_map_count; past it mprotect fails with ENOMEM
 * and the runtime itself can no longer map memory). So guards have a budget: at most
 * GUARD_BUDGET ranges protected at once (about half the default limit). Segment head and
 * tail guards may use all of it; level-4 page guards and guarded allocations stop at 3/4,
 * so a large heap keeps its segment guards. Over budget, a guard is skipped (counted, one
 * message on stderr), never an error; a guarded allocation becomes an ordinary one.
 */
export const GUARD_BUDGET = 16384;

/** Protected ranges now, address -> length; and guards skipped for the budget. */
const protectedRanges = new Map<number, number>();
export const guardCounts = { skipped: 0, budget: GUARD_BUDGET };

/** Guards live now. */
export function guardsLive(): number {
  return protectedRanges.size;
}

/** Room for a guard of this priority (0: segment head/tail, 1: page guards, guarded allocations)? */
export function guardRoom(priority: number): boolean {
  return protectedRanges.size < (priority === 0 ? guardCounts.budget : (guardCounts.budget * 3) >> 2);
}

function protect(addr: number, len: number, priority: number): void {
  if (!sec.protect || len <= 0 || protectedRanges.has(addr)) return;
  if (!guardRoom(priority)) return skipGuard("the guard budget is used up");
  try {
    os().protect(addr, len);
  } catch (e) {
    guardCounts.budget = protectedRanges.size; // the kernel's limit is lower than ours
    return skipGuard((e as Error).message);
  }
  protectedRanges.set(addr, len);
}

function unprotect(addr: number): void {
  const len = protectedRanges.get(addr);
  if (len === undefined) return; // never protected (skipped, or the buffer backend)
  protectedRanges.delete(addr);
  os().unprotect(addr, len);
}

/** A guarded allocation was not made for lack of guard budget. */
export function noteGuardSkipped(): void {
  skipGuard("the guard budget is used up");
}

function skipGuard(why: string): void {
  if (guardCounts.skipped++ === 0) {
    console.error(`tsmalloc: guard pages are being skipped (${protectedRanges.size} protected; ${why}): ` +
      `each splits a kernel mapping and vm.max_map_count limits them; guarded allocations become ordinary ones`);
  }
}

/**
 * Protects (on) or unprotects a segment's own guards, kept for its whole life: the head guard
 * between its metadata and page 0, and the tail guard after its last page (an overflow that
 * runs through free page slots still stops there).
 */
export function guardSegment(r: Region, seg: number, on: boolean): void {
  if (sec.guard === 0) return;
  const head = r.base + seg + sec.headGuard;
  const tail = r.base + seg + SEGMENT_SIZE - sec.guard;
  if (on) {
    protect(head, sec.page0 - sec.headGuard, 0);
    protect(tail, sec.guard, 0);
  } else {
    unprotect(head);
    unprotect(tail);
  }
}

/**
 * Level 4: protects (on) or unprotects the guard after page slot i while the slot holds a
 * page (a free slot may be purged). The last slot's guard is the segment's tail guard: it
 * is only protected again (a purge may have reset it), never removed here.
 */
export function guardPageEnd(r: Region, seg: number, shift: number, i: number, on: boolean): void {
  const g = pageGuardBytes(shift, i);
  if (g === 0) return;
  const end = (i + 1) << shift;
  if (end === SEGMENT_SIZE && !on) return;
  const addr = r.base + seg + end - g;
  if (on) protect(addr, g, end === SEGMENT_SIZE ? 0 : 1);
  else unprotect(addr);
}

/** Guard addresses of each huge block region, undone when it is freed. */
const hugeGuards = new Map<Region, number[]>();

/**
 * Guards of a huge block whose bytes are [start, start + size) of region r: at level 1+ the
 * header pages after the first and a page after the block; a guarded allocation (flush) only
 * needs the page after it. The block end must be page aligned and the mapping hold one more page.
 */
export function guardHuge(r: Region, start: number, size: number, flush: boolean): void {
  const P = sec.pageSize;
  const ranges: number[] = [];
  if (sec.guard !== 0) {
    const headEnd = Math.floor(start / P) * P;
    if (headEnd > P) ranges.push(r.base + P, headEnd - P);
  }
  if (sec.guard !== 0 || flush) ranges.push(r.base + start + size, P);
  if (ranges.length === 0 || !sec.protect) return;
  const addrs: number[] = [];
  for (let i = 0; i < ranges.length; i += 2) {
    protect(ranges[i], ranges[i + 1], flush ? 1 : 0);
    addrs.push(ranges[i]);
  }
  hugeGuards.set(r, addrs);
}

/** Removes a huge block's guards (before its memory is cached, reused or given back). */
export function unguardHuge(r: Region): void {
  const addrs = hugeGuards.get(r);
  if (addrs === undefined) return;
  hugeGuards.delete(r);
  for (const a of addrs) unprotect(a);
}

/** Bytes a huge mapping needs after a block of `size` bytes for its guard (0 when none). */
export function hugeTailGuard(flush: boolean): number {
  return sec.guard !== 0 || flush ? sec.pageSize : 0;
}

// ---------------------------------------------------------------- guarded allocations

/** A live guarded allocation inside a page block: the object [p, p + usable) ends at the guard page. */
export interface GuardedBlock {
  p: number;
  usable: number;
  guard: number;
  pr: PageRef;
}

/** Live guarded allocations in pages, by block address (huge ones are ordinary huge blocks with a flush tail guard). */
export const guardedBlocks: Map<number, GuardedBlock> = new Map();

/**
 * Object address -> block address of the guarded allocations freed last (at most
 * FREED_GUARDED_MAX, oldest dropped): only names the error of a second free, never decides
 * whether an address is ours.
 */
const freedGuarded: Map<number, number> = new Map();
const FREED_GUARDED_MAX = 1024;

/** Registers a guarded block and protects its guard page. */
export function addGuarded(block: number, g: GuardedBlock): void {
  protect(g.guard, sec.pageSize, 1);
  guardedBlocks.set(block, g);
  freedGuarded.delete(g.p);
}

/** Unprotects and forgets the guarded block at `block`, freed through pointer p (must be the object's start). */
export function removeGuarded(block: number, g: GuardedBlock): void {
  unprotect(g.guard);
  guardedBlocks.delete(block);
  freedGuarded.delete(g.p);
  freedGuarded.set(g.p, block);
  if (freedGuarded.size > FREED_GUARDED_MAX) freedGuarded.delete(freedGuarded.keys().next().value!);
}

/** True when p was the object address of a guarded allocation in `block` that was freed lately. */
export function wasGuarded(block: number, p: number): boolean {
  return freedGuarded.get(p) === block;
}

/** True when guarded allocations are sampled: the backend protects and the sample rate is positive. */
export function guardedActive(): boolean {
  return sec.protect && ctx.options.guardedSampleRate > 0;
}

