// deno-lint-ignore-file no-explicit-any
// The timed workloads. Every peer runs the same loop template; `fresh()` gives each
// (workload, peer) its own copy so the JIT sees one allocator per loop.
//
// Templates must be self-contained (parameters only): their source text is re-evaluated.
// Each returns a value the caller passes to mitata's do_not_optimize, stores every handle
// somewhere that outlives the call (so no allocation can be sunk/elided), and counts null
// results (`S.fail`), which invalidate a row.
//
// The loops mirror bench/native/bench.c line for line (same tables, same seeds).
import {
  indexTable,
  permutation,
  randomTable,
  SEED_INDEX,
  SEED_LARSON,
  SEED_ORDER,
  SEED_SIZES,
  SEED_STRESS,
  sizeTable,
  TABLE,
  xorshift32,
} from "./common.ts";
import type { Capability, Handle, InstanceHint, Ops } from "./peers/types.ts";


// ---------------------------------------------------------------- loop templates

/** op = malloc(n) + free. */
export function pairsT(P: any, S: any, reps: number, n: any): any {
  const malloc = P.malloc, free = P.free, ring = S.ring;
  let fail = 0;
  for (let i = 0; i < reps; i++) {
    const h = malloc(n);
    if (!h) fail++;
    ring[i & 63] = h;
    free(h);
  }
  S.fail += fail;
  return ring[(reps - 1) & 63];
}

/** op = free a random live slot, malloc a random size into it (mixed, larson). */
export function churnT(P: any, S: any, reps: number): any {
  const malloc = P.malloc, free = P.free, slots = S.slots, sizes = S.sizes, idx = S.idx;
  let k = S.k, fail = 0;
  for (let i = 0; i < reps; i++) {
    const j = idx[k];
    free(slots[j]);
    const h = malloc(sizes[k]);
    if (!h) fail++;
    slots[j] = h;
    k = (k + 1) & 65535;
  }
  S.k = k;
  S.fail += fail;
  return slots[idx[k]];
}

/** op = malloc(first), realloc through S.steps (doubling), free. */
export function reallocT(P: any, S: any, reps: number, first: any): any {
  const malloc = P.malloc, realloc = P.realloc, free = P.free, steps = S.steps, nsteps = steps.length, ring = S.ring;
  let fail = 0;
  for (let i = 0; i < reps; i++) {
    let h = malloc(first);
    for (let j = 0; j < nsteps; j++) h = realloc(h, steps[j]);
    if (!h) fail++;
    ring[i & 63] = h;
    free(h);
  }
  S.fail += fail;
  return ring[(reps - 1) & 63];
}

/** op = aligned(n, a) + free. */
export function alignedT(P: any, S: any, reps: number, n: any, a: any): any {
  const aligned = P.aligned, free = P.free, ring = S.ring;
  let fail = 0;
  for (let i = 0; i < reps; i++) {
    const h = aligned(n, a);
    if (!h) fail++;
    ring[i & 63] = h;
    free(h);
  }
  S.fail += fail;
  return ring[(reps - 1) & 63];
}

/** op = calloc(c, n) + free. */
export function callocT(P: any, S: any, reps: number, c: any, n: any): any {
  const calloc = P.calloc, free = P.free, ring = S.ring;
  let fail = 0;
  for (let i = 0; i < reps; i++) {
    const h = calloc(c, n);
    if (!h) fail++;
    ring[i & 63] = h;
    free(h);
  }
  S.fail += fail;
  return ring[(reps - 1) & 63];
}

/**
 * glibc-simple (bench-malloc-simple.c): for size in {16,32,64}, for n in {25,100,400,1600}:
 * 1600/n rounds of malloc n blocks, free the first half FIFO and the second half LIFO.
 * One rep = 3*4*1600 = 19,200 malloc+free pairs.
 */
