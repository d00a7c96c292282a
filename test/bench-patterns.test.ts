// The bench's extra allocation patterns (issue 15: batch-fifo, batch-lifo, queue, grow-shrink)
// do what their names say. Each runs against a recording allocator that hands out unique
// handles and throws on a free of a handle that is not live, split into calls of uneven
// sizes as the calibrated bench splits it; the recorded malloc/free sequence is checked
// against the pattern, and teardown must leave nothing live. The free-order permutation
// must match the one bench/native/bench.c prints (its checksum), so JS and C run one loop.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { permutation, SEED_ORDER, SEED_SIZES, sizeTable, tableSum } from "../bench/common.ts";
import { BATCH_BLOCKS, GROW_BLOCKS, QUEUE_BLOCKS, type Workload, workloads } from "../bench/workloads.ts";

const t = suite("bench-patterns");

interface Rec {
  P: { nil: number; size(n: number): number; malloc(n: number): number; free(h: number): void };
  /** +h for a malloc that returned h, -h for a free of h, in call order. */
  log: number[];
  sizes: number[];
  live: Set<number>;
  peak: number;
}

function recorder(): Rec {
  const r: Rec = { P: null!, log: [], sizes: [], live: new Set(), peak: 0 };
  let next = 1;
  r.P = {
    nil: 0,
    size: (n) => n,
    malloc(n) {
      const h = next++;
      r.live.add(h);
      r.peak = Math.max(r.peak, r.live.size);
      r.log.push(h);
      r.sizes.push(n);
      return h;
    },
    free(h) {
      if (!r.live.delete(h)) throw new Error(`free of ${h}, which is not live`);
      r.log.push(-h);
    },
  };
  return r;
}

function workload(id: string): Workload {
  const w = workloads("quick").find((x) => x.id === id);
  if (!w) throw new Error(`no workload ${id}`);
  return w;
}

/** setup, then calls of the given rep counts; returns the recorder and the state. */
// deno-lint-ignore no-explicit-any
function run(id: string, calls: number[]): { r: Rec; S: any; setupOps: number } {
  const w = workload(id);
  const r = recorder();
  const S = w.setup(r.P as never);
  const setupOps = r.log.length;
  for (const reps of calls) w.template(r.P, S, reps);
  assert.is(S.fail, 0, `${id}: no failed malloc`);
  return { r, S, setupOps };
}

const mixed = sizeTable(SEED_SIZES, 8, 4096);

for (const [id, n, lifo] of [["batch-fifo", BATCH_BLOCKS, false], ["batch-lifo", BATCH_BLOCKS, true]] as const) {
  t(`${id}: ${n} mallocs, then the same blocks freed in ${lifo ? "reverse" : "allocation"} order, cycle after cycle`, () => {
    const cycles = 3;
    // one untimed cycle in setup, then 3 cycles in calls of uneven size (a call stops mid-ramp)
    const { r, setupOps } = run(id, [1, 7, 1234, n - 1242, n, n]);
    assert.is(setupOps, 2 * n, "setup runs one whole cycle");
    assert.is(r.log.length, 2 * n * (cycles + 1));
    for (let c = 0; c <= cycles; c++) {
      const up = r.log.slice(2 * n * c, 2 * n * c + n);
      const down = r.log.slice(2 * n * c + n, 2 * n * (c + 1));
      assert.ok(up.every((h) => h > 0) && down.every((h) => h < 0), `cycle ${c}: n mallocs, then n frees`);
      const want = up.map((h) => -h);
      if (lifo) want.reverse();
      assert.equal(down, want, `cycle ${c}: free order`);
    }
    assert.is(r.peak, n);
    assert.is(r.live.size, 0, "every cycle ends empty");
    assert.equal(r.sizes.slice(0, 100), Array.from(mixed.subarray(0, 100)), "sizes from the mixed table");
    assert.is(r.sizes[n + 5], mixed[(n + 5) & 65535], "the size index carries across cycles");
  });
}

t("grow-shrink: the live set ramps 0 -> n -> 0, freed in the fixed random permutation", () => {
  const n = GROW_BLOCKS;
  const order = permutation(SEED_ORDER, n);
  // setup's cycle, then 2.5 cycles (5n steps) in calls of uneven size
  const { r } = run("grow-shrink", [3, n - 3 + 10, n - 10, n / 2]);
  assert.is(r.log.length, 7 * n);
  for (let c = 0; c < 3; c++) {
    const up = r.log.slice(2 * n * c, 2 * n * c + n);
    const down = r.log.slice(2 * n * c + n, 2 * n * (c + 1));
    assert.ok(up.every((h) => h > 0), `cycle ${c}: n mallocs first`);
    for (let i = 0; i < n; i += 997) assert.is(down[i], -up[order[i]], `cycle ${c}: free #${i} is slot order[${i}]`);
    assert.equal([...down].sort((a, b) => a - b), up.map((h) => -h).sort((a, b) => a - b), `cycle ${c}: each block freed once`);
  }
  assert.is(r.peak, n);
  assert.is(r.live.size, n, "half a cycle on: the ramp up is complete, n blocks live");
});

t("grow-shrink: teardown mid-ramp frees exactly the live blocks", () => {
  const n = GROW_BLOCKS, w = workload("grow-shrink");
  for (const reps of [n / 4, n / 2 + 123, n + n / 2 + 77]) {
    const r = recorder();
    const S = w.setup(r.P as never);
    w.template(r.P, S, reps);
    assert.ok(r.live.size > 0 && r.live.size < n, `${reps} reps: stopped mid-ramp (${r.live.size} live)`);
    w.teardown(r.P as never, S);
    assert.is(r.live.size, 0, `${reps} reps: teardown leaves nothing live`);
  }
});

t("grow-shrink: the free order is the permutation bench.c uses (checksum of its tables line)", () => {
  const p = permutation(SEED_ORDER, GROW_BLOCKS);
  const seen = new Uint8Array(GROW_BLOCKS);
  for (const x of p) seen[x]++;
  assert.ok(seen.every((c) => c === 1), "a permutation of 0..n-1");
  // printed by bench-glibc / bench-mimalloc as tables.growShrinkOrder
  assert.is(tableSum(p), 3355765622);
});

t("queue: a FIFO ring of n live blocks, each freed n mallocs after its own", () => {
  const n = QUEUE_BLOCKS;
  const { r, S, setupOps } = run("queue", [1, 5, 999, 3 * n]);
  assert.is(setupOps, n, "setup fills the ring");
  const births = new Map<number, number>(); // handle -> index of its malloc among all mallocs
  let mallocs = 0, frees = 0;
  for (let i = 0; i < r.log.length; i++) {
    const x = r.log[i];
    if (x > 0) births.set(x, mallocs++);
    else {
      const b = births.get(-x)!;
      assert.is(mallocs - 1 - b, n, `free #${frees}: the block of malloc #${b} dies n mallocs later`);
      assert.ok(i > 0 && r.log[i - 1] > 0, "each op mallocs at the tail before it frees the oldest");
      frees++;
    }
  }
  assert.is(frees, 1 + 5 + 999 + 3 * n);
  assert.is(r.peak, n + 1);
  assert.is(r.live.size, n);
  workload("queue").teardown(r.P as never, S);
  assert.is(r.live.size, 0, "teardown frees the ring");
});

t.run();
