// Randomized operation sequences against a shadow model (property test).
//
// Phase 1 (default heap, >= 100,000 operations): malloc, calloc, zalloc, realloc (grow and
// shrink), mallocAligned / reallocAligned (alignments 16 .. 64 KiB), free and usableSize, with
// sizes mostly 1..4096, sometimes up to 1 MiB and rarely up to 8 MiB. Every block carries a
// pattern derived from its id (full for blocks <= 64 KiB, head/tail/strided samples above); the
// pattern is checked on every free and realloc, zeroing allocations are checked for zero, and at
// intervals: no two live blocks overlap (sorted by address, using usableSize), every pattern is
// intact, stats().inUse is between the requested and the usable bytes of the live set.
// After everything is freed stats().inUse returns to its value before the phase.
//
// Phase 2 (a Heap): the same operations through the Heap's methods (some frees through the
// global free), heap.contains checked for live and freed blocks, heap.visit compared with the
// model, then heap.destroy() with blocks still live; inUse returns to its starting value.
//
// The seed is random unless TSMALLOC_SEED is set; it is printed with any failure.
// TSMALLOC_RANDOM_OPS overrides the phase 1 operation count.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  bytes,
  calloc,
  free,
  Heap,
  malloc,
  mallocAligned,
  realloc,
  reallocAligned,
  stats,
  usableSize,
  zalloc,
} from "../mod.ts";
import { checkPattern, env, FULL_PATTERN_LIMIT, fillPattern, hex, KiB, makeRng, MiB } from "./_util.ts";

const SEED = env("TSMALLOC_SEED") !== undefined
  ? Number(env("TSMALLOC_SEED")) >>> 0
  : ((Date.now() ^ Math.floor(Math.random() * 2 ** 32)) >>> 0);
const OPS = Number(env("TSMALLOC_RANDOM_OPS") ?? 200_000);
const HEAP_OPS = Math.max(20_000, Math.floor(OPS / 5));

interface Rec {
  ptr: number;
  size: number;
  id: number;
  align: number; // 0 = not an aligned allocation
  usable: number;
  idx: number; // position in `arr`
}

interface Ops {
  malloc(n: number): number;
  calloc(c: number, n: number): number;
  zalloc(n: number): number;
  realloc(p: number, n: number): number;
  free(p: number): void;
  mallocAligned(n: number, a: number): number;
  reallocAligned(p: number, n: number, a: number): number;
}

class Model {
  map = new Map<number, Rec>();
  arr: Rec[] = [];
  nextId = 1;
  sumSize = 0;
  sumUsable = 0;
  sumAlign = 0;

  add(ptr: number, size: number, align: number): Rec {
    if (this.map.has(ptr)) {
      assert.unreachable(`allocation returned ${hex(ptr)}, which is already a live block`);
    }
    const r: Rec = { ptr, size, id: this.nextId++, align, usable: usableSize(ptr), idx: this.arr.length };
    this.map.set(ptr, r);
    this.arr.push(r);
    this.sumSize += size;
    this.sumUsable += r.usable;
    this.sumAlign += align;
    return r;
  }
  remove(r: Rec) {
    this.map.delete(r.ptr);
    const last = this.arr.pop()!;
    if (last !== r) {
      this.arr[r.idx] = last;
      last.idx = r.idx;
    }
    this.sumSize -= r.size;
    this.sumUsable -= r.usable;
    this.sumAlign -= r.align;
  }
}

function checkNewBlock(p: number, size: number, align: number, what: string) {
  if (p === 0) assert.unreachable(`${what}: returned 0`);
  const a = Math.max(16, align);
  if (p % a !== 0) assert.unreachable(`${what}: ${hex(p)} not ${a}-aligned`);
  const u = usableSize(p);
  if (u < size) assert.unreachable(`${what}: usableSize ${u} < ${size}`);
}

