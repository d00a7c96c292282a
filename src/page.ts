/**
 * Pages: a run of equal-size blocks with three free lists kept in native memory —
 * free (malloc pops), local-free (owner frees) and thread-free (other workers, atomic).
 */
import { BIN_SIZE } from "./bins.ts";
import {
  CHECKED_KEY, P_BSIZE, P_CAPACITY, P_DIV_INV, P_DIV_LIMIT, P_DIV_SHIFT, P_END, P_FLAGS, P_FREE, P_HEAP,
  P_KEY, P_LOCAL_FREE, P_OWNER, PF_CORRUPT, P_RESERVED, P_START, P_THREAD_FREE, P_USED, P_WAKE_SHIFT, PAGE_WORDS, PF_CHECKED, PF_IN_FULL,
  PF_RETIRE, PF_SLOW_FREE,
  SEC_WORDS,
} from "./layout.ts";
import { collectChecked, initChecked, liveChecked, reportCorrupt, threadChecked, verifyChecked } from "./secure.ts";
import { secOf } from "./region.ts";
import { takeThreadFree } from "./thread-free.ts";

/** Blocks threaded into the free list per extension: 16 KiB worth, at least 4. */
const EXTEND_BYTES = 16384;

/**
 * Sets up a page descriptor for blocks of class `bin` in the page slot [start, end). `flags`
 * PF_CHECKED makes a checked page (secure level >= 2 or debugFill: src/secure.ts), whose free
 * lists live in its side table (claimPage counted its rows committed).
 */
export function initPage(m: Int32Array, pg: number, bin: number, start: number, end: number, heapId: number, tag: number, flags = 0): void {
  const bsize = BIN_SIZE[bin];
  m.fill(0, pg, pg + PAGE_WORDS);
  const h = secOf(pg);
  m.fill(0, h, h + SEC_WORDS);
  m[pg + P_RESERVED] = Math.floor((end - start) / bsize);
  m[pg + P_BSIZE] = bsize;
  m[pg + P_START] = start;
  m[pg + P_END] = start;
  m[pg + P_HEAP] = heapId;
  m[pg + P_OWNER] = tag;
  if ((flags & PF_CHECKED) !== 0) initChecked(m, h);
  setDivisor(m, pg, bsize);
  setPageFlags(m, pg, flags);
  extendPage(m, pg);
}

/** Precomputes an exact "is a multiple of bsize" test: bsize = odd * 2^k. */
function setDivisor(m: Int32Array, pg: number, bsize: number): void {
  let k = 0;
  while (((bsize >>> k) & 1) === 0) k++;
  const odd = bsize >>> k;
  // Newton iteration for the inverse of odd modulo 2^32
  let inv = odd;
  for (let i = 0; i < 5; i++) inv = Math.imul(inv, 2 - Math.imul(odd, inv));
  m[pg + P_DIV_SHIFT] = k;
  m[pg + P_DIV_INV] = inv;
  // stored with the sign bit flipped so the fast path compares unsigned values as int32
  m[pg + P_DIV_LIMIT] = (Math.floor(0xffffffff / odd) | 0) ^ -2147483648;
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
 * Threads more never-used blocks onto the free list; false when the page is fully extended.
 * Checked pages thread their side table (in random order at secure level 3+).
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
  if ((m[pg + P_FLAGS] & PF_CHECKED) !== 0) {
    threadChecked(m, pg, first, n, bsize); // the same order inside
    return true;
  }
  let b = first;
  for (let i = 1; i < n; i++) {
    const next = b + bsize;
    m[b >> 2] = next;
    b = next;
  }
  m[b >> 2] = m[pg + P_FREE];
  m[pg + P_CAPACITY] = cap + n;
  m[pg + P_END] = first + n * bsize;
  m[pg + P_FREE] = first;
  return true;
}

