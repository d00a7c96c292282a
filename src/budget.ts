/**
 * Budgets (options maxReserved, maxCommitted; 0 = unlimited), checked only where memory
 * is taken from the OS: an arena or huge mapping reserved, a segment, page slot or huge
 * block committed. Before refusing, cached memory is given back (free segments, free page
 * slots and cached huge blocks purged; cached huge mappings unmapped) and the check runs
 * again. A refusal makes malloc return 0 and leaves every live block alone.
 *
 * Shared between workers, the budgets are process-wide: a check claims its bytes in the
 * root's shared total with a compare-exchange before it says yes (the commit or reserve that
 * follows consumes that credit), so attached workers together never pass the limit. Relief
 * only gives back the calling worker's own cached memory.
 */
import { ctx } from "./context.ts";
import { formatSize } from "./options.ts";
import { message } from "./log.ts";

/** Gives back cached memory: purge everything free (decommitting), and with `unmap` release cached mappings. */
let relief: (unmap: boolean) => void = () => {};
export function setRelief(f: (unmap: boolean) => void): void {
  relief = f;
}

function refuse(why: string): false {
  ctx.counters.budgetRefusals++;
  ctx.refusal = why;
  message(1, why);
  return false;
}

/**
 * Shared: raises the root's budget flag when this worker has a budget, so that from then on
 * every worker's emptied allocation pages stay only for the page delay (a refusal here could
 * not take another worker's back). Called when sharing begins and at each budget check.
 */
export function noteBudget(): void {
  const sc = ctx.counters.shared;
  if (sc !== null && (ctx.options.maxCommitted > 0 || ctx.options.maxReserved > 0) && sc.i32[sc.budgeted] === 0) {
    Atomics.store(sc.i32, sc.budgeted, 1);
  }
}

/** True when some worker of this shared allocator has (had) a budget; false when not shared. */
export function budgetAnywhere(): boolean {
  const sc = ctx.counters.shared;
  return sc !== null && Atomics.load(sc.i32, sc.budgeted) !== 0;
}

/** True when `bytes` more may be reserved; purges and unmaps cached memory first if needed. */
export function allowReserve(bytes: number): boolean {
  const max = ctx.options.maxReserved;
  const c = ctx.counters;
  if (c.shared !== null) {
    if (max > 0) noteBudget();
    // process-wide: claimed ahead in the shared total, so workers cannot overshoot together
    if (max === 0 || bytes <= 0 || c.claimShared("reserved", bytes, max)) return true;
    relief(true);
    if (c.claimShared("reserved", bytes, max)) return true;
  } else {
    if (max === 0 || c.reserved + bytes <= max) return true;
    relief(true);
    if (c.reserved + bytes <= max) return true;
  }
  return refuse(`maxReserved budget: reserving ${formatSize(bytes)} more would exceed ${formatSize(max)} (reserved ${formatSize(c.totalReserved)}${c.shared !== null ? " by all workers" : ""})`);
}

/** True when `bytes` more may be committed; purges cached memory first if needed. */
export function allowCommit(bytes: number): boolean {
  const max = ctx.options.maxCommitted;
  const c = ctx.counters;
  if (bytes <= 0 || max === 0) return true;
  if (c.shared !== null) {
    noteBudget();
    if (c.claimShared("committed", bytes, max)) return true;
    relief(false);
    if (c.claimShared("committed", bytes, max)) return true;
  } else {
    if (c.committed + bytes <= max) return true;
    relief(false);
    if (c.committed + bytes <= max) return true;
  }
  return refuse(`maxCommitted budget: committing ${formatSize(bytes)} more would exceed ${formatSize(max)} (committed ${formatSize(c.totalCommitted)}${c.shared !== null ? " by all workers" : ""})`);
}

/** Bytes that may still be reserved under maxReserved (Infinity when unlimited). */
export function reserveRoom(): number {
  const max = ctx.options.maxReserved;
  return max === 0 ? Infinity : Math.max(0, max - ctx.counters.totalReserved + ctx.counters.reserveCredit);
}

/** Records why an allocation failed for AllocationError (no budget involved). */
export function noteFailure(why: string): void {
  ctx.refusal = why;
  message(1, why);
}
