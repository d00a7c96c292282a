// Heap: create / delete / destroy / visit / contains / Symbol.dispose (doc/API-CONTRACT.md).
//   - visit yields exactly the live blocks (set equality) with their usableSize; `false` stops it
//   - contains: true for live blocks (start address) of this heap; false for freed blocks,
//     interior addresses, other heaps' blocks and default-heap blocks
//   - delete: blocks stay valid (readable, writable, freeable with free()), now in the default heap
//   - destroy: every block freed at once; stats().inUse drops by the heap's bytes; the Heap object
//     then throws Error on use; other heaps and the default heap are untouched
//   - [Symbol.dispose]() = destroy() (called explicitly: `using` is not available in every
//     runtime's TS transpile path, and a syntax error would lose the whole file)
//   - 1000 rounds of create / allocate / destroy (and delete) keep stats().reserved bounded
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  AllocationError,
  bytes,
  collect,
  free,
  Heap,
  malloc,
  MAX_ALLOC_SIZE,
  realloc,
  stats,
  usableSize,
  validate,
} from "../mod.ts";
import { checkPattern, fillPattern, firstNot, hex, MiB } from "./_util.ts";
import { BIN_SIZE, binOf } from "../src/bins.ts";
import { DIRECT_SIZE_MAX } from "../src/layout.ts";

const SIZES = [0, 1, 8, 16, 17, 100, 512, 1000, 1024, 4000, 8192, 10000, 65536, 70000, 300000, 1 * MiB, 3 * MiB, 9 * MiB];

interface B {
  p: number;
  size: number;
  id: number;
}

function fillHeap(h: Heap, idBase: number, sizes = SIZES, rounds = 3): B[] {
  const out: B[] = [];
  let id = idBase;
  for (let r = 0; r < rounds; r++) {
    for (const size of sizes) {
      const kind = (r + size) % 6;
      let p: number;
      if (kind === 0) p = h.malloc(size);
      else if (kind === 1) p = h.zalloc(size);
      else if (kind === 2) p = h.calloc(1, size);
      else if (kind === 3) p = h.mallocAligned(size, 64);
      else if (kind === 4) p = h.zallocAligned(size, 4096);
      else p = h.realloc(h.malloc(Math.max(1, size >> 1)), size);
      assert.ok(p !== 0, `heap allocation of ${size} (kind ${kind}) returned 0`);
      assert.ok(p % 16 === 0);
      assert.ok(usableSize(p) >= size);
      fillPattern(p, size, id);
      out.push({ p, size, id: id++ });
    }
  }
  return out;
}

function checkBlocks(bs: B[], what: string) {
  for (const b of bs) {
    const off = checkPattern(b.p, b.size, b.id);
    if (off !== -1) assert.unreachable(`${what}: block ${hex(b.p)} (size ${b.size}) corrupted at byte ${off}`);
  }
}

function visitSet(h: Heap): Map<number, number> {
  const seen = new Map<number, number>();
  h.visit((p, u) => {
    if (seen.has(p)) assert.unreachable(`visit yielded ${hex(p)} twice`);
    assert.type(p, "number");
    assert.type(u, "number");
    seen.set(p, u);
  });
  return seen;
}

function assertVisitIs(h: Heap, bs: B[], what: string) {
  const seen = visitSet(h);
  const want = new Set(bs.map((b) => b.p));
  for (const [p, u] of seen) {
    if (!want.has(p)) assert.unreachable(`${what}: visit yielded ${hex(p)}, which is not a live block of this heap`);
    if (u !== usableSize(p)) assert.unreachable(`${what}: visit gave usable ${u} for ${hex(p)}, usableSize says ${usableSize(p)}`);
  }
  for (const b of bs) {
    if (!seen.has(b.p)) assert.unreachable(`${what}: visit missed live block ${hex(b.p)} (size ${b.size})`);
  }
  assert.is(seen.size, want.size, `${what}: visit count`);
}

const isDestroyedError = (e: unknown) => e instanceof Error && /destroy|delet/i.test((e as Error).message);

const t = suite("heap");