/** True when region offset b is 16-aligned inside the extended blocks of a plain page (a link worth following). */
export function inPage(m: Int32Array, pg: number, b: number): boolean {
  const start = m[pg + P_START];
  return ((b - start) >>> 0) < ((m[pg + P_END] - start) >>> 0) && (b & 15) === 0;
}

/**
 * A plain page's free list led outside its blocks (secure levels 0-1: a block freed twice, then
 * written by the owner it was handed to, or any write into a free block): the list is dropped
 * (its blocks are never handed out again: a leak, not an overlap) and the corruption reported.
 */
export function dropBadList(m: Int32Array, pg: number, b: number): void {
  m[pg + P_FREE] = 0;
  reportCorrupt(`a page of ${m[pg + P_BSIZE]}-byte blocks has a free-list link outside its blocks (offset ${b}; a double free or a write into a freed block?): ` +
    `the list is dropped, its blocks are not handed out again`);
}

/**
 * Moves blocks freed by other workers (thread-free) and by the owner (local-free) back to
 * the free list. Returns the number of blocks collected from other workers.
 */
export function collectPage(m: Int32Array, pg: number): void {
  if ((m[pg + P_FLAGS] & PF_CHECKED) !== 0) {
    collectChecked(m, pg);
    return;
  }
  if ((m[pg + P_THREAD_FREE] & ~15) !== 0) collectThreadFree(m, pg);
  const local = m[pg + P_LOCAL_FREE];
  if (local !== 0) {
    const free = m[pg + P_FREE];
    if (free === 0) m[pg + P_FREE] = local;
    else {
      // (bounded: an undetected double free (plain pages) can make the list a cycle)
      let t = local;
      for (let n = m[pg + P_CAPACITY]; m[t >> 2] !== 0; t = m[t >> 2]) {
        if (--n < 0) {
          repairLists(m, pg);
          collectPage(m, pg);
          return;
        }
      }
      m[t >> 2] = free;
      m[pg + P_FREE] = local;
    }
    m[pg + P_LOCAL_FREE] = 0;
  }
}