export function glibcSimpleT(P: any, S: any, reps: number): any {
  const malloc = P.malloc, free = P.free, arr = S.arr, sizes = S.gsizes, counts = S.counts;
  let fail = 0;
  for (let r = 0; r < reps; r++) {
    for (let si = 0; si < 3; si++) {
      const sz = sizes[si];
      for (let ci = 0; ci < 4; ci++) {
        const n = counts[ci], half = n >> 1;
        for (let round = 1600 / n; round > 0; round--) {
          for (let i = 0; i < n; i++) {
            const h = malloc(sz);
            if (!h) fail++;
            arr[i] = h;
          }
          for (let i = 0; i < half; i++) free(arr[i]);
          for (let i = n - 1; i >= half; i--) free(arr[i]);
        }
      }
    }
  }
  S.fail += fail;
  return arr[0];
}

/**
 * mstress / test-stress.c worker, single worker (tid 0): allocs = 100*SCALE, retain = allocs/2;
 * each step allocates into `data` (50%) or `retained`, frees a random data slot (66%),
 * swaps a random data slot with one of 1000 transfer slots (25%); at the end of a round
 * everything but the transfer slots is freed. Sizes 8*2^(0..4) (data) / 8*2^(0..6)
 * (retained), 1% scaled by 100, of those 10% by 1000 and 1% by 10000 (mstress: large on).
 * One rep = 1.5*allocs allocations (each freed in the same rep or parked in transfer).
 */
export function mstressT(P: any, S: any, reps: number): any {
  const malloc = P.malloc, free = P.free, rnd = S.rnd, data = S.data, retained = S.retained;
  const transfer = S.transfer, sizeTab = S.sizeTab, NIL = P.nil, A = S.allocs;
  let k = S.k, fail = 0;
  for (let r = 0; r < reps; r++) {
    let allocs = A, retain = A >> 1, dtop = 0, rtop = 0;
    while (allocs > 0 || retain > 0) {
      let toData, e;
      if (retain === 0 || ((rnd[k++ & 65535] % 100) <= 50 && allocs > 0)) {
        e = rnd[k++ & 65535] % 5;
        allocs--;
        toData = true;
      } else {
        e = rnd[k++ & 65535] % 7;
        retain--;
        toData = false;
      }
      let sc = 0;
      if ((rnd[k++ & 65535] % 100) <= 1) {
        if ((rnd[k++ & 65535] % 100) <= 1) sc = 3;
        else if ((rnd[k++ & 65535] % 100) <= 10) sc = 2;
        else sc = 1;
      }
      const h = malloc(sizeTab[e * 4 + sc]);
      if (!h) fail++;
      if (toData) data[dtop++] = h;
      else retained[rtop++] = h;
      if ((rnd[k++ & 65535] % 100) <= 66 && dtop > 0) {
        const j = rnd[k++ & 65535] % dtop;
        const o = data[j];
        if (o) free(o);
        data[j] = NIL;
      }
      if ((rnd[k++ & 65535] % 100) <= 25 && dtop > 0) {
        const j = rnd[k++ & 65535] % dtop;
        const t = rnd[k++ & 65535] % 1000;
        const o = data[j];
        data[j] = transfer[t];
        transfer[t] = o;
      }
    }
    for (let i = 0; i < dtop; i++) {
      const o = data[i];
      if (o) free(o);
      data[i] = NIL;
    }
    for (let i = 0; i < rtop; i++) {
      const o = retained[i];
      if (o) free(o);
      retained[i] = NIL;
    }
  }
  S.k = k & 0x3fffffff;
  S.fail += fail;
  return transfer[k % 1000];
}

/**
 * batch-fifo, batch-lifo, grow-shrink: the live set ramps from 0 to S.n blocks (malloc into
 * slots 0, 1, ..., n-1, sizes from S.sizes) and back to 0 (free slot S.order[0], S.order[1], ...),
 * over and over. op = one malloc+free pair: a rep is two steps of the 2n-step cycle, and the
 * phase (S.grow) and position (S.top, S.pos) carry across calls, so a call may stop mid-ramp.
 * Invariant: slots[0..top) are live while growing; while shrinking, a freed slot holds nil.
 */
