// Memory returned to the OS and truthful accounting (issue 5):
//   - FFI: RSS (VmRSS) returns to within a few MiB of its baseline after ~300 MiB of mixed
//     sizes are freed and collect(true) runs; buffer backend: RSS cannot drop (documented),
//     freed memory is reused instead (a second round does not grow RSS)
//   - reserved (virtual) stays flat over many rounds of allocating and freeing ~200 MiB
//   - stats().resident moves with the kernel's VmRSS
//   - freed memory is purged after the delay without collect (timer), free segments wait
//     purgeDelay * arenaPurgeMult; collect(true) purges free page slots inside live segments
//   - purgeDecommits = false resets (MADV_FREE) and keeps the bytes committed
//   - OS calls are counted by kind; stats() is plain JSON-able data; printStats prints a table
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  backend, bytes, collect, formatStats, free, getOption, goodSize, Heap, malloc, printStats, setOption, stats,
} from "../mod.ts";
import { describeChild, runChild } from "./_child.ts";
import { checkPattern, fillPattern } from "./_util.ts";
import { usage } from "../src/usage.ts";
import { dropHugeCache, gc, isFfi, mib, MiB, mixedSizes, rss, settle, sleep } from "./_mem.ts";

const t = suite("memory");
const ffi = isFfi();
const kind = backend().kind;

/** Allocates every size, writes all of it; returns the addresses (in a typed array: no JS garbage per block). */
function allocAll(sizes: number[], out: Float64Array): number {
  let total = 0;
  for (let i = 0; i < sizes.length; i++) {
    const p = malloc(sizes[i]);
    if (p === 0) assert.unreachable(`malloc(${sizes[i]}) returned 0`);
    bytes(p, sizes[i]).fill((i & 255) | 1);
    out[i] = p;
    total += sizes[i];
  }
  return total;
}
function freeAll(ps: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) free(ps[i]);
}

const SIZES_300 = mixedSizes(300 * MiB, 1);
const PS = new Float64Array(SIZES_300.length);

if (ffi) {
  t(`${kind}: RSS returns to within 8 MiB of the baseline after freeing ~300 MiB of mixed sizes and collect(true)`, () => {
    const base = settle();
    const total = allocAll(SIZES_300, PS);
    const peak = rss();
    // the memory really was touched: otherwise the test below proves nothing. Asked of our own
    // ranges (mincore): process RSS also moves with the runtime's GC (Bun under load: +268 MiB
    // for 309.5 MiB written, CI at a86cdb2); a failure here left ~300 MiB live for later tests
    const touched = stats().resident - base.resident;
    if (!(touched > total * 0.9)) freeAll(PS, SIZES_300.length);
    assert.ok(touched > total * 0.9, `resident grew only ${mib(touched)} for ${mib(total)} written`);
    freeAll(PS, SIZES_300.length);
    const after = settle();
    assert.ok(
      after.rss - base.rss < 8 * MiB,
      `RSS ${mib(base.rss)} -> ${mib(peak)} (${mib(total)} live) -> ${mib(after.rss)} after free + collect(true)`,
    );
    assert.ok(after.committed - base.committed < 1 * MiB, `committed ${mib(base.committed)} -> ${mib(after.committed)}`);
    assert.ok(after.resident - base.resident < 1 * MiB, `resident ${mib(base.resident)} -> ${mib(after.resident)}`);
  });
} else {
  t("buffer backend: RSS cannot drop (SharedArrayBuffer memory is never returned to the OS), so freed memory is reused: a second ~300 MiB round does not grow RSS", () => {
    const base = settle();
    allocAll(SIZES_300, PS);
    freeAll(PS, SIZES_300.length);
    const first = settle();
    const total = allocAll(SIZES_300, PS);
    freeAll(PS, SIZES_300.length);
    const second = settle();
    assert.ok(
      second.rss - first.rss < 8 * MiB,
      `RSS ${mib(base.rss)} -> ${mib(first.rss)} after round 1 -> ${mib(second.rss)} after round 2 (${mib(total)} per round)`,
    );
    // the accounting still drops: the memory is free (and zeroed), only the OS cannot take it back
    assert.ok(second.committed - base.committed < 1 * MiB, `committed ${mib(base.committed)} -> ${mib(second.committed)}`);
    assert.is(stats().resident, -1, "resident is unknown (-1) on the buffer backend");
  });
}

