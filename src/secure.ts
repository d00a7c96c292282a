/**
 * Secure mode, debug fill and the pages' side tables (doc/SECURE.md).
 *
 * Every page, at every level, is a checked page: its free lists are kept out of band, in side
 * tables of 16-bit entries after the arena's metadata ("side table" below), never in a block.
 * malloc and free touch no block's bytes; free of a block that is not live throws
 * DoubleFreeError; views of free blocks are refused. A page keeps its list heads in the
 * segment header's secure records (S_SEC; P_FREE/P_LOCAL_FREE stay 0), and its P_KEY is the
 * owner's tag | CHECKED_KEY (0 with another slow-free flag): the heap's malloc pops
 * (popChecked here), free is the fast path of src/secure-free.ts.
 *
 * Levels are cumulative, chosen once before first use (`configure({ secure })`, TSMALLOC_SECURE):
 *
 * - 1: guard pages (PROT_NONE) between a segment's metadata and its first page and after
 *      its last page; around huge blocks likewise. Removed before the memory is reused,
 *      purged or given back.
 * - 2: `sec.retire`: huge mappings leaving the cache are retired (PROT_NONE), not unmapped.
 * - 3: the blocks of each page extension are threaded in random order.
 * - 4: also a guard page after every page.
 *
 * debugFill (any level): fresh blocks read 0xD0, freed blocks 0xDF; retires as level 2.
 *
 * With a shared allocator every free claims its block's entry with a compare-exchange, at
 * every level (of two frees of one block at the same moment exactly one wins).
 */
import { ctx, os } from "./context.ts";
import {
  ENTRY_LIVE, ENTRY_PENDING, ENTRY_PUSHING, P_BSIZE, P_CAPACITY, P_END, P_FLAGS, P_OWNER, P_START, P_THREAD_FREE, P_USED,
  PAGE_WORDS, PF_CORRUPT, SEC_FREE, SEC_LOCAL, SEC_WORDS, SEGMENT_HEADER_SIZE, SEGMENT_SIZE, TABLE_COLUMN_ENTRIES,
} from "./layout.ts";
import { type PageRef, type Region, secOf, tableBase } from "./region.ts";

/** The process's secure configuration (fixed by configureSecure at first use). */
export const sec = {
  /** 0..4 */
  level: 0,
  /** Huge mappings leaving the cache are retired (PROT_NONE), not unmapped (level >= 2 or debugFill; src/huge.ts). */
  retire: false,
  /** debugFill: 0xD0 on malloc, 0xDF on free. */
  fill: false,
  /** Page extensions are threaded in random order (level >= 3). */
  shuffle: false,
  /** Bytes of one guard (the OS page size) when level >= 1, else 0. Geometry uses it on every backend. */
  guard: 0,
  /** Level 4: a guard after every page, not only the segment's last. */
  everyPage: false,
  /** Offset of page 0 in a segment (8 KiB aligned): 0, or with guards after the head guard (segmentStart). */
  page0: 0,
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
  sec.retire = level >= 2 || fill;
  sec.shuffle = level >= 3;
  sec.everyPage = level >= 4;
  sec.protect = canProtect;
  sec.pageSize = pageSize;
  sec.guard = level >= 1 ? pageSize : 0;
  [sec.headGuard, sec.page0] = segmentStart(level, pageSize);
}

/**
 * [head guard, page 0] offsets in a segment for a secure level: with guards (level 1+) a head
 * guard after the first SEGMENT_HEADER_SIZE bytes (where headers once were), else page 0 at the
 * start; page starts stay 8 KiB aligned (mallocAligned relies on it). Head guard 0: none.
 */
