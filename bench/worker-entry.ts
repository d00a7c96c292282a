// Worker side of the multi-worker workloads (bench/workers.ts starts it; Node runs the
// esbuild bundle .out/bench/worker-entry.js, Deno and Bun this file).
//
// workerData: { row, handle?, workload: "larson-workers" | "xmalloc", role, index, W, ctl, ... }
// The row decides the allocator: tsmalloc-* attach(handle) first thing and detach() at the
// end; libc / mimalloc load their own FFI binding in this worker (same library, same process,
// so addresses are valid in every worker). Handles travel through SharedArrayBuffers as
// Float64 (numbers) or BigUint64 (Deno FFI BigInt handles): no conversion in the loops.
import { parentPort, workerData } from "node:worker_threads";
import { SEED_LARSON, sizeTable, TABLE } from "./common.ts";
import { importTsmalloc } from "./peers/tsmalloc.ts";
import { nativePeer } from "./peers/ffi.ts";

// deno-lint-ignore-file no-explicit-any
const D = workerData as any;
const port = parentPort!;

// control words (Int32Array over D.ctl), shared with bench/workers.ts
const GO = 0, STOP = 1, ARRIVED = 2, GEN = 3, STOPPED = 4;

interface Alloc {
  malloc(n: any): any;
  free(h: any): void;
  size(n: number): any;
  big: boolean;
  done(): void;
}

async function load(row: string): Promise<Alloc> {
  if (row.startsWith("tsmalloc-")) {
    const m = await importTsmalloc();
    m.attach(D.handle); // first thing: join the parent's allocator
    return { malloc: m.malloc, free: m.free, size: (n: number) => n, big: false, done: () => m.detach() };
  }
  const p = await nativePeer(row as "libc" | "mimalloc");
  if (p.unavailable) throw new Error(p.unavailable);
  const o = p.instance({ workload: D.workload, liveBlocks: 0, liveBytes: 0 });
  return { malloc: o.malloc, free: o.free, size: o.size, big: typeof o.nil === "bigint", done: () => {} };
}

function waitGo(ctl: Int32Array) {
  port.postMessage({ ready: true });
  while (Atomics.load(ctl, GO) === 0) Atomics.wait(ctl, GO, 0, 50);
}

/** Barrier over all W workers; returns true when the parent asked to stop (decided by the last arriver). */
function barrier(ctl: Int32Array, W: number): boolean {
  const gen = Atomics.load(ctl, GEN);
  if (Atomics.add(ctl, ARRIVED, 1) === W - 1) {
    Atomics.store(ctl, ARRIVED, 0);
    if (Atomics.load(ctl, STOP)) Atomics.store(ctl, STOPPED, 1);
    Atomics.add(ctl, GEN, 1);
    Atomics.notify(ctl, GEN);
  } else {
    while (Atomics.load(ctl, GEN) === gen) Atomics.wait(ctl, GEN, gen, 20);
  }
  return Atomics.load(ctl, STOPPED) === 1;
}

/**
 * larson with successor workers: worker w owns slot array w; every epoch (EPOCH replacements:
 * free a random slot, malloc a random 8..999 B size into it) ends at a barrier, after which
 * worker w works on array (w + epoch) % W, so it frees the blocks its predecessor allocated.
 */
function larson(A: Alloc): { ops: number; fail: number } {
  const ctl = new Int32Array(D.ctl);
  const W: number = D.W, w: number = D.index, N: number = D.slots, EPOCH: number = D.epoch;
  const slots: any = A.big ? new BigUint64Array(D.slotBuf) : new Float64Array(D.slotBuf);
  const t = sizeTable(SEED_LARSON + 31 * w, 8, 999);
  const sizes = new Array(TABLE);
  for (let i = 0; i < TABLE; i++) sizes[i] = A.size(t[i]);
  const malloc = A.malloc, free = A.free;
  let fail = 0;
  for (let i = 0; i < N; i++) {
    const h = malloc(sizes[i & (TABLE - 1)]);
    if (!h) fail++;
    slots[w * N + i] = h;
  }
  waitGo(ctl);
  let s = (0x2545f491 ^ (w * 0x9e3779b9)) | 0 || 1, k = w * 4099, e = 0, ops = 0, base = w * N;
  for (;;) {
    base = ((w + e) % W) * N;
    for (let i = 0; i < EPOCH; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      const j = base + (s >>> 0) % N;
      free(slots[j]);
      const h = malloc(sizes[k]);
      if (!h) fail++;
      slots[j] = h;
      k = (k + 1) & (TABLE - 1);
    }
    ops += EPOCH;
    e++;
    if (barrier(ctl, W)) break;
  }
  // after the last barrier every worker holds a distinct array again
  base = ((w + e) % W) * N;
  for (let i = 0; i < N; i++) free(slots[base + i]);
  return { ops, fail };
}

// ring header words (Int32Array over D.hdr)
const HEAD = 0, TAIL = 1, DONE = 2;

/** xmalloc-test producer: malloc(64) in batches into this pair's SPSC ring until STOP. */
function producer(A: Alloc): { ops: number; fail: number } {
  const ctl = new Int32Array(D.ctl), hdr = new Int32Array(D.hdr);
  const R: number = D.ring, MASK = R - 1, BATCH: number = D.batch;
  const ring: any = A.big ? new BigUint64Array(D.ringBuf) : new Float64Array(D.ringBuf);
  const malloc = A.malloc, sz = A.size(64);
  let head = 0, fail = 0, ops = 0;
  waitGo(ctl);
  while (Atomics.load(ctl, STOP) === 0) {
    const tail = Atomics.load(hdr, TAIL);
    if (R - ((head - tail) | 0) < BATCH) {
      Atomics.wait(hdr, TAIL, tail, 2);
      continue;
    }
    for (let b = 0; b < BATCH; b++) {
      const h = malloc(sz);
      if (!h) fail++;
      ring[(head + b) & MASK] = h;
    }
    head = (head + BATCH) | 0;
    ops += BATCH;
    Atomics.store(hdr, HEAD, head);
    Atomics.notify(hdr, HEAD);
  }
  Atomics.store(hdr, DONE, 1);
  Atomics.notify(hdr, HEAD);
  return { ops, fail };
}

/** xmalloc-test releaser: frees every block of its ring (all allocated by the producer worker). */
function consumer(A: Alloc): { ops: number; fail: number } {
  const ctl = new Int32Array(D.ctl), hdr = new Int32Array(D.hdr);
  const MASK: number = D.ring - 1;
  const ring: any = A.big ? new BigUint64Array(D.ringBuf) : new Float64Array(D.ringBuf);
  const free = A.free;
  let tail = 0, ops = 0;
  waitGo(ctl);
  for (;;) {
    const head = Atomics.load(hdr, HEAD);
    const n = (head - tail) | 0;
    if (n === 0) {
      if (Atomics.load(hdr, DONE) && Atomics.load(hdr, HEAD) === tail) break;
      Atomics.wait(hdr, HEAD, head, 2);
      continue;
    }
    for (let i = 0; i < n; i++) free(ring[(tail + i) & MASK]);
    tail = (tail + n) | 0;
    ops += n;
    Atomics.store(hdr, TAIL, tail);
    Atomics.notify(hdr, TAIL);
  }
  return { ops, fail: 0 };
}

try {
  const A = await load(D.row);
  const r = D.role === "larson" ? larson(A) : D.role === "producer" ? producer(A) : consumer(A);
  A.done();
  port.postMessage({ done: true, ...r });
} catch (e) {
  port.postMessage({ error: e instanceof Error ? e.message : String(e) });
}
