// Multi-worker workloads (parent side; the worker side is bench/worker-entry.ts).
//
//   larson-workers  larson with successor workers: W workers, each owns a slot array (1,000
//                   slots, 8..999 B); epochs of 20,000 replacements end at a barrier after which
//                   every worker takes over the next worker's array, so it frees the blocks its
//                   predecessor allocated.
//   xmalloc         xmalloc-test: W producer workers malloc(64) and pass the addresses through a
//                   SharedArrayBuffer SPSC ring (one per pair) to W releaser workers that free
//                   them: 100% cross-worker frees.
//   mstress-workers still pending (not written yet).
//
// Rows: tsmalloc-ffi / tsmalloc-buffer (workerHandle() in the parent, attach() in every worker,
// watchWorker()), libc and mimalloc through the runtime's FFI (each worker loads its own
// binding). The other rows have no memory that several workers can share: n/a.
// ns/op = WALL time of the whole multi-worker run (from releasing the ready workers to the last
// worker's result) / total ops; the process CPU time of all threads per op is kept in the JSON
// (cpuAllThreadsNsPerOp) but not shown, since idle waits on a full/empty ring would not count.
import { Worker } from "node:worker_threads";
import { cpuNs, nowNs, runtimeName } from "./common.ts";
import { importTsmalloc } from "./peers/tsmalloc.ts";
import type { Peer } from "./peers/types.ts";
import type { Mode } from "./workloads.ts";

// deno-lint-ignore-file no-explicit-any

export interface PendingWorkload {
  id: string;
  title: string;
  reason: string;
}

export interface WorkerWorkload {
  id: string;
  kind: string;
  title: string;
  op: string;
  opsPerRep: number;
  note: string;
}

const NOTE = "ns/op here is wall time of the whole multi-worker run ÷ total ops, not CPU time";

export function workerWorkloads(workers: number): WorkerWorkload[] {
  return [
    { id: "larson-workers", kind: "larson-workers", title: `larson, ${workers} workers, successor workers free the predecessor's blocks (1,000 slots each, 8–999 B, arrays handed on every 20,000 ops)`, op: "free random slot + malloc", opsPerRep: 1, note: NOTE },
    { id: "xmalloc", kind: "xmalloc", title: `xmalloc-test, ${workers} allocator + ${workers} releaser workers, 64 B, 100% cross-worker frees (SharedArrayBuffer ring per pair)`, op: "malloc in one worker + free in another", opsPerRep: 1, note: NOTE },
  ];
}

export function pendingWorkerWorkloads(workers: number): PendingWorkload[] {
  return [
    { id: "mstress-workers", title: `mstress, ${workers} workers re-created every round, transfer slots`, reason: "pending: not written yet (larson-workers and xmalloc are)" },
  ];
}

const WORKER_ROWS = /^(tsmalloc-(ffi|buffer)(-secure\d)?|libc|mimalloc)$/;

export function workerNa(p: Peer): string | null {
  if (p.unavailable) return null;
  if (!WORKER_ROWS.test(p.id)) return p.id === "stub" ? "floor stub: no memory" : "no memory that several workers share (GC heap or a private ArrayBuffer)";
  return null;
}

export interface WorkerResult {
  status: "ok" | "error" | "n/a";
  reason?: string;
  nsPerOp?: number;
  cpuAllThreadsNsPerOp?: number;
  ops?: number;
  wallMs?: number;
  fail?: number;
}

/** Runs one worker workload for one row; never throws. */
export async function runWorkerWorkload(id: string, p: Peer, workers: number, mode: Mode): Promise<WorkerResult> {
  let handle: unknown = undefined;
  let watch: ((w: Worker) => void) | null = null;
  if (p.id.startsWith("tsmalloc-")) {
    const m = await importTsmalloc();
    try {
      handle = m.workerHandle();
    } catch (e) {
      return { status: "n/a", reason: `workerHandle(): ${e instanceof Error ? e.message : e}` };
    }
    watch = m.watchWorker;
  }
  const url = new URL(runtimeName() === "node" ? "./worker-entry.js" : "./worker-entry.ts", import.meta.url);
  const ctlBuf = new SharedArrayBuffer(64);
  const ctl = new Int32Array(ctlBuf);
  const datas: any[] = [];
  if (id === "larson-workers") {
    const slots = 1000;
    const slotBuf = new SharedArrayBuffer(8 * slots * workers);
    for (let i = 0; i < workers; i++) datas.push({ role: "larson", index: i, W: workers, slots, epoch: 20000, slotBuf });
  } else {
    const ring = 4096;
    for (let i = 0; i < workers; i++) {
      const hdr = new SharedArrayBuffer(16), ringBuf = new SharedArrayBuffer(8 * ring);
      datas.push({ role: "producer", index: i, ring, batch: 256, hdr, ringBuf });
      datas.push({ role: "consumer", index: i, ring, hdr, ringBuf });
    }
  }
  const durationMs = mode === "full" ? 5000 : 2000;
  const ws: Worker[] = [];
  const exits: Promise<unknown>[] = [];
  let readyN = 0;
  const results: any[] = [];
  let err: string | null = null;
  let onReady!: () => void, onDone!: () => void;
  const allReady = new Promise<void>((r) => (onReady = r));
  const allDone = new Promise<void>((r) => (onDone = r));
  const check = () => {
    if (err) onReady(), onDone();
    if (readyN === datas.length) onReady();
    if (results.length === datas.length) onDone();
  };
  for (const d of datas) {
    const w = new Worker(url, { workerData: { ...d, row: p.id, workload: id, handle, ctl: ctlBuf } });
    watch?.(w);
    ws.push(w);
    exits.push(new Promise((r) => w.on("exit", r)));
    w.on("message", (m: any) => {
      if (m.ready) readyN++;
      else if (m.done) results.push(m);
      else if (m.error) err ??= m.error;
      check();
    });
    w.on("error", (e) => {
      err ??= String(e?.message ?? e);
      check();
    });
  }
  const timeout = setTimeout(() => {
    err ??= `timed out`;
    check();
  }, durationMs + 60_000);
  await allReady;
  const c0 = cpuNs(), t0 = nowNs();
  Atomics.store(ctl, 0, 1); // GO
  Atomics.notify(ctl, 0);
  if (!err) await new Promise((r) => setTimeout(r, durationMs));
  Atomics.store(ctl, 1, 1); // STOP
  await allDone;
  const wall = nowNs() - t0, cpu = cpuNs() - c0;
  clearTimeout(timeout);
  if (err) {
    for (const w of ws) await w.terminate();
    return { status: "error", reason: err };
  }
  await Promise.all(exits); // every worker detached before its result and ends by itself
  const ops = results.reduce((a, r) => a + r.ops, 0);
  // xmalloc: count blocks once (the releasers' count = the producers' count)
  const counted = id === "xmalloc" ? ops / 2 : ops;
  const fail = results.reduce((a, r) => a + (r.fail ?? 0), 0);
  if (fail) return { status: "error", reason: `${fail} allocations returned null` };
  return { status: "ok", nsPerOp: wall / counted, cpuAllThreadsNsPerOp: cpu / counted, ops: counted, wallMs: wall / 1e6, fail };
}
