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

/** True when `bytes` more may be reserved; purges and unmaps cached memory first if needed. */
export function allowReserve(bytes: number): boolean {
  const max = ctx.options.maxReserved;
  const c = ctx.counters;
  if (c.shared !== null) {
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
