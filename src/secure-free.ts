/**
 * free's fast path (src/secure.ts "side table", doc/SECURE.md).
 *
 * `freeChecked` is the free mod.ts calls (`freeFn`, picked once when the configuration is
 * fixed): the block-start validation of free.ts `free` (segment map, page descriptor, exact
 * division), then, for a block of this worker's page (P_KEY is the owner's tag | CHECKED_KEY)
 * whose side-table entry says live, the push onto the page's local-free list inline (also for
 * a page parked as full: the wake count says when to unpark it). Anything else goes to
 * free.ts `free`: another worker's page (and this worker's own with a shared allocator),
 * which it hands to `freeCheckedPage` after its own lookup; aligned or guarded
 * blocks, huge blocks, another region, bad pointers, a block that is not live (DoubleFreeError).
 * A branch here that sent other workers' pages to freeCheckedPage directly (one lookup less)
 * made V8 stop inlining this into the caller's loop: pairs-64 19 -> 24-34 ns (Node 26,
 * session 15). This module sits above free.ts:
 * free.ts never imports it. debugFill keeps free.ts `free` (the fill is in freeCheckedPage).
 */
import { ctx } from "./context.ts";
import { DoubleFreeError } from "./errors.ts";
import { free, wake as wakeHeap } from "./free.ts";
import { pushThreadFreeChecked, sec } from "./secure.ts";
import { pageRefOf } from "./segment.ts";
import { trackFree } from "./track.ts";
import { outOfLine1, registerExit } from "./out-of-line.ts";

/** The free that mod.ts calls: freeChecked, or free.ts `free` with debugFill. */
export let freeFn: (p: number) => void = free;

/** Picks freeFn for the configuration (called once it is fixed, and when the allocator becomes shared). */
export function setFreeMode(): void {
  freeFn = trackFree(sec.fill ? free : ctx.shared ? freeCheckedShared : freeChecked);
}

/** free (see the top of this file). p is a number (mod.ts `free` checks; kept out of here for V8's inlining limit). */
export function freeChecked(p: number): void {
  // Literal offsets: see HOT_PATH_LITERALS in layout.ts. Kept small: V8 inlines it into the
  // caller only while malloc's and free's bytecode together fit its inlining budget.
  const r = ctx.lastRegion;
  const delta = p - r.base;
  if (delta > 0 && delta < r.limit) {
    const off = delta | 0;
    const m = r.i32;
    const g = off >>> 22; //                                             the segment's index (SEGMENT_SHIFT)
    const s = g << 11; //                                                its header's first word (HEADER_WORD_SHIFT: out of band, layout.ts headerOf)
    const sh = m[r.segMap + g]; //                                       page shift: the segment map (free.ts), not the header
    const i = ((off & 4194303) >>> sh) & 63; //                           SEGMENT_MASK
    const pg = s + 16 + (i << 4); //                                      S_PAGES, PAGE_WORDS
    const d = off - m[pg + 7]; //                                         P_START
    const k = m[pg + 14]; //                                              P_DIV_SHIFT
    const q = Math.imul(d >> k, m[pg + 15]); //                           P_DIV_INV: the block index, when d is a multiple of bsize
    if (
      off === delta && sh > 0 && d >= 0 && off < m[pg + 12] && ((d >> k) << k) === d && //  P_END
      (q ^ -2147483648) <= m[pg + 13] && //                                P_DIV_LIMIT
      m[pg + 8] === ctx.checkedTag //                                     P_KEY: ours, no other flag (-1 when shared: a compare-exchange, in freeCheckedPage)
    ) {
      const h = s + 1040 + (i << 2); //                                   S_SEC + page index * SEC_WORDS
      const t = r.tbl;
      const x = (g << 18) + (i << 12) + q; //                              the block's entry: column i of segment g (TABLE_SEGMENT_SHIFT, TABLE_COLUMN_SHIFT)
      if (t[x] === 0xffff) { //                                           ENTRY_LIVE (else a double free: freeCheckedPage throws)
        t[x] = m[h + 1]; //                                               SEC_LOCAL
        m[h + 1] = q + 1;
        // the heap hears of an emptied page (not its allocation page) and of a parked one worth unparking
        if (--m[pg + 3] <= (k >> 5)) outOfLine1(EXIT_WAKE, pg); //         P_USED, P_WAKE_SHIFT (exits: src/out-of-line.ts)
        return;
      }
    }
  }
  outOfLine1(EXIT_FREE, p); // another worker's page, aligned or guarded blocks, huge blocks, another region, bad pointers, a block that is not live
}

