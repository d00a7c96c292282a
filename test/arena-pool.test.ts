// ArenaPool and Arena (src/arena-pool.ts; issue 13, after Lightpanda's ArenaPool.zig):
//   - bucket choice by name and by size hint (smallest bucket whose retain limit covers it)
//   - alloc: distinct, non-overlapping, aligned blocks whose bytes survive growth; used/capacity/contains
//   - release parks chunks up to the retain limit; the next task reuses them with no heap or OS call
//   - retain limits: what a release frees past the limit leaves committed and RSS
//   - free-list length, leaks() by tag, close() throwing or warning, stats().arenaPools
//   - bad input: a clear error, and every other arena's blocks intact afterwards
// (`using` itself is in arena-using.test.ts.)
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { AllocationError, Arena, ArenaPool, bytes, collect, free, Heap, InvalidPointerError, malloc, realloc, stats, usableSize, validate } from "../mod.ts";
import { destroyHooks, defaultHeap, type Heap as CoreHeap } from "../src/heap.ts";
import { dropHugeCache, isFfi, mib, MiB, settle } from "./_mem.ts";
import { checkPattern, fillPattern, KiB, makeRng } from "./_util.ts";

const t0 = suite("arena-pool");
// a failing test's error, not the SuppressedError its `using pool` adds when close() then throws too
const t = ((name: string, f: () => void) => t0(name, () => {
  try {
    f();
  } catch (e) {
    throw (e as { suppressed?: unknown }).suppressed ?? e;
  }
})) as unknown as typeof t0;
t.run = () => t0.run();

interface Blk {
  p: number;
  size: number;
  id: number;
}

/** n blocks of 16 B..2 KiB in `a`, each filled with its own pattern. */
function fillArena(a: Arena, n: number, seed: number, align = 16): Blk[] {
  const rnd = makeRng(seed);
  const out: Blk[] = [];
  for (let i = 0; i < n; i++) {
    const size = 16 + (rnd() % 2033);
    const p = a.alloc(size, align);
    fillPattern(p, size, seed * 100000 + i);
    out.push({ p, size, id: seed * 100000 + i });
  }
  return out;
}

function assertIntact(bs: Blk[], what: string): void {
  for (const b of bs) assert.is(checkPattern(b.p, b.size, b.id), -1, `${what}: block ${b.id} at ${b.p} (${b.size} B) was overwritten`);
}

t("acquire picks the bucket by name, or for a size hint the smallest bucket whose retain limit covers it", () => {
  using pool = new ArenaPool(); // (dispose)
  const cases: [number | "tiny" | "small" | "medium" | "large", string][] = [
    ["tiny", "tiny"], ["small", "small"], ["medium", "medium"], ["large", "large"],
    [0, "tiny"], [1, "tiny"], [4 * KiB, "tiny"], [4 * KiB + 1, "small"], [64 * KiB, "small"],
    [64 * KiB + 1, "medium"], [1 * MiB, "medium"], [1 * MiB + 1, "large"], [8 * MiB, "large"], [2 ** 40, "large"],
  ];
  for (const [hint, want] of cases) {
    const a = pool.acquire(hint, "hint");
    assert.is(a.bucket, want, `acquire(${hint})`);
    assert.is(a.tag, "hint");
    pool.release(a);
  }
  // the config moves the boundaries
  using custom = new ArenaPool({ tiny: { retain: 100 }, small: { retain: 1000 }, medium: { retain: 10000 } });
  assert.equal([50, 100, 101, 1000, 1001, 10001].map((h) => {
    const a = custom.acquire(h);
    custom.release(a);
    return a.bucket;
  }), ["tiny", "tiny", "small", "small", "medium", "large"]);
  assert.equal(custom.config("small"), { retain: 1000, maxFree: 64 });
  assert.equal(pool.config("large"), { retain: 8 * MiB, maxFree: 4 });
});

