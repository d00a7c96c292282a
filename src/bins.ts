/**
 * Size classes, after mimalloc: 16-byte granularity up to 64 B, then four classes per
 * power of two (worst internal waste < 25%), up to LARGE_OBJ_MAX. Larger is huge.
 */
import { KiB, LARGE_OBJ_MAX, MiB, MEDIUM_OBJ_MAX, PageKind, SMALL_OBJ_MAX } from "./layout.ts";

/** Class of a size in 1..LARGE_OBJ_MAX (sizes 0..16 are class 1). */
export function binOf(size: number): number {
  const w = (size + 7) >>> 3; // 8-byte words
  if (w <= 8) return w <= 2 ? 1 : (w + 1) >>> 1;
  const x = w - 1;
  const b = 31 - Math.clz32(x);
  return (b << 2) + ((x >>> (b - 2)) & 3) - 7;
}

function buildBinSizes(): Int32Array {
  const maxBin = binOf(LARGE_OBJ_MAX);
  const sizes = new Int32Array(maxBin + 1);
  for (let w = 1; w <= LARGE_OBJ_MAX >>> 3; w++) {
    const b = binOf(w << 3);
    if ((w << 3) > sizes[b]) sizes[b] = w << 3;
  }
  return sizes;
}

/** Block size in bytes of each class; index 0 unused. */
export const BIN_SIZE: Int32Array = buildBinSizes();
export const BIN_COUNT: number = BIN_SIZE.length;
/** Index of the queue of full pages in a heap's queue table. */
export const BIN_FULL: number = BIN_COUNT;

export function pageKindOfBin(bin: number): PageKind {
  const s = BIN_SIZE[bin];
  return s <= SMALL_OBJ_MAX ? PageKind.Small : s <= MEDIUM_OBJ_MAX ? PageKind.Medium : PageKind.Large;
}

/**
 * Usable size of a huge block requested with `size` bytes (> LARGE_OBJ_MAX), as mimalloc's
 * `_mi_os_good_alloc_size`: rounded up to 256 KiB below 8 MiB, 1 MiB below 32 MiB, 4 MiB
 * beyond — a step of at most 12.5% of the size, so a block grown by small steps moves (and is
 * copied) at most once per step. Always a multiple of HUGE_ROUND (the mapping granularity).
 */
export function hugeBlockSize(size: number): number {
  const step = size < 8 * MiB ? 256 * KiB : size < 32 * MiB ? MiB : 4 * MiB;
  return Math.ceil(size / step) * step;
}

/** The usable size malloc(size) would give (size already validated). */
export function goodSizeOf(size: number): number {
  return size <= LARGE_OBJ_MAX ? BIN_SIZE[binOf(size)] : hugeBlockSize(size);
}
