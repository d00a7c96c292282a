// deno-lint-ignore-file no-explicit-any
// One benchmark process: one round of every workload for the rows given, on whatever
// runtime runs it (node: bundled to .out/bench/main.js; deno and bun: this file).
// Usually started by scripts/bench-all.mjs; by hand:
//   node --expose-gc .out/bench/main.js --mode=quick
//   deno run --v8-flags=--expose-gc --allow-read --allow-write --allow-env --allow-ffi --allow-sys bench/main.ts
//   bun bench/main.ts
// Options: --mode=quick|full  --min-ms=N (time per cell)  --call-us=N (target time per call)
//           --rows=id,id,...  --round=N  --out=file.json  --only=regex
//          --backend=ffi|buffer (tsmalloc rows)  --workers=N (worker workloads)
import { do_not_optimize, measure } from "mitata";
import { readFileSync } from "node:fs";
import { cpuNs, fresh, fullGc, getEnv, nowNs, parseArgs, runtimeName, runtimeVersion, tableSum, writeJson, sizeTable, indexTable, randomTable, permutation, SEED_SIZES, SEED_INDEX, SEED_LARSON, SEED_STRESS, SEED_ORDER } from "./common.ts";
import { ALL_JS_ROWS, loadPeers, type Peer } from "./peers/index.ts";
import { GROW_BLOCKS, type Mode, workloads } from "./workloads.ts";
import { pendingWorkerWorkloads, runWorkerWorkload, workerNa, workerWorkloads } from "./workers.ts";


const args = parseArgs();
const mode: Mode = args.mode === "full" ? "full" : "quick";
const round = Number(args.round ?? 0);
const rows = (args.rows ?? ALL_JS_ROWS.join(",")).split(",").filter(Boolean);
const only = args.only ? new RegExp(args.only) : null;
const workers = Number(args.workers ?? 2);
/** Measured time per (workload, row): mitata's public `min_cpu_time` option (its default is 642 ms). */
const minCpuNs = Number(args["min-ms"] ?? (mode === "full" ? 500 : 120)) * 1e6;
/** Target duration of one timed call (reps are calibrated to it). */
const targetCallNs = Number(args["call-us"] ?? 1000) * 1e3;
/** Idle time before each cell (see settle). */
const settleMs = Number(args["settle-ms"] ?? 50);

/**
 * Lets the previous cells' leftovers finish off the clock: a full GC, then idle time for the
 * engine's helper threads (concurrent marking and sweeping, freeing dead ArrayBuffers'
 * memory) and for timers, twice. Process CPU time counts every thread, so without it a row
 * paid for the garbage of the GC-managed rows before it: tsmalloc's larson on Node 20 took
 * 116 ns of CPU per op against 35 ns of wall time in the process shared with those rows,
 * 30 / 26 ns in a process of its own.
 */
async function settle(): Promise<void> {
  if (settleMs <= 0) return;
  for (let i = 0; i < 2; i++) {
    fullGc();
    await new Promise((r) => setTimeout(r, settleMs / 2));
  }
}

function thingVersion(): string {
  try {
    return JSON.parse(readFileSync("node_modules/@thi.ng/malloc/package.json", "utf8")).version;
  } catch {
    return "?";
  }
}

/**
 * How mitata measures heap use per call (its own probe, as its `run()` would set up):
 * bun:jsc on Bun, node:v8 heap statistics on Node and Deno; undefined where neither exists.
 */
async function heapProbe(): Promise<(() => number) | undefined> {
  if ((globalThis as any).Bun) {
    const spec = "bun:jsc";
    const { memoryUsage } = await import(spec);
    return () => memoryUsage().current;
  }
  try {
    const { getHeapStatistics } = await import("node:v8");
    getHeapStatistics();
    return () => {
      const m = getHeapStatistics();
      return m.used_heap_size + m.malloced_memory;
    };
  } catch {
    return undefined;
  }
}

/** What mitata's run() put in `context` (cpu name, arch, runtime, version); no noop-based cpu frequency. */
function benchContext(rt: string): Record<string, unknown> {
  const g = globalThis as any;
  let cpu = "?";
  try {
    cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
  } catch { /* not Linux, or not permitted */ }
  const version = rt === "deno" ? g.Deno.version.deno : rt === "bun" ? g.Bun.version : g.process.versions.node;
  return { cpu: { name: cpu }, arch: `${g.process?.arch}-${g.process?.platform}`, runtime: rt, version };
}

