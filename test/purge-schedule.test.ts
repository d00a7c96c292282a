// When freed memory is purged (issue 15: a live set that shrinks and grows again must not
// fault its pages back in on every cycle). mimalloc's schedule: the first freed page slot of
// a segment sets its purge deadline (purgeDelay) and each further one pushes it back by
// 1 ms; a segment released to its arena while others wait pushes the arena's purges back by
// 10 ms; neither beyond one delay from now. The clock is ctx.now, replaced here by a fake one,
// so nothing depends on how fast this machine runs. A purge the program refaults right away
// doubles the delays (src/purge-delay.ts); quiet stretches halve them again.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { collect, free, getOption, Heap, malloc, setOption, stats } from "../mod.ts";
import { ctx } from "../src/context.ts";
import { PURGE_FACTOR_MAX, purgeFactor } from "../src/purge-delay.ts";
import { COLLECT_EVERY, SWEEP_SLOW_MAX } from "../src/heap.ts";
import { PURGE_SLOW_MAX } from "../src/segment.ts";

const t = suite("purge-schedule");
const MiB = 1024 * 1024;

/** Each fake clock starts 1,000 s after the last one: no purge an earlier test did looks recent. */
let epoch = 0;

function withClock(f: (advance: (ms: number) => void) => void): void {
  const real = ctx.now, delay0 = getOption("purgeDelay"), mult0 = getOption("arenaPurgeMult");
  let now = real() + 1e7 + (epoch += 1e6);
  ctx.now = () => now;
  try {
    setOption("purgeDelay", 10);
    setOption("arenaPurgeMult", 10);
    collect(true); // everything free is purged now (a forced purge: refaults after it never count as premature)
    f((ms) => (now += ms));
  } finally {
    ctx.now = real;
    setOption("purgeDelay", delay0);
    setOption("arenaPurgeMult", mult0);
    collect();
  }
}

t("free page slots: a series of frees pushes the segment's purge back (mimalloc's purge_extend_delay); it happens once they stop", () => {
  withClock((advance) => {
    const h = Heap.create();
    const keep = h.malloc(100); // a page of another class keeps the segment live
    const a = Array.from({ length: 300 }, () => h.malloc(1000));
    const b = Array.from({ length: 300 }, () => h.malloc(1000));
    for (const p of a) h.free(p);
    collect(); // a's pages go back to the segment: due in 10 ms
    const p1 = stats().pendingPurge;
    assert.ok(p1 >= 64 * 1024, `a's page slots wait to be purged (${p1})`);
    advance(9);
    for (const p of b) h.free(p);
    collect(); // more page slots of the same segment: the deadline moves
    const p2 = stats().pendingPurge;
    assert.ok(p2 > p1, `b's page slots wait too (${p1} -> ${p2})`);
    advance(1.5); // 10.5 ms after a's pages were freed
    collect();
    assert.is(stats().pendingPurge, p2, "not purged 10 ms after the first free: the frees that followed pushed it back");
    advance(20);
    collect();
    assert.ok(stats().pendingPurge <= p2 - p1, `purged once the series stopped (${p2} -> ${stats().pendingPurge})`);
    h.free(keep);
    h.destroy();
  });
});

t("free segments: a release while others wait pushes the arena's purge back (mimalloc: 10 ms), never beyond one delay", () => {
  withClock((advance) => {
    const h = Heap.create();
    // 1 MiB blocks: four to a segment (three before session 16: page 0 started 8 KiB in); two groups of whole segments
    const a = Array.from({ length: 8 }, () => h.malloc(1 * MiB));
    const b = Array.from({ length: 8 }, () => h.malloc(1 * MiB));
    for (const p of a) h.free(p);
    collect(); // a's segments go back to the arena: due in 100 ms
    const p1 = stats().pendingPurge;
    assert.ok(p1 >= 2 * 3 * MiB, `a's segments wait to be purged (${p1})`); // (3-4 MiB of blocks each: 3 blocks at levels 1+)
    advance(60);
    for (const p of b) h.free(p);
    collect();
    const p2 = stats().pendingPurge;
    assert.ok(p2 > p1, `b's segments wait too (${p1} -> ${p2})`);
    advance(45); // 105 ms after a's release
    collect();
    assert.is(stats().pendingPurge, p2, "a's segments were not purged after their 100 ms: b's release pushed the arena's purge back");
    advance(60); // 100 ms after b's release: nothing waits longer than one delay
    collect();
    assert.ok(stats().pendingPurge < p1, `all purged one delay after the last release (${p2} -> ${stats().pendingPurge})`);
    h.destroy();
  });
});

