import type { Stats } from "./stats.ts";

/**
 * Thrown by `alloc` (and `reserveOsMemory`) when memory cannot be had: the OS refused, a
 * budget (maxReserved, maxCommitted) refused, or the size exceeds MAX_ALLOC_SIZE. The
 * message says which. `malloc` and friends return 0 instead.
 *
 * @example
 * ```ts
 * import { AllocationError, alloc, MAX_ALLOC_SIZE } from "@tsmalloc/tsmalloc";
 *
 * try {
 *   alloc(MAX_ALLOC_SIZE + 1);
 * } catch (e) {
 *   if (!(e instanceof AllocationError)) throw e;
 *   console.log(e.message, e.size, e.stats?.committed);
 * }
 * ```
 */
export class AllocationError extends Error {
  /** The size in bytes that was asked for. */
  readonly size: number;
  /** The allocator's stats when the allocation failed (null when none could be taken). */
  readonly stats: Stats | null;
  /** `why` ends the message: "cannot allocate <size> bytes: <why>". */
  constructor(size: number, stats: Stats | null, why = "out of memory") {
    super(`tsmalloc: cannot allocate ${size} bytes: ${why}`);
    this.name = "AllocationError";
    this.size = size;
    this.stats = stats;
  }
}

/**
 * Thrown by free/realloc/usableSize for an address that is not a live block of any heap
 * (outside the allocator's memory, in a free page, a freed huge block, or not the start of
 * a block). Nothing was changed: every live block is intact and the heap keeps working.
 *
 * @example
 * ```ts
 * import { free, InvalidPointerError, malloc } from "@tsmalloc/tsmalloc";
 *
 * const p = malloc(64);
 * try {
 *   free(p + 16);
 * } catch (e) {
 *   if (e instanceof InvalidPointerError) console.log(e.ptr === p + 16, e.message);
 * }
 * free(p);
 * ```
 */
export class InvalidPointerError extends Error {
  /** The address that was passed. */
  readonly ptr: number;
  /** `why` ends the message: "invalid pointer 0x<ptr>: <why>". */
  constructor(ptr: number, why: string) {
    super(`tsmalloc: invalid pointer 0x${ptr.toString(16)}: ${why}`);
    this.name = "InvalidPointerError";
    this.ptr = ptr;
  }
}

/**
 * Thrown by free/realloc for a block that is already free, at every secure level (its page's
 * side table says so; a huge block's header). Nothing was changed: every live block is
 * intact and the heap keeps working. With a shared allocator, of two frees of one block by
 * two workers at the same moment exactly one succeeds (a compare-exchange on its entry).
 *
 * @example
 * ```ts
 * import { configure, DoubleFreeError, free, malloc } from "@tsmalloc/tsmalloc";
 *
 * configure({ secure: 3 });
 * const p = malloc(64);
 * free(p);
 * try {
 *   free(p);
 * } catch (e) {
 *   console.log(e instanceof DoubleFreeError);  // true
 * }
 * ```
 */
export class DoubleFreeError extends InvalidPointerError {
  /** `ptr` is the block that was already free. */
  constructor(ptr: number) {
    super(ptr, "double free (the block is already free)");
    this.name = "DoubleFreeError";
  }
}