export function rampT(P: any, S: any, reps: number): any {
  const malloc = P.malloc, free = P.free, slots = S.slots, sizes = S.sizes, order = S.order, n = S.n, NIL = P.nil;
  let k = S.k, top = S.top, pos = S.pos, grow = S.grow, fail = 0;
  let steps = 2 * reps;
  while (steps > 0) {
    if (grow) {
      const end = steps < n - top ? top + steps : n;
      steps -= end - top;
      for (; top < end; top++) {
        const h = malloc(sizes[k]);
        if (!h) fail++;
        slots[top] = h;
        k = (k + 1) & 65535;
      }
      if (top === n) {
        grow = false;
        pos = 0;
      }
    } else {
      const end = steps < n - pos ? pos + steps : n;
      steps -= end - pos;
      for (; pos < end; pos++) {
        const j = order[pos];
        free(slots[j]);
        slots[j] = NIL;
      }
      if (pos === n) {
        grow = true;
        top = 0;
      }
    }
  }
  S.k = k;
  S.top = top;
  S.pos = pos;
  S.grow = grow;
  S.fail += fail;
  return slots[n - 1];
}

/**
 * queue: a FIFO ring of S.n live blocks. op = malloc a block at the tail, then free the oldest
 * (the slot the new block takes): every block dies in allocation order, n ops after its birth.
 */
export function queueT(P: any, S: any, reps: number): any {
  const malloc = P.malloc, free = P.free, ring = S.slots, sizes = S.sizes, n = S.n;
  let k = S.k, head = S.head, fail = 0;
  for (let i = 0; i < reps; i++) {
    const h = malloc(sizes[k]);
    if (!h) fail++;
    const old = ring[head];
    ring[head] = h;
    free(old);
    if (++head === n) head = 0;
    k = (k + 1) & 65535;
  }
  S.k = k;
  S.head = head;
  S.fail += fail;
  return ring[head];
}

// ---------------------------------------------------------------- workload specs

export interface Workload {
  id: string; // stable key: pairs-64, mixed-100000, ...
  kind: string; // pairs | mixed | realloc | aligned | calloc | larson | glibc-simple | mstress | batch | queue | grow-shrink
  title: string;
  cap: Capability;
  op: string; // what one "op" is
  opsPerRep: number;
  hint: InstanceHint;
  // deno-lint-ignore ban-types
  template: Function;
  /** Builds the state (untimed): tables in the peer's size representation, live sets. */
  setup(P: Ops): any;
  /** Computed parameters (mitata) so sizes are not compile-time constants. */
  params(P: Ops): unknown[];
  /** Frees what the state still holds (untimed). */
  teardown(P: Ops, S: any): void;
  note?: string;
}

export const KiB = 1024, MiB = 1024 * 1024;

function sizeRepr(P: Ops, t: Int32Array): ArrayLike<unknown> {
  return typeof P.size(1) === "number" ? t : Array.from(t, (v) => P.size(v));
}

/**
 * Storage for n handles, all P.nil. Number handles get a Float64Array, object handles
 * (Uint8Array rows, Deno's FFI pointers) a plain Array. Never one plain Array for both: V8
 * learns an element kind per allocation site, so after a row stored objects through a shared
 * setup's `new Array(n)`, the arrays it made for the next rows held tagged values and every
 * number stored into them was boxed (a heap number per malloc). Measured on Node 26:
 * tsmalloc's larson 167 ns per op after new Uint8Array's mixed-1000 in the same process, 43
 * ns after the stub's.
 */
function handleArray(P: Ops, n: number): Handle[] {
  if (typeof P.nil !== "number") return new Array(n).fill(P.nil);
  const a = new Float64Array(n);
  if (P.nil !== 0) a.fill(P.nil);
  return a as unknown as Handle[];
}

function ring(P: Ops) {
  return { ring: handleArray(P, 64), fail: 0 };
}

function fmtSize(n: number): string {
  return n >= MiB ? `${n / MiB} MiB` : n >= KiB ? `${n / KiB} KiB` : `${n} B`;
}

