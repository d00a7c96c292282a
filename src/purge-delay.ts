/**
 * The purge delays in force: `purgeDelay` (ms) for free page slots and `purgeDelay *
 * arenaPurgeMult` for free segments and cached huge blocks (mimalloc's purge_delay and
 * arena_purge_mult), both times an adaptive factor.
 *
 * mimalloc's 10 ms suits C, which runs a shrink-then-grow cycle of 100,000 blocks in a few
 * milliseconds. The same cycle in JS takes 10-30 times longer, so a fixed delay purges the
 * pages the next growth faults back in (grow-shrink: about 200 MiB purged and refaulted per
 * cycle). So, like jemalloc's decay adapting to what was reused: memory committed again
 * within an arena delay of being purged (a premature purge, a "refault") doubles the factor
 * (once per purge, however many of its pages come back), up to PURGE_FACTOR_MAX; every quiet stretch of four arena delays without one halves it.
 * A program that frees and then idles still gets its memory back, at most PURGE_FACTOR_MAX
 * times later (160 ms for page slots, 1.6 s for segments at the defaults). Per worker;
 * setting either option resets the factor to 1.
 */
import { ctx } from "./context.ts";

/** Largest factor on the configured delays. */
export const PURGE_FACTOR_MAX = 16;

let factor = 1;
/** ms (ctx.now()) of the last refault or factor change. */
let since = 0;
/** The purge (its ms) whose refault last doubled the factor: one purge doubles it once. */
let counted = 0;

/** The factor now (1..PURGE_FACTOR_MAX), halved once per quiet stretch. */
export function purgeFactor(): number {
  if (factor > 1) {
    const now = ctx.now();
    if (now - since >= 4 * ctx.options.purgeDelay * ctx.options.arenaPurgeMult * factor) {
      factor >>= 1;
      since = now;
    }
  }
  return factor;
}

/** ms before a free page slot is purged (negative: never; 0: at once). */
export function pageDelay(): number {
  const d = ctx.options.purgeDelay;
  return d <= 0 ? d : d * purgeFactor();
}

/** ms before a free segment or cached huge block is purged (negative: never; 0: at once). */
export function arenaDelay(): number {
  return pageDelay() * ctx.options.arenaPurgeMult;
}

/** Committed bytes of free memory waiting for its purge (segment.ts registers it: free page slots, free segments, cached huge mappings). */
let waiting: () => number = () => 0;

/** Registers how to count the committed bytes waiting for a purge. */
export function setWaiting(f: () => number): void {
  waiting = f;
}

/**
 * Memory purged on the schedule at `purgedAt` (ms; 0 = never; forced purges do not record
 * it) is committed again now: a premature purge doubles the factor — unless the free memory
 * already waiting for its purge outweighs the rest of what is committed (a churn of huge
 * blocks: longer delays would only hold more freed memory; the soak's huge mix held 2 GiB
 * committed for 300 MiB live at 16x).
 */
export function noteRecommit(purgedAt: number): void {
  if (purgedAt === 0 || ctx.options.purgeDelay <= 0) return;
  const now = ctx.now();
  if (now < purgedAt || now - purgedAt >= arenaDelay()) return;
  since = now;
  if (purgedAt <= counted) return;
  counted = purgedAt;
  if (factor >= PURGE_FACTOR_MAX) return;
  const w = waiting();
  if (w > ctx.counters.totalCommitted - w) return;
  factor <<= 1;
}

/** Back to the configured delays (an option changed). */
export function resetPurgeFactor(): void {
  factor = 1;
  since = 0;
  counted = 0;
}
