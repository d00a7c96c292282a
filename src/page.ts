/**
 * Pages: a run of equal-size blocks with three free lists — free (malloc pops), local-free
 * (owner frees) and thread-free (other workers, atomic) — kept out of band in the page's
 * side-table column (src/secure.ts "side table"), never in a block, at every secure level.
 */
import { BIN_SIZE } from "./bins.ts";
import {
  CHECKED_KEY, P_BSIZE, P_CAPACITY, P_DIV_INV, P_DIV_LIMIT, P_DIV_SHIFT, P_END, P_FLAGS, P_HEAP, P_KEY, P_OWNER,
  P_RESERVED, P_START, P_WAKE_SHIFT, PAGE_WORDS, PF_CHECKED, PF_IN_FULL, PF_RETIRE, PF_SLOW_FREE, SEC_WORDS,
} from "./layout.ts";
import { initChecked, threadChecked, verifyChecked } from "./secure.ts";
import { secOf } from "./region.ts";

/** Blocks threaded into the free list per extension: 16 KiB worth, at least 4. */
const EXTEND_BYTES = 16384;

/**
 * Sets up a page descriptor for blocks of class `bin` in the page slot [start, end). Every
 * page is a checked page (PF_CHECKED): its free lists live in its side table (claimPage counted
 * its rows committed).
 */
export function initPage(m: Int32Array, pg: number, bin: number, start: number, end: number, heapId: number, tag: number): void {
  const bsize = BIN_SIZE[bin];
  m.fill(0, pg, pg + PAGE_WORDS);
  m[pg + P_FLAGS] = PF_CHECKED; // (before the block size: a worker terminated in here leaves a page of the right kind)
  const h = secOf(pg);
  m.fill(0, h, h + SEC_WORDS);
  m[pg + P_RESERVED] = Math.floor((end - start) / bsize);
  m[pg + P_BSIZE] = bsize;
  m[pg + P_START] = start;
  m[pg + P_END] = start;
  m[pg + P_HEAP] = heapId;
  m[pg + P_OWNER] = tag;
  initChecked(m, h);
  setDivisor(m, pg, bsize);
  setPageFlags(m, pg, PF_CHECKED);
  extendPage(m, pg);
}

/** Precomputes an exact "is a multiple of bsize" test: bsize = odd * 2^k. */
function setDivisor(m: Int32Array, pg: number, bsize: number): void {
  const [k, inv, limit] = divisorOf(bsize);
  m[pg + P_DIV_SHIFT] = k;
  m[pg + P_DIV_INV] = inv;
  m[pg + P_DIV_LIMIT] = limit;
}

/** [k, inverse of odd mod 2^32, floor((2^32-1)/odd) with the sign bit flipped] for bsize = odd * 2^k (setDivisor). */
function divisorOf(bsize: number): [number, number, number] {
  let k = 0;
  while (((bsize >>> k) & 1) === 0) k++;
  const odd = bsize >>> k;
  // Newton iteration for the inverse of odd modulo 2^32
  let inv = odd;
  for (let i = 0; i < 5; i++) inv = Math.imul(inv, 2 - Math.imul(odd, inv));
  // the limit with the sign bit flipped so the fast path compares unsigned values as int32
  return [k, inv, (Math.floor(0xffffffff / odd) | 0) ^ -2147483648];
}

/** True when a page's block-start divisor (P_DIV_*) is its block size's: the free fast path's block index depends on it. */
export function divisorMatches(m: Int32Array, pg: number): boolean {
  const [k, inv, limit] = divisorOf(m[pg + P_BSIZE]);
  return (m[pg + P_DIV_SHIFT] & ((1 << P_WAKE_SHIFT) - 1)) === k && m[pg + P_DIV_INV] === inv && m[pg + P_DIV_LIMIT] === limit;
}

/** True when region offset `off` is the start of a block handed out from this page. */
export function isBlockStart(m: Int32Array, pg: number, off: number): boolean {
  const d = off - m[pg + P_START];
  if (d < 0 || off >= m[pg + P_END]) return false;
  const k = m[pg + P_DIV_SHIFT] & 31;
  if ((d >>> k) << k !== d) return false;
  return (Math.imul(d >>> k, m[pg + P_DIV_INV]) ^ -2147483648) <= m[pg + P_DIV_LIMIT];
}

/**
 * Threads more never-used blocks onto the free list (their side-table entries, in random
 * order at secure level 3+); false when the page is fully extended.
 */
export function extendPage(m: Int32Array, pg: number): boolean {
  const cap = m[pg + P_CAPACITY];
  const reserved = m[pg + P_RESERVED];
  if (cap >= reserved) return false;
  const bsize = m[pg + P_BSIZE];
  let n = Math.floor(EXTEND_BYTES / bsize);
  if (n < 4) n = 4;
  if (n > reserved - cap) n = reserved - cap;
  const first = m[pg + P_START] + cap * bsize;
  // Order (a worker can be terminated between any two steps): link the new blocks, then
  // record capacity and end, then publish the list head. Stopped before the head, the blocks
  // are on no list and never handed out (a leak); with the head published first, the next
  // extension would thread blocks already handed out a second time (found by npm run soak).
  threadChecked(m, pg, first, n, bsize);
  return true;
}

/** A parked full page is unparked when 1/2^UNFULL_SHIFT of its blocks are free. */
const UNFULL_SHIFT = 3;

/** Updates page flags and what the fast free derives from them: the key and the wake count (layout.ts). */
export function setPageFlags(m: Int32Array, pg: number, flags: number): void {
  m[pg + P_FLAGS] = flags;
  m[pg + P_KEY] = freeKey(flags, m[pg + P_OWNER]);
  const reserved = m[pg + P_RESERVED];
  // unparking a full page for every single free would make it the allocation page for one malloc
  const wake = (flags & PF_IN_FULL) !== 0 ? reserved - (reserved >> UNFULL_SHIFT) : (flags & PF_RETIRE) !== 0 ? 0 : -1;
  m[pg + P_DIV_SHIFT] = (m[pg + P_DIV_SHIFT] & ((1 << P_WAKE_SHIFT) - 1)) | (wake << P_WAKE_SHIFT);
}

/** The used count at or below which the owner's free calls the heap (see P_WAKE_SHIFT). */
export function wakeCount(m: Int32Array, pg: number): number {
  return m[pg + P_DIV_SHIFT] >> P_WAKE_SHIFT;
}

/**
 * The fast-free key (P_KEY) for page flags: the owner's tag with CHECKED_KEY when the free
 * fast path applies (src/secure-free.ts: no slow-free flag but PF_CHECKED), else 0.
 */
export function freeKey(flags: number, owner: number): number {
  return (flags & PF_SLOW_FREE) === PF_CHECKED ? owner | CHECKED_KEY : 0;
}

let seen = new Uint8Array(4097);

/**
 * Called before a page whose used count reached 0 is given back (and may be reused for
 * another size class): true when its free and local-free lists hold exactly its capacity in
 * distinct blocks (secure.ts verifyChecked: only a wild write into the side table can make
 * them disagree; then the page is kept).
 */
export function verifyEmpty(m: Int32Array, pg: number): boolean {
  const cap = m[pg + P_CAPACITY];
  if (seen.length <= cap) seen = new Uint8Array(cap + 1);
  return verifyChecked(m, pg, seen);
}