t("a full page's freed blocks are reused: it goes back to its class queue once an eighth of it is free", () => {
  const h = Heap.create();
  const size = 2048; // 512 KiB pages: about 256 blocks each
  const blocks: B[] = [];
  for (let i = 0; i < 768; i++) {
    const p = h.malloc(size);
    assert.ok(p !== 0);
    fillPattern(p, size, i);
    blocks.push({ p, size, id: i });
  }
  // the first 200 blocks all come from the first page, full and parked by now; free 40 of them
  const freed = new Set<number>();
  for (let i = 0; i < 200; i += 5) {
    h.free(blocks[i].p);
    freed.add(blocks[i].p);
  }
  const live = blocks.filter((b) => !freed.has(b.p));
  const got = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const p = h.malloc(size);
    assert.ok(p !== 0);
    assert.not.ok(got.has(p), `malloc returned ${hex(p)} twice`);
    got.add(p);
    fillPattern(p, size, 10000 + i);
    live.push({ p, size, id: 10000 + i });
  }
  const reused = [...freed].filter((p) => got.has(p)).length;
  assert.is(reused, freed.size, "every freed block of the parked page was handed out again");
  checkBlocks(live, "after reuse");
  assert.ok(validate().ok, "validate()");
  h.destroy();
});

t("Heap.create returns independent heaps; blocks come from the heap they were asked of", () => {
  const a = Heap.create();
  const b = Heap.create({});
  assert.ok(a instanceof Heap && b instanceof Heap);
  assert.ok(a !== b);
  const ba = fillHeap(a, 1000);
  const bb = fillHeap(b, 2000);
  const d = malloc(100);
  for (const x of ba) {
    assert.ok(a.contains(x.p), `a.contains(own block ${hex(x.p)})`);
    assert.not.ok(b.contains(x.p), `b.contains(a's block ${hex(x.p)})`);
  }
  for (const x of bb) {
    assert.ok(b.contains(x.p));
    assert.not.ok(a.contains(x.p));
  }
  assert.not.ok(a.contains(d), "a.contains(default-heap block)");
  assert.not.ok(b.contains(d));
  checkBlocks(ba, "a");
  checkBlocks(bb, "b");
  free(d);
  a.destroy();
  checkBlocks(bb, "b after a.destroy()");
  b.destroy();
});

t("contains: false for 0, interior addresses, foreign and never-allocated addresses", () => {
  const h = Heap.create();
  const bs = fillHeap(h, 3000, [16, 100, 5000, 100000, 3 * MiB], 2);
  assert.not.ok(h.contains(0));
  assert.not.ok(h.contains(0x1234560));
  assert.not.ok(h.contains(0x7ffc_1234_5670));
  for (const b of bs) {
    assert.ok(h.contains(b.p));
    assert.not.ok(h.contains(b.p + 1), `contains(${hex(b.p)}+1)`);
    assert.not.ok(h.contains(b.p + 8), `contains(${hex(b.p)}+8)`);
    if (b.size >= 64) assert.not.ok(h.contains(b.p + 48), `contains(${hex(b.p)}+48) (interior of a ${b.size} block)`);
  }
  h.destroy();
});

t("contains is false after free (heap.free and global free), true again only for new blocks", () => {
  const h = Heap.create();
  for (const size of SIZES) {
    const p = h.malloc(size);
    assert.ok(h.contains(p));
    h.free(p);
    assert.not.ok(h.contains(p), `contains after heap.free of a ${size} block`);
    const q = h.malloc(size);
    assert.ok(h.contains(q));
    free(q); // global free of a heap block
    assert.not.ok(h.contains(q), `contains after global free of a ${size} block`);
  }
  h.destroy();
});

t("heap.realloc keeps contents and the result belongs to the heap", () => {
  const h = Heap.create();
  let p = h.malloc(10);
  fillPattern(p, 10, 77);
  let size = 10;
  for (const n of [100, 5000, 70000, 2 * MiB, 50, 9 * MiB, 8]) {
    const q = h.realloc(p, n);
    assert.ok(q !== 0);
    assert.is(checkPattern(q, size, 77, Math.min(size, n)), -1, `realloc ${size} -> ${n}`);
    assert.ok(h.contains(q), `heap.realloc(${size} -> ${n}) result not in the heap`);
    if (q !== p) assert.not.ok(h.contains(p), "old block still contained after a moving realloc");
    fillPattern(q, n, 77);
    p = q;
    size = n;
  }
  const r = h.reallocAligned(p, 1000, 256);
  assert.ok(r % 256 === 0 && h.contains(r));
  assert.is(checkPattern(r, size, 77, Math.min(size, 1000)), -1);
  h.free(r);
  assertVisitIs(h, [], "after freeing the realloc chain");
  h.destroy();
});

