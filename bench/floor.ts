// deno-lint-ignore-file no-explicit-any
// The worker rows' parts apart (doc/PERFORMANCE.md, session 29): what one Atomics call and one
// malloc+free pair cost on this runtime, tsmalloc's before and after workers share it,
// mimalloc's through this runtime's FFI, and what a free of another worker's block costs for
// each against a free of one's own. And realloc-chain's parts (session 30): the chain, its
// pairs and copies without realloc, its copies alone. One process; every figure is the best call of ROUNDS
// rounds of CALLS calls (ns per op), the rounds of all rows interleaved. Prints one JSON line.
// FLOOR_NO_MIMALLOC=1 leaves mimalloc out.
//
//   node_modules/.bin/deno run -A bench/floor.ts      bun bench/floor.ts
//   node scripts/floor.mjs                             (every runtime, each pinned to one CPU)
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { fresh, getEnv, runtimeName, runtimeVersion } from "./common.ts";
import { nativePeer } from "./peers/ffi.ts";
import { importTsmalloc } from "./peers/tsmalloc.ts";

const ROUNDS = 7;
const OPS = 50_000; // per call; a round makes CALLS calls of each row and keeps the fastest
const CALLS = 20;
const CHAINS = 2_000; // realloc chains per call (about 4 ms)
const CROSS = 1 << 18; // blocks of 64 B a worker allocates and the main thread frees, per round

type Row = { id: string; what: string; run: () => number }; // run: ns per op of one round

/** The loop of a pair row: a template for common.ts `fresh` (parameters only). */
function pairLoop(malloc: (n: any) => any, free: (p: any) => void, n: any, ops: number, keep: any[]): void {
  for (let i = 0; i < ops; i++) {
    const p = malloc(n);
    keep[i & 15] = p;
    free(p);
  }
}

/** The loop of a free row: a template for common.ts `fresh`. */
function freeLoop(free: (p: any) => void, ring: any, n: number): void {
  for (let i = 0; i < n; i++) free(ring[i]);
}

/** realloc-chain's loop (bench/workloads.ts reallocT): malloc(16), realloc through `steps` (32 B ... 64 KiB), free. */
function chainLoop(malloc: (n: number) => number, realloc: (p: number, n: number) => number, free: (p: number) => void, steps: number[], reps: number): number {
  let h = 0;
  for (let i = 0; i < reps; i++) {
    h = malloc(16);
    for (let j = 0; j < steps.length; j++) h = realloc(h, steps[j]);
    free(h);
  }
  return h;
}

/**
 * What a chain's moves cost without realloc: its 13 malloc+free pairs (16 B and each step's
 * size) and its 12 copies (16 B ... 32 KiB between two places of a 1 MiB array, as
 * copyInRegion: a word loop up to 128 B, else copyWithin); pairs false: the copies alone.
 */
function partsLoop(malloc: (n: number) => number, free: (p: number) => void, steps: number[], reps: number, u8: Uint8Array, i32: Int32Array, pairs: boolean): number {
  let h = 0;
  for (let i = 0; i < reps; i++) {
    let src = 0, dst = 131072, len = 16;
    if (pairs) free(h = malloc(16));
    for (let j = 0; j < steps.length; j++, len *= 2) {
      if (pairs) free(h = malloc(steps[j]));
      if (len <= 128) {
        const s = src >> 2, d = dst >> 2, n = len >> 2;
        for (let k = 0; k < n; k++) i32[d + k] = i32[s + k];
      } else u8.copyWithin(dst, src, src + len);
      const t = src;
      src = dst;
      dst = t;
    }
  }
  return h;
}

function timed(ops: number, body: () => void, calls = 1): number {
  let best = Infinity;
  for (let c = 0; c < calls; c++) {
    const t0 = performance.now();
    body();
    best = Math.min(best, (performance.now() - t0) * 1e6 / ops);
  }
  return best;
}