export function segmentStart(level: number, pageSize: number): [number, number] {
  // level 0: page 0 starts at the segment's first byte (the header lies out of band; before
  // session 16 its first 8 KiB were left empty: a segment held three 1 MiB blocks, one 2 MiB block)
  if (level < 1) return [0, 0];
  const headGuard = alignUp(SEGMENT_HEADER_SIZE, pageSize);
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

// ---------------------------------------------------------------- checked pages: the side table

/*
 * The side table: a checked page keeps its free lists out of band, one 16-bit entry per block
 * in its arena's side tables (Region.tbl: after the arena's metadata, memory no block ever
 * covers, so no write through a block pointer — stale, overflowing, replayed — reaches it).
 * Each segment has TABLE_SEGMENT_ENTRIES, a contiguous column per page descriptor (layout.ts). Lists hold n = block index + 1 (0 ends a list); their heads are the
 * page's secure record (SEC_FREE, SEC_LOCAL) and the thread-free word (n << 4, flag bits
 * below). Entry n is
 *
 *   ENTRY_LIVE     the block is handed out: malloc wrote it, and only free changes it;
 *   ENTRY_PENDING  the owner's free (shared allocator) has claimed the block and is listing it;
 *   ENTRY_PUSHING + next
 *                  another worker's free has claimed the block and links it to `next` (the
 *                  thread-free head it saw) before its push publishes it; the owner's collection
 *                  writes the plain link;
 *   0..capacity    the block is free and this is the next one on its list (0: the last).
 *
 * So a block is on a list exactly when its entry is not ENTRY_LIVE, except in a free another
 * worker is in the middle of (ENTRY_PENDING, ENTRY_PUSHING + next not yet published): the
 * states a worker terminated there leaves. Termination lands where the engine checks for
 * interrupts: a call, a loop's back edge, and on V8 an Atomics call, before it acts, in code
 * not optimized yet (measured, a loop of a plain store, Atomics.compareExchange, a plain store:
 * workers terminated at once stopped between the first store and the exchange in 33 of 60 runs
 * on Node 26, 2 of 60 after 10 ms, never after the exchange; Node 20 likewise; Bun never
 * there). Every sequence below leaves a known state at each such point. malloc pops a block only
 * when its entry is at most the capacity (ENTRY_LIVE, ENTRY_PENDING, ENTRY_PUSHING + next and any stray value are
 * larger: reported, the list dropped) and marks it ENTRY_LIVE; free changes an entry only
 * from ENTRY_LIVE (else DoubleFreeError, nothing changed; a compare-exchange whenever another
 * worker could free the same block at the same moment, so exactly one of two wins). Neither
 * reads or writes a block. Entries past a page's capacity are never read (every n on a list
 * is checked against it), so a page's column needs no clearing when the slot is reused.
 */

const tables = new WeakMap<Int32Array, Uint16Array>();
let tableM: Int32Array | null = null;
let tableT: Uint16Array = new Uint16Array(0);

/** Records an arena's side tables (Arena's constructor), for slow paths that have only its Int32Array. */
export function registerTable(m: Int32Array, t: Uint16Array): void {
  tables.set(m, t);
}

/** The side tables of the arena whose Int32Array is m (Region.tbl; empty for other regions). */
export function tableOf(m: Int32Array): Uint16Array {
  if (m !== tableM) {
    tableT = tables.get(m) ?? new Uint16Array(0);
    tableM = m;
  }
  return tableT;
}

/** Sets up the secure record of a fresh checked page: empty lists. */
export function initChecked(m: Int32Array, h: number): void {
  m[h + SEC_FREE] = 0;
  m[h + SEC_LOCAL] = 0;
}

/** Index in Region.tbl of the entry of block n - 1 (n as lists hold it) in the column at tb. */
export function entryAt(tb: number, n: number): number {
  return tb + n - 1;
}

/** Copies what mallocChecked needs of a checked page onto its handle (heap.ts setFront). */
export function cacheChecked(pr: PageRef): void {
  const m = pr.m;
  pr.bsize = m[pr.pg + P_BSIZE];
  pr.first = pr.base + m[pr.pg + P_START] - pr.bsize;
}

/** Region offset of block n - 1 of a page (n as lists hold it). */
function blockAt(m: Int32Array, pg: number, n: number): number {
  return m[pg + P_START] + (n - 1) * m[pg + P_BSIZE];
}

/** n (block index + 1) of the block at region offset off, a block start of the page. */
export function entryOf(m: Int32Array, pg: number, off: number): number {
  return (off - m[pg + P_START]) / m[pg + P_BSIZE] + 1;
}

/**
 * Pops the first block of a checked page's free list (region offset; 0 when empty) and
 * counts it used; an empty free list first takes the local-free list. A block whose entry is
 * not a free one (the side table was overwritten) is never handed out (see popBad).
 */
export function popChecked(m: Int32Array, pg: number, h: number): number {
  let n = m[h];
  if (n === 0) {
    n = m[h + SEC_LOCAL]; // the owner's own frees are the next free list
    if (n === 0) return 0;
    m[h] = n;
    m[h + SEC_LOCAL] = 0;
  }
  const t = tableOf(m);
  const x = entryAt(tableBase(pg), n);
  const e = t[x];
  if (e > m[pg + P_CAPACITY]) return popBad(m, pg, h, n, e);
  m[h] = e;
  t[x] = ENTRY_LIVE;
  m[pg + P_USED]++;
  return blockAt(m, pg, n);
}

/**
 * popChecked found block n's entry not free (e: ENTRY_LIVE, ENTRY_PENDING, or past the
 * capacity). No free or malloc writes such a value into a listed block's entry, so the side
 * table or a list head was written from outside (a wild pointer: no block lies next to the
 * tables; or a forged list head in the segment's header): reported, and the list dropped from n on, n included. The dropped blocks are neither free
 * nor counted used: the page is never given back (verifyEmpty repairs the count).
 */
function popBad(m: Int32Array, pg: number, h: number, n: number, e: number): number {
  const what = e === ENTRY_LIVE ? "is marked live" : e === ENTRY_PENDING || pushedLink(e) >= 0 ? "is marked as being freed" : `holds ${e}, past the page's ${m[pg + P_CAPACITY]} blocks`;
  corrupt(m, pg, "free", blockAt(m, pg, n), `its side-table entry ${what}`);
  m[h] = 0;
  return 0;
}

/**
 * Threads n fresh blocks of bsize bytes from region offset `first` onto the free list (random
 * order at level 3+), recording the page's new capacity and end before it publishes the head
 * (page.ts extendPage says why).
 */
export function threadChecked(m: Int32Array, pg: number, first: number, count: number, bsize: number): void {
  const h = secOf(pg);
  const t = tableOf(m);
  const tb = tableBase(pg);
  const cap = m[pg + P_CAPACITY]; // the new blocks are n = cap + 1 .. cap + count
  if (sec.fill) new Uint8Array(m.buffer, m.byteOffset + first, count * bsize).fill(0xdf);
  let next = m[h + SEC_FREE];
  if (sec.shuffle && count > 1) {
    const order = shuffled(count);
    for (let j = count - 1; j >= 0; j--) {
      const n = cap + order[j] + 1;
      t[entryAt(tb, n)] = next;
      next = n;
    }
  } else {
    for (let n = cap + count; n > cap; n--) {
      t[entryAt(tb, n)] = next;
      next = n;
    }
  }
  // capacity and end before the head is published (page.ts extendPage says why)
  m[pg + P_CAPACITY] += count;
  m[pg + P_END] = first + count * bsize;
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

/**
 * Follows list `list` from n to its last block, at most `cap` steps: returns that last n, or
 * -1 after cutting the list at an entry that is not a free one (reported).
 */
function tailOf(m: Int32Array, t: Uint16Array, pg: number, tb: number, n: number, list: string): number {
  const cap = m[pg + P_CAPACITY];
  for (let k = 0; ; k++) {
    const e = t[entryAt(tb, n)];
    if (e === 0) return n;
    if (e > cap || k >= cap) {
      t[entryAt(tb, n)] = 0;
      corrupt(m, pg, list, blockAt(m, pg, n), k >= cap ? "its list is longer than the page (a cycle)" : `its side-table entry holds ${e}, not a free block's`);
      return -1;
    }
    n = e;
  }
}

/** Moves thread-free and local-free blocks of a checked page back to its free list. */
export function collectChecked(m: Int32Array, pg: number): void {
  const h = secOf(pg);
  if ((m[pg + P_THREAD_FREE] & ~15) !== 0) collectThreadFreeChecked(m, pg, h);
  const local = m[h + SEC_LOCAL];
  if (local === 0) return;
  const free = m[h + SEC_FREE];
  if (free !== 0) {
    // append the free list after the local list's last block (a cut list ends where it was cut)
    const t = tableOf(m);
    const tb = tableBase(pg);
    const last = tailOf(m, t, pg, tb, local, "local-free");
    if (last > 0) t[entryAt(tb, last)] = free;
    else m[pg + P_FLAGS] |= PF_CORRUPT;
  }
  m[h + SEC_FREE] = local;
  m[h + SEC_LOCAL] = 0;
}

function collectThreadFreeChecked(m: Int32Array, pg: number, h: number): void {
  // Walked before it is taken (pushes only add above the head; only the owner takes), its pushed
  // entries made plain links on the way, then taken and relinked with no loop head, call or other
  // Atomics call between: a worker terminated at any point leaves every block on some list (a
  // taken list held only in locals while walked was lost: the terminate storm left "block on no
  // free list")
  const t = tableOf(m);
  const tb = tableBase(pg);
  let tf = Atomics.load(m, pg + P_THREAD_FREE);
  let head = tf >>> 4;
  if (head === 0) return;
  let count = 0;
  let stop = 0; // the previous attempt's head: the blocks below it are counted
  let tx = -1; // the last block's entry (found before the exchange: no call between it and the relink)
  for (;;) {
    count += walkThreadFree(m, pg, t, tb, head, stop);
    if (tx < 0) tx = entryAt(tb, walkTail);
    const seen = Atomics.compareExchange(m, pg + P_THREAD_FREE, tf, tf & 15);
    if (seen === tf) {
      t[tx] = m[h + SEC_LOCAL];
      m[h + SEC_LOCAL] = head;
      m[pg + P_USED] -= count;
      return;
    }
    // more blocks were pushed meanwhile: count them (down to the old head) and try again
    stop = head;
    tf = seen;
    head = tf >>> 4;
  }
}

/**
 * Counts the thread-free chain from `head` down to `stop` (exclusive; 0: to its end) and makes
 * its entries plain links (ENTRY_PUSHING + next becomes next: published blocks' links never
 * change again, so this is safe before the take); its last block goes to walkTail (no object
 * on this path). A link that is not a block of this page (only a write into the side table
 * does that: pushes claim a live entry first) ends the chain there, reported.
 */
function walkThreadFree(m: Int32Array, pg: number, t: Uint16Array, tb: number, head: number, stop: number): number {
  const cap = m[pg + P_CAPACITY];
  let count = 1;
  let n = head;
  for (;;) {
    const x = entryAt(tb, n);
    const e = t[x];
    const next = e >= ENTRY_PUSHING ? e - ENTRY_PUSHING : e; // (ENTRY_LIVE, ENTRY_PENDING: past any capacity)
    if (next === stop) {
      if (next !== e) t[x] = next;
      break;
    }
    if (next > cap || next === 0 || count >= cap) {
      t[x] = 0;
      m[pg + P_FLAGS] |= PF_CORRUPT;
      corrupt(m, pg, "thread-free", blockAt(m, pg, n), `its side-table entry holds ${e}, not a free block's`);
      break;
    }
    if (next !== e) t[x] = next;
    n = next;
    count++;
  }
  walkTail = n;
  return count;
}
let walkTail = 0;

/** The link in a thread-free entry, pushed (ENTRY_PUSHING + next) or already plain; -1 for ENTRY_LIVE/ENTRY_PENDING (no link). */
function threadFreeLink(e: number): number {
  return e < ENTRY_PUSHING ? e : pushedLink(e);
}

/** `next` of an entry ENTRY_PUSHING + next; -1 for any other value. */
function pushedLink(e: number): number {
  return e >= ENTRY_PUSHING && e - ENTRY_PUSHING <= TABLE_COLUMN_ENTRIES ? e - ENTRY_PUSHING : -1;
}

/**
 * The owner's free of block n of a checked page whose secure record is at word h: false when
 * the block is not live (a double free; nothing changed). A compare-exchange when the
 * allocator is shared (another worker may free the same block at the same moment).
 */
export function pushLocalChecked(t: Uint16Array, m: Int32Array, pg: number, h: number, n: number): boolean {
  const x = entryAt(tableBase(pg), n);
  if (ctx.shared) {
    // claimed first (a worker terminated right after it leaves ENTRY_PENDING, a known state), then linked and listed
    if (Atomics.compareExchange(t, x, ENTRY_LIVE, ENTRY_PENDING) !== ENTRY_LIVE) return false;
  } else if (t[x] !== ENTRY_LIVE) return false;
  t[x] = m[h + SEC_LOCAL];
  m[h + SEC_LOCAL] = n;
  return true;
}

/**
 * Another worker's free of block n of a checked page: claims its entry, linked to the
 * thread-free head it sees (ENTRY_LIVE to ENTRY_PUSHING + head; false when it was not live: a
 * double free, nothing changed), calls `claimed` (debug fill), then pushes it onto the
 * thread-free list.
 */
export function pushThreadFreeChecked(t: Uint16Array, m: Int32Array, pg: number, n: number, seg0: number, claimed?: () => void): boolean {
  const x = entryAt(tableBase(pg), n);
  // recorded before the claim, cleared once listed: the releaser of a worker stopped between
  // finishes the push (finishPush), so no block stays claimed on no list
  const rec = ctx.inflight, w = ctx.inflightAt;
  rec[w + 3] = 0;
  rec[w] = seg0;
  rec[w + 1] = pg;
  rec[w + 2] = n;
  // Plain reads and writes around the compare-exchanges: the read is only a first guess, and a
  // link written before the head's exchange is seen by the owner, whose take of the list reads
  // what that exchange wrote (each Atomics call costs 12-18 ns on V8: four were half a free).
  // A worker terminated before the head's exchange (V8 stops there: see "side table") leaves
  // ENTRY_PUSHING + a link on no list, a known state; a plain link there was a block lost for
  // good, free by its entry and live by its page's count (the terminate storm, session 19).
  let tf = m[pg + P_THREAD_FREE];
  if (Atomics.compareExchange(t, x, ENTRY_LIVE, ENTRY_PUSHING + (tf >>> 4)) !== ENTRY_LIVE) {
    rec[w + 2] = 0;
    return false;
  }
  // no call or loop between an Atomics call's return and the next store: a stopped worker
  // stops before the call acts, so "claimed" is set exactly when the claim happened, and the
  // record is cleared exactly when the block is listed (finishPush trusts both)
  rec[w + 3] = 1;
  claimed?.();
  for (;;) {
    const seen = Atomics.compareExchange(m, pg + P_THREAD_FREE, tf, (n << 4) | (tf & 15));
    if (seen === tf) break;
    tf = seen;
    t[x] = ENTRY_PUSHING + (tf >>> 4);
  }
  rec[w + 2] = 0;
  return true;
}

/**
 * Finishes the cross-worker free of block n of checked page pg that a stopped worker recorded
 * (pushThreadFreeChecked): when its entry is still claimed (ENTRY_PUSHING + a link), the block
 * is on no list and `othersHave` (another live worker's record of the same block) says no, it
 * is listed now. True when it did. Run by the releaser of that worker (its thread has stopped).
 */
export function finishPush(t: Uint16Array, m: Int32Array, pg: number, n: number, othersHave: () => boolean): boolean {
  const tb = tableBase(pg);
  const x = entryAt(tb, n);
  const cap = m[pg + P_CAPACITY];
  // another live worker's record first, then the walk: a worker whose claim this entry is keeps
  // its record until the block is listed, so it is either seen here or the walk finds the block
  // (othersHave after the walk missed a worker that listed the block and cleared its record
  // between the two: the block was listed twice; review of session 28)
  const e = Atomics.load(t, x);
  if (n < 1 || n > cap || pushedLink(e) < 0 || othersHave()) return false; // not claimed (any more), or not ours to finish
  let k = Atomics.load(m, pg + P_THREAD_FREE) >>> 4;
  for (let i = 0; k !== 0 && i <= cap; i++) {
    if (k === n) return false; // listed: the stop came after the push
    if (k > cap) break;
    k = threadFreeLink(Atomics.load(t, entryAt(tb, k)));
  }
  // (an owner's collection turns the listed entries into plain links before it takes them: still claimed, so not listed)
  if (Atomics.load(t, x) !== e || othersHave()) return false;
  for (let tf = Atomics.load(m, pg + P_THREAD_FREE);;) {
    t[x] = ENTRY_PUSHING + (tf >>> 4);
    const seen = Atomics.compareExchange(m, pg + P_THREAD_FREE, tf, (n << 4) | (tf & 15));
    if (seen === tf) return true;
    tf = seen;
  }
}

/** True when the block at region offset off (a block start of checked page pg) is not handed out: its entry is not ENTRY_LIVE. */
export function isFreeBlock(m: Int32Array, pg: number, off: number): boolean {
  return Atomics.load(tableOf(m), entryAt(tableBase(pg), entryOf(m, pg, off))) !== ENTRY_LIVE;
}

/** Live blocks of a checked page: used minus blocks waiting on the thread-free list. */
export function liveChecked(m: Int32Array, pg: number): number {
  let live = m[pg + P_USED];
  const t = tableOf(m);
  const tb = tableBase(pg);
  const cap = Math.min(m[pg + P_CAPACITY], TABLE_COLUMN_ENTRIES); // (a column's entries, whatever a write into the header says)
  let n = Atomics.load(m, pg + P_THREAD_FREE) >>> 4;
  for (let k = 0; n !== 0; k++) {
    if (k >= cap || n > cap) return m[pg + P_USED]; // a bad entry: the owner's collection cuts there (collectThreadFreeChecked)
    live--;
    n = threadFreeLink(Atomics.load(t, entryAt(tb, n)));
    if (n < 0) return m[pg + P_USED];
  }
  return live;
}

/**
 * A checked page whose used count reached 0 (page.ts verifyEmpty): true when its free and
 * local-free lists hold exactly its capacity in distinct blocks. Only a write into the side
 * table can make them disagree: then the lists are cut at the first bad entry or repeated
 * block, the used count becomes capacity minus the free blocks found, the corruption is
 * reported and false keeps the page.
 */
export function verifyChecked(m: Int32Array, pg: number, seen: Uint8Array): boolean {
  const h = secOf(pg);
  const t = tableOf(m);
  const tb = tableBase(pg);
  const cap = m[pg + P_CAPACITY];
  seen.fill(0, 0, cap + 1);
  let distinct = 0;
  let cut = "";
  for (const head of [h + SEC_FREE, h + SEC_LOCAL]) {
    let prev = -1;
    for (let n = m[head]; n !== 0; n = t[entryAt(tb, n)]) {
      const bad = n > cap ? `holds ${n}, past the page's blocks` : seen[n] === 1 ? "holds a block twice" : "";
      if (bad !== "") {
        cut ||= bad;
        if (prev === -1) m[head] = 0;
        else t[entryAt(tb, prev)] = 0;
        break;
      }
      seen[n] = 1;
      distinct++;
      prev = n;
    }
  }
  if (cut === "" && distinct === cap) return true;
  const used = m[pg + P_USED];
  m[pg + P_USED] = cap - distinct;
  m[pg + P_FLAGS] |= PF_CORRUPT;
  reportCorrupt(`a checked page of ${m[pg + P_BSIZE]}-byte blocks (used count ${used}) has a free list that ${cut || "is short"} ` +
    `(${distinct} of ${cap} blocks free): its side table was written from outside; cut there and kept, with ${cap - distinct} blocks counted live`);
  return distinct === cap;
}

/**
 * Makes the lists and counts of a stopped worker's checked page agree with its side table,
 * whatever write of a pop, free, collection or extension the stop came between (Bun stops a
 * terminated worker between two plain stores of one of these: the storm of session 28 found a
 * pop stopped after unlinking its block, an extension after its capacity, and a list move
 * between its two head writes, which put one chain on both lists: blocks handed out twice).
 * Run by the releaser before the page is abandoned (the owner's lists are still; other
 * workers only push onto the thread-free list and only claim live entries):
 * - the free list, then the local-free list: a list that reaches a listed block is cut there;
 * - a block whose entry is a link (free) but that is on no list (free, local-free or
 *   thread-free) goes onto the free list: a stopped pop had not handed it out, a stopped free
 *   or collection had not listed it; so does one whose entry is ENTRY_PENDING (only the owner
 *   writes it: its free was claimed and never listed). Not on a page found corrupt
 *   (PF_CORRUPT): the blocks a detected wild write cut off stay off its lists;
 * - the used count becomes the capacity less the free and local-free blocks, and the end
 *   follows the capacity;
 * - a page with no capacity yet had its set-up (page.ts initPage) stopped before any block
 *   was handed out, maybe before its block-start divisor was written (its blocks' frees all
 *   read block 1: double frees, the storm of session 28): its slot is given back, descriptor
 *   and secure record zeroed (its segment is still the stopped worker's: nobody claims it).
 * Each write leaves a state this repairs again (a releaser stopped in here is replaced).
 * Returns the blocks it moved or cut (1 for a slot given back).
 */
export function repairChecked(m: Int32Array, pg: number): number {
  const cap = m[pg + P_CAPACITY];
  const h = secOf(pg);
  if (cap === 0) {
    m.fill(0, h, h + SEC_WORDS);
    m.fill(0, pg, pg + PAGE_WORDS);
    return 1;
  }
  if (cap < 0 || cap > TABLE_COLUMN_ENTRIES) return 0; // (not a page's count: never walk past its column)
  const t = tableOf(m);
  const tb = tableBase(pg);
  if (repairSeen.length <= cap) repairSeen = new Uint8Array(cap + 1);
  const seen = repairSeen;
  seen.fill(0, 0, cap + 1);
  let free = 0;
  let fixed = 0;
  for (const head of [h + SEC_FREE, h + SEC_LOCAL]) {
    let prev = -1;
    for (let n = m[head]; n !== 0; n = t[entryAt(tb, n)]) {
      if (n > cap || seen[n] !== 0 || t[entryAt(tb, n)] > cap) {
        if (prev === -1) m[head] = 0;
        else t[entryAt(tb, prev)] = 0;
        fixed++;
        break;
      }
      seen[n] = 1;
      free++;
      prev = n;
    }
  }
  // pushes only add above the head read here, and never change a listed block's link
  let n = Atomics.load(m, pg + P_THREAD_FREE) >>> 4;
  for (let k = 0; n > 0 && n <= cap && seen[n] === 0 && k < cap; k++) {
    seen[n] = 2;
    n = threadFreeLink(Atomics.load(t, entryAt(tb, n)));
  }
  const corrupt = (m[pg + P_FLAGS] & PF_CORRUPT) !== 0;
  for (let b = 1; b <= cap && !corrupt; b++) {
    if (seen[b] !== 0) continue;
    const x = entryAt(tb, b);
    const e = Atomics.load(t, x);
    if (e > cap && e !== ENTRY_PENDING) continue; // handed out, or claimed by another worker's free: counted used
    t[x] = m[h + SEC_FREE];
    m[h + SEC_FREE] = b;
    free++;
    fixed++;
  }
  if (m[pg + P_USED] !== cap - free) fixed++;
  m[pg + P_USED] = cap - free;
  m[pg + P_END] = m[pg + P_START] + cap * m[pg + P_BSIZE];
  return fixed;
}
let repairSeen = new Uint8Array(4097);

/**
 * Calls cb(offset, list) for each block on a page's free, local-free and thread-free lists
 * (their side-table entries), stopping a list at a corrupted link or after `capacity` blocks, and
 * everything when cb returns false. Returns a description of the first bad link found, or "".
 */
export function forEachFree(m: Int32Array, pg: number, cb: (off: number, list: string) => boolean | void): string {
  const cap = m[pg + P_CAPACITY];
  let problem = "";
  const h = secOf(pg);
  const t = tableOf(m);
  const tb = tableBase(pg);
  const heads: [string, number][] = [["free", m[h + SEC_FREE]], ["local-free", m[h + SEC_LOCAL]], ["thread-free", Atomics.load(m, pg + P_THREAD_FREE) >>> 4]];
  for (const [list, head] of heads) {
    let n = head;
    for (let k = 0; n !== 0; k++) {
      if (k >= cap) {
        problem ||= `${list} list is longer than the page's capacity (a cycle)`;
        break;
      }
      if (n > cap) {
        problem ||= `${list} list: a side-table entry holds ${n}, not a free block's (ENTRY_LIVE is ${ENTRY_LIVE})`;
        break;
      }
      if (cb(blockAt(m, pg, n), list) === false) return problem;
      const e = Atomics.load(t, entryAt(tb, n));
      const link = list === "thread-free" ? threadFreeLink(e) : e; // (a pushed link decoded; ENTRY_LIVE/ENTRY_PENDING stay: reported)
      n = link < 0 ? e : link;
    }
  }
  return problem;
}

/**
 * validate(): a checked page's side table against its lists (`listed[i]`: block i is on one):
 * a block on no list must be marked live (or, with a shared allocator, be in a free that has
 * not listed it yet: ENTRY_PENDING, ENTRY_PUSHING + a link). "" when they agree.
 */
export function tableProblem(m: Int32Array, pg: number, listed: Uint8Array, dropped: boolean): string {
  const t = tableOf(m);
  const tb = tableBase(pg);
  const cap = m[pg + P_CAPACITY];
  for (let i = 0; i < cap; i++) {
    const e = t[entryAt(tb, i + 1)];
    if (listed[i] !== 1 && e !== ENTRY_LIVE && !dropped && !(ctx.shared && (e === ENTRY_PENDING || pushedLink(e) >= 0))) return `block ${i} is on no free list but its side-table entry (${e}) says it is free`;
  }
  return "";
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
    (reached !== "" ? `a link leads to the block at ${addr}, which ${reached} ` :
      `the link for the free block at ${addr} is invalid (${why}) — a wild write into the allocator's metadata (side tables, a segment's list heads)? `) +
    `The rest of the list was dropped, never followed; that block was not handed out (blocks handed out before it, through entries forged the same way, may have been).`;
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
  if (sec.guard === 0 && !flush) return; // (level 0: no array per huge block)
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