t("reserved stays flat over 12 rounds of allocating and freeing ~200 MiB (collect(true) every third round)", () => {
  const sizes = mixedSizes(200 * MiB, 7);
  const ps = new Float64Array(sizes.length);
  const order = sizes.map((_, i) => i);
  let x = 99;
  const reserved: number[] = [];
  let peakAfterFirst = 0;
  let firstPeak = 0;
  for (let round = 0; round < 12; round++) {
    // same sizes, different order each round
    for (let i = order.length - 1; i > 0; i--) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const j = x % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (const i of order) {
      const p = malloc(sizes[i]);
      if (p === 0) assert.unreachable(`round ${round}: malloc(${sizes[i]}) returned 0`);
      bytes(p, Math.min(sizes[i], 4096)).fill(round);
      ps[i] = p;
    }
    const r = stats().reserved;
    if (round === 0) firstPeak = r;
    else peakAfterFirst = Math.max(peakAfterFirst, r);
    for (let k = order.length - 1; k >= 0; k--) free(ps[order[k]]);
    if (round % 3 === 2) collect(true);
    reserved.push(stats().reserved);
  }
  assert.ok(
    peakAfterFirst <= firstPeak + 64 * MiB,
    `reserved at the peak of round 1: ${mib(firstPeak)}, later rounds up to ${mib(peakAfterFirst)}; after each round: ${reserved.map(mib).join(", ")}`,
  );
  const last = reserved.slice(3);
  assert.ok(Math.max(...last) - Math.min(...last) <= 64 * MiB, `reserved after rounds 4..12: ${last.map(mib).join(", ")}`);
});

/** A full GC, a pause for the runtime's helper threads to give swept pages back, and another GC. */
async function quiet(): Promise<void> {
  gc();
  await sleep(150);
  gc();
}

if (ffi) {
  t(`${kind}: stats().resident moves with the kernel's VmRSS (within 12 MiB over ~120 MiB; VmRSS also counts the runtime's own pages)`, async () => {
    const hs: number[] = [];
    const s0 = settle();
    // V8 sweeps and gives pages back on helper threads after gc() returns: let the runtime's
    // own pages settle before each reading (session 30's CI: VmRSS moved 13.5 MiB less than
    // the 91 MiB touched, the runtime's pages going back between the two readings)
    await quiet();
    const r0 = rss();
    const res0 = stats().resident;
    void s0;
    hs.push(malloc(40 * MiB));
    for (let i = 0; i < 2000; i++) hs.push(malloc(16 * 1024));
    for (let i = 0; i < 200; i++) hs.push(malloc(100 * 1024));
    for (const p of hs) bytes(p, 1).fill(1); // touch one page of each...
    bytes(hs[0], 40 * MiB).fill(2); // ...and all of the huge block
    for (let i = 1; i < hs.length; i++) bytes(hs[i], i <= 2000 ? 16 * 1024 : 100 * 1024).fill(3);
    await quiet(); // the JS heap must not move RSS meanwhile
    const r1 = rss();
    const res1 = stats().resident;
    const dk = r1 - r0, ds = res1 - res0;
    assert.ok(ds > 80 * MiB, `resident grew only ${mib(ds)}`);
    assert.ok(Math.abs(dk - ds) < 12 * MiB, `VmRSS grew ${mib(dk)}, stats().resident ${mib(ds)}`);
    for (const p of hs) free(p);
    collect(true);
    gc();
    const r2 = rss();
    const res2 = stats().resident;
    assert.ok(Math.abs((r2 - r1) - (res2 - res1)) < 12 * MiB, `after free: VmRSS moved ${mib(r2 - r1)}, stats().resident ${mib(res2 - res1)}`);
    assert.ok(res2 - res0 < 1 * MiB, `resident ${mib(res0)} -> ${mib(res2)}`);
  });
} else {
  t("buffer backend: stats().resident and peakResident are -1 (the kernel cannot be asked about SharedArrayBuffers)", () => {
    const s = stats();
    assert.is(s.resident, -1);
    assert.is(s.peakResident, -1);
  });
}

t("freed memory is purged after purgeDelay without collect (timer); purgeDelay -1 never purges by itself", async () => {
  const delay0 = getOption("purgeDelay"), mult0 = getOption("arenaPurgeMult");
  try {
    setOption("purgeDelay", 5);
    setOption("arenaPurgeMult", 2);
    const base = settle();
    const ps: number[] = [];
    for (let i = 0; i < 48; i++) {
      const p = malloc(1 * MiB + 4096);
      bytes(p, 1 * MiB).fill(7);
      ps.push(p);
    }
    const live = rss();
    for (const p of ps) free(p);
    const freed = stats();
    assert.ok(freed.pendingPurge >= 40 * MiB, `right after free ${mib(freed.pendingPurge)} should wait for the purge`);
    await sleep(120);
    const later = stats();
    assert.ok(later.pendingPurge < 1 * MiB, `pendingPurge ${mib(later.pendingPurge)} 120 ms after free (delay 5 ms x 2)`);
    // the heap keeps the (emptied) page it allocates from until collect: one large page, up to 4 MiB
    assert.ok(later.committed - base.committed <= 4 * MiB, `committed ${mib(base.committed)} -> ${mib(later.committed)}`);
    if (ffi) assert.ok(live - rss() > 40 * MiB, `RSS ${mib(live)} -> ${mib(rss())}: the timer purge should return ~48 MiB`);

    setOption("purgeDelay", -1);
    for (let i = 0; i < 16; i++) ps[i] = malloc(1 * MiB + 4096);
    for (let i = 0; i < 16; i++) bytes(ps[i], 1 * MiB).fill(1);
    for (let i = 0; i < 16; i++) free(ps[i]);
    await sleep(50);
    assert.ok(stats().pendingPurge >= 14 * MiB, "purgeDelay -1: nothing is purged by a timer");
    collect(true);
    assert.ok(stats().pendingPurge < 1 * MiB, "purgeDelay -1: collect(true) still purges");
  } finally {
    setOption("purgeDelay", delay0);
    setOption("arenaPurgeMult", mult0);
  }
});