/** Rows that need no worker. `shared` rows run after workerHandle() made the allocator shared. */
async function rows(T: any): Promise<{ before: Row[]; after: Row[]; mi: any }> {
  const sab = new Int32Array(new SharedArrayBuffer(4096));
  const stubMem = new Int32Array(1 << 16);
  let top = 0;
  const stubMalloc = (n: number) => { top = (top + 1) & 65535; stubMem[top] = n; return top * 64 + 4096; };
  const stubFree = (p: number) => { stubMem[(p >> 6) & 65535] = 0; };
  const keep: any[] = new Array(16).fill(0);
  const pair = (malloc: (n: any) => any, free: (p: any) => void, n: any) => {
    const loop = fresh(pairLoop, "pair"); // a copy of its own per row: feedback from one allocator only
    const mine: any[] = new Array(16).fill(typeof n === "bigint" ? 0n : 0);
    return () => timed(OPS, () => loop(malloc, free, n, OPS, mine), CALLS);
  };
  const peer = await nativePeer("mimalloc");
  if (getEnv("FLOOR_NO_MIMALLOC")) peer.unavailable = "FLOOR_NO_MIMALLOC";
  const mi = peer.unavailable ? null : peer.instance({ workload: "pairs-64", liveBlocks: 0, liveBytes: 0 } as any);
  const before: Row[] = [
    { id: "stub", what: "JS floor stub: malloc+free that touch one Int32Array word each", run: pair(stubMalloc, stubFree, 64) },
    {
      id: "atomics-load", what: "Atomics.load(Int32Array over a SharedArrayBuffer)",
      run: () => timed(OPS, () => { let s = 0; for (let i = 0; i < OPS; i++) s += Atomics.load(sab, i & 1023); keep[0] = s; }, CALLS),
    },
    {
      id: "atomics-cas", what: "Atomics.compareExchange(Int32Array over a SharedArrayBuffer), uncontended",
      run: () => timed(OPS, () => { for (let i = 0; i < OPS; i++) { const x = i & 1023; Atomics.compareExchange(sab, x, sab[x], i); } }, CALLS),
    },
    { id: "tsmalloc-pair", what: "tsmalloc malloc(64)+free, allocator not shared", run: pair(T.malloc, T.free, 64) },
  ];
  const steps: number[] = [];
  for (let n = 32; n <= 65536; n *= 2) steps.push(n);
  const u8 = new Uint8Array(1 << 20), i32 = new Int32Array(u8.buffer);
  const chain = fresh(chainLoop, "chain"), parts = fresh(partsLoop, "parts"), copies = fresh(partsLoop, "copies");
  before.push(
    { id: "realloc-chain", what: "tsmalloc realloc-chain: malloc(16), realloc to 32 B ... 64 KiB (x2 each), free; ns per chain", run: () => timed(CHAINS, () => chain(T.malloc, T.realloc, T.free, steps, CHAINS), CALLS) },
    { id: "chain-pairs-copies", what: "the chain's 13 tsmalloc malloc+free pairs and its 12 copies (copyWithin from 256 B) without realloc; ns per chain", run: () => timed(CHAINS, () => parts(T.malloc, T.free, steps, CHAINS, u8, i32, true), CALLS) },
    { id: "chain-copies", what: "the chain's 12 copies alone; ns per chain", run: () => timed(CHAINS, () => copies(T.malloc, T.free, steps, CHAINS, u8, i32, false), CALLS) },
  );
  if (mi !== null) before.push({ id: "mimalloc-pair", what: "mimalloc malloc(64)+free through this runtime's FFI", run: pair(mi.malloc, mi.free, mi.size(64)) });
  const wasm = wasmCas();
  if (wasm !== null) {
    const { cas, i32: w32 } = wasm;
    before.push({
      id: "wasm-cas", what: "a call of a WebAssembly function doing i32.atomic.rmw.cmpxchg on a shared WebAssembly.Memory, uncontended",
      run: () => timed(OPS, () => { for (let i = 0; i < OPS; i++) { const x = i & 1023; cas(x << 2, w32[x], i); } }, CALLS),
    });
  }
  const after: Row[] = [
    { id: "tsmalloc-pair-shared", what: "tsmalloc malloc(64)+free once workers share the allocator (free: one compare-exchange)", run: pair(T.malloc, T.free, 64) },
  ];
  return { before, after, mi };
}

/**
 * A WebAssembly module importing a shared memory and exporting cas(byteOffset, expected,
 * replacement) -> old (i32.atomic.rmw.cmpxchg), or null where shared memories are unavailable.
 * Hand-assembled (13 instructions): what an atomic compare-exchange costs when the engine
 * compiles it inline instead of calling a builtin, as V8 does for Atomics.compareExchange.
 */
function wasmCas(): { cas: (at: number, expected: number, value: number) => number; i32: Int32Array } | null {
  const bytes = new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    0x01, 0x08, 0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, // type: (i32 i32 i32) -> i32
    0x02, 0x09, 0x01, 0x01, 0x65, 0x01, 0x6d, 0x02, 0x03, 0x01, 0x01, // import "e" "m": memory, shared, 1..1 pages
    0x03, 0x02, 0x01, 0x00, // one function of type 0
    0x07, 0x07, 0x01, 0x03, 0x63, 0x61, 0x73, 0x00, 0x00, // export "cas"
    0x0a, 0x0e, 0x01, 0x0c, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfe, 0x48, 0x02, 0x00, 0x0b, // local.get 0 1 2; i32.atomic.rmw.cmpxchg
  ]);
  try {
    const m = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { e: { m } });
    const i32 = new Int32Array(m.buffer);
    const cas = inst.exports.cas as (at: number, expected: number, value: number) => number;
    i32[1] = 7;
    if (cas(4, 7, 9) !== 7 || i32[1] !== 9 || cas(4, 7, 11) !== 9 || i32[1] !== 9) throw new Error("wasm cas: wrong result");
    return { cas, i32 };
  } catch {
    return null;
  }
}