t("visit yields exactly the live blocks with usableSize", () => {
  const h = Heap.create();
  assertVisitIs(h, [], "empty heap");
  const bs = fillHeap(h, 4000);
  const other = Heap.create();
  const ob = fillHeap(other, 5000, [24, 3000], 2);
  const d = malloc(64); // default heap: must not show up
  assertVisitIs(h, bs, "full heap");
  // free every third block (alternating heap.free and global free) and compare again
  const keep: B[] = [];
  bs.forEach((b, i) => {
    if (i % 3 === 0) (i % 2 === 0 ? h.free(b.p) : free(b.p));
    else keep.push(b);
  });
  assertVisitIs(h, keep, "after frees");
  checkBlocks(keep, "after frees");
  // reading and writing blocks from inside the callback works (visit hands out live blocks)
  let touched = 0;
  h.visit((p, u) => {
    if (u > 0) {
      const v = bytes(p, 1);
      const x = v[0];
      v[0] = x ^ 0xff;
      v[0] = x;
      touched++;
    }
  });
  assert.ok(touched > 0);
  checkBlocks(keep, "after visit touched blocks");
  assertVisitIs(other, ob, "other heap");
  free(d);
  other.destroy();
  h.destroy();
});

t("visit stops when the callback returns false; undefined/true continue", () => {
  const h = Heap.create();
  const bs = fillHeap(h, 6000, [16, 32, 48, 5000], 5);
  let calls = 0;
  h.visit(() => {
    calls++;
    return false;
  });
  assert.is(calls, 1, "visit went on after the callback returned false");
  calls = 0;
  h.visit(() => {
    calls++;
    return calls < 7 ? true : false;
  });
  assert.is(calls, 7);
  calls = 0;
  h.visit(() => {
    calls++;
  });
  assert.is(calls, bs.length);
  h.destroy();
});

t("delete: blocks stay valid, readable, writable and freeable with free()", () => {
  const before = stats().inUse;
  const h = Heap.create();
  const bs = fillHeap(h, 7000);
  const during = stats().inUse;
  h.delete();
  assert.is(stats().inUse, during, "delete must not free anything");
  checkBlocks(bs, "after delete");
  // write new contents, read them back, grow some with the global realloc
  for (const b of bs) {
    b.id += 100000;
    fillPattern(b.p, b.size, b.id);
  }
  checkBlocks(bs, "rewritten after delete");
  for (let i = 0; i < bs.length; i += 4) {
    const q = realloc(bs[i].p, bs[i].size + 1000);
    assert.ok(q !== 0);
    assert.is(checkPattern(q, bs[i].size, bs[i].id), -1);
    fillPattern(q, bs[i].size + 1000, bs[i].id);
    bs[i].p = q;
    bs[i].size += 1000;
  }
  for (const b of bs) {
    assert.ok(usableSize(b.p) >= b.size);
    free(b.p);
  }
  assert.is(stats().inUse, before, "inUse after freeing the deleted heap's blocks");
  let err: unknown;
  try {
    h.malloc(8);
  } catch (e) {
    err = e;
  }
  assert.ok(isDestroyedError(err), `heap.malloc after delete: ${String(err)}`);
});