t("arenaPurgeMult: free page slots purge after purgeDelay, free segments only after purgeDelay * arenaPurgeMult", async () => {
  const delay0 = getOption("purgeDelay"), mult0 = getOption("arenaPurgeMult");
  const h = Heap.create();
  try {
    setOption("purgeDelay", 5);
    setOption("arenaPurgeMult", 1000); // free segments wait 5 s
    settle();
    // whole segments: 1 MiB blocks live in large pages (one page per segment)
    const big: number[] = [];
    for (let i = 0; i < 12; i++) big.push(h.malloc(1 * MiB + 4096));
    // medium pages (512 KiB) with one keeper per segment so the segments stay live
    const med: number[] = [];
    for (let i = 0; i < 64; i++) med.push(h.malloc(60 * 1024));
    for (const p of [...big, ...med]) bytes(p, 4096).fill(1);
    const keep = new Map<number, number>();
    for (const p of med) if (!keep.has(Math.floor(p / (4 * MiB)))) keep.set(Math.floor(p / (4 * MiB)), p);
    const keepers = new Set(keep.values());
    for (const p of med) if (!keepers.has(p)) free(p);
    h.collect(false); // empty pages back to their segments (the delay still applies)
    for (const p of big) free(p);
    const before = stats();
    await sleep(120);
    const after = stats();
    const segFree = after.arenaList.reduce((a, s) => a + s.segmentsDirty, 0);
    assert.ok(segFree >= 2, `free segments should still wait (arena delay 5 s): ${segFree} dirty`);
    assert.ok(
      before.pendingPurge - after.pendingPurge >= 2 * MiB,
      `free page slots should have been purged after 5 ms: pending ${mib(before.pendingPurge)} -> ${mib(after.pendingPurge)}`,
    );
    assert.ok(after.pendingPurge >= 8 * MiB, `free segments still pending: ${mib(after.pendingPurge)}`);
  } finally {
    setOption("purgeDelay", delay0);
    setOption("arenaPurgeMult", mult0);
    h.destroy();
    collect(true);
  }
});

for (const delay of [10, -1]) {
  t(`collect(true) purges free page slots inside live segments (medium and small pages), keeping their live neighbours (purgeDelay ${delay})`, () => {
    const delay0 = getOption("purgeDelay");
    const h = Heap.create();
    try {
      setOption("purgeDelay", delay);
      settle();
      const blocks: { p: number; size: number; id: number }[] = [];
      let id = 1;
      for (let i = 0; i < 96; i++) blocks.push({ p: h.malloc(60 * 1024), size: 60 * 1024, id: id++ }); // medium pages
      for (let i = 0; i < 1024; i++) blocks.push({ p: h.malloc(1000), size: 1000, id: id++ }); // small pages
      for (const b of blocks) fillPattern(b.p, b.size, b.id);
      // keep the first block of each segment (and size) so every segment stays live
      const seen = new Set<string>();
      const keep = blocks.filter((b) => {
        const k = `${Math.floor(b.p / (4 * MiB))}/${b.size}`;
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      });
      for (const b of blocks) if (!keep.includes(b)) free(b.p);
      const s1 = stats();
      collect(true);
      const s2 = stats();
      assert.is(s2.segments, s1.segments, "no segment was released: the purge happened inside live segments");
      assert.ok(s1.committed - s2.committed >= 3 * MiB, `committed ${mib(s1.committed)} -> ${mib(s2.committed)}`);
      assert.ok(s2.purges > s1.purges, "purge calls were made");
      if (ffi) assert.ok(s1.resident - s2.resident >= 3 * MiB, `resident ${mib(s1.resident)} -> ${mib(s2.resident)}`);
      for (const b of keep) assert.is(checkPattern(b.p, b.size, b.id), -1, `keeper block ${b.id} intact`);
      // the purged slots are usable again
      for (let i = 0; i < 64; i++) bytes(h.malloc(60 * 1024), 60 * 1024).fill(9);
      for (const b of keep) assert.is(checkPattern(b.p, b.size, b.id), -1, `keeper block ${b.id} intact after reuse`);
    } finally {
      setOption("purgeDelay", delay0);
      h.destroy();
    }
  });
}