function pairs(n: number): Workload {
  return {
    id: `pairs-${n}`,
    kind: "pairs",
    title: `pairs ${fmtSize(n)}`,
    cap: "malloc",
    op: "malloc+free",
    opsPerRep: 1,
    hint: { workload: "pairs", liveBlocks: 1, liveBytes: n },
    template: pairsT,
    setup: ring,
    params: (P) => [P.size(n)],
    teardown() {},
  };
}

function freeSlots(P: Ops, slots: Handle[]) {
  if (P.bulkRelease) return;
  const free = P.free;
  for (let i = 0; i < slots.length; i++) if (slots[i]) free(slots[i]);
}

/** Most time a mixed workload's untimed warm-up may take (ms): @thi.ng/malloc needs milliseconds per op at 100,000 live. */
const MIXED_WARM_MS = 3000;

function churn(id: string, title: string, live: number, lo: number, hi: number, larson: boolean): Workload {
  return {
    id,
    kind: larson ? "larson" : "mixed",
    title,
    cap: "malloc",
    op: "free random slot + malloc",
    opsPerRep: 1,
    hint: { workload: larson ? "larson" : "mixed", liveBlocks: live, liveBytes: live * (hi + 16) },
    template: churnT,
    setup(P: Ops) {
      const sizes = larson ? sizeTable(SEED_LARSON, lo, hi) : sizeTable(SEED_SIZES, lo, hi);
      const idx = indexTable(larson ? SEED_LARSON + 1 : SEED_INDEX, live);
      const S = { slots: handleArray(P, live), sizes: sizeRepr(P, sizes), idx, k: 0, fail: 0 };
      const slots = S.slots, malloc = P.malloc, free = P.free;
      if (!larson) {
        for (let i = 0; i < live; i++) slots[i] = malloc(S.sizes[(i * 7) & (TABLE - 1)]);
        // warm-up (untimed, as bench.c's): the timed loop's own replacements, 4 * live of them
        // (at most MIXED_WARM_MS for the slowest peers), so calibration and the timed calls see
        // the steady state of a heap with `live` blocks, not the first pass over a freshly
        // filled one (each slot freed for the first time: page faults, new pages per class).
        // Written out here, not by calling churnT, so the rows' private copies of the timed
        // loop get no type feedback from other rows.
        const sizes = S.sizes, idx = S.idx, t0 = Date.now();
        let k = 0;
        for (let i = 0; i < 4 * live && ((i & 1023) !== 0 || Date.now() - t0 < MIXED_WARM_MS); i++) {
          const j = idx[k];
          free(slots[j]);
          slots[j] = malloc(sizes[k]);
          k = (k + 1) & (TABLE - 1);
        }
        S.k = k;
      } else {
        // larson warm-up: allocate, shuffle, 4*live random replacements
        const r = xorshift32(SEED_LARSON + 2);
        for (let i = 0; i < live; i++) slots[i] = malloc(P.size(lo + (r() % (hi - lo + 1))));
        for (let i = live - 1; i > 0; i--) {
          const j = r() % (i + 1);
          const t = slots[i];
          slots[i] = slots[j];
          slots[j] = t;
        }
        for (let i = 0; i < 4 * live; i++) {
          const j = r() % live;
          free(slots[j]);
          slots[j] = malloc(P.size(lo + (r() % (hi - lo + 1))));
        }
      }
      for (let i = 0; i < live; i++) if (!slots[i]) S.fail++;
      return S;
    },
    params: () => [],
    teardown(P, S) {
      freeSlots(P, S.slots);
      S.slots = null;
    },
  };
}

function reallocChain(): Workload {
  const steps: number[] = [];
  for (let s = 32; s <= 64 * KiB; s *= 2) steps.push(s);
  return {
    id: "realloc-chain",
    kind: "realloc",
    title: "realloc chain 16 B -> 64 KiB",
    cap: "realloc",
    op: `malloc(16) + ${steps.length} realloc (x2 each) + free`,
    opsPerRep: 1,
    hint: { workload: "realloc", liveBlocks: 1, liveBytes: 128 * KiB },
    template: reallocT,
    setup: (P) => ({ ...ring(P), steps: steps.map((s) => P.size(s)) }),
    params: (P) => [P.size(16)],
    teardown() {},
  };
}