t("destroy: inUse drops by the heap's bytes; the heap object throws afterwards", () => {
  const d = malloc(1000); // default heap block must survive
  fillPattern(d, 1000, 42);
  const other = Heap.create();
  const ob = fillHeap(other, 8000, [100, 70000], 2);
  const before = stats().inUse;
  const h = Heap.create();
  const bs = fillHeap(h, 9000);
  const requested = bs.reduce((s, b) => s + b.size, 0);
  const during = stats().inUse;
  assert.ok(during - before >= requested, `inUse grew by ${during - before} < ${requested} requested`);
  h.destroy();
  assert.is(stats().inUse, before, "inUse after destroy");
  for (const [nm, f] of [
    ["malloc", () => h.malloc(8)],
    ["calloc", () => h.calloc(1, 8)],
    ["zalloc", () => h.zalloc(8)],
    ["mallocAligned", () => h.mallocAligned(8, 64)],
    ["alloc", () => h.alloc(8)],
    ["visit", () => h.visit(() => {})],
  ] as const) {
    let err: unknown;
    try {
      f();
    } catch (e) {
      err = e;
    }
    assert.ok(isDestroyedError(err), `heap.${nm} after destroy: ${String(err)}`);
  }
  assert.is(checkPattern(d, 1000, 42), -1, "default-heap block damaged by destroy");
  checkBlocks(ob, "other heap after destroy");
  assertVisitIs(other, ob, "other heap after destroy");
  free(d);
  other.destroy();
});

t("destroyed memory is reused: new allocations after destroy work and are independent", () => {
  const h = Heap.create();
  const bs = fillHeap(h, 10000);
  const addrs = new Set(bs.map((b) => b.p));
  h.destroy();
  const h2 = Heap.create();
  const bs2 = fillHeap(h2, 11000);
  let reused = 0;
  for (const b of bs2) if (addrs.has(b.p)) reused++;
  checkBlocks(bs2, "new heap after destroy");
  assertVisitIs(h2, bs2, "new heap after destroy");
  // zero allocations must be zero even on reused memory
  for (const size of [16, 512, 5000, 100000]) {
    const z = h2.zalloc(size);
    assert.is(firstNot(z, size, 0), -1, `h2.zalloc(${size}) on reused memory`);
    h2.free(z);
  }
  h2.destroy();
  // (reuse is expected but not required: `reused` is informational)
  void reused;
});

t("[Symbol.dispose]() destroys the heap", () => {
  const before = stats().inUse;
  const h = Heap.create();
  assert.type(h[Symbol.dispose], "function");
  const bs = fillHeap(h, 12000, [10, 2000, 100000], 3);
  assert.ok(stats().inUse > before);
  h[Symbol.dispose]();
  assert.is(stats().inUse, before);
  let err: unknown;
  try {
    h.malloc(1);
  } catch (e) {
    err = e;
  }
  assert.ok(isDestroyedError(err), `heap.malloc after dispose: ${String(err)}`);
  assert.ok(bs.length > 0);
  // With `using` (TS 5.2+ / ES2026 explicit resource management) this would be:
  //   { using h = Heap.create(); h.malloc(10); }   // h[Symbol.dispose]() at block exit
  // It is not written as syntax here because not every runtime's TS transpile path accepts it.
});

t("1000 rounds of create/allocate/destroy keep stats().reserved bounded", () => {
  const sizes = [32, 200, 3000, 20000, 100000];
  const round = (i: number, how: "destroy" | "delete") => {
    const h = Heap.create();
    const ps: number[] = [];
    for (const s of sizes) {
      const p = h.malloc(s + (i % 7));
      if (p === 0) assert.unreachable(`round ${i}: heap.malloc returned 0`);
      bytes(p, 16).fill(i & 255);
      ps.push(p);
    }
    if (i % 50 === 0) {
      const p = h.malloc(5 * MiB); // a huge block now and then
      if (p === 0) assert.unreachable(`round ${i}: heap.malloc(5 MiB) returned 0`);
      ps.push(p);
    }
    if (how === "destroy") h.destroy();
    else {
      h.delete();
      for (const p of ps) free(p);
    }
  };
  for (let i = 0; i < 20; i++) round(i, "destroy"); // warm-up
  collect(true);
  const warm = stats().reserved;
  const inUse0 = stats().inUse;
  let peak = warm;
  for (let i = 20; i < 1000; i++) {
    round(i, i % 4 === 3 ? "delete" : "destroy");
    if (i % 50 === 0) peak = Math.max(peak, stats().reserved);
  }
  collect(true);
  const end = stats().reserved;
  peak = Math.max(peak, end);
  assert.is(stats().inUse, inUse0, "inUse after 1000 heap rounds");
  // one round needs < 1 MiB of small/medium pages plus a 5 MiB huge block: allow generous slack,
  // but not growth proportional to the number of rounds (1000 rounds x 5 MiB = 5 GB)
  const bound = warm + 64 * MiB;
  assert.ok(peak <= bound, `reserved grew from ${warm} to ${peak} over 1000 heap rounds (bound ${bound})`);
});