t("purgeDecommits = false resets (MADV_FREE): bytes stay committed; purgeDecommits = true purges them", () => {
  const dec0 = getOption("purgeDecommits");
  try {
    setOption("purgeDecommits", false);
    const base = settle();
    const ps: number[] = [];
    for (let i = 0; i < 24; i++) {
      const p = malloc(1 * MiB + 4096);
      bytes(p, 1 * MiB).fill(3);
      ps.push(p);
    }
    for (const p of ps) free(p);
    const s1 = stats();
    collect(true);
    const s2 = stats();
    assert.ok(s2.resets > s1.resets, "collect(true) reset the freed memory");
    assert.ok(s2.resetBytes - s1.resetBytes >= 20 * MiB, `reset ${mib(s2.resetBytes - s1.resetBytes)}`);
    assert.ok(s2.committed - base.committed >= 20 * MiB, `reset memory stays committed: ${mib(base.committed)} -> ${mib(s2.committed)}`);
    // reset segments are reused first, without new commits
    for (let i = 0; i < 24; i++) ps[i] = malloc(1 * MiB + 4096);
    assert.ok(stats().committed <= s2.committed + 1 * MiB, "reusing reset memory commits nothing new");
    for (const p of ps) free(p);
    setOption("purgeDecommits", true);
    collect(true);
    const s3 = stats();
    assert.ok(s3.committed - base.committed < 1 * MiB, `purgeDecommits = true: committed ${mib(s3.committed)} (base ${mib(base.committed)})`);
    assert.ok(s3.purges > s2.purges);
  } finally {
    setOption("purgeDecommits", dec0);
    collect(true);
  }
});

t("large pages commit only the slices their blocks reach: 16 blocks of 2 MiB commit ~2 MiB each (not a 4 MiB segment), 24 of 1 MiB ~1 MiB each; collect(true) purges what a live page's blocks do not reach (issue 15)", () => {
  const fillAll = (ps: number[], count: number, size: number, tag: number) => {
    for (let i = 0; i < count; i++) {
      const p = malloc(size);
      assert.ok(p !== 0);
      bytes(p, size).fill((i + tag) & 255);
      ps[i] = p;
    }
  };
  for (const [size, count] of [[2 * MiB, 16], [1 * MiB, 24]]) {
    const base = settle();
    const ps: number[] = [];
    fillAll(ps, count, size, 1);
    // per segment: the blocks' slices plus at most the header slice and one partial slice
    const segments = size === 2 * MiB ? count : Math.ceil(count / 3);
    const grew = stats().committed - base.committed;
    assert.ok(grew >= count * size, `committed grew ${mib(grew)} for ${mib(count * size)} live`);
    assert.ok(grew <= count * size + segments * 128 * 1024, `committed grew ${mib(grew)} for ${mib(count * size)} live in ${segments} segments`);
    for (const p of ps) free(p);
  }
  // 1 MiB pages freed and their segments taken again at once for 2 MiB blocks: each keeps
  // the 1 MiB tail its last page committed, until collect(true) purges it
  const base = settle();
  const ps: number[] = [];
  fillAll(ps, 24, 1 * MiB, 3);
  for (const p of ps) free(p);
  fillAll(ps, 8, 2 * MiB, 5);
  collect(true);
  const kept = stats().committed - base.committed;
  assert.ok(kept <= 8 * (2 * MiB + 128 * 1024), `after collect(true): committed ${mib(kept)} over the base for 16 MiB live`);
  for (let i = 0; i < 8; i++) {
    const v = bytes(ps[i], 2 * MiB);
    for (let o = 0; o < v.length; o += 4096) if (v[o] !== ((i + 5) & 255)) assert.unreachable(`block ${i} changed at ${o} by the purge`);
    free(ps[i]);
  }
  const after = settle();
  assert.ok(after.committed - base.committed < 1 * MiB, `committed ${mib(base.committed)} -> ${mib(after.committed)} after freeing all`);
});

t("emptied pages stay with their heap for the page delay (counted in pendingPurge) and go back before the heap claims a new segment: another class of the same page kind reuses their slots, so keeping never grows the footprint (issue 15)", () => {
  const delay0 = getOption("purgeDelay");
  const h = Heap.create();
  try {
    setOption("purgeDelay", 60_000); // no timer during the test: only the heap decides
    const base = settle();
    const fill = (size: number, count: number, tag: number) => {
      const ps: number[] = [];
      for (let i = 0; i < count; i++) {
        const p = h.malloc(size);
        assert.ok(p !== 0);
        bytes(p, size).fill(tag);
        ps.push(p);
      }
      return ps;
    };
    // ~24 MiB of small pages (64 KiB), then all freed: the pages stay with the heap
    let ps = fill(1000, 24_000, 1);
    const peak = stats();
    for (const p of ps) h.free(p);
    const kept = stats();
    assert.ok(kept.pendingPurge >= 20 * MiB, `the emptied pages count as waiting for purge (pendingPurge ${mib(kept.pendingPurge)})`);
    assert.is(kept.committed, peak.committed, "nothing was given back yet");
    // the same class takes them back: no new memory
    ps = fill(1000, 24_000, 2);
    assert.is(stats().committed, peak.committed, "the class reused its kept pages");
    assert.is(stats().reserved, peak.reserved);
    for (const p of ps) h.free(p);
    // another small class: the kept pages go back to their segments before a new one is claimed
    ps = fill(600, 38_000, 3);
    const other = stats();
    assert.ok(other.reserved <= peak.reserved, `reserved ${mib(peak.reserved)} -> ${mib(other.reserved)}: keeping pages must not grow the footprint`);
    // (slack: at secure level 4 a guard page ends every page, and the two classes' pages hold
    // different block counts: 25.5 -> 28.0 MiB there; without the sweep committed doubles)
    assert.ok(other.committed <= peak.committed * 1.15 + 1 * MiB, `committed ${mib(peak.committed)} -> ${mib(other.committed)}`);
    for (const p of ps) if (bytes(p, 1)[0] !== 3) assert.unreachable("a block of the other class changed");
    for (const p of ps) h.free(p);
    const after = settle();
    assert.ok(after.committed - base.committed < 1 * MiB, `collect(true) gives kept pages back: committed ${mib(base.committed)} -> ${mib(after.committed)}`);
    assert.ok(stats().pendingPurge < 1 * MiB, `pendingPurge ${mib(stats().pendingPurge)} after collect(true)`);
  } finally {
    setOption("purgeDelay", delay0);
    h.destroy();
  }
});