t("alloc: distinct non-overlapping aligned blocks; their bytes survive the arena growing by chunks", () => {
  using pool = new ArenaPool(); // (dispose)
  const a = pool.acquire("small", "grow");
  const bs = fillArena(a, 3000, 1);
  const aligned: Blk[] = [];
  for (const align of [1, 2, 8, 32, 64, 4096, 65536]) {
    const p = a.alloc(100, align);
    assert.is(p % align, 0, `align ${align}`);
    fillPattern(p, 100, 900 + align);
    aligned.push({ p, size: 100, id: 900 + align });
  }
  const z1 = a.alloc(0), z2 = a.alloc(0);
  assert.ok(z1 !== z2, "size 0 blocks are distinct");
  const all = [...bs, ...aligned].sort((x, y) => x.p - y.p);
  for (let i = 1; i < all.length; i++) {
    assert.ok(all[i - 1].p + all[i - 1].size <= all[i].p, `blocks ${all[i - 1].id} and ${all[i].id} overlap`);
  }
  assertIntact(bs, "after growth");
  assertIntact(aligned, "aligned");
  const bytesAsked = bs.reduce((s, b) => s + b.size, 0);
  assert.ok(a.used >= bytesAsked && a.used < bytesAsked + 3000 * 16 + 80000, `used ${a.used} for ${bytesAsked} asked`);
  assert.ok(a.capacity >= a.used, "capacity >= used");
  for (const b of bs) assert.ok(a.contains(b.p) && a.contains(b.p + b.size - 1), "contains every byte of a block");
  assert.not.ok(a.contains(0));
  assert.not.ok(a.contains("x" as unknown as number));
  const other = malloc(64);
  assert.not.ok(a.contains(other), "a heap block is not in the arena");
  free(other);
  pool.release(a);
  assert.is(validate().ok, true);
});

t("release keeps chunks up to the retain limit; the next task of the bucket makes no heap or OS call", () => {
  using pool = new ArenaPool({ medium: { retain: 1 * MiB, maxFree: 4 } }); // (dispose)
  // warm up: the first task takes its chunk from the heap
  let a = pool.acquire("medium", "task");
  fillArena(a, 500, 2);
  pool.release(a);
  const before = stats();
  for (let task = 0; task < 50; task++) {
    a = pool.acquire("medium", "task");
    const bs = fillArena(a, 500, 3 + task); // ~500 KiB: fits the retained 1 MiB chunk
    assertIntact(bs, `task ${task}`);
    pool.release(a);
  }
  const after = stats();
  assert.equal(after.osCalls, { ...before.osCalls, resident: after.osCalls.resident }, "no OS call (but stats' own mincore)");
  assert.is(after.arenaPools.chunkAllocs, before.arenaPools.chunkAllocs, "no chunk allocated");
  assert.is(after.arenaPools.chunkFrees, before.arenaPools.chunkFrees, "no chunk freed");
  assert.is(after.inUse, before.inUse, "heap in-use bytes unchanged");
  assert.is(after.arenaPools.reused - before.arenaPools.reused, 50, "every acquire reused a pooled arena");
  assert.is(after.arenaPools.pooled, 1);
});

t("reset frees every block at once, keeps the retained chunk, and hands out the same memory again", () => {
  using pool = new ArenaPool({ small: { retain: 64 * KiB } }); // (dispose)
  const a = pool.acquire("small", "reset");
  const first = a.alloc(64);
  fillArena(a, 2000, 4); // grows past 64 KiB
  assert.ok(a.capacity > 64 * KiB);
  a.reset();
  assert.is(a.used, 0);
  assert.is(a.capacity, 64 * KiB, "trimmed to the retain limit");
  assert.not.ok(a.contains(first), "nothing is live after reset");
  assert.is(a.alloc(64), first, "the first block again");
  // reset and reuse within the retained chunk: no OS call, no heap call
  const before = stats();
  for (let round = 0; round < 100; round++) {
    a.reset();
    fillArena(a, 50, 5 + round); // ~50 KiB: fits the kept 64 KiB chunk
  }
  const after = stats();
  assert.equal(after.osCalls, { ...before.osCalls, resident: after.osCalls.resident }, "no OS call (but stats' own mincore)");
  assert.is(after.arenaPools.chunkAllocs, before.arenaPools.chunkAllocs, "no chunk allocated");
  assert.is(after.inUse, before.inUse);
  pool.release(a);
});