t("a premature purge (pages committed again within an arena delay) doubles the delays, once per purge, up to the cap; quiet stretches halve them; setOption resets them", () => {
  withClock((advance) => {
    const h = Heap.create();
    const keep = h.malloc(100); // a page of another class keeps the segment live
    const cycle = () => {
      const a = Array.from({ length: 300 }, () => h.malloc(1000));
      for (const p of a) h.free(p);
      collect(); // a's pages go back to the segment
    };
    cycle();
    assert.is(purgeFactor(), 1);
    const p1 = stats().pendingPurge;
    assert.ok(p1 >= 64 * 1024, `page slots wait to be purged (${p1})`);
    advance(20);
    collect();
    assert.ok(stats().pendingPurge < p1, "purged after purgeDelay (10 ms, and 1 ms for each further page)");
    advance(5);
    cycle(); // the same slots committed again 5 ms after their purge: five pages, one purge
    assert.is(purgeFactor(), 2, "one premature purge doubles the factor once");
    const p2 = stats().pendingPurge;
    advance(16);
    collect();
    assert.is(stats().pendingPurge, p2, "not purged after 16 ms (at factor 1: due after 10 + 5 ms): the delay is 20 ms now");
    advance(14);
    collect();
    assert.ok(stats().pendingPurge < p2, "purged after 30 ms");
    for (let i = 0; i < 8; i++) {
      advance(1);
      cycle();
      advance(PURGE_FACTOR_MAX * 10 + 50);
      collect();
    }
    assert.is(purgeFactor(), PURGE_FACTOR_MAX, "capped");
    // four arena delays (4 x 100 ms x factor) without a refault halve it, and so on
    advance(4 * 100 * PURGE_FACTOR_MAX + 1);
    assert.is(purgeFactor(), PURGE_FACTOR_MAX / 2);
    advance(4 * 100 * (PURGE_FACTOR_MAX / 2) + 1);
    assert.is(purgeFactor(), PURGE_FACTOR_MAX / 4);
    setOption("purgeDelay", 10);
    assert.is(purgeFactor(), 1, "setOption resets it");
    h.free(keep);
    h.destroy();
  });
});

t("an empty page kept past its deadline in a loop that never yields does not make every huge malloc run a whole purge pass (only the timer or mallocSlow sweeps kept pages: session 18, an 8 MiB pair 400 -> 740 ns after 1 MiB pairs)", () => {
  withClock((advance) => {
    free(malloc(8 * MiB)); // the huge cache exists
    const cache = ctx.huge!;
    const h = Heap.create();
    const keep = h.malloc(100);
    h.free(h.malloc(1000)); // that class's allocation page is empty: kept for 10 ms
    advance(50); // its deadline passed; no event-loop turn, so no timer ran
    const purge = cache.purge;
    let passes = 0;
    cache.purge = function (this: typeof cache, ...a: Parameters<typeof purge>) {
      passes++;
      return purge.apply(this, a);
    };
    try {
      for (let i = 0; i < 200; i++) free(malloc(8 * MiB)); // the clock stands still: nothing new is due
    } finally {
      cache.purge = purge;
    }
    assert.ok(passes <= 1, `purge passes during 200 huge pairs: ${passes}`);
    h.free(keep);
    h.destroy();
  });
});

/** A heap holding `pages` emptied 64 KiB pages of the 1 KiB class, every deadline passed (no event-loop turn since). */
function keptExpired(h: Heap, pages: number, advance: (ms: number) => void): { keep: number; kept: () => number } {
  const keep = h.malloc(100);
  const bs = Array.from({ length: 64 * pages }, () => h.malloc(1000));
  for (const p of bs) h.free(p);
  const kept = () => (h as unknown as { kept: unknown[] }).kept.length;
  assert.ok(kept() >= pages - 10, `the emptied pages are kept with their heap (${kept()})`); // (not shared, purgeDelay 10)
  advance(10 * PURGE_FACTOR_MAX * 2); // every deadline passed, at any factor
  return { keep, kept };
}