function checkZero(p: number, size: number, what: string) {
  if (size <= FULL_PATTERN_LIMIT) {
    const v = bytes(p, size);
    for (let i = 0; i < size; i++) if (v[i] !== 0) assert.unreachable(`${what}: byte ${i} is ${v[i]}, not 0`);
    return;
  }
  const v = bytes(p, size);
  for (let i = 0; i < 64; i++) {
    if (v[i] !== 0 || v[size - 1 - i] !== 0) assert.unreachable(`${what}: head/tail not zero`);
  }
  const stride = Math.floor(size / 97);
  for (let i = 0; i < size; i += stride) if (v[i] !== 0) assert.unreachable(`${what}: byte ${i} not zero`);
}

function checkRec(r: Rec, what: string, limit = r.size) {
  const off = checkPattern(r.ptr, r.size, r.id, limit);
  if (off !== -1) {
    assert.unreachable(`${what}: block ${hex(r.ptr)} (size ${r.size}, id ${r.id}) corrupted at byte ${off}`);
  }
}

function checkAll(m: Model, base: number, what: string) {
  // no overlap (usable ranges), every pattern intact, usableSize unchanged
  const sorted = m.arr.slice().sort((a, b) => a.ptr - b.ptr);
  for (let i = 0; i < sorted.length; i++) {
    const r = sorted[i];
    const u = usableSize(r.ptr);
    if (u !== r.usable) assert.unreachable(`${what}: usableSize of live ${hex(r.ptr)} changed ${r.usable} -> ${u}`);
    if (i + 1 < sorted.length && r.ptr + r.usable > sorted[i + 1].ptr) {
      const n = sorted[i + 1];
      assert.unreachable(
        `${what}: blocks overlap: ${hex(r.ptr)}+${r.usable} (size ${r.size}) and ${hex(n.ptr)} (size ${n.size})`,
      );
    }
    checkRec(r, what);
  }
  // accounting: inUse counts usable bytes of live blocks (aligned blocks may count up to `align` more)
  const d = stats().inUse - base;
  if (d < m.sumSize || d > m.sumUsable + m.sumAlign) {
    assert.unreachable(
      `${what}: stats().inUse - base = ${d}, live requested ${m.sumSize}, usable ${m.sumUsable} (+ align slack ${m.sumAlign})`,
    );
  }
}