t("a free page slot's side-table column is purged with its page, not only with its segment (session 16: one live 16-byte block kept a whole segment's columns, ~0.5 MiB, committed)", () => {
  const h = Heap.create();
  try {
    const base = settle();
    // ~63 pages of 16-byte blocks (4,096 per page: each page's column is 8 KiB, two units)
    const ps: number[] = [];
    for (let i = 0; i < 63 * 4096; i++) ps.push(h.malloc(16));
    const keep = ps[0];
    const loaded = stats().committed;
    assert.ok(loaded - base.committed > 4 * MiB, `loaded ${mib(loaded - base.committed)}`);
    for (let i = 1; i < ps.length; i++) h.free(ps[i]);
    const after = settle();
    // left: one page of 64 KiB and its column, the segment's header slot; without the column
    // purge the other 62 columns (496 KiB) stayed counted
    assert.ok(after.committed - base.committed < 256 * 1024, `committed +${((after.committed - base.committed) / 1024).toFixed(0)} KiB with one live block`);
    assert.is(bytes(keep, 16).length, 16);
    h.free(keep);
  } finally {
    h.destroy();
  }
});

t("stats().pendingPurge counts every committed free page slot of a live segment, a purge scheduled for it or not (review round 16: with purgeDelay -1, 576 KiB of freed slots were in committed and nowhere else)", () => {
  const d0 = getOption("purgeDelay");
  const h = Heap.create();
  try {
    setOption("purgeDelay", -1); // never purged: the slots stay committed
    const keep = h.malloc(16); // keeps the segment live
    const ps: number[] = [];
    for (let i = 0; i < 10 * 4096; i++) ps.push(h.malloc(16));
    const gap = (s: { committed: number; inUse: number; pendingPurge: number }) => s.committed - s.inUse - s.pendingPurge;
    const s0 = stats();
    for (const p of ps) h.free(p);
    const s1 = stats();
    assert.is(s1.committed, s0.committed, "nothing purged");
    assert.is(gap(s1), gap(s0), `freed bytes are either still in use or pending a purge: gap ${gap(s0)} -> ${gap(s1)}`);
    h.free(keep);
  } finally {
    setOption("purgeDelay", d0);
    h.destroy();
  }
});

t("an emptied large page kept in a slot that a larger class committed beyond its blocks' reach: pendingPurge counts that tail once, never more than committed (session 18 review: the kept page's whole slot and the free tail were both counted, 448 KiB over committed)", () => {
  const d0 = getOption("purgeDelay");
  const anchor = malloc(16);
  const h = Heap.create();
  try {
    setOption("purgeDelay", -1); // freed slots keep their commit bits
    const a = h.malloc(2 * MiB - 4096); // a large page: two such blocks reach the whole slot
    const b = h.malloc(2 * MiB - 4096);
    h.free(a);
    h.free(b);
    collect(); // the page goes back to its segment, its slices stay committed
    const s0 = stats();
    const c = h.malloc(1835008); // a 1.75 MiB class in the same slot: its blocks reach 3.5 MiB of it
    h.free(c); // kept empty with its heap for the page delay
    const s1 = stats();
    assert.ok(s1.pendingPurge <= s1.committed, `pendingPurge ${s1.pendingPurge} > committed ${s1.committed}`);
    // the slot's committed bytes wait for a purge before (a free segment in its arena) and after
    // (a kept page and the free tail beyond its blocks), counted once either way; before, the
    // segment's metadata (4 KiB units, under a slice) was free too, now it is a live segment's
    // (level 1+: the guard slices put the 1.75 MiB page in another segment, so the slot is not
    // reused and only the bound above applies)
    const d = s0.pendingPurge - s1.pendingPurge;
    if (getOption("secure") === 0) assert.ok(d >= 0 && d < 64 * 1024, `pendingPurge of the same committed slot: ${s0.pendingPurge} -> ${s1.pendingPurge}`);
  } finally {
    setOption("purgeDelay", d0);
    h.destroy();
    free(anchor);
  }
});