t("the slow path's sweep of expired kept pages gives back at most SWEEP_SLOW_MAX per malloc call, and the next sweep the next ones (session 22: one malloc purged 620 kept pages, 205 MB, and stalled 20-27 ms)", () => {
  withClock((advance) => {
    const h = Heap.create();
    const { keep, kept } = keptExpired(h, 160, advance);
    const calls = ctx.counters.calls;
    const slow = h as unknown as { slowCalls: number };
    const ps: number[] = [];
    for (const size of [500, 400]) { // small classes with no page yet: each malloc takes the slow path
      const k0 = kept();
      slow.slowCalls = COLLECT_EVERY - 1; // its slow path sweeps
      const before = calls.purge;
      ps.push(h.malloc(size));
      const purges = calls.purge - before;
      // (the class's allocation page, empty but not kept until then, joins the kept ones: -1)
      assert.ok(k0 - kept() >= SWEEP_SLOW_MAX - 1 && k0 - kept() <= SWEEP_SLOW_MAX + 1, `kept pages given back by malloc(${size}): ${k0} -> ${kept()}`);
      // a page given back after its delay is a purge of its slot and of its side-table column
      assert.ok(purges >= SWEEP_SLOW_MAX && purges <= 2 * SWEEP_SLOW_MAX + 2, `purges in malloc(${size}): ${purges}`);
    }
    for (const p of ps) h.free(p);
    h.free(keep);
    h.destroy();
  });
});

t("a new page takes kept pages' slots only as it needs them, unpurged: small classes grow into a heap's kept pages without a new segment or a burst of purges, and a medium page purges none of them (session 22: 316 purges in one malloc of such a loop)", () => {
  withClock((advance) => {
    const h = Heap.create();
    const { keep, kept } = keptExpired(h, 160, advance);
    const k0 = kept();
    const segments0 = stats().segments;
    const calls = ctx.counters.calls;
    let worstPurges = 0, worstDrop = 0;
    const live: number[] = [];
    // ~4.3 MB of 16-128 B blocks: about 70 of the kept pages' slots
    for (let i = 0; i < 60_000; i++) {
      const before = calls.purge, k = kept();
      live.push(h.malloc(16 + (i & 7) * 16));
      if (calls.purge - before > worstPurges) worstPurges = calls.purge - before;
      if (k - kept() > worstDrop) worstDrop = k - kept();
    }
    assert.ok(kept() < k0, `the kept pages served the new classes (${k0} -> ${kept()})`);
    assert.is(stats().segments, segments0, "no new segment while kept pages could serve");
    assert.ok(worstDrop <= SWEEP_SLOW_MAX + 2, `kept pages given back by one malloc: at most ${worstDrop}`);
    assert.ok(worstPurges <= 2 * SWEEP_SLOW_MAX + 2, `purges in one malloc call: at most ${worstPurges}`);
    // a medium page needs a segment of its own: the small kept pages go back, but unpurged
    const before = calls.purge;
    live.push(h.malloc(3000));
    assert.ok(calls.purge - before <= 2 * SWEEP_SLOW_MAX + 2, `purges in the medium malloc: ${calls.purge - before}`);
    for (const p of live) h.free(p);
    h.free(keep);
    h.destroy();
  });
});

/** Pages (64 KiB slots) holding h's live blocks after `live` 64 B blocks were replaced at random (a fixed sequence) 60,000 times; frees them. */
function churnPages(h: Heap, live: number): number {
  let seed = 12345;
  const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) | 0) >>> 8) % live;
  const ps = Array.from({ length: live }, () => h.malloc(64));
  for (let i = 0; i < 60_000; i++) {
    const j = next();
    h.free(ps[j]);
    ps[j] = h.malloc(64);
  }
  const pages = new Set<number>();
  h.visit((p) => void pages.add(Math.floor(p / 65536)));
  for (const p of ps) h.free(p);
  return pages.size;
}