function collectThreadFree(m: Int32Array, pg: number): void {
  const head = takeThreadFree(m, pg);
  if (head === 0) return;
  let count = 1;
  let t = head;
  const cap = m[pg + P_CAPACITY];
  while (m[t >> 2] !== 0) {
    t = m[t >> 2];
    if (++count > cap) {
      // a block pushed twice by other workers (a double free, undetected on plain pages) made a
      // cycle: the innocent malloc that meets it never throws; the list is dropped (its blocks
      // stay counted live, never handed out, so the page is kept) and reported
      m[pg + P_FLAGS] |= PF_CORRUPT;
      reportCorrupt(`a page of ${m[pg + P_BSIZE]}-byte blocks has a thread-free list with a cycle (a block freed twice by other workers?): ` +
        `dropped, its blocks kept as live`);
      return;
    }
  }
  m[t >> 2] = m[pg + P_LOCAL_FREE];
  m[pg + P_LOCAL_FREE] = head;
  m[pg + P_USED] -= count;
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
 * The fast-free key (P_KEY) for page flags: the owner's tag when the plain free fast path
 * applies; for a checked page with no other slow-free flag the tag with CHECKED_KEY (the
 * checked fast path, src/secure-free.ts); else 0.
 */
export function freeKey(flags: number, owner: number): number {
  const slow = flags & PF_SLOW_FREE;
  return slow === 0 ? owner : slow === PF_CHECKED ? owner | CHECKED_KEY : 0;
}

/** Live blocks of a page: used minus blocks waiting on the thread-free list. */
export function liveBlocks(m: Int32Array, pg: number): number {
  if ((m[pg + P_FLAGS] & PF_CHECKED) !== 0) return liveChecked(m, pg);
  const used = m[pg + P_USED];
  const cap = m[pg + P_CAPACITY], start = m[pg + P_START], end = m[pg + P_END];
  let n = used;
  let t = Atomics.load(m, pg + P_THREAD_FREE) & ~15;
  for (let k = 0; t !== 0; k++) {
    // a cycle (a block freed twice by other workers) or a link out of the page: the owner's
    // collection drops that list and keeps its blocks live, so they count as live here too
    if (k >= cap || t < start || t >= end) return used;
    n--;
    t = m[t >> 2];
  }
  return n;
}

let seen = new Uint8Array(4097);

/**
 * Called before a page whose used count reached 0 is given back (and may be reused for
 * another size class): true when its free and local-free lists hold exactly its capacity in
 * distinct blocks. An undetected double free (plain pages) pushes one block twice: a list
 * gets a cycle, or the two lists share a tail, and the used count reaches 0 while another
 * block is still live. Then repairLists cuts them and recomputes the used count, and false
 * keeps the page with its live blocks. Slow path, once per emptied page: one walk of the lists
 * (two lists that share a block share their last block, and a list longer than the capacity
 * has a cycle), the repair only when that fails. Thread-free blocks are not looked at.
 * Checked pages: secure.ts verifyChecked.
 */
export function verifyEmpty(m: Int32Array, pg: number): boolean {
  const cap = m[pg + P_CAPACITY];
  if (seen.length <= cap) seen = new Uint8Array(cap + 1);
  if ((m[pg + P_FLAGS] & PF_CHECKED) !== 0) return verifyChecked(m, pg, seen);
  const start = m[pg + P_START];
  const span = m[pg + P_END] - start;
  let total = 0;
  let lastFree = -1;
  for (let l = 0; l < 2; l++) {
    let b = m[pg + l]; // P_FREE, P_LOCAL_FREE
    let last = -1;
    for (let n = 0; b !== 0; n++) {
      if (n >= cap || ((b - start) >>> 0) >= span) return repairLists(m, pg);
      last = b;
      b = m[b >> 2];
      total++;
    }
    if (l === 0) lastFree = last;
    else if (last !== -1 && last === lastFree) return repairLists(m, pg);
  }
  return total === cap || repairLists(m, pg);
}

/**
 * The lists of a plain page that failed verifyEmpty, or whose local-free list was longer than
 * its capacity: each list is cut at its first repeated block or bad link (so no block is on a
 * list twice and no walk loops), the used count becomes capacity minus the distinct free
 * blocks, and the corruption is reported. Returns true only when the page turns out to be empty.
 */
export function repairLists(m: Int32Array, pg: number): boolean {
  const cap = m[pg + P_CAPACITY];
  const bsize = m[pg + P_BSIZE];
  const start = m[pg + P_START];
  if (seen.length < cap) seen = new Uint8Array(cap);
  seen.fill(0, 0, cap);
  let distinct = 0;
  let cut = "";
  for (const head of [pg + P_FREE, pg + P_LOCAL_FREE]) {
    let prev = -1; // the block whose link is followed (-1: the list head word)
    let b = m[head];
    while (b !== 0) {
      const i = (b - start) / bsize;
      const bad = !(i >= 0 && i < cap && Number.isInteger(i)) ? "links outside the page's blocks" : seen[i] === 1 ? "holds a block twice (a double free)" : "";
      if (bad !== "") {
        cut ||= bad;
        if (prev === -1) m[head] = 0;
        else m[prev >> 2] = 0;
        break;
      }
      seen[i] = 1;
      distinct++;
      prev = b;
      b = m[b >> 2];
    }
  }
  if (cut === "" && distinct === cap) return true;
  const used = m[pg + P_USED];
  m[pg + P_USED] = cap - distinct;
  m[pg + P_FLAGS] |= PF_CORRUPT;
  reportCorrupt(`a page of ${bsize}-byte blocks (used count ${used}) has a free list that ${cut || "is short"} ` +
    `(${distinct} of ${cap} blocks free): cut there and kept, with ${cap - distinct} blocks counted live. A double free?`);
  return distinct === cap;
}