t("many heaps alive at once (1000), then destroyed; then again", () => {
  collect(true);
  const inUse0 = stats().inUse;
  let reservedAfterFirst = 0;
  for (let pass = 0; pass < 2; pass++) {
    const heaps: Heap[] = [];
    const blocks: B[] = [];
    for (let i = 0; i < 1000; i++) {
      const h = Heap.create();
      heaps.push(h);
      const p = h.malloc(32 + (i % 64));
      if (p === 0) assert.unreachable(`heap ${i}: malloc returned 0`);
      fillPattern(p, 32, i);
      blocks.push({ p, size: 32, id: i });
    }
    checkBlocks(blocks, `pass ${pass}: 1000 live heaps`);
    for (let i = 0; i < 1000; i += 97) assertVisitIs(heaps[i], [blocks[i]], `heap ${i} of 1000`);
    for (const h of heaps) h.destroy();
    collect(true);
    assert.is(stats().inUse, inUse0, `pass ${pass}: inUse after destroying 1000 heaps`);
    if (pass === 0) reservedAfterFirst = stats().reserved;
    else {
      assert.ok(
        stats().reserved <= reservedAfterFirst + 16 * MiB,
        `second pass of 1000 heaps grew reserved ${reservedAfterFirst} -> ${stats().reserved}`,
      );
    }
  }
});

t("heap.alloc throws AllocationError for oversized requests; heap.usableSize works", () => {
  const h = Heap.create();
  let err: unknown;
  try {
    h.alloc(MAX_ALLOC_SIZE + 1);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof AllocationError);
  const p = h.alloc(100);
  assert.ok(p !== 0 && h.contains(p));
  assert.is(h.usableSize(p), usableSize(p));
  assert.ok(h.usableSize(p) >= 100);
  assert.is(h.usableSize(0), 0);
  h.free(p);
  h.destroy();
});

t("every size up to 2 * DIRECT_SIZE_MAX gets a block of its class (binOf), on both sides of the direct table's end, and the sizes of one class share its pages (session 24 took the table from 1 KiB to 4 KiB)", () => {
  const h = Heap.create();
  const live: number[] = [];
  const seen = new Set<number>();
  for (let round = 0; round < 2; round++) {
    for (let size = 1; size <= 2 * DIRECT_SIZE_MAX; size++) {
      const p = h.malloc(size);
      const want = BIN_SIZE[binOf(size)];
      if (h.usableSize(p) !== want) assert.unreachable(`malloc(${size}): usable ${h.usableSize(p)}, its class is ${want}`);
      if (seen.has(p)) assert.unreachable(`malloc(${size}) handed out ${hex(p)} twice`);
      seen.add(p);
      live.push(p);
    }
  }
  // each class's blocks lie in as few pages as its count needs: a direct entry left pointing at
  // another page of the class (or another class's) would scatter them
  const byClass = new Map<number, number[]>();
  for (const p of live) {
    const b = h.usableSize(p);
    if (!byClass.has(b)) byClass.set(b, []);
    byClass.get(b)!.push(p);
  }
  const pages = (h as unknown as { pageCount: number }).pageCount;
  let need = 0;
  for (const [bsize, ps] of byClass) need += Math.ceil(ps.length * bsize / (bsize <= 1024 ? 65536 : 524288)) + 1;
  assert.ok(pages <= need, `${pages} pages for ${live.length} blocks in ${byClass.size} classes (at most ${need})`);
  for (const p of live) h.free(p);
  assert.is(validate().ok, true);
  h.destroy();
});

