// A worker can be terminated between any two statements of the allocator (terminate() stops
// JS at the next interrupt check), and its pages live on for other workers. Multi-step
// updates must leave a state that is safe to continue from after every prefix: at worst a
// leak, never a block handed out twice. Here: page extension, stopped at every write.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { binOf } from "../src/bins.ts";
import { P_FREE, PAGE_WORDS, S_PAGES } from "../src/layout.ts";
import { extendPage, initPage } from "../src/page.ts";

const t = suite("interrupt");

class Terminated extends Error {}

/** `m` whose writes throw once `budget` of them were made (a worker terminated there). */
function stopping(m: Int32Array, budget: number): Int32Array {
  let writes = 0;
  return new Proxy(m, {
    set(target, k, v) {
      if (++writes > budget) throw new Terminated();
      (target as unknown as Record<PropertyKey, unknown>)[k] = v;
      return true;
    },
    get(target, k) {
      const v = (target as unknown as Record<PropertyKey, unknown>)[k];
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** Pops every block on the page's free list (plain, level-0 links: the next offset in the block's first word). */
function popAll(m: Int32Array, pg: number, out: number[]): void {
  for (let b = m[pg + P_FREE], n = 0; b !== 0; n++) {
    if (n > 100_000) throw new Error("free list cycle");
    out.push(b);
    const next = m[b >> 2];
    m[b >> 2] = 0; // handed out: the caller owns (and may overwrite) its bytes
    m[pg + P_FREE] = next;
    b = next;
  }
}

t("page extension stopped after any write (a worker terminated mid-extension) never threads a block twice (found by npm run soak: the head was published before the capacity, and the next extension threaded live blocks again)", () => {
  for (const size of [16, 112, 1024, 8192]) {
    const pg = S_PAGES + 0 * PAGE_WORDS;
    const start = 65536, end = 65536 + 65536;
    // one small "segment" reused (thousands of fresh 4 MiB arrays made V8 give memory back
    // while the memory tests that follow measured RSS)
    const m = new Int32Array(end / 4);
    for (let budget = 0; ; budget++) {
      m.fill(0);
      initPage(m, pg, binOf(size), start, end, 1, 1);
      const handed: number[] = [];
      popAll(m, pg, handed); // the first extension's blocks are live
      let finished = false;
      try {
        extendPage(stopping(m, budget), pg);
        finished = true;
      } catch (e) {
        if (!(e instanceof Terminated)) throw e;
      }
      // another worker carries on with the page: everything it can still hand out
      popAll(m, pg, handed);
      while (extendPage(m, pg)) popAll(m, pg, handed);
      const seen = new Set<number>();
      for (const b of handed) {
        assert.ok(!seen.has(b), `size ${size}, stopped after ${budget} writes: block ${b} handed out twice`);
        assert.ok(b >= start && b + size <= end, "inside the page");
        seen.add(b);
      }
      if (finished) break;
    }
  }
});

t.run();
