// Arenas (issue 5): reserveOsMemory(size, { exclusive }) and Heap.create({ arena }).
//   - an exclusive arena serves only heaps bound to it, and they use nothing else: every
//     block (huge ones included) lies inside it; when it is full malloc returns 0 at once
//     (no new reservation, no other arena touched) and alloc throws AllocationError; freeing
//     makes room; heaps not bound to it never get memory from it
//   - a non-exclusive reservation is an ordinary arena that a bound heap can also pin
//   - segment state lives in the arena's native memory (in-use bitmap claimed with Atomics)
//   - bad arguments are clear errors
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { headerOf, P_CAPACITY, PAGE_WORDS, S_PAGE_COUNT, S_PAGES, SEGMENT_SIZE, TABLE_SEGMENT_BYTES } from "../src/layout.ts";
import { ARENA_MAX } from "../src/options.ts";
import {
  AllocationError, bytes, collect, free, getOption, Heap, InvalidPointerError, malloc, realloc, reserveOsMemory, setOption, stats, usableSize, validate,
} from "../mod.ts";
import { ctx, os } from "../src/context.ts";
import { checkPattern, fillPattern } from "./_util.ts";
import { dropHugeCache, isFfi, mib, MiB } from "./_mem.ts";

const t = suite("arena");

interface B {
  p: number;
  size: number;
  id: number;
}

function arenaInfo(id: number) {
  const a = stats().arenaList.filter((x) => x.id === id);
  assert.is(a.length, 1, `one arena with id ${id}`);
  return a[0];
}

const SIZES = [32, 1000, 6000, 40000, 200000, 1500000, 5 * MiB];

t("exclusive arena: bound heap stays inside it; exhaustion returns 0 without touching other arenas; freeing makes room", () => {
  const before = stats();
  const id = reserveOsMemory(32 * MiB, { exclusive: true });
  assert.ok(Number.isInteger(id) && id > 0, `arena id ${id}`);
  const s1 = stats();
  const info = arenaInfo(id);
  assert.is(info.exclusive, true);
  assert.is(info.size, 32 * MiB);
  assert.is(info.segments, 8);
  assert.is(info.segmentsUsed, 0);
  // 512 KiB of side tables per segment follow the metadata (every level)
  const tables = 9 * TABLE_SEGMENT_BYTES; // (per slot: the header slot's too)
  const grew = s1.reserved - before.reserved - tables - 4 * MiB; // (and a 4 MiB slot of segment headers before the segments)
  assert.ok(grew >= 32 * MiB && grew <= 32 * MiB + 64 * 1024, `reserved grew ${s1.reserved - before.reserved} (${tables} of side tables)`);
  const lo = info.base, hi = info.base + info.size;
  const others = () => stats().arenaList.filter((a) => a.id !== id).map((a) => `${a.id}:${a.segmentsUsed}`).join(" ");
  const othersBefore = others();

  const h = Heap.create({ arena: id });
  const live: B[] = [];
  let n = 0;
  let refusedAt = -1;
  for (let i = 0; i < 100000; i++) {
    const size = SIZES[i % SIZES.length];
    const p = h.malloc(size);
    if (p === 0) {
      refusedAt = i;
      break;
    }
    assert.ok(p >= lo && p + size <= hi, `block of ${size} at 0x${p.toString(16)} outside the exclusive arena [0x${lo.toString(16)}, 0x${hi.toString(16)})`);
    fillPattern(p, size, ++n);
    live.push({ p, size, id: n });
  }
  assert.ok(refusedAt > 0, "the exclusive arena fills up");
  const used = live.reduce((a, b) => a + b.size, 0);
  assert.ok(used > 12 * MiB && used <= 32 * MiB, `${mib(used)} fit in the 32 MiB arena`);
  assert.is(arenaInfo(id).segmentsUsed, 8, "all its segments are in use");
  // full: every size returns 0 at once, nothing new is reserved, no other arena is touched
  const reserved = stats().reserved;
  const t0 = Date.now();
  for (let i = 0; i < 200; i++) {
    for (const size of [16, 5000, 100000, 3 * MiB]) {
      const p = h.malloc(size);
      if (p !== 0) {
        // a free block left in a live page is fine, but it must be inside the arena
        assert.ok(p >= lo && p < hi, "inside the arena");
        fillPattern(p, size, ++n);
        live.push({ p, size, id: n });
      }
    }
  }
  assert.ok(Date.now() - t0 < 3000, `800 refused mallocs took ${Date.now() - t0} ms`);
  assert.is(h.malloc(8 * MiB), 0, "a huge block does not fit");
  assert.is(stats().reserved, reserved, "exhaustion reserves nothing new");
  assert.is(others(), othersBefore, "no other arena gained or lost a segment");
  let err: unknown;
  try {
    h.alloc(8 * MiB);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof AllocationError, `alloc threw ${String(err)}`);
  assert.match((err as Error).message, `arena ${id}`);

  // the default heap and other heaps never get memory from it
  const outside: number[] = [];
  for (const size of SIZES) {
    const p = malloc(size);
    assert.ok(p !== 0 && (p + size <= lo || p >= hi), `default-heap block of ${size} inside the exclusive arena`);
    outside.push(p);
  }
  const g = Heap.create();
  const q = g.malloc(1000);
  assert.ok(q + 1000 <= lo || q >= hi, "unbound heap block inside the exclusive arena");
  g.destroy();
  for (const p of outside) free(p);

  for (const b of live) {
    const off = checkPattern(b.p, b.size, b.id);
    assert.is(off, -1, `block ${b.id} (${b.size} B) intact`);
  }
  // freeing makes room (a huge block frees its segment run)
  const huge = live.find((b) => b.size === 5 * MiB)!;
  free(huge.p);
  live.splice(live.indexOf(huge), 1);
  const again = h.malloc(5 * MiB);
  assert.ok(again >= lo && again < hi, "after freeing a 5 MiB block another one fits");
  assert.ok(usableSize(again) >= 5 * MiB);
  fillPattern(again, 5 * MiB, ++n);
  live.push({ p: again, size: 5 * MiB, id: n });
  for (const b of live) assert.is(checkPattern(b.p, b.size, b.id), -1, `block ${b.id} intact after reuse`);

  h.destroy();
  collect(true);
  assert.is(arenaInfo(id).segmentsUsed, 0, "destroy gives every segment back to the arena");
  // a new heap bound to it reuses it
  const reservedNow = stats().reserved;
  const h2 = Heap.create({ arena: id });
  const r = h2.malloc(100000);
  assert.ok(r >= lo && r < hi);
  assert.is(stats().reserved, reservedNow, "reuse reserves nothing");
  h2.destroy();
});

