/**
 * A page's thread-free list: the word P_THREAD_FREE holds the head block's offset (16-byte
 * aligned) and four flag bits below it; other workers push, the owner takes the whole list
 * (mimalloc's `xthread_free`). Plain pages only: checked pages encode their links (secure.ts).
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

/** Atomic push of a block onto a page's thread-free list (a free from another worker). */
export function pushThreadFree(m: Int32Array, pg: number, off: number): void {
  let tf = Atomics.load(m, pg + P_THREAD_FREE);
  for (;;) {
    m[off >> 2] = tf & ~15;
    const seen = Atomics.compareExchange(m, pg + P_THREAD_FREE, tf, off | (tf & 15));
    if (seen === tf) return;
    tf = seen;
  }
}