t("kept pages go back before new memory of another page kind is claimed: small pages freed, then medium blocks (review round 6: committed grew by the kept pages)", () => {
  const delay0 = getOption("purgeDelay");
  const h = Heap.create();
  try {
    setOption("purgeDelay", 60_000);
    settle();
    const ps: number[] = [];
    for (let i = 0; i < 24_000; i++) ps.push(h.malloc(1000)); // ~24 MiB of small pages
    const peak = stats().committed;
    for (const p of ps) h.free(p);
    ps.length = 0;
    for (let i = 0; i < 2_600; i++) ps.push(h.malloc(8192)); // ~21 MiB of medium pages
    const now = stats().committed;
    // (+ the small pages' side-table columns, one 4 KiB unit each, ~1.5 MiB: counted until their segments are purged)
    assert.ok(now <= peak + 4 * MiB + 2 * MiB, `committed ${mib(peak)} -> ${mib(now)}: the small pages kept should have gone back`);
    for (const p of ps) h.free(p);
  } finally {
    setOption("purgeDelay", delay0);
    h.destroy();
  }
});

t("Heap.delete() gives back its empty (kept) pages at once: only pages with live blocks move to the default heap (review round 6: they stayed committed for good)", () => {
  const delay0 = getOption("purgeDelay");
  try {
    setOption("purgeDelay", 60_000);
    const base = settle();
    const h = Heap.create();
    const ps: number[] = [];
    for (let i = 0; i < 10_000; i++) ps.push(h.malloc(1000));
    for (const p of ps) h.free(p);
    h.delete();
    collect(); // (no force: returns empty pages of live heaps, purges nothing)
    setOption("purgeDelay", 0); // 0 = at once: what waits goes now (review round 6: it waited)
    const s = stats();
    assert.ok(s.committed - base.committed < 1 * MiB, `committed ${mib(base.committed)} -> ${mib(s.committed)}`);
    assert.ok(s.pendingPurge < 1 * MiB, `pendingPurge ${mib(s.pendingPurge)}`);
  } finally {
    setOption("purgeDelay", delay0);
  }
});

t("a large page (blocks over 64 KiB) is kept only for the delay even as its class's allocation page: memory returns while idle (review round 6: 73 MiB stayed committed)", async () => {
  const delay0 = getOption("purgeDelay"), mult0 = getOption("arenaPurgeMult");
  try {
    setOption("purgeDelay", 10);
    setOption("arenaPurgeMult", 2);
    const base = settle();
    const ps: number[] = [];
    for (let k = 0; k < 12; k++) {
      const size = 70_000 * (k + 1);
      const p = malloc(size);
      bytes(p, size).fill(1);
      ps.push(p);
    }
    for (const p of ps) free(p);
    await sleep(500);
    const s = stats();
    assert.ok(s.committed - base.committed < 1 * MiB, `committed ${mib(base.committed)} -> ${mib(s.committed)} after idling`);
  } finally {
    setOption("purgeDelay", delay0);
    setOption("arenaPurgeMult", mult0);
  }
});

t("a class's emptied allocation page, which stays with its heap, counts in pendingPurge (review round 10: 43 such pages, 13.9 MB, counted 0)", () => {
  const delay0 = getOption("purgeDelay");
  setOption("purgeDelay", 60_000); // nothing purged between the two readings
  const h = Heap.create();
  try {
    const sizes: number[] = [];
    for (let s = 16; s <= 1024; s += 16) if (!sizes.some((x) => goodSize(x) === goodSize(s))) sizes.push(s);
    const ps: number[] = [];
    for (const s of sizes) for (let k = 0; k < 3; k++) ps.push(h.malloc(s));
    const before = stats().pendingPurge;
    for (const p of ps) h.free(p);
    const after = stats().pendingPurge;
    // one 64 KiB page per class, less the slice-0 page of each segment (its header: never purged)
    assert.ok(after - before >= (sizes.length - 2) * 65536, `${sizes.length} emptied allocation pages added ${after - before} bytes to pendingPurge`);
  } finally {
    h.destroy();
    setOption("purgeDelay", delay0);
  }
});