function runPhase(
  ops: Ops,
  nOps: number,
  rng: () => number,
  m: Model,
  base: number,
  target: number,
  onFree?: (ptr: number) => void,
  freeGlobal?: (ptr: number) => void,
) {
  const pickSize = (): number => {
    const r = rng() % 10000;
    if (r < 50) return 0;
    if (r < 9400) return 1 + (rng() % 4096);
    if (r < 9980) return 4097 + (rng() % (1 * MiB - 4096));
    return 1 * MiB + (rng() % (7 * MiB + 1));
  };
  const pickAlign = (): number => 2 ** (4 + (rng() % 13)); // 16 .. 64 KiB
  const pickLive = (): Rec => m.arr[rng() % m.arr.length];

  for (let op = 0; op < nOps; op++) {
    const what = `op ${op}`;
    const live = m.arr.length;
    // keep the live set around `target`: allocate more when below, free more when above
    const allocBias = live < target / 4 ? 750 : live < target ? 520 : 380;
    let k = rng() % 1000;
    if (live === 0) k = 0;

    if (k < allocBias) {
      const kind = rng() % 100;
      let size = pickSize();
      let p: number;
      let align = 0;
      if (kind < 55) {
        p = ops.malloc(size);
        checkNewBlock(p, size, 0, `${what} malloc(${size})`);
      } else if (kind < 70) {
        const c = size === 0 ? 0 : 1 + (rng() % 8);
        const each = c === 0 ? size : Math.max(0, Math.floor(size / c));
        p = ops.calloc(c, each);
        checkNewBlock(p, c * each, 0, `${what} calloc(${c}, ${each})`);
        checkZero(p, c * each, `${what} calloc(${c}, ${each})`);
        size = c * each; // the block holds count*size bytes, not the size picked
      } else if (kind < 85) {
        p = ops.zalloc(size);
        checkNewBlock(p, size, 0, `${what} zalloc(${size})`);
        checkZero(p, size, `${what} zalloc(${size})`);
      } else {
        align = pickAlign();
        p = ops.mallocAligned(size, align);
        checkNewBlock(p, size, align, `${what} mallocAligned(${size}, ${align})`);
      }
      const r = m.add(p, size, align);
      fillPattern(p, size, r.id);
    } else if (k < allocBias + 200) {
      // realloc (grow or shrink), sometimes reallocAligned
      const r = pickLive();
      const n = rng() % 8 === 0 ? Math.max(0, r.size - 1 - (rng() % (r.size + 1))) : pickSize();
      const aligned = rng() % 10 === 0;
      const align = aligned ? pickAlign() : 0;
      checkRec(r, `${what} before realloc`);
      const old = r.ptr;
      const q = aligned ? ops.reallocAligned(old, n, align) : ops.realloc(old, n);
      const desc = aligned ? `reallocAligned(${hex(old)}, ${n}, ${align})` : `realloc(${hex(old)}, ${n})`;
      checkNewBlock(q, n, align, `${what} ${desc} (old size ${r.size})`);
      // contents kept up to min(old, new)
      const off = checkPattern(q, r.size, r.id, Math.min(r.size, n));
      if (off !== -1) {
        assert.unreachable(`${what} ${desc}: old size ${r.size}, contents lost at byte ${off}`);
      }
      m.remove(r);
      if (q !== old) onFree?.(old);
      const nr = m.add(q, n, align);
      fillPattern(q, n, nr.id);
    } else if (k < allocBias + 230) {
      const r = pickLive();
      const u = usableSize(r.ptr);
      if (u !== r.usable || u < r.size) {
        assert.unreachable(`${what}: usableSize(${hex(r.ptr)}) = ${u}, was ${r.usable}, size ${r.size}`);
      }
    } else {
      const r = pickLive();
      checkRec(r, `${what} before free`);
      m.remove(r);
      if (freeGlobal && rng() % 3 === 0) freeGlobal(r.ptr);
      else ops.free(r.ptr);
      onFree?.(r.ptr);
    }

    if (op % 1000 === 999) checkAll(m, base, `${what} (sweep)`);
  }
}

function freeAll(ops: Ops, m: Model, what: string) {
  while (m.arr.length > 0) {
    const r = m.arr[m.arr.length - 1];
    checkRec(r, `${what}: final free`);
    m.remove(r);
    ops.free(r.ptr);
  }
}

function withSeed(f: () => void) {
  try {
    f();
  } catch (e) {
    console.error(`\n[random.test] FAILED with seed ${SEED} (rerun with TSMALLOC_SEED=${SEED})`);
    if (e instanceof Error) e.message = `[seed ${SEED}] ${e.message}`;
    throw e;
  }
}

const t = suite("random");

t(`default heap: ${OPS} random operations against a shadow model`, () => {
  withSeed(() => {
    const rng = makeRng(SEED);
    const base = stats().inUse;
    const m = new Model();
    const ops: Ops = { malloc, calloc, zalloc, realloc, free, mallocAligned, reallocAligned };
    runPhase(ops, OPS, rng, m, base, 1500);
    checkAll(m, base, "end of phase 1");
    freeAll(ops, m, "phase 1");
    assert.is(stats().inUse, base, "stats().inUse did not return to its value before the test");
  });
});