/**
 * A worker that allocates CROSS blocks of 64 B into a SharedArrayBuffer on every round() and
 * stays attached (a terminated worker's recovery would run in this thread's timed loop);
 * round() then frees them here: ns per free.
 */
function crossWorker(row: "tsmalloc" | "mimalloc", T: any, mi: any, handle: unknown): { round: () => Promise<number>; stop: () => Promise<number> } {
  const big = row === "mimalloc" && typeof mi.nil === "bigint";
  const buf = new SharedArrayBuffer(8 * CROSS);
  const w = new Worker(new URL(import.meta.url), { workerData: { row, handle, buf, big } } as any);
  let next: (() => void) | null = null;
  w.on("message", () => next?.());
  w.on("error", (e) => { throw e; });
  const ring: any = big ? new BigUint64Array(buf) : new Float64Array(buf);
  const free = row === "tsmalloc" ? T.free : mi.free;
  const loop = fresh(freeLoop, "free");
  return {
    round: async () => {
      await new Promise<void>((res) => { next = res; w.postMessage("go"); });
      return timed(CROSS, () => loop(free, ring, CROSS));
    },
    // (ends by itself: after terminate() the next round's frees timed its recovery; Deno still
    // dies at exit in some runs after a worker used mimalloc, scripts/floor.mjs says so)
    stop: () => new Promise<number>((res) => { w.on("exit", res); w.postMessage("stop"); }),
  };
}

/** The same pattern as crossWorker with this thread's own blocks: CROSS mallocs of 64 B, then their frees in order. ns per free. */
function batchFree(A: { malloc: (n: any) => any; free: (p: any) => void; nil?: unknown; size?: (n: number) => any }): () => number {
  const big = typeof A.nil === "bigint";
  const ring: any = big ? new BigUint64Array(CROSS) : new Float64Array(CROSS);
  const n = A.size ? A.size(64) : 64;
  const loop = fresh(freeLoop, "free");
  return () => {
    for (let i = 0; i < CROSS; i++) ring[i] = A.malloc(n);
    return timed(CROSS, () => loop(A.free, ring, CROSS));
  };
}

async function workerSide(): Promise<void> {
  const D = workerData as any;
  let malloc: (n: any) => any, n: any, done = () => {};
  if (D.row === "tsmalloc") {
    const T = await importTsmalloc();
    T.attach(D.handle);
    malloc = T.malloc;
    n = 64;
    done = () => T.detach();
  } else {
    const mi = (await nativePeer("mimalloc")).instance({ workload: "xmalloc", liveBlocks: 0, liveBytes: 0 } as any);
    malloc = mi.malloc;
    n = mi.size(64);
  }
  const ring: any = D.big ? new BigUint64Array(D.buf) : new Float64Array(D.buf);
  const onMessage = (m: unknown) => {
    if (m === "stop") {
      done();
      parentPort!.off("message", onMessage); // nothing left to wait for: the worker ends
      return;
    }
    for (let i = 0; i < ring.length; i++) ring[i] = malloc(n);
    parentPort!.postMessage("ready");
  };
  parentPort!.on("message", onMessage);
}

async function main(): Promise<void> {
  const T = await importTsmalloc();
  const { before, after, mi } = await rows(T);
  const best = new Map<string, number>();
  const note = (id: string, ns: number) => best.set(id, Math.min(best.get(id) ?? Infinity, ns));
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? before : [...before].reverse();
    for (const row of order) note(row.id, row.run());
  }
  const handle = T.workerHandle(); // from here on the allocator is shared
  const ts = crossWorker("tsmalloc", T, mi, handle);
  const tsBatch = batchFree(T);
  const miBatch = mi !== null ? batchFree(mi) : null;
  const mw = mi !== null ? crossWorker("mimalloc", T, mi, handle) : null;
  for (let r = 0; r < ROUNDS; r++) {
    for (const row of after) note(row.id, row.run());
    note("tsmalloc-cross-free", await ts.round());
    note("tsmalloc-batch-free-shared", tsBatch());
    if (mw !== null) note("mimalloc-cross-free", await mw.round());
    if (miBatch !== null) note("mimalloc-batch-free", miBatch());
  }
  await ts.stop();
  await mw?.stop();
  const what = new Map([...before, ...after].map((x) => [x.id, x.what]));
  what.set("tsmalloc-cross-free", `tsmalloc free of a block another worker allocated (${CROSS} blocks of 64 B in allocation order, that worker idle meanwhile)`);
  what.set("tsmalloc-batch-free-shared", "tsmalloc free of this worker's own blocks in the same pattern (allocator shared)");
  what.set("mimalloc-cross-free", "mimalloc free through FFI of a block another worker allocated (same)");
  what.set("mimalloc-batch-free", "mimalloc free through FFI of this thread's own blocks in the same pattern");
  const out = { runtime: runtimeName(), version: runtimeVersion(), rounds: ROUNDS, nsPerOp: Object.fromEntries(best), what: Object.fromEntries(what) };
  console.log(JSON.stringify(out));
}

if (isMainThread) await main();
else await workerSide();