function aligned(n: number, a: number): Workload {
  return {
    id: `aligned-${a}`,
    kind: "aligned",
    title: `mallocAligned(${n}, ${a})`,
    cap: "aligned",
    op: "aligned malloc+free",
    opsPerRep: 1,
    hint: { workload: "aligned", liveBlocks: 1, liveBytes: n + a },
    template: alignedT,
    setup: ring,
    params: (P) => [P.size(n), P.size(a)],
    teardown() {},
  };
}

function calloc4k(): Workload {
  return {
    id: "calloc-4096",
    kind: "calloc",
    title: "calloc(1, 4 KiB)",
    cap: "calloc",
    op: "calloc+free",
    opsPerRep: 1,
    hint: { workload: "calloc", liveBlocks: 1, liveBytes: 4096 },
    template: callocT,
    setup: ring,
    params: (P) => [P.size(1), P.size(4096)],
    teardown() {},
  };
}

function glibcSimple(): Workload {
  return {
    id: "glibc-simple",
    kind: "glibc-simple",
    title: "glibc-simple (16/32/64 B, batches 25..1600)",
    cap: "malloc",
    op: "malloc+free pair",
    opsPerRep: 3 * 4 * 1600,
    hint: { workload: "glibc-simple", liveBlocks: 1600, liveBytes: 1600 * 80 },
    template: glibcSimpleT,
    setup: (P) => ({
      arr: handleArray(P, 1600),
      gsizes: [16, 32, 64].map((s) => P.size(s)),
      counts: new Int32Array([25, 100, 400, 1600]),
      fail: 0,
    }),
    params: () => [],
    teardown() {},
  };
}

export const STRESS_SCALE = 50;

function mstress(): Workload {
  const A = 100 * STRESS_SCALE;
  const tab: number[] = [];
  for (let e = 0; e < 7; e++) {
    for (const mul of [1, 100, 1000, 10000]) {
      let n = (1 << e) * mul;
      if (n >= 32 && n <= 40) n *= 2;
      tab.push(8 * n);
    }
  }
  return {
    id: "mstress",
    kind: "mstress",
    title: `mstress-shaped (1 worker, scale ${STRESS_SCALE})`,
    cap: "malloc",
    op: "malloc (+ its free)",
    opsPerRep: A + (A >> 1),
    hint: { workload: "mstress", liveBlocks: A + 1000, liveBytes: 64 * MiB },
    template: mstressT,
    setup: (P) => ({
      rnd: randomTable(SEED_STRESS),
      data: handleArray(P, A),
      retained: handleArray(P, A >> 1),
      transfer: handleArray(P, 1000),
      sizeTab: tab.map((s) => P.size(s)),
      allocs: A,
      k: 0,
      fail: 0,
    }),
    params: () => [],
    teardown(P, S) {
      freeSlots(P, S.transfer);
    },
    note: "sizes 8 B..512 B, rarely up to 5 MiB",
  };
}

/** Block counts of the extra allocation patterns (issue 15); the same in quick and full mode and in bench.c. */
export const BATCH_BLOCKS = 10_000, QUEUE_BLOCKS = 10_000, GROW_BLOCKS = 100_000;

/** The free order of a ramp: allocation order, its reverse, or a random permutation. */
function rampOrder(order: "fifo" | "lifo" | "random", n: number): Int32Array {
  if (order === "random") return permutation(SEED_ORDER, n);
  const t = new Int32Array(n);
  for (let i = 0; i < n; i++) t[i] = order === "fifo" ? i : n - 1 - i;
  return t;
}

