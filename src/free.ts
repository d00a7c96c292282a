/**
 * free and pointer lookup. `free` finds the page of a block start in the region of the
 * previous free from the segment map and page descriptor and hands it to freeCheckedPage;
 * everything else goes through `locate`. The fast path for this worker's own pages is
 * secure-free.ts `freeChecked`, which falls back to `free`.
 */
import { ctx, LOCATE_MISS_MAX, sharedHooks } from "./context.ts";
import { DoubleFreeError, InvalidPointerError } from "./errors.ts";
import { dropStaleForeignRun, freeHuge, OWNER_RELEASED, staleForeignView } from "./huge.ts";
import {
  S_OWNER, P_BSIZE, P_END, P_FLAGS, P_OWNER, P_START, P_USED, PAGE_WORDS, PF_HAS_ALIGNED,
  P_THREAD_FREE, PF_IN_FULL, S_COOKIE, S_PAGES, SEGMENT_MASK, SEGMENT_SIZE, headerOf,
} from "./layout.ts";
import { arenaInternal, SEGMAP_FREE, SEGMAP_HEADER } from "./arena.ts";
import { isBlockStart, wakeCount } from "./page.ts";
import { type PageRef, RegionKind } from "./region.ts";
import { entryOf, guardedBlocks, isFreeBlock, pushLocalChecked, pushThreadFreeChecked, removeGuarded, sec, wasGuarded } from "./secure.ts";
import { pageRefAt, pageRefOf, segmentCookie } from "./segment.ts";
import { checkPointer } from "./validate.ts";

export function free(p: number): void {
  // Literal offsets: see HOT_PATH_LITERALS in layout.ts (runtimes that run .ts directly do
  // not fold imported constants, and every load counts here). Kept under V8's inlining
  // limit for one function (460 bytes of bytecode): rarer work goes to calls.
  const r = ctx.lastRegion;
  if (typeof p === "number") { // (a non-number is never coerced: freeGeneric throws TypeError)
    const delta = p - r.base;
    if (delta > 0 && delta < r.limit) {
      const off = delta | 0; // int32 from here on (an arena is < 2 GiB)
      const m = r.i32;
      const x = off >>> 22; //                                         the segment's index (SEGMENT_SHIFT)
      // The page shift comes from the arena's segment map (arena.ts), never from the segment's
      // header: inside a huge block that is user data. <= 0: not a live segment of pages (the
      // descriptor read below is then garbage, and sh > 0 rejects it).
      const sh = m[r.segMap + x];
      const pg = (x << 11) + 16 + ((((off & 4194303) >>> sh) & 63) << 4); // HEADER_WORD_SHIFT (out of band: layout.ts headerOf), S_PAGES, SEGMENT_MASK, PAGE_WORDS
      const d = off - m[pg + 7]; //                                       P_START
      const k = m[pg + 14]; //                                            P_DIV_SHIFT (shifts use its low 5 bits)
      if (
        off === delta && sh > 0 && d >= 0 && off < m[pg + 12] && ((d >> k) << k) === d && //  P_END
        (Math.imul(d >> k, m[pg + 15]) ^ -2147483648) <= m[pg + 13] //    P_DIV_INV, P_DIV_LIMIT (sign-flipped: unsigned compare in int32)
      ) {
        // a block start of a live page (a released page has END 0)
        if ((m[pg + 9] & PF_HAS_ALIGNED) === 0) { // no guarded or aligned-shifted block: no lookup needed
          freeCheckedPage(pageRefOf(r, pg), off);
          return;
        }
      }
    }
  }
  freeGeneric(p);
}

/** The owner freed a block and the page's used count reached its wake count (layout.ts P_WAKE_SHIFT). */
export function wake(pr: PageRef): void {
  const heap = pr.heap!;
  const m = pr.m;
  if ((m[pr.pg + P_FLAGS] & PF_IN_FULL) !== 0) heap.unfull(pr);
  if (m[pr.pg + P_USED] === 0) heap.pageEmptied(pr);
}

/** Where `locate` leaves the block start (region byte offset). */
export const located = { off: 0 };

/**
 * The page of the live block handed out at address p; `located.off` is the block's start.
 * Only exact addresses malloc & co returned are accepted (a guarded allocation's address
 * is inside its block: guardedBlocks, a JS-side record, says where). Whether an address
 * can be ours is decided from records no block covers — the region table, the arena's
 * segment map and the page descriptors in a segment's header — never from bytes inside a
 * block. Throws InvalidPointerError for anything else; a free block of a live page is left
 * to the caller (double-free checks).
 */