t("Heap.delete() of a heap bound to an exclusive arena: its live blocks move to the default heap, which never allocates inside that arena (review round 6: 895-2000 of 2000 blocks landed there)", () => {
  const arena = reserveOsMemory(16 * MiB, { exclusive: true });
  const h = Heap.create({ arena });
  const a: number[] = [];
  for (let i = 0; i < 2000; i++) a.push(h.malloc(64));
  fillPattern(a[0], 64, 5);
  for (const p of a.slice(1)) h.free(p);
  h.delete();
  const ex = stats().arenaList.find((x) => x.id === arena)!;
  const b: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const p = malloc(64);
    assert.ok(p < ex.base || p >= ex.base + ex.size, `default-heap malloc #${i} inside exclusive arena ${arena}`);
    b.push(p);
  }
  assert.is(checkPattern(a[0], 64, 5), -1, "the moved live block kept its contents");
  free(a[0]);
  for (const p of b) free(p);
  assert.ok(validate().ok);
});

t("a non-exclusive reservation is a shared arena; a heap bound to it allocates only there", () => {
  const id = reserveOsMemory("32MiB");
  const info = arenaInfo(id);
  assert.is(info.exclusive, false);
  assert.is(info.size, 32 * MiB);
  const h = Heap.create({ arena: id });
  const ps: number[] = [];
  for (const size of [64, 5000, 90000, 1 * MiB, 5 * MiB]) {
    const p = h.malloc(size);
    assert.ok(p >= info.base && p + size <= info.base + info.size, `bound heap block of ${size} outside its arena`);
    ps.push(p);
  }
  let zero = 0;
  for (let i = 0; i < 50 && zero === 0; i++) if (h.malloc(3 * MiB) === 0) zero++;
  assert.is(zero, 1, "a heap bound to a full arena gets 0 (no fallback), even if the arena is shared");
  h.destroy();
});