function ramp(id: string, kind: string, title: string, n: number, order: "fifo" | "lifo" | "random", note: string): Workload {
  return {
    id,
    kind,
    title,
    cap: "malloc",
    op: "malloc+free pair (a cycle of n mallocs, then n frees, is n ops)",
    opsPerRep: 1,
    hint: { workload: kind, liveBlocks: n, liveBytes: n * (4096 + 16) },
    template: rampT,
    setup(P: Ops) {
      const S = {
        slots: handleArray(P, n),
        sizes: sizeRepr(P, sizeTable(SEED_SIZES, 8, 4096)),
        order: rampOrder(order, n),
        n,
        k: 0,
        top: 0,
        pos: 0,
        grow: true,
        fail: 0,
      };
      rampT(P, S, n); // one whole cycle untimed: the timed calls start from a warm heap (as bench.c)
      return S;
    },
    params: () => [],
    teardown(P, S) {
      freeSlots(P, S.slots);
      S.slots = null;
    },
    note,
  };
}

function queue(n: number): Workload {
  return {
    id: "queue",
    kind: "queue",
    title: `queue (FIFO ring, ${n.toLocaleString("en-US")} live, 8 B-4 KiB)`,
    cap: "malloc",
    op: "malloc at the tail + free the oldest",
    opsPerRep: 1,
    hint: { workload: "queue", liveBlocks: n + 1, liveBytes: (n + 1) * (4096 + 16) },
    template: queueT,
    setup(P: Ops) {
      const S = { slots: handleArray(P, n), sizes: sizeRepr(P, sizeTable(SEED_SIZES, 8, 4096)), n, k: 0, head: 0, fail: 0 };
      const malloc = P.malloc, slots = S.slots, sizes = S.sizes;
      for (let i = 0; i < n; i++) {
        slots[i] = malloc(sizes[S.k]);
        if (!slots[i]) S.fail++;
        S.k = (S.k + 1) & 65535;
      }
      return S;
    },
    params: () => [],
    teardown(P, S) {
      freeSlots(P, S.slots);
      S.slots = null;
    },
    note: `single-thread producer/consumer: each block is freed ${n.toLocaleString("en-US")} ops after its malloc, in allocation order, as in a message queue; sizes from the mixed table`,
  };
}

/** The extra allocation patterns of issue 15: batches freed FIFO and LIFO, a queue, a live set that grows and shrinks. */
function patterns(): Workload[] {
  const b = BATCH_BLOCKS.toLocaleString("en-US"), g = GROW_BLOCKS.toLocaleString("en-US");
  return [
    ramp("batch-fifo", "batch", `batch FIFO (${b} blocks of 8 B-4 KiB, freed in allocation order)`, BATCH_BLOCKS, "fifo", `a batch holds about 20 MiB, hundreds of pages; sizes from the mixed table`),
    ramp("batch-lifo", "batch", `batch LIFO (${b} blocks of 8 B-4 KiB, freed in reverse order)`, BATCH_BLOCKS, "lifo", `as batch-fifo, the newest block freed first`),
    queue(QUEUE_BLOCKS),
    ramp("grow-shrink", "grow-shrink", `grow-shrink (0 -> ${g} live blocks of 8 B-4 KiB -> 0)`, GROW_BLOCKS, "random", `about 200 MiB live at the peak; freed in a random order (one fixed permutation), so most pages empty only near the end of the ramp down`),
  ];
}

export type Mode = "quick" | "full";

export function workloads(mode: Mode): Workload[] {
  // 8 MiB: a huge block (mimalloc's and ours: larger than a page's largest class)
  const pairSizes = mode === "full" ? [8, 64, KiB, 64 * KiB, MiB, 8 * MiB] : [64, KiB, MiB, 8 * MiB];
  const lives = mode === "full" ? [1000, 100_000, 1_000_000] : [1000, 100_000];
  return [
    ...pairSizes.map(pairs),
    ...lives.map((l) => churn(`mixed-${l}`, `mixed 8 B-4 KiB, ${l.toLocaleString("en-US")} live`, l, 8, 4096, false)),
    reallocChain(),
    aligned(200, 64),
    aligned(4096, 4096),
    calloc4k(),
    churn("larson", "larson-style churn (1 worker, 5,000 slots, 8-999 B)", 5000, 8, 999, true),
    glibcSimple(),
    mstress(),
    ...patterns(),
  ];
}