export function locate(p: number, op: string, again = 0): PageRef {
  if (again > LOCATE_MISS_MAX) throw new InvalidPointerError(p, `${op}: not an address tsmalloc allocated (lookup did not settle)`);
  const r = ctx.regions.find(p);
  if (r === null) {
    // shared allocator: an arena another worker reserved since we last looked
    if (sharedHooks.locateMiss !== null && sharedHooks.locateMiss(p)) return locate(p, op, again + 1);
    throw new InvalidPointerError(p, `${op}: ${arenaInternal(p) ?? "not an address tsmalloc allocated"}`);
  }
  const m = r.i32;
  const off = p - r.base;
  if (r.kind === RegionKind.Huge) {
    // the header: JS memory for a block with its own mapping; for one carved from an arena, its
    // first segment's header in the arena's header slot (layout.ts headerOf): never user data
    const start = m[S_PAGES + P_START];
    if (m[S_COOKIE] !== segmentCookie(0) || m[S_PAGES + P_BSIZE] !== -1 || staleForeignView(r)) {
      // another worker's huge block this worker saw once: its segments may hold something else now
      if (dropStaleForeignRun(r)) return locate(p, op, again + 1);
      // (the header says so, at every level)
      const kept = Atomics.load(m, S_OWNER) === OWNER_RELEASED ? start : -1; // (clearHeader keeps it)
      throw freedHuge(p, off, op, r.blockStart >= 0 ? r.blockStart : kept);
    }
    // freed by another worker, its owner has not reaped it yet: our view is current (a retry
    // would adopt the same run again, forever)
    if ((Atomics.load(m, S_PAGES + P_THREAD_FREE) & 1) !== 0) throw freedHuge(p, off, op, start);
    if (off !== start) throw new InvalidPointerError(p, `${op}: not the start of a block (inside a huge block)`);
    r.blockStart = start;
    located.off = off;
    return r.pages[0]!;
  }
  if (r.kind !== RegionKind.Arena) throw new InvalidPointerError(p, `${op}: not an address tsmalloc allocated`);
  const seg = off - (off & SEGMENT_MASK);
  const shift = Atomics.load(m, r.segMap + seg / SEGMENT_SIZE); // the segment map (arena.ts)
  if (shift <= 0) {
    // shared allocator: a huge block another worker carved from this arena
    const none = shift === SEGMAP_FREE || shift === SEGMAP_HEADER; // (else a huge block's segment)
    if (!none && sharedHooks.locateMiss !== null && sharedHooks.locateMiss(p)) return locate(p, op, again + 1);
    throw new InvalidPointerError(p, none ? `${op}: ${arenaInternal(p) ?? "no live segment at this address"}` : `${op}: not the start of a block (inside a huge block)`);
  }
  const i = (off - seg) >>> shift;
  const pg = headerOf(seg) + S_PAGES + i * PAGE_WORDS;
  const bsize = m[pg + P_BSIZE];
  if (bsize <= 0) throw new InvalidPointerError(p, `${op}: not in a live page (freed or never allocated)`);
  const start = m[pg + P_START];
  if (off < start || off >= m[pg + P_END]) throw new InvalidPointerError(p, `${op}: not inside a block`);
  const b = isBlockStart(m, pg, off) ? off : -1;
  if (guardedBlocks.size !== 0 && (m[pg + P_FLAGS] & PF_HAS_ALIGNED) !== 0) {
    // a page holding guarded allocations: their address is inside the block
    const blk = b >= 0 ? b : start + Math.floor((off - start) / bsize) * bsize;
    const g = guardedBlocks.get(r.base + blk);
    if (g !== undefined) {
      if (g.p !== p) throw new InvalidPointerError(p, `${op}: not the start of a block (inside a guarded allocation)`);
      located.off = blk;
      return pageRefAt(r, seg, i);
    }
  }
  if (b < 0) {
    const blk = start + Math.floor((off - start) / bsize) * bsize;
    if (wasGuarded(r.base + blk, p)) {
      // the object address of a guarded allocation freed lately: the side table (out of band)
      // says whether the block is still free, so this is its second free
      const what = `${op}: a guarded allocation that was freed (double free or use after free)`;
      throw isFreeBlock(m, pg, blk) ? alreadyFreed(p, op, what) : new InvalidPointerError(p, what);
    }
    throw new InvalidPointerError(p, `${op}: not the start of a block`);
  }
  located.off = b;
  return pageRefAt(r, seg, i);
}