t("retain limits: memory an arena held past the limit leaves committed (and RSS on FFI) after release", () => {
  dropHugeCache();
  using pool = new ArenaPool({ large: { retain: 1 * MiB, maxFree: 4 } }); // (dispose)
  const base = settle();
  const a = pool.acquire("large", "big");
  // 64 MiB in 2 KiB blocks, every byte written (resident)
  for (let i = 0; i < 32768; i++) bytes(a.alloc(2048), 2048).fill(i & 255);
  const full = settle();
  assert.ok(full.committed - base.committed >= 60 * MiB, `committed grew by ${mib(full.committed - base.committed)}`);
  pool.release(a);
  dropHugeCache();
  const after = settle();
  assert.ok(full.committed - after.committed >= 60 * MiB, `committed dropped by only ${mib(full.committed - after.committed)}`);
  // the retained 1 MiB chunk is a block of a 4 MiB large page: that page stays committed, with its side-table unit
  assert.ok(after.committed - base.committed <= 4 * MiB + 4096, `retained ${mib(after.committed - base.committed)} (limit 1 MiB, in one 4 MiB page)`);
  if (isFfi()) assert.ok(full.rss - after.rss >= 48 * MiB, `RSS dropped by only ${mib(full.rss - after.rss)} (${mib(full.rss)} -> ${mib(after.rss)})`);
  assert.is(stats().arenaPools.pooled, 1);
  assert.is(stats().arenaPools.capacity >= 1 * MiB - 1, true);
});

t("a release past the free-list length frees the arena's chunks", () => {
  using pool = new ArenaPool({ tiny: { maxFree: 2 } }); // (dispose)
  const as = [0, 1, 2].map(() => pool.acquire("tiny", "t"));
  for (const a of as) a.alloc(100);
  const frees = stats().arenaPools.chunkFrees;
  for (const a of as) pool.release(a);
  assert.is(stats().arenaPools.chunkFrees - frees, 1, "the third release freed its chunk");
  assert.is(pool.free.tiny.length, 2);
});

t("leaks() lists tags with arenas not released; close() frees everything and throws naming them", () => {
  const s0 = stats();
  const pool = new ArenaPool();
  const r1 = pool.acquire("small", "request"), r2 = pool.acquire("small", "request"), p = pool.acquire("large", "page");
  const done = pool.acquire("tiny", "done");
  r1.alloc(100);
  p.alloc(100_000);
  pool.release(done);
  const leaks = pool.leaks();
  assert.equal(leaks.map((l) => [l.tag, l.count]), [["request", 2], ["page", 1]]);
  assert.is(leaks[1].bytes, p.capacity);
  assert.is(leaks[0].bytes, r1.capacity + r2.capacity);
  assert.is(stats().arenaPools.live, 3);
  try {
    pool.close();
    assert.unreachable("close() with leaks must throw");
  } catch (e) {
    assert.instance(e, Error);
    assert.match(String(e), /"request" x2/);
    assert.match(String(e), /"page" x1/);
  }
  assert.ok(r1.isReleased && p.isReleased, "live handles die at close");
  assert.throws(() => r1.alloc(8), /released/);
  assert.is(stats().inUse, s0.inUse, "every chunk went back to the heap");
  assert.is(stats().arenaPools.pools, s0.arenaPools.pools);
  pool.close(); // a second close does nothing
  assert.throws(() => pool.acquire("tiny"), /closed/);
});

t("close() with onLeak \"warn\" prints the leaked tags instead of throwing", () => {
  const pool = new ArenaPool({ onLeak: "warn" });
  pool.acquire("tiny", "forgotten");
  const lines: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    pool.close();
  } finally {
    console.error = orig;
  }
  assert.is(lines.length, 1);
  assert.match(lines[0], /"forgotten" x1/);
});

t("chunks come from the heap given in the config and count in its stats", () => {
  const heap = Heap.create({ tag: "arena-chunks" });
  const pool = new ArenaPool({ heap });
  const a = pool.acquire("medium", "x");
  const p = a.alloc(1000);
  let inHeap = false;
  heap.visit((b, size) => void (inHeap ||= p >= b && p < b + size));
  assert.ok(inHeap, "the arena's chunk is a block of that heap");
  pool.release(a);
  pool.close();
  let blocks = 0;
  heap.visit(() => void blocks++);
  assert.is(blocks, 0, "close gave the chunks back to that heap");
  heap.destroy();
});