t("reserveOsMemory rounds up to 4 MiB segments and splits sizes above one arena's limit", () => {
  const id = reserveOsMemory(5 * MiB + 1, { exclusive: true });
  assert.is(arenaInfo(id).size, 8 * MiB);
  assert.is(arenaInfo(id).segments, 2);
});

t("segment state lives in the arena's native memory (in-use bitmap claimed with Atomics)", () => {
  const id = reserveOsMemory(16 * MiB, { exclusive: true });
  const a = ctx.arenas.find((x) => x.id === id)!;
  const h = Heap.create({ arena: id });
  const p = h.malloc(100);
  const q = h.malloc(5 * MiB); // a run of 2 segments
  assert.ok(p !== 0 && q !== 0);
  // the metadata page after the segments and the guard page that follows them (one OS page):
  // magic, count, flags, id, 4 unused words, bitmaps
  const meta = new Int32Array(a.region.i32.buffer, a.region.i32.byteOffset + a.region.size + os().pageSize, 16);
  assert.is(meta[1], 5, "segment slots: 4 segments after the slot of segment headers (slot 0)");
  assert.is(meta[2] & 1, 1, "exclusive flag");
  assert.is(meta[3], id, "arena id");
  assert.is(a.used, 3, "3 segments in use (one of small pages, a 2-segment huge run): the in-use bits less the header slot's and those past the last slot");
  assert.is(Atomics.load(meta, 8) & 0x1f, 0b01111, "in-use bitmap (slot 0: the headers, in use for good)");
  assert.is(Atomics.load(meta, 8) >>> 5, -1 >>> 5, "bits past the last slot count as in use, so no scan hands them out");
  h.destroy();
  assert.is(a.used, 0);
  assert.is(Atomics.load(meta, 8) & 0x1f, 1, "in-use bitmap cleared but for the header slot");
  assert.is(Atomics.load(meta, 9) & 0x1f, 0b01110, "freed segments are dirty until purged");
  collect(true);
  assert.is(Atomics.load(meta, 9) & 0xf, 0, "purged: no longer dirty");
});

t("addresses in an arena's segment headers (the 4 MiB before its segments) and its metadata (after them) are refused by free, realloc, usableSize, Heap.free and bytes, saying so; every block stays intact (review round 14)", () => {
  const id = reserveOsMemory(16 * MiB, { exclusive: true }); // small, medium, and a 2-segment huge block
  const h = Heap.create({ arena: id });
  const live = [16, 1000, 100000, 5 * MiB].map((size, i) => {
    const p = h.malloc(size);
    assert.ok(p !== 0);
    fillPattern(p, size, i + 1);
    return { p, size, id: i + 1 };
  });
  const a = arenaInfo(id);
  const end = a.base + a.size;
  const probes: [number, RegExp][] = [
    [a.base - 4 * MiB, /segment headers/], [a.base - 4 * MiB + 16, /segment headers/], [a.base - 2 * MiB, /segment headers/],
    [a.base - 8192, /segment headers/], [a.base - 16, /segment headers/], [end, /metadata|side tables/], [end + 16, /metadata|side tables/],
  ];
  for (const [x, why] of probes) {
    for (const [name, f] of [["free", () => free(x)], ["realloc", () => realloc(x, 32)], ["usableSize", () => usableSize(x)], ["Heap.free", () => h.free(x)]] as const) {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof InvalidPointerError, `${name}(base ${x - a.base}): ${String(err)}`);
      assert.match((err as Error).message, why, `${name}(base ${x - a.base}) says where`);
    }
    assert.throws(() => bytes(x, 16), (e: Error) => e instanceof RangeError && why.test(e.message), `bytes(base ${x - a.base})`);
  }
  for (const b of live) assert.ok(checkPattern(b.p, b.size, b.id), `block of ${b.size} intact`);
  for (const b of live) free(b.p);
  h.destroy();
  assert.ok(validate().ok);
});

