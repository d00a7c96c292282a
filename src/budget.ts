/**
 * Budgets (options maxReserved, maxCommitted; 0 = unlimited), checked only where memory
 * is taken from the OS: an arena or huge mapping reserved, a segment, page slot or huge
 * block committed. Before refusing, cached memory is given back (free segments, free page
 * slots and cached huge blocks purged; cached huge mappings unmapped) and the check runs
 * again. A refusal makes malloc return 0 and leaves every live block alone.
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
  if (max === 0 || ctx.counters.reserved + bytes <= max) return true;
  relief(true);
  if (ctx.counters.reserved + bytes <= max) return true;
  return refuse(`maxReserved budget: reserving ${formatSize(bytes)} more would exceed ${formatSize(max)} (reserved ${formatSize(ctx.counters.reserved)})`);
}

/** True when `bytes` more may be committed; purges cached memory first if needed. */
export function allowCommit(bytes: number): boolean {
  const max = ctx.options.maxCommitted;
  if (bytes <= 0 || max === 0 || ctx.counters.committed + bytes <= max) return true;
  relief(false);
  if (ctx.counters.committed + bytes <= max) return true;
  return refuse(`maxCommitted budget: committing ${formatSize(bytes)} more would exceed ${formatSize(max)} (committed ${formatSize(ctx.counters.committed)})`);
}

/** Bytes that may still be reserved under maxReserved (Infinity when unlimited). */
export function reserveRoom(): number {
  const max = ctx.options.maxReserved;
  return max === 0 ? Infinity : Math.max(0, max - ctx.counters.reserved);
}

/** Records why an allocation failed for AllocationError (no budget involved). */
export function noteFailure(why: string): void {
  ctx.refusal = why;
  message(1, why);
}