/** ns as mitata prints it (ns, µs, ms). */
function fmtTime(ns: number): string {
  return ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(2)} µs` : `${ns.toFixed(2)} ns`;
}

interface Row {
  workload: string;
  peer: string;
  status: "ok" | "unavailable" | "n/a" | "error" | "pending";
  reason?: string;
  nsPerOp?: number;
  cpuNsPerOp?: number;
  p50NsPerOp?: number;
  opsPerCall?: number;
  reps?: number;
  /** ms the cell ran after calibration, before timing, until its calls were steady (steady()). */
  steadyMs?: number;
  stats?: Record<string, number>;
  heapBytesPerCall?: number;
  fail?: number;
}

/**
 * Reps per timed call so one call takes about targetCallNs once the loop is optimized:
 * grow until a call reaches the target (this also warms the JIT), then re-time at the size
 * that predicts (fastest of two) until the prediction settles (within 25%) after at least
 * 20 target calls' time of calibration (the JIT's tiers), at most 60.
 * A cold first call (first pages, an interpreted loop: 5 ms for one realloc chain on Bun)
 * used to end the growth at reps = 1, and the cell then timed mitata's per-call overhead.
 */
function calibrate(call: (reps: number) => void): number {
  const MAX = 1 << 24;
  let reps = 1;
  const start = nowNs();
  for (;;) {
    const t0 = nowNs();
    call(reps);
    const dt = nowNs() - t0;
    if (dt >= targetCallNs || reps >= MAX || nowNs() - start > 20 * targetCallNs) break;
    reps = Math.min(MAX, reps * 4);
  }
  for (;;) {
    let best = Infinity;
    for (let i = 0; i < 2; i++) {
      const t0 = nowNs();
      call(reps);
      best = Math.min(best, (nowNs() - t0) / reps);
    }
    const next = Math.max(1, Math.min(MAX, Math.round(targetCallNs / Math.max(best, 1e-3))));
    const settled = next <= reps * 1.25 && next >= reps / 1.25;
    reps = next;
    const spent = nowNs() - start;
    if ((settled && spent > 20 * targetCallNs) || spent > 60 * targetCallNs) break;
  }
  return reps;
}

/** Calls in a row that must be steady before timing starts (steady()). */
const STEADY_CALLS = 32;
/** Most time steady() waits, in target calls. */
const STEADY_MAX_CALLS = 250;

/**
 * Calls the calibrated loop until it runs steadily: the fifth slowest of the last STEADY_CALLS
 * calls (their 88th percentile: a GC-managed row's collections, rarer, pass) within 1.5x their
 * median, or STEADY_MAX_CALLS target calls' time at most; returns the ms it took. The JIT
 * optimizes a workload's slow paths only once they have run often enough: for larson (a
 * slow-path event every ~50 ops) TurboFan compiled a dozen functions of the page
 * queues, 2-14 ms each, one every two or three calls through the first ~1.5 M ops (session 26,
 * doc/PERFORMANCE.md), well after calibration ended. Those compiles ran inside the timed calls
 * (process CPU time counts the compiler's threads; pinned to one CPU they also took the main
 * thread's): the 99th percentile of larson's calls was 4-6 times their median. A one-time
 * cost of a process, not the steady state the C floor is compared with.
 */
function steady(call: (reps: number) => void, reps: number): number {
  const last: number[] = [];
  const start = nowNs();
  for (;;) {
    const t0 = nowNs();
    call(reps);
    last.push(nowNs() - t0);
    if (last.length > STEADY_CALLS) last.shift();
    if (last.length === STEADY_CALLS) {
      const sorted = [...last].sort((x, y) => x - y);
      if (sorted[STEADY_CALLS - 1 - (STEADY_CALLS >> 3)] <= 1.5 * sorted[STEADY_CALLS >> 1]) break;
    }
    if (nowNs() - start > STEADY_MAX_CALLS * targetCallNs) break;
  }
  return (nowNs() - start) / 1e6;
}

async function main() {
  const t0 = Date.now();
  const rt = runtimeName();
  // mitata's measure() options: batch_threshold 0 because our calls are calibrated to ~1 ms,
  // never batch them (a slow first call would otherwise make mitata run 4096 calls per sample)
  const tune = { heap: await heapProbe(), min_cpu_time: minCpuNs, batch_threshold: 0 };

  const peers: Peer[] = await loadPeers({ rows, thingVersion: thingVersion() });
  // interleave: rotate the peer order every round
  const order = peers.map((_, i) => peers[(i + round) % peers.length]);
  const wls = workloads(mode).filter((w) => !only || only.test(w.id));

  console.log(`# tsmalloc bench: ${runtimeVersion()}, mode ${mode}, round ${round}, rows ${rows.join(",")}`);
  console.log(`# TSMALLOC_BACKEND=${getEnv("TSMALLOC_BACKEND") ?? ""}; budget ${minCpuNs / 1e6} ms/bench (mitata min_cpu_time), ~${targetCallNs / 1e3} us/call`);
  for (const p of peers) {
    console.log(`#   ${p.id.padEnd(16)} ${p.unavailable ? "UNAVAILABLE: " + p.unavailable : p.label + (p.version ? ` [${p.version}]` : "")}`);
  }

  const results: Row[] = [];

  for (const w of wls) {
    console.log(`\n# ${w.title}  [${rt}; time per call of N ops, N in the name]`);
    for (const p of order) {
      const row: Row = { workload: w.id, peer: p.id, status: "ok" };
      results.push(row);
      if (p.unavailable) {
        Object.assign(row, { status: "unavailable", reason: p.unavailable });
        continue;
      }
      // n/a: the peer lacks the capability, or declares the workload kind out of its reach
      if (!p.caps.includes(w.cap) || p.na?.[w.kind]) {
        Object.assign(row, { status: "n/a", reason: p.na?.[w.kind] ?? p.na?.[w.cap] ?? `no ${w.cap}` });
        continue;
      }
      const gen = function* () {
        let P: any, S: any, loop: any, params: unknown[] = [], reps = 1;
        try {
          P = p.instance(w.hint);
          S = w.setup(P);
          loop = fresh(w.template, `${w.id} ${p.id} r${round}`);
          params = w.params(P);
          const call = (r: number) => do_not_optimize(loop(P, S, r, params[0], params[1]));
          reps = calibrate(call);
          row.steadyMs = Math.round(steady(call, reps));
          row.reps = reps;
          row.opsPerCall = reps * w.opsPerRep;
        } catch (e) {
          row.status = "error";
          row.reason = `setup: ${e instanceof Error ? e.message : e}`;
          throw e;
        }
        const pa = params[0], pb = params[1];
        // process CPU time per call, next to mitata's wall clock (see cpuNs)
        let cpu = 0, calls = 0;
        if (params.length === 2) {
          yield {
            [0]: () => pa,
            [1]: () => pb,
            bench: (x: unknown, y: unknown) => {
              const c0 = cpuNs();
              do_not_optimize(loop(P, S, reps, x, y));
              cpu += cpuNs() - c0;
              calls++;
            },
          };
        } else if (params.length === 1) {
          yield {
            [0]: () => pa,
            bench: (x: unknown) => {
              const c0 = cpuNs();
              do_not_optimize(loop(P, S, reps, x));
              cpu += cpuNs() - c0;
              calls++;
            },
          };
        } else {
          yield () => {
            const c0 = cpuNs();
            do_not_optimize(loop(P, S, reps));
            cpu += cpuNs() - c0;
            calls++;
          };
        }
        row.cpuNsPerOp = cpu / calls / row.opsPerCall!;
        row.fail = S.fail;
        try {
          w.teardown(P, S);
          P.release?.();
        } catch (e) {
          row.reason = `teardown: ${e instanceof Error ? e.message : e}`;
        }
      };
      const name = `${p.label}  (N=?)`;
      let s: any;
      try {
        // a fresh options object per cell: mitata's defaults() scales min_cpu_time in place
        // (x1.1 with a heap probe), so one shared object grew the budget 10% per cell
        await settle();
        s = await measure(gen, { ...tune });
      } catch (e) {
        row.status = "error";
        row.reason ??= String((e as any)?.message ?? e).split("\n")[0];
        console.log(`${name.padEnd(52)} error: ${row.reason}`);
        continue;
      }
      const ops = row.opsPerCall ?? 1;
      row.nsPerOp = s.avg / ops;
      row.p50NsPerOp = s.p50 / ops;
      row.stats = { avg: s.avg, min: s.min, p50: s.p50, p75: s.p75, p99: s.p99, max: s.max, samples: s.ticks };
      if (s.heap) row.heapBytesPerCall = s.heap.avg;
      if (row.fail) {
        row.status = "error";
        row.reason = `${row.fail} allocations returned null`;
      }
      console.log(
        `${`${p.label}  (N=${ops})`.padEnd(52)} ${fmtTime(s.avg).padStart(10)}/call  ` +
          `(${fmtTime(s.min)} … ${fmtTime(s.max)})  p50 ${fmtTime(s.p50)}  p99 ${fmtTime(s.p99)}  ${s.ticks} samples`,
      );
    }
  }

  // multi-worker workloads (bench/workers.ts): wall time of the whole run per op
  const wwls = workerWorkloads(workers).filter((w) => !only || only.test(w.id));
  for (const w of wwls) {
    console.log(`\n# ${w.title}  [${rt}; ns/op = wall time / total ops]`);
    for (const p of order) {
      const row: Row = { workload: w.id, peer: p.id, status: "ok" };
      results.push(row);
      if (p.unavailable) {
        Object.assign(row, { status: "unavailable", reason: p.unavailable });
        continue;
      }
      const na = workerNa(p);
      if (na) {
        Object.assign(row, { status: "n/a", reason: na });
        continue;
      }
      const r = await runWorkerWorkload(w.id, p, workers, mode);
      Object.assign(row, r);
      console.log(`#   ${p.label.padEnd(34)} ${r.status === "ok" ? `${r.nsPerOp!.toFixed(1)} ns/op wall (${r.ops} ops in ${r.wallMs!.toFixed(0)} ms; all-thread CPU ${r.cpuAllThreadsNsPerOp!.toFixed(1)} ns/op)` : `${r.status}: ${r.reason}`}`);
    }
  }
  for (const pw of pendingWorkerWorkloads(workers)) {
    if (only && !only.test(pw.id)) continue;
    for (const p of peers) results.push({ workload: pw.id, peer: p.id, status: "pending", reason: pw.reason });
  }

  // per-op summary for the terminal
  console.log(`\n# ns per op, process CPU time (${rt}, round ${round}); op = see workload`);
  const ids = peers.map((p) => p.id);
  console.log(["workload".padEnd(16), ...ids.map((x) => x.padStart(14))].join(""));
  for (const w of [...wls, ...wwls]) {
    const cells = ids.map((pid) => {
      const r = results.find((x) => x.workload === w.id && x.peer === pid)!;
      const x = r.cpuNsPerOp ?? r.nsPerOp!;
      const v = r.status === "ok" ? x.toFixed(x < 100 ? 2 : 0) : r.status;
      return v.padStart(14);
    });
    console.log([w.id.padEnd(16), ...cells].join(""));
  }

  const out = {
    schema: 1,
    runtime: rt,
    runtimeVersion: runtimeVersion(),
    mode,
    round,
    rows,
    backendEnv: getEnv("TSMALLOC_BACKEND") ?? null,
    budgetMs: minCpuNs / 1e6,
    settleMs,
    // bench/workloads.ts handleArray (a plain Array for every row before: see there)
    handleStore: "Float64Array for number handles, Array for object handles",
    targetCallUs: targetCallNs / 1e3,
    startedAt: new Date(t0).toISOString(),
    durationMs: Date.now() - t0,
    context: benchContext(rt),
    tables: {
      sizes: tableSum(sizeTable(SEED_SIZES, 8, 4096)),
      index1000: tableSum(indexTable(SEED_INDEX, 1000)),
      larsonSizes: tableSum(sizeTable(SEED_LARSON, 8, 999)),
      stress: tableSum(randomTable(SEED_STRESS)),
      growShrinkOrder: tableSum(permutation(SEED_ORDER, GROW_BLOCKS)),
    },
    peers: peers.map((p) => ({ id: p.id, label: p.label, version: p.version, unavailable: p.unavailable, na: p.na, info: p.info })),
    workloads: [...wls, ...wwls].map((w) => ({ id: w.id, kind: w.kind, title: w.title, op: w.op, opsPerRep: w.opsPerRep, note: w.note })),
    workers,
    results,
  };
  if (args.out) writeJson(args.out, out);
  console.log(`# done in ${((Date.now() - t0) / 1000).toFixed(1)} s${args.out ? ", wrote " + args.out : ""}`);
}

await main();
