/**
 * A page's thread-free list head: the word P_THREAD_FREE holds the head block's index + 1
 * shifted left by 4 and four flag bits below it; other workers push (secure.ts
 * pushThreadFreeChecked: the links are side-table entries), the owner takes the whole list
 * (mimalloc's `xthread_free`).
 */
import { P_THREAD_FREE } from "./layout.ts";

/** Atomically takes a page's whole thread-free list (keeping its flag bits); returns its head or 0. */
export function takeThreadFree(m: Int32Array, pg: number): number {
  let tf = m[pg + P_THREAD_FREE];
  for (;;) {
    const seen = Atomics.compareExchange(m, pg + P_THREAD_FREE, tf, tf & 15);
    if (seen === tf) return tf & ~15;
    tf = seen;
  }
}