t("mallocAligned: every size up to 4 KiB + 64 at every alignment up to 64 KiB gets an aligned block of the first class that is a multiple of the alignment, never an address twice; bad alignments throw as before (session 25: the inline path pops from ALIGNED_FRONT's class)", () => {
  const h = Heap.create();
  const seen = new Set<number>();
  const live: number[] = [];
  const want = (size: number, a: number): number => {
    if (a <= 16) return BIN_SIZE[binOf(Math.max(size, 1))];
    for (let b = binOf(Math.max(size, a)); b < BIN_SIZE.length; b++) if (BIN_SIZE[b] % a === 0) return BIN_SIZE[b];
    return -1;
  };
  for (let log = 0; log <= 16; log++) {
    const a = 2 ** log;
    for (let size = 0; size <= DIRECT_SIZE_MAX + 64; size += log > 12 ? 61 : 1) {
      const p = h.mallocAligned(size, a);
      if (p === 0 || p % a !== 0) assert.unreachable(`mallocAligned(${size}, ${a}) = ${hex(p)}`);
      const u = h.usableSize(p);
      const w = a <= 8192 ? want(size, a) : -1;
      if (w > 0 ? u !== w : u < size) assert.unreachable(`mallocAligned(${size}, ${a}): usable ${u}, want ${w > 0 ? w : `>= ${size}`}`);
      if (seen.has(p)) assert.unreachable(`mallocAligned(${size}, ${a}) handed out ${hex(p)} twice`);
      seen.add(p);
      live.push(p);
    }
    // free half, so the next alignment pops from free lists as well as fresh pages
    for (let i = live.length - 1; i >= 0; i -= 2) {
      seen.delete(live[i]);
      h.free(live[i]);
      live.splice(i, 1);
    }
  }
  for (const a of [2 ** 31, 2 ** 32]) assert.is(h.mallocAligned(64, a), 0, `alignment ${a} > MAX_ALIGN: 0`);
  for (const a of [0, 3, 48, -64, 64.5, NaN, 2 ** 32 + 64, "64" as unknown as number]) {
    assert.throws(() => h.mallocAligned(64, a), (e: unknown) => e instanceof RangeError || e instanceof TypeError, `alignment ${a}`);
  }
  for (const n of [-1, 1.5, NaN, "64" as unknown as number]) {
    assert.throws(() => h.mallocAligned(n, 64), (e: unknown) => e instanceof RangeError || e instanceof TypeError, `size ${n}`);
  }
  for (const p of live) h.free(p);
  assert.is(validate().ok, true);
  h.destroy();
});

t("calloc: every size up to 4 KiB + 64 (and count x size products) gets its class's block with every usable byte zero, also a block freed dirty just before; bad counts and sizes throw or return 0 as before (session 25: the inline path pops and zeroes in place)", () => {
  const h = Heap.create();
  for (let size = 0; size <= DIRECT_SIZE_MAX + 64; size += size < 300 ? 1 : 7) {
    for (const [count, each] of [[1, size], [size, 1], [size > 1 ? 2 : 1, size >> 1]]) {
      const total = count * each;
      const d = h.malloc(Math.max(total, 1));
      bytes(d, h.usableSize(d)).fill(0xab);
      h.free(d); // the next pop of its class takes it back (LIFO)
      const p = h.calloc(count, each);
      const want = BIN_SIZE[binOf(Math.max(total, 1))];
      if (p === 0 || h.usableSize(p) !== want) assert.unreachable(`calloc(${count}, ${each}): ${hex(p)}, usable ${p && h.usableSize(p)}, want ${want}`);
      const at = firstNot(p, want, 0);
      if (at >= 0) assert.unreachable(`calloc(${count}, ${each}) = ${hex(p)} (the freed block ${hex(d)}): byte ${at} of ${want} is not zero`);
      h.free(p);
    }
  }
  assert.is(h.calloc(2 ** 31, 2 ** 31), 0, "a product past MAX_ALLOC_SIZE: 0");
  for (const [c, n] of [[-1, 8], [8, -1], [1.5, 8], [8, NaN], ["1" as unknown as number, 8], [8, "8" as unknown as number]]) {
    assert.throws(() => h.calloc(c, n), (e: unknown) => e instanceof RangeError || e instanceof TypeError, `calloc(${c}, ${n})`);
  }
  assert.is(validate().ok, true);
  h.destroy();
});

t.run();