t(`Heap: ${HEAP_OPS} random operations, contains/visit, destroy with live blocks`, () => {
  withSeed(() => {
    const rng = makeRng(SEED ^ 0x5bd1e995);
    const base = stats().inUse;
    const h = Heap.create();
    const m = new Model();
    const ops: Ops = {
      malloc: (n) => h.malloc(n),
      calloc: (c, n) => h.calloc(c, n),
      zalloc: (n) => h.zalloc(n),
      realloc: (p, n) => h.realloc(p, n),
      free: (p) => h.free(p),
      mallocAligned: (n, a) => h.mallocAligned(n, a),
      reallocAligned: (p, n, a) => h.reallocAligned(p, n, a),
    };
    let freedChecks = 0;
    const onFree = (p: number) => {
      // a freed address is not a live block of the heap (unless the model says it was reused)
      if (!m.map.has(p)) {
        if (h.contains(p)) assert.unreachable(`heap.contains(${hex(p)}) is true after free`);
        freedChecks++;
      }
    };
    const chunk = 5000;
    for (let done = 0; done < HEAP_OPS; done += chunk) {
      runPhase(ops, Math.min(chunk, HEAP_OPS - done), rng, m, base, 800, onFree, free);
      // contains: every live block; visit: exactly the live set with its usable sizes
      for (const r of m.arr) {
        if (!h.contains(r.ptr)) assert.unreachable(`heap.contains(${hex(r.ptr)}) is false for a live block`);
      }
      const seen = new Map<number, number>();
      h.visit((p, u) => {
        if (seen.has(p)) assert.unreachable(`visit yielded ${hex(p)} twice`);
        seen.set(p, u);
      });
      assert.is(seen.size, m.arr.length, "visit count != live blocks");
      for (const r of m.arr) {
        const u = seen.get(r.ptr);
        if (u === undefined) assert.unreachable(`visit missed live block ${hex(r.ptr)} (size ${r.size})`);
        if (u !== r.usable) assert.unreachable(`visit gave usableSize ${u} for ${hex(r.ptr)}, expected ${r.usable}`);
      }
    }
    assert.ok(freedChecks > 1000, `only ${freedChecks} freed-address checks ran`);
    checkAll(m, base, "end of phase 2");
    assert.ok(m.arr.length > 0, "phase 2 should end with live blocks");
    const live = m.arr.length;
    h.destroy();
    assert.is(stats().inUse, base, `stats().inUse after destroying a heap with ${live} live blocks`);
    // the default heap still works
    const p = malloc(100);
    assert.ok(p !== 0);
    free(p);
  });
});

t("long-lived blocks survive churn of every size class", () => {
  withSeed(() => {
    const rng = makeRng(SEED ^ 0x1234567);
    const base = stats().inUse;
    const m = new Model();
    // long-lived set
    for (let i = 0; i < 300; i++) {
      const n = 1 + (rng() % (i % 10 === 0 ? 300 * KiB : 2048));
      const p = malloc(n);
      checkNewBlock(p, n, 0, `long-lived malloc(${n})`);
      fillPattern(p, n, m.add(p, n, 0).id);
    }
    // churn: bursts of one size class allocated and freed in random order
    for (let round = 0; round < 200; round++) {
      const n = round % 20 === 0 ? 1 * MiB + (rng() % (2 * MiB)) : 1 + (rng() % 8192);
      const burst: number[] = [];
      const count = n > 64 * KiB ? 4 : 100;
      for (let i = 0; i < count; i++) {
        const p = malloc(n);
        checkNewBlock(p, n, 0, `churn malloc(${n})`);
        if (m.map.has(p)) assert.unreachable(`churn malloc returned the live block ${hex(p)}`);
        bytes(p, Math.min(n, 256)).fill(0xee);
        bytes(p + n - Math.min(n, 256), Math.min(n, 256)).fill(0xee);
        burst.push(p);
      }
      while (burst.length > 0) free(burst.splice(rng() % burst.length, 1)[0]);
      if (round % 20 === 19) checkAll(m, base, `churn round ${round}`);
    }
    checkAll(m, base, "end of churn");
    freeAll({ malloc, calloc, zalloc, realloc, free, mallocAligned, reallocAligned }, m, "churn");
    assert.is(stats().inUse, base);
  });
});

t.run();