// ---------------------------------------------------------------- per-task workload (issue 13)
//
// A page parse as Lightpanda's ArenaPool serves it: per task, 1,000 allocations of 16 B-2 KiB,
// then everything is given back at once. Blocks are not written (a bytes() view per block
// would cost more than any allocator here; new Uint8Array zeroes its memory, the others not). One row per way to do it; each
// template runs `reps` tasks and stores every handle of the last task in S.keep (nothing can
// be elided). Rows (bench/tasks.ts runs them): ArenaPool (acquire, bump, release), tsmalloc
// malloc/free (each block freed at the end of its task), new Uint8Array (garbage after the
// task), a fresh Heap per task (destroyed at its end).

export const TASK_ALLOCS = 1000;

/** op = one task through an ArenaPool arena. */
export function taskArenaT(T: any, S: any, reps: number): any {
  const pool = S.pool, sizes = S.sizes, keep = S.keep;
  let k = S.k;
  for (let r = 0; r < reps; r++) {
    const a = pool.acquire("medium", "task");
    for (let i = 0; i < 1000; i++) {
      const n = sizes[k];
      const p = a.alloc(n);
      keep[i] = p;
      k = (k + 1) & 65535;
    }
    pool.release(a);
  }
  S.k = k;
  return keep[999];
}

/** op = one task of tsmalloc malloc, every block freed at the task's end. */
export function taskMallocT(T: any, S: any, reps: number): any {
  const malloc = T.malloc, free = T.free, sizes = S.sizes, keep = S.keep;
  let k = S.k, fail = 0;
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < 1000; i++) {
      const p = malloc(sizes[k]);
      if (p === 0) fail++;
      keep[i] = p;
      k = (k + 1) & 65535;
    }
    for (let i = 0; i < 1000; i++) free(keep[i]);
  }
  S.k = k;
  S.fail += fail;
  return keep[999];
}

/** op = one task of new Uint8Array (garbage after the task: the collector frees it). */
export function taskUint8T(_T: any, S: any, reps: number): any {
  const sizes = S.sizes, keep = S.keep;
  let k = S.k;
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < 1000; i++) {
      const b = new Uint8Array(sizes[k]);
      keep[i] = b;
      k = (k + 1) & 65535;
    }
  }
  S.k = k;
  return keep[999];
}

/** op = one task in a fresh tsmalloc Heap, destroyed at the task's end. */
export function taskHeapT(T: any, S: any, reps: number): any {
  const Heap = T.Heap, sizes = S.sizes, keep = S.keep;
  let k = S.k, fail = 0;
  for (let r = 0; r < reps; r++) {
    const h = Heap.create();
    for (let i = 0; i < 1000; i++) {
      const p = h.malloc(sizes[k]);
      if (p === 0) fail++;
      keep[i] = p;
      k = (k + 1) & 65535;
    }
    h.destroy();
  }
  S.k = k;
  S.fail += fail;
  return keep[999];
}

/** A per-task row: its template and the untimed state around it. */
export interface TaskRow {
  id: string;
  label: string;
  // deno-lint-ignore ban-types
  template: Function;
  setup(T: any): any;
  teardown(T: any, S: any): void;
}

/** The rows of the per-task workload; `T` is the tsmalloc module (mod.ts). */
export function taskRows(): TaskRow[] {
  const state = (extra: Record<string, unknown> = {}) => ({ sizes: sizeTable(SEED_SIZES, 16, 2048), keep: new Array(1000).fill(0), k: 0, fail: 0, ...extra });
  return [
    {
      id: "arena-pool",
      label: "ArenaPool (acquire, 1,000 bumps, release)",
      template: taskArenaT,
      setup: (T) => state({ pool: new T.ArenaPool({ medium: { retain: 4 * MiB } }) }),
      teardown: (_T, S) => S.pool.close(),
    },
    { id: "tsmalloc", label: "tsmalloc malloc/free", template: taskMallocT, setup: () => state(), teardown() {} },
    { id: "uint8array", label: "new Uint8Array", template: taskUint8T, setup: () => state(), teardown() {} },
    { id: "heap-per-task", label: "fresh Heap per task (destroyed)", template: taskHeapT, setup: () => state(), teardown() {} },
  ];
}