t("a new live set fills the pages in use before kept empty ones: it does not spread over a freed live set's kept pages (session 23: 650 pages kept after mixed-100000 took larson's allocations in turn, 17-25% slower)", () => {
  withClock(() => {
    const h0 = Heap.create();
    const alone = churnPages(h0, 3000); // about three pages' worth, in a heap with nothing kept
    h0.destroy();
    const h = Heap.create();
    const big = Array.from({ length: 200 * 1024 }, () => h.malloc(64)); // ~200 pages of the same class
    for (const p of big) h.free(p);
    const kept = (h as unknown as { kept: unknown[] }).kept.length;
    assert.ok(kept >= 190, `the emptied pages are kept with their heap (${kept})`); // (not shared, purgeDelay 10, the clock stands)
    const pageCount = () => (h as unknown as { pageCount: number }).pageCount;
    const pages0 = pageCount();
    const spread = churnPages(h, 3000);
    assert.ok(spread <= alone + 2, `pages holding the new live set: ${spread}, against ${alone} in a heap with no kept pages`);
    assert.is(pageCount(), pages0, "the kept pages served it: no new page"); // (a kept page is taken back before a fresh one)
    h.destroy();
  });
});

t("page slots given back while purgeDelay was -1 are purged after the delay once it is set again (they stayed committed for good before: an adversarial user, session 23)", () => {
  withClock((advance) => {
    setOption("purgeDelay", -1);
    const h = Heap.create();
    const keep = h.malloc(64); // holds the segment: its free slots are page slots, not a free segment
    const bs = Array.from({ length: 64 * 20 }, () => h.malloc(1000)); // ~20 pages of one class
    for (const p of bs) h.free(p); // pages go back at once (no keeping at -1), nothing purged
    const committed0 = stats().committed;
    advance(10_000);
    collect(); // (-1: nothing is purged)
    assert.is(stats().committed, committed0, "purgeDelay -1: the free slots stay committed");
    setOption("purgeDelay", 10);
    advance(10 * PURGE_FACTOR_MAX + 1); // their delay, at any factor
    collect(); // the purges due (and the class's empty allocation page goes back: its purge waits its delay)
    const dropped = committed0 - stats().committed;
    assert.ok(dropped >= 15 * 64 * 1024, `the slots freed at -1 are purged once the delay is 10 again: ${dropped} bytes`);
    h.free(keep);
    h.destroy();
  });
});

t("a slow-path event purges the free page slots of at most PURGE_SLOW_MAX segments whose delay ran out; the next events and collect take the rest (session 22's review: one malloc purged 39 MiB in 3.35 ms)", () => {
  withClock((advance) => {
    const h = Heap.create();
    const SEG = 4 * MiB;
    const keepers = new Map<number, number>(); // one live block per 4 MiB of address space: every segment stays live
    const rest: number[] = [];
    while (keepers.size < 3 * PURGE_SLOW_MAX + 3) {
      const p = h.malloc(1000);
      const s = Math.floor(p / SEG);
      if (keepers.has(s)) rest.push(p);
      else keepers.set(s, p);
    }
    for (const p of rest) h.free(p);
    collect(); // the emptied pages go back to their segments: their slots wait a delay
    advance(10 * PURGE_FACTOR_MAX * 2); // every deadline passed, at any factor
    const due0 = stats().pendingPurge;
    assert.ok(due0 >= 2 * PURGE_SLOW_MAX * SEG, `free slots of more than ${2 * PURGE_SLOW_MAX} segments wait (${due0} bytes)`);
    const event = () => { // one slow-path event that checks for due purges: a page goes back to its segment
      const h2 = Heap.create();
      h2.free(h2.malloc(100));
      h2.destroy();
    };
    let left = due0;
    for (let i = 0; i < 2; i++) {
      event();
      const now = stats().pendingPurge;
      assert.ok(left - now > 0, `event ${i}: some of what was due is purged (${left} -> ${now})`);
      assert.ok(left - now <= PURGE_SLOW_MAX * SEG, `event ${i}: at most ${PURGE_SLOW_MAX} segments' slots purged (${left} -> ${now})`);
      left = now;
    }
    collect(); // (unbounded: the program asked)
    assert.ok(stats().pendingPurge < SEG, `collect purges the rest (${stats().pendingPurge})`);
    for (const p of keepers.values()) h.free(p);
    h.destroy();
  });
});

t.run();