t("shared allocator: kept pages go back before a huge block is carved (no second arena), under a budget no worker keeps pages another worker's refusal could not take back, sharing gives back what was kept before, and under a budget even a class's allocation page stays only for the delay (children; review rounds 6, 8, 10)", () => {
  const env = { TSMALLOC_BACKEND: backend().kind === "buffer" ? "buffer" : "ffi" };
  const c = runChild("kept-child", ["carve"], { ...env, TSMALLOC_ARENA_RESERVE: "64MiB" });
  assert.ok(c.status === 0 && c.result !== null, `carve: ${describeChild(c)}`);
  assert.ok(c.result!.ok, "the 32 MiB block was allocated");
  assert.ok((c.result!.pendingBefore as number) >= 40 * MiB, "the freed pages were kept");
  assert.is(c.result!.reservedAfter, c.result!.reservedBefore, "no new arena was reserved (was 64 -> 192 MiB)");
  const b = runChild("kept-child", ["budget"], { ...env, TSMALLOC_MAX_COMMITTED: "64MiB" });
  assert.ok(b.status === 0 && b.result !== null, `budget: ${describeChild(b)}`);
  assert.ok((b.result!.aCommitted as number) >= 30 * MiB, "worker A had committed its blocks' pages");
  assert.is(b.result!.bZeros, 0, `worker B got 0 from malloc ${b.result!.bZeros} times of ${b.result!.bAsked} (was ~17,000)`);
  const m = runChild("kept-child", ["budget-main"], env);
  assert.ok(m.status === 0 && m.result !== null, `budget-main: ${describeChild(m)}`);
  assert.ok((m.result!.aCommitted as number) >= 20 * MiB, "the worker had committed its blocks' pages");
  assert.is(m.result!.bZeros, 0, `with the budget set by the main thread only, its malloc got 0 ${m.result!.bZeros} times of 240 (review round 7: 21-37)`);
  const l = runChild("kept-child", ["share-late"], env);
  assert.ok(l.status === 0 && l.result !== null, `share-late: ${describeChild(l)}`);
  assert.ok((l.result!.pendingBefore as number) >= 16 * MiB, "main kept its emptied pages before sharing");
  assert.ok((l.result!.pendingAfter as number) < MiB, `workerHandle() gave them back (${l.result!.pendingAfter} bytes still wait)`);
  assert.is(l.result!.cZeros, 0, `the worker under the same budget got 0 ${l.result!.cZeros} times of ${l.result!.cAsked} (review round 8: all of them)`);
  const k = runChild("kept-child", ["keep-shared"], env);
  assert.ok(k.status === 0 && k.result !== null, `keep-shared: ${describeChild(k)}`);
  assert.ok((k.result!.aKept as number) <= 65536, `a worker of a shared allocator keeps no emptied page but its class's allocation page (${k.result!.aKept} bytes)`);
  assert.ok((k.result!.bKept as number) <= 65536, `once the main thread has a budget, a worker with none of its own keeps at most its class's allocation page (${k.result!.bKept} bytes)`);
  assert.is(k.result!.bKeptLater, 0, "and that only for the page delay");
  assert.is(k.result!.bPagesLater, 0, "no page left with its heap after the delay (review round 10: each class's allocation page stayed for good)");
});

t("kept empty pages go back after the page delay by the purge timer alone (no allocator call), then their slots are purged", async () => {
  const delay0 = getOption("purgeDelay"), mult0 = getOption("arenaPurgeMult");
  const h = Heap.create();
  try {
    setOption("purgeDelay", 20);
    setOption("arenaPurgeMult", 2);
    const base = settle();
    const keep = h.malloc(1000); // holds the segment: its free slots are purged page by page
    const ps: number[] = [];
    for (let i = 0; i < 20_000; i++) ps.push(h.malloc(1000));
    for (const p of ps) h.free(p);
    assert.ok(stats().pendingPurge >= 15 * MiB, `kept: pendingPurge ${mib(stats().pendingPurge)}`);
    await sleep(400); // page delay (20 ms, up to 16x adaptive: the sweep) + the slots' delay
    const s = stats();
    assert.ok(s.pendingPurge < 1 * MiB, `pendingPurge ${mib(s.pendingPurge)} 400 ms after the frees`);
    assert.ok(s.committed - base.committed < 2 * MiB, `committed ${mib(base.committed)} -> ${mib(s.committed)}`);
    h.free(keep);
  } finally {
    setOption("purgeDelay", delay0);
    setOption("arenaPurgeMult", mult0);
    h.destroy();
  }
});

t("OS calls are counted by kind (reserve, release, purge, view, resident)", () => {
  const cache0 = getOption("hugeCacheMax");
  try {
    setOption("hugeCacheMax", 0); // a freed huge block is unmapped at once (checked levels with guards: retired, PROT_NONE)
    dropHugeCache();
    const retire = (getOption("secure") >= 2 || getOption("debugFill")) && backend().guardPages;
    const c0 = stats().osCalls;
    const p = malloc(6 * MiB);
    bytes(p, 6 * MiB).fill(1);
    const c1 = stats().osCalls;
    assert.is(c1.reserve, c0.reserve + 1, "one mapping for the huge block");
    assert.is(c1.view, c0.view + 1, "one view over it");
    assert.ok(c1.resident > c0.resident, "stats() asked the kernel (mincore)");
    const reserved = stats().reserved;
    free(p);
    const c2 = stats().osCalls;
    if (retire) {
      assert.is(c2.release, c1.release, "checked level: retired, not unmapped");
      assert.is(c2.protect, c1.protect + 1, "made PROT_NONE");
      assert.is(stats().reserved, reserved, "still reserved");
    } else {
      assert.is(c2.release, c1.release + 1, "hugeCacheMax 0: unmapped at once");
      assert.ok(stats().reserved <= reserved - 6 * MiB, "reserved dropped by the unmapped block");
    }
    const q = malloc(1 * MiB + 4096);
    bytes(q, 1 * MiB).fill(1);
    free(q);
    collect(true);
    assert.ok(stats().osCalls.purge > c2.purge, "collect(true) purged the freed segment");
    for (const k of ["reserve", "release", "purge", "reset", "protect", "unprotect", "view", "resident"]) {
      assert.type((c2 as unknown as Record<string, number>)[k], "number", `osCalls.${k}`);
    }
  } finally {
    setOption("hugeCacheMax", cache0);
  }
});