t("a pool whose heap was destroyed hands out none of its freed chunks: acquire throws; release and close free nothing twice", () => {
  const heap = Heap.create({ tag: "doomed" });
  const pool = new ArenaPool({ heap });
  const a = pool.acquire("small", "x");
  a.alloc(100);
  pool.release(a); // its chunk is pooled
  const b = pool.acquire("small", "y");
  b.alloc(100);
  const keep = malloc(200);
  fillPattern(keep, 200, 77);
  heap.destroy(); // frees every chunk, pooled and live
  assert.throws(() => pool.acquire("small", "z"), /heap was destroyed/);
  pool.release(b); // no free of a chunk the heap already freed
  pool.close();
  assert.is(checkPattern(keep, 200, 77), -1, "other blocks intact");
  free(keep);
  assert.is(validate().ok, true);
});

t("a live arena of a pool whose heap was destroyed never bumps into the freed chunks again (review finding: alloc, and reset then alloc, handed out freed memory that later mallocs reused)", () => {
  const heap = Heap.create({ tag: "doomed2" });
  const pool = new ArenaPool({ heap });
  const a = pool.acquire("small", "t");
  a.alloc(64);
  const c = pool.acquire("small", "u");
  heap.destroy();
  assert.throws(() => a.alloc(64), /heap was destroyed/);
  a.reset();
  assert.throws(() => a.alloc(64), /heap was destroyed/);
  assert.throws(() => c.alloc(16), /heap was destroyed/);
  assert.is(a.used, 0);
  // what the freed chunks now hold belongs to others, untouched by the arenas
  const others: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const p = malloc(64);
    fillPattern(p, 64, i);
    others.push(p);
  }
  assert.throws(() => a.alloc(64), /heap was destroyed/);
  for (let i = 0; i < others.length; i++) assert.is(checkPattern(others[i], 64, i), -1);
  pool.release(a);
  pool.release(c);
  pool.close();
  for (const p of others) free(p);
  assert.is(validate().ok, true);
});

t("a chunk heap that returns 0 instead of throwing gives an AllocationError, never a 0 address; a bigint size gets a tsmalloc TypeError", () => {
  const pool = new ArenaPool({ heap: { alloc: () => 0, free() {} } });
  const a = pool.acquire("tiny", "null-heap");
  assert.throws(() => a.alloc(16), (e: unknown) => e instanceof AllocationError);
  pool.release(a);
  pool.close();
  const p2 = new ArenaPool();
  const b = p2.acquire("tiny", "bigint");
  assert.throws(() => b.alloc(8n as unknown as number), /tsmalloc: arena\.alloc/);
  p2.release(b);
  p2.close();
});