t("a write into a segment header (its page count, a page's capacity) is reported by validate(), stats() still answers, and once put back all is well (session 30 review: validate() walked 0x41414141 pages off the header slot and crashed, stats() threw RangeError)", () => {
  const id = reserveOsMemory(16 * MiB, { exclusive: true });
  const h = Heap.create({ arena: id });
  const ps = Array.from({ length: 50 }, () => h.malloc(64));
  const a = ctx.arenas.find((x) => x.id === id)!;
  const m = a.region.i32;
  const off = ps[0] - a.region.base;
  const seg = off - (off % SEGMENT_SIZE);
  const sw = headerOf(seg);
  const pg = sw + S_PAGES + ((off - seg) >>> 16) * PAGE_WORDS; // (a small page: 64 KiB)
  for (const [word, what] of [[sw + S_PAGE_COUNT, /header says 1094795585 pages/], [pg + P_CAPACITY, /capacity 1094795585, .*not a page's/]] as const) {
    const saved = m[word];
    m[word] = 0x41414141;
    const v = validate();
    assert.ok(!v.ok && v.problems.some((p) => what.test(p)), `reported: ${v.problems.join("; ")}`);
    assert.type(stats().inUse, "number");
    m[word] = saved;
    assert.ok(validate().ok, "put back");
  }
  for (const p of ps) free(p);
  h.destroy();
  assert.ok(validate().ok);
});

t("16 bytes written over a live segment's header (cookie, kind, page shift, page count) change nothing malloc, free or a purge does: 3,000 more blocks from its heap are distinct and disjoint from the live ones (session 30 review: pages were set up from the forged shift, malloc returned 0 and then never returned)", () => {
  const id = reserveOsMemory(16 * MiB, { exclusive: true });
  const h = Heap.create({ arena: id });
  const live = Array.from({ length: 50 }, (_, i) => {
    const p = h.malloc(64);
    fillPattern(p, 64, i + 1);
    return p;
  });
  const a = ctx.arenas.find((x) => x.id === id)!;
  const m = a.region.i32;
  const off = live[0] - a.region.base;
  const sw = headerOf(off - (off % SEGMENT_SIZE));
  const saved = Array.from(m.subarray(sw, sw + 4));
  m.fill(0x41414141, sw, sw + 4); // S_COOKIE, S_KIND, S_PAGE_SHIFT, S_PAGE_COUNT
  const seen = new Set(live);
  const more: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const p = h.malloc(64);
    assert.ok(p !== 0 && p % 16 === 0 && !seen.has(p), `malloc #${i}: 0x${p.toString(16)}`);
    seen.add(p);
    more.push(p);
  }
  for (const p of more) h.free(p);
  collect(true);
  live.forEach((p, i) => assert.ok(checkPattern(p, 64, i + 1), `live block ${i} intact`));
  assert.ok(validate().problems.some((p) => /header says 1094795585 pages/.test(p)), "validate() reports the header");
  saved.forEach((v, k) => (m[sw + k] = v));
  for (const p of live) free(p);
  h.destroy();
  assert.ok(validate().ok);
});

t("a freed segment reused before its purge keeps its exact commit (64 KiB slices, not the whole segment)", () => {
  const delay0 = getOption("purgeDelay");
  try {
    setOption("purgeDelay", -1); // keep the freed segment dirty
    const id = reserveOsMemory(4 * MiB, { exclusive: true });
    const committed = () => arenaInfo(id).committed;
    const meta = committed();
    const h = Heap.create({ arena: id });
    const ps = [h.malloc(16), h.malloc(20000), h.malloc(40000)]; // small pages 0 and 1 or so
    const c1 = committed() - meta;
    assert.ok(c1 >= 64 * 1024 && c1 <= 4 * 64 * 1024, `a few small pages commit a few slices: ${c1}`);
    for (const p of ps) free(p);
    h.destroy();
    assert.is(arenaInfo(id).segmentsDirty, 1, "the segment is free and dirty");
    assert.is(committed() - meta, c1, "still committed until purged");
    const h2 = Heap.create({ arena: id });
    h2.malloc(16);
    assert.is(committed() - meta, c1, "reused with its commit mask: nothing new committed, not 4 MiB");
    h2.destroy();
    collect(true);
    assert.is(committed() - meta, 0, "purged");
  } finally {
    setOption("purgeDelay", delay0);
  }
});

t("bad arguments: reserveOsMemory and Heap.create({ arena })", () => {
  assert.throws(() => reserveOsMemory(-1), RangeError);
  assert.throws(() => reserveOsMemory(0), RangeError);
  assert.throws(() => reserveOsMemory(1.5), RangeError);
  assert.throws(() => reserveOsMemory(NaN), RangeError);
  assert.throws(() => reserveOsMemory("lots"), RangeError);
  assert.throws(() => reserveOsMemory({} as unknown as number), TypeError);
  assert.throws(() => reserveOsMemory(4 * MiB, { exclusive: "yes" } as unknown as { exclusive: boolean }), TypeError);
  assert.throws(() => reserveOsMemory(4 * MiB, { exlusive: true } as unknown as { exclusive: boolean }), RangeError);
  assert.throws(() => Heap.create({ arena: 987654 }), RangeError);
  assert.throws(() => Heap.create({ arena: 0 }), RangeError);
  assert.throws(() => Heap.create({ arena: 1.5 }), RangeError);
  assert.throws(() => Heap.create({ arena: "1" as unknown as number }), TypeError);
  assert.throws(() => Heap.create({ arenna: 1 } as unknown as { arena: number }), RangeError);
  assert.throws(() => reserveOsMemory(2 ** 46 + 1), RangeError, "beyond MAX_ALLOC_SIZE");
});

t("reserveOsMemory counts against maxReserved: a refusal throws AllocationError and reserves nothing", () => {
  dropHugeCache(); // nothing cached that a relief could unmap
  const reserved = stats().reserved;
  setOption("maxReserved", reserved + 12 * MiB); // (8 MiB and metadata: one segment and its arena's 4 MiB slot of segment headers)
  try {
    let err: unknown;
    try {
      reserveOsMemory(64 * MiB, { exclusive: true });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof AllocationError, `reserveOsMemory past maxReserved: ${String(err)}`);
    assert.match((err as Error).message, "maxReserved");
    assert.ok(stats().reserved <= reserved, "nothing was reserved");
    const id = reserveOsMemory(4 * MiB, { exclusive: true }); // fits
    assert.ok(id > 0);
  } finally {
    setOption("maxReserved", 0);
  }
});

t(`the largest arena (2040 MiB, 510 segments): every block of its last segment's page frees, sizes and views (review round 16: with 511 segments the last page ended at offset 2^31, an int32 overflow — 1 MiB blocks there and the last 64 KiB page of small blocks threw 'not inside a block' and leaked; ${isFfi() ? "FFI" : "buffer backend: not run, a 2 GiB SharedArrayBuffer is more than its arenas may take"})`, () => {
  if (!isFfi()) return;
  const id = reserveOsMemory(ARENA_MAX, { exclusive: true }); // the largest one arena
  const h = Heap.create({ arena: id });
  try {
    const a = stats().arenaList.find((x) => x.id === id)!;
    const ps: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const p = h.malloc(1 * MiB); // four to a segment: the last ones end where the arena's segments end
      if (p === 0) break;
      ps.push(p);
    }
    assert.ok(ps.length < 3000 && ps.length >= a.segments * 3, `the arena is full (${ps.length} blocks)`);
    const last = Math.max(...ps);
    // four to a segment at level 0, the last one ending at the arena's end; three with guards (levels 1+)
    if (getOption("secure") === 0) assert.is(last + 1 * MiB, a.base + a.size, "the last block ends at the arena's end");
    else assert.ok(last >= a.base + a.size - 4 * MiB, "a block in the last segment");
    for (const p of ps) {
      assert.is(usableSize(p), 1 * MiB);
      bytes(p, 16).fill(1);
    }
    assert.ok(validate().ok, validate().problems.join("; "));
    for (const p of ps) h.free(p);
    assert.is(a.segments, 510, "ARENA_MAX is 510 segments");
    collect(true); // (the heap keeps its class's emptied allocation page for the page delay)
    assert.is(stats().arenaList.find((x) => x.id === id)!.segmentsUsed, 0, "every segment went back");
  } finally {
    h.destroy();
  }
});

t.run();
