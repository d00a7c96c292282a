/** Argument checks shared by every entry point; only reached off the fast paths. */
import { MAX_ALLOC_SIZE } from "./layout.ts";

/** Throws TypeError/RangeError unless n is a non-negative integer. */
export function checkSize(n: unknown, what = "size"): asserts n is number {
  if (typeof n !== "number") throw new TypeError(`tsmalloc: ${what} must be a number, got ${typeof n}`);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`tsmalloc: ${what} must be a non-negative integer, got ${n}`);
}

/** Throws unless a is a power of two. */
export function checkAlignment(a: unknown): asserts a is number {
  if (typeof a !== "number") throw new TypeError(`tsmalloc: alignment must be a number, got ${typeof a}`);
  if (!Number.isInteger(a) || a <= 0 || 2 ** Math.round(Math.log2(a)) !== a) {
    throw new RangeError(`tsmalloc: alignment must be a power of two, got ${a}`);
  }
}

/** Throws unless p is a plausible address (a non-negative integer). */
export function checkPointer(p: unknown): asserts p is number {
  if (typeof p !== "number") throw new TypeError(`tsmalloc: pointer must be a number, got ${typeof p}`);
  if (!Number.isInteger(p) || p < 0) throw new RangeError(`tsmalloc: pointer must be a non-negative integer, got ${p}`);
}

export function tooLarge(size: number): boolean {
  return size > MAX_ALLOC_SIZE;
}
