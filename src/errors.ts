import type { Stats } from "./stats.ts";

/** Thrown by `alloc` (and budgets) when memory cannot be had. Carries a stats snapshot. */
export class AllocationError extends Error {
  readonly size: number;
  readonly stats: Stats | null;
  constructor(size: number, stats: Stats | null, why = "out of memory") {
    super(`tsmalloc: cannot allocate ${size} bytes: ${why}`);
    this.name = "AllocationError";
    this.size = size;
    this.stats = stats;
  }
}

/** Thrown by free/realloc/usableSize for an address that is not a live block of any heap. */
export class InvalidPointerError extends Error {
  readonly ptr: number;
  constructor(ptr: number, why: string) {
    super(`tsmalloc: invalid pointer 0x${ptr.toString(16)}: ${why}`);
    this.name = "InvalidPointerError";
    this.ptr = ptr;
  }
}

/**
 * Thrown by free/realloc in secure mode (level 3+, or with debugFill) for a block that is
 * already free. Nothing was changed: every live block is intact and the heap keeps working.
 */
export class DoubleFreeError extends InvalidPointerError {
  constructor(ptr: number) {
    super(ptr, "double free (the block is already free)");
    this.name = "DoubleFreeError";
  }
}