t("bad input: a specific error at once; other arenas' blocks intact and the pool still works", () => {
  using pool = new ArenaPool(); // (dispose)
  using otherPool = new ArenaPool();
  const keep = pool.acquire("small", "keep");
  const kept = fillArena(keep, 300, 7);
  const a = pool.acquire("small", "bad");
  const bad: [string, () => unknown, RegExp | (new (...args: never[]) => Error)][] = [
    ["alloc(-1)", () => a.alloc(-1), RangeError],
    ["alloc(1.5)", () => a.alloc(1.5), RangeError],
    ["alloc(NaN)", () => a.alloc(NaN), RangeError],
    ["alloc(Infinity)", () => a.alloc(Infinity), RangeError],
    ["alloc(2^47)", () => a.alloc(2 ** 47), RangeError],
    ["alloc('8')", () => a.alloc("8" as unknown as number), TypeError],
    ["alloc(8, 3)", () => a.alloc(8, 3), RangeError],
    ["alloc(8, 0)", () => a.alloc(8, 0), RangeError],
    ["alloc(8, -16)", () => a.alloc(8, -16), RangeError],
    ["alloc(8, 2^21)", () => a.alloc(8, 2 ** 21), RangeError],
    ["alloc(8, 24)", () => a.alloc(8, 24), RangeError],
    ["alloc(8, '16')", () => a.alloc(8, "16" as unknown as number), TypeError],
    ["acquire('huge')", () => pool.acquire("huge" as "large"), RangeError],
    ["acquire(-1)", () => pool.acquire(-1), RangeError],
    ["acquire(1.5)", () => pool.acquire(1.5), RangeError],
    ["acquire({})", () => pool.acquire({} as unknown as number), TypeError],
    ["acquire(tag 5)", () => pool.acquire("tiny", 5 as unknown as string), TypeError],
    ["release(foreign arena)", () => otherPool.release(a), /another pool/],
    ["release({})", () => pool.release({} as Arena), TypeError],
    ["new ArenaPool({ tiny: { retain: -1 } })", () => new ArenaPool({ tiny: { retain: -1 } }), RangeError],
    ["new ArenaPool({ huge: {} })", () => new ArenaPool({ huge: {} } as never), RangeError],
    ["new ArenaPool({ onLeak: 'x' })", () => new ArenaPool({ onLeak: "x" as "warn" }), RangeError],
    ["new Arena()", () => new (Arena as unknown as new () => Arena)(), TypeError],
  ];
  for (const [what, f, want] of bad) {
    if (want instanceof RegExp) assert.throws(f, want, what);
    else assert.throws(f, (e: unknown) => e instanceof want, what);
  }
  // the bad arena itself still works, then dies on release
  const p = a.alloc(64);
  fillPattern(p, 64, 1);
  pool.release(a);
  assert.throws(() => pool.release(a), /already released/, "release twice");
  assert.throws(() => a.alloc(8), /released/, "alloc after release");
  assert.throws(() => a.reset(), /released/, "reset after release");
  a[Symbol.dispose](); // dispose after release: nothing
  // the next task reuses a's chunk; the dead handle reaches none of it
  const b = pool.acquire("small", "next");
  const q = b.alloc(64);
  assert.is(q, p, "the chunk was reused");
  assert.not.ok(a.contains(q), "a released handle contains nothing");
  assert.throws(() => a.alloc(8), /released/);
  assertIntact(kept, "after the bad input");
  assert.equal(pool.leaks().map((l) => l.tag).sort(), ["keep", "next"]);
  pool.release(b);
  pool.release(keep);
  assert.is(validate().ok, true);
  // sizes past 2^32 take the slow path's checks, not the fast path's bit tricks
  const c = pool.acquire("tiny", "c");
  const big = 2 ** 32 + 8;
  try {
    const p = c.alloc(big); // a chunk of its own (virtual memory; nothing is touched)
    assert.ok(c.contains(p) && c.contains(p + big - 1), "the whole > 4 GiB block is in the arena");
    const q = c.alloc(8);
    assert.ok(q >= p + big || q + 8 <= p, "the next block does not overlap it");
  } catch (e) {
    assert.instance(e, AllocationError, "when the memory cannot be had: AllocationError");
  }
  pool.release(c);
  collect(true);
});

t("[Symbol.dispose] releases an arena (and closes a pool); collect() then returns its memory", () => {
  const pool = new ArenaPool({ small: { retain: 0 } });
  const a = pool.acquire("small", "d");
  a.alloc(1000);
  a[Symbol.dispose]();
  assert.ok(a.isReleased);
  assert.equal(pool.leaks(), []);
  assert.is(pool.free.small.length, 0, "retain 0: nothing kept");
  pool[Symbol.dispose]();
  assert.is(stats().arenaPools.pools >= 0, true);
  collect(true);
});