/** The owner freed a block and the page's used count reached its wake count (layout.ts P_WAKE_SHIFT). */
function wake(pg: number): number {
  wakeHeap(pageRefOf(ctx.lastRegion, pg));
  return 0;
}

/** free.ts `free`, as an exit (a number result, as every exit has). */
function freeExit(p: number): number {
  free(p);
  return 0;
}

const EXIT_WAKE = registerExit(wake);
const EXIT_FREE = registerExit(freeExit);

/**
 * free once the allocator is shared between workers (src/shared.ts): freeChecked's lookup,
 * then every claim of a block's entry is a compare-exchange, so of two frees of one block by
 * two workers at the same moment exactly one wins and the other throws DoubleFreeError —
 * the owner's (ENTRY_LIVE to the local-free head, P_KEY === ctx.ownKey) as another
 * worker's (secure.ts pushThreadFreeChecked: ENTRY_LIVE to ENTRY_PUSHING + a link, then the page's
 * thread-free list). Pages without a checked key (aligned or guarded blocks, abandoned pages),
 * huge blocks, other regions and bad pointers go to free.ts `free`. A separate function, not
 * a branch in freeChecked: that one stays small enough for V8 to inline.
 */
export function freeCheckedShared(p: number): void {
  // Literal offsets: see HOT_PATH_LITERALS in layout.ts (as freeChecked)
  const r = ctx.lastRegion;
  const delta = p - r.base;
  if (delta > 0 && delta < r.limit) {
    const off = delta | 0;
    const m = r.i32;
    const g = off >>> 22; //                                             SEGMENT_SHIFT
    const s = g << 11; //                                                HEADER_WORD_SHIFT
    const sh = m[r.segMap + g];
    const i = ((off & 4194303) >>> sh) & 63; //                           SEGMENT_MASK
    const pg = s + 16 + (i << 4); //                                      S_PAGES, PAGE_WORDS
    const d = off - m[pg + 7]; //                                         P_START
    const k = m[pg + 14]; //                                              P_DIV_SHIFT
    const q = Math.imul(d >> k, m[pg + 15]); //                           P_DIV_INV
    const key = m[pg + 8]; //                                             P_KEY
    if (
      off === delta && sh > 0 && d >= 0 && off < m[pg + 12] && ((d >> k) << k) === d && //  P_END
      (q ^ -2147483648) <= m[pg + 13] && //                                P_DIV_LIMIT
      (key & 0x40000000) !== 0 //                                         CHECKED_KEY: a checked page, no slow-free flag
    ) {
      const t = r.tbl;
      const x = (g << 18) + (i << 12) + q; //                              TABLE_SEGMENT_SHIFT, TABLE_COLUMN_SHIFT
      if (key === ctx.ownKey) {
        // claimed as another worker's free is (ENTRY_PENDING: the state a worker terminated
        // right after the claim leaves, which validate accepts), then linked and listed at once
        if (Atomics.compareExchange(t, x, 0xffff, 0xfffe) !== 0xffff) throw new DoubleFreeError(p); // ENTRY_LIVE, ENTRY_PENDING
        const h = s + 1040 + (i << 2); //                                 S_SEC + page index * SEC_WORDS
        t[x] = m[h + 1]; //                                               SEC_LOCAL
        m[h + 1] = q + 1;
        if (--m[pg + 3] <= (k >> 5)) outOfLine1(EXIT_WAKE, pg); //         P_USED, P_WAKE_SHIFT (exits: src/out-of-line.ts)
        return;
      }
      if (!pushThreadFreeChecked(t, m, pg, q + 1, r.baseSegment)) throw new DoubleFreeError(p);
      return;
    }
  }
  outOfLine1(EXIT_FREE, p);
}