t("hugeCacheMax keeps freed huge mappings for reuse (no new reservation)", () => {
  const cache0 = getOption("hugeCacheMax");
  try {
    setOption("hugeCacheMax", 64 * MiB);
    const p = malloc(8 * MiB);
    const reserved = stats().reserved;
    free(p);
    assert.is(stats().reserved, reserved, "the mapping stays reserved in the cache");
    const calls = stats().osCalls.reserve;
    const q = malloc(7 * MiB);
    assert.is(stats().osCalls.reserve, calls, "the cached mapping was reused");
    free(q);
    const protects = stats().osCalls.protect;
    setOption("hugeCacheMax", 0); // shrinking the cache unmaps at once (checked levels with guards: retires, PROT_NONE)
    if ((getOption("secure") >= 2 || getOption("debugFill")) && backend().guardPages) {
      assert.is(stats().osCalls.protect, protects + 1, "setting hugeCacheMax 0 retires the cached mapping (PROT_NONE)");
      assert.is(stats().reserved, reserved, "a retired mapping stays reserved");
    } else assert.ok(stats().reserved <= reserved - 8 * MiB, "setting hugeCacheMax 0 releases the cached mapping");
  } finally {
    setOption("hugeCacheMax", cache0);
  }
});

t("stats() is plain JSON-able data with every field; peaks bound the current values", () => {
  const p = malloc(3 * MiB);
  const s = stats();
  free(p);
  assert.equal(JSON.parse(JSON.stringify(s)), s);
  for (
    const k of [
      "reserved", "committed", "resident", "inUse", "blocks", "peakReserved", "peakCommitted", "peakResident", "peakInUse",
      "pendingPurge", "purges", "purged", "resets", "resetBytes", "budgetRefusals", "arenas", "segments", "pages", "hugeBlocks", "workers",
    ]
  ) assert.type((s as unknown as Record<string, unknown>)[k], "number", k);
  assert.is(s.workers, 1);
  assert.ok(s.peakReserved >= s.reserved && s.peakCommitted >= s.committed && s.peakInUse >= s.inUse);
  assert.ok(s.committed <= s.reserved, "committed <= reserved");
  assert.ok(s.inUse <= s.committed, "inUse <= committed");
  if (ffi) assert.ok(s.resident <= s.committed + 1 * MiB, `resident ${mib(s.resident)} <= committed ${mib(s.committed)}`);
  assert.is(s.arenas, s.arenaList.length);
  assert.ok(s.hugeBlocks >= 1 && s.inUse >= 3 * MiB);
  const counted = s.bins.reduce((a, b) => a + b.blocks, 0);
  assert.is(counted + s.hugeBlocks, s.blocks, "per size class counts add up to blocks");
  assert.ok(s.bins.every((b) => b.bytes === b.blocks * b.size), "bin bytes = blocks x size");
});

t("peakInUse follows a burst (sampled at slow-path events)", () => {
  // white box: lower the recorded peak to now, so a modest burst must raise it
  const saved = usage.peak;
  const inUse0 = stats().inUse;
  usage.peak = usage.synced;
  try {
    const ps: number[] = [];
    for (let i = 0; i < 1200; i++) ps.push(malloc(64 * 1024 - 1024)); // ~74 MiB of medium blocks
    ps.push(malloc(2000)); // one more slow-path event after the last page filled
    for (const p of ps) free(p);
    collect(true);
    const s = stats();
    assert.ok(s.peakInUse >= inUse0 + 70 * MiB, `peakInUse ${mib(s.peakInUse)} after a ~74 MiB burst over ${mib(inUse0)} in use`);
    assert.ok(s.peakInUse <= inUse0 + 80 * MiB, `peakInUse ${mib(s.peakInUse)} overshoots the burst (${mib(inUse0)} + ~74 MiB)`);
  } finally {
    usage.peak = Math.max(saved, usage.peak);
  }
});

t("printStats prints a readable table (formatStats returns it)", () => {
  const p = malloc(100);
  let text = "";
  printStats((s) => (text += s));
  free(p);
  for (const w of ["tsmalloc stats", "reserved", "committed", "resident", "in use", "peak", "os calls", "arena", "block size"]) {
    assert.ok(text.includes(w), `printStats output lacks "${w}":\n${text}`);
  }
  assert.match(formatStats(), /reserved\s+[\d.]+ [KMG]?i?B/);
  gc();
});

t.run();