t("no arena block starts where its chunk (a heap block) starts: free/realloc/usableSize of every arena block throw InvalidPointerError, the arena intact (review finding: free of a chunk's first block freed the whole chunk, and later mallocs landed on live arena blocks)", () => {
  const pool = new ArenaPool();
  for (const align of [1, 8, 16, 32, 64, 4096, 65536]) {
    const a = pool.acquire("small", `first-${align}`);
    // enough to span several chunks, so every chunk's first block is tried
    const blocks = fillArena(a, 300, align, align);
    const firsts = new Set<number>();
    for (const b of blocks) {
      for (const [name, f] of [["free", () => free(b.p)], ["realloc", () => realloc(b.p, 10)], ["usableSize", () => usableSize(b.p)]] as const) {
        assert.throws(f, (e: unknown) => e instanceof InvalidPointerError, `${name} of arena block 0x${b.p.toString(16)} (align ${align})`);
      }
      firsts.add(b.p);
    }
    // what mallocs get now never overlaps a live arena block
    const ms: number[] = [];
    for (let i = 0; i < 200; i++) ms.push(malloc(16 + (i % 5) * 4000));
    for (const m of ms) assert.not.ok(a.contains(m), "a malloc block inside a live arena");
    for (const b of blocks) assert.is(checkPattern(b.p, b.size, b.id), -1, `arena block intact (align ${align})`);
    for (const m of ms) free(m);
    pool.release(a);
    assert.ok(firsts.size === blocks.length);
  }
  pool.close();
  assert.is(validate().ok, true);
});

t("only what acquire returned is an arena: release(Object.create(arena)) and release(new Proxy(arena, {})) throw TypeError, the arena stays live and counted (review finding: both were accepted; the same chunk was then handed to two tasks)", () => {
  const pool = new ArenaPool();
  const a = pool.acquire("small", "real");
  const blocks = fillArena(a, 50, 5);
  for (const fake of [Object.create(a), new Proxy(a, {})]) {
    assert.throws(() => pool.release(fake as Arena), (e: unknown) => e instanceof TypeError && /not an arena/.test((e as Error).message));
  }
  assert.not.ok(a.isReleased);
  assert.equal(pool.leaks().map((l) => l.tag), ["real"]);
  assert.is(stats().arenaPools.live >= 1, true);
  const b = pool.acquire("small", "other");
  const other = fillArena(b, 50, 6);
  for (const x of blocks) assert.is(checkPattern(x.p, x.size, x.id), -1, "the real arena's blocks intact");
  for (const x of other) assert.not.ok(a.contains(x.p), "two tasks never share memory");
  pool.release(a);
  pool.release(b);
  pool.close();
});

t("chunks of a pool whose heap was deleted (its blocks now the default heap's) go back when the pool closes (review finding: they stayed allocated for good)", () => {
  collect(true);
  const before = stats().inUse;
  const heap = Heap.create({ tag: "deleted-under-pool" });
  const pool = new ArenaPool({ heap });
  const a = pool.acquire("medium", "x");
  fillArena(a, 1000, 9);
  assert.ok(stats().inUse > before);
  heap.delete();
  assert.throws(() => pool.acquire("small", "y"), /destroyed or deleted/);
  pool.release(a);
  pool.close();
  assert.is(stats().inUse, before, "every chunk freed");
  assert.is(validate().ok, true);
});

t("a closed pool leaves nothing on its heap's destroy hooks (review finding: 100,000 pools created and closed kept 88 MiB of JS heap)", () => {
  const heap = Heap.create({ tag: "many-pools" });
  const n0 = destroyHooks.get(defaultHeap())?.length ?? 0;
  for (let i = 0; i < 1000; i++) {
    const p1 = new ArenaPool();
    const p2 = new ArenaPool({ heap });
    p1.release(p1.acquire("tiny", "t"));
    p1.close();
    p2.close();
  }
  assert.is(destroyHooks.get(defaultHeap())?.length ?? 0, n0, "default heap: no hook left");
  assert.is(destroyHooks.get(heap as unknown as CoreHeap)?.length ?? 0, 0, "own heap: no hook left"); // (the public Heap type is an interface of the same object)
  heap.destroy();
});

t("stats().arenaPools: chunks a heap's destroy freed count as freed (review finding: chunkAllocs - chunkFrees stayed 2 after everything was closed)", () => {
  const s0 = stats().arenaPools;
  const heap = Heap.create({ tag: "count-destroy" });
  const pool = new ArenaPool({ heap });
  const a = pool.acquire("small", "a");
  a.alloc(100);
  pool.release(a); // pooled
  const b = pool.acquire("tiny", "b");
  b.alloc(100); // live
  heap.destroy();
  pool.release(b);
  pool.close();
  const s1 = stats().arenaPools;
  assert.is(s1.chunkAllocs - s0.chunkAllocs, 2);
  assert.is(s1.chunkFrees - s0.chunkFrees, 2);
});

t.run();