/** The error for an address in a freed huge block whose start was at `start` (-1: unknown, its segments were reused). */
function freedHuge(p: number, off: number, op: string, start: number): InvalidPointerError {
  if (start < 0) return new InvalidPointerError(p, `${op}: in a freed huge block (its start or inside it)`);
  if (off !== start) return new InvalidPointerError(p, `${op}: not the start of a block (inside a freed huge block)`);
  return alreadyFreed(p, op, `${op}: block was already freed`);
}

/** The error for a block known to be freed: from free or realloc a double free, else InvalidPointerError(what). */
function alreadyFreed(p: number, op: string, what: string): InvalidPointerError {
  return op === "free" || op === "realloc" ? new DoubleFreeError(p) : new InvalidPointerError(p, what);
}

export function freeGeneric(p: unknown): void {
  if (p === 0) return;
  checkPointer(p);
  const pr = locate(p, "free");
  const off = located.off;
  const m = pr.m;
  const pg = pr.pg;
  // huge by the region, never by re-reading the header: its owner may be clearing it right
  // now (a racing free), and a torn read took the page path into the cleared header
  if (pr.r.kind === RegionKind.Huge) {
    if (m[pg + P_OWNER] !== ctx.tag && sharedHooks.freeForeignHuge !== null) {
      sharedHooks.freeForeignHuge(pr);
      return;
    }
    // the owner takes the block as another worker's free does (bit 0 of the thread-free
    // word): of two frees at the same moment exactly one wins, the other is a double free
    if ((Atomics.or(m, pg + P_THREAD_FREE, 1) & 1) !== 0) throw new DoubleFreeError(p);
    pr.heap!.removeHuge(pr);
    freeHuge(pr);
    return;
  }
  if (pr.r.kind === RegionKind.Arena) ctx.lastRegion = pr.r;
  if (guardedBlocks.size !== 0 && (m[pg + P_FLAGS] & PF_HAS_ALIGNED) !== 0) {
    const g = guardedBlocks.get(pr.base + off); // (locate checked p === g.p)
    if (g !== undefined) removeGuarded(pr.base + off, g);
  }
  freeCheckedPage(pr, off);
}


/**
 * free of the block at region offset `off` of a live (non-huge) page: its side-table
 * entry must say live (src/secure.ts "side table"), else DoubleFreeError and nothing changed —
 * of two frees of one block by two workers at the same moment exactly one wins (a
 * compare-exchange). Then debug fill, the push onto the local-free list (or the thread-free
 * list of another worker's page), then as the plain path: a page parked as full goes back to
 * its queue, an emptied one back to its segment unless it is its queue's allocation page.
 */
export function freeCheckedPage(pr: PageRef, off: number): void {
  const m = pr.m;
  const pg = pr.pg;
  const n = entryOf(m, pg, off);
  const fill = sec.fill ? freedFill(pr, off) : undefined;
  if (m[pg + P_OWNER] !== ctx.tag) {
    if (!pushThreadFreeChecked(pr.t16, m, pg, n, pr.r.baseSegment, fill)) throw new DoubleFreeError(pr.base + off);
    return;
  }
  if (fill !== undefined) {
    if (!isFreeBlock(m, pg, off)) fill(); // (before the push: once listed the block may be handed out)
  }
  if (!pushLocalChecked(pr.t16, m, pg, pr.sec, n)) throw new DoubleFreeError(pr.base + off);
  if (--m[pg + P_USED] <= wakeCount(m, pg)) wake(pr);
}

/**
 * debugFill's 0xDF fill of the freed block at region offset off of pr's page. A closure made
 * here, not in freeCheckedPage: a closure there makes JavaScriptCore allocate a scope object
 * on every call, debugFill or not (Bun's cross-worker frees took 250 ns instead of 25).
 */
function freedFill(pr: PageRef, off: number): () => void {
  return () => pr.r.u8.fill(0xdf, off, off + pr.m[pr.pg + P_BSIZE]);
}
