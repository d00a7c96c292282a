// One benchmark process: one round of every workload for the rows given, on whatever
// runtime runs it (node: bundled to .out/bench/main.js; deno and bun: this file).
// Usually started by scripts/bench-all.mjs; by hand:
//   node --expose-gc .out/bench/main.js --mode=quick
//   deno run --v8-flags=--expose-gc --allow-read --allow-write --allow-env --allow-ffi --allow-sys bench/main.ts
//   bun bench/main.ts
// Options: --mode=quick|full  --min-ms=N (time per cell)  --call-us=N (target time per call)
//           --rows=id,id,...  --round=N  --out=file.json  --only=regex
//          --backend=ffi|buffer (tsmalloc rows)  --workers=N (worker workloads)
import { B, bench, do_not_optimize, group, measure, run } from "mitata";
import { readFileSync } from "node:fs";
import { cpuNs, fresh, getEnv, nowNs, parseArgs, runtimeName, runtimeVersion, tableSum, writeJson, sizeTable, indexTable, randomTable, SEED_SIZES, SEED_INDEX, SEED_LARSON, SEED_STRESS } from "./common.ts";
import { ALL_JS_ROWS, loadPeers, type Peer } from "./peers/index.ts";
import { type Mode, workloads, type Workload } from "./workloads.ts";
import { pendingWorkerWorkloads, runWorkerWorkload, workerNa, workerWorkloads } from "./workers.ts";

// deno-lint-ignore-file no-explicit-any

const args = parseArgs();
const mode: Mode = args.mode === "full" ? "full" : "quick";
const round = Number(args.round ?? 0);
const rows = (args.rows ?? ALL_JS_ROWS.join(",")).split(",").filter(Boolean);
const only = args.only ? new RegExp(args.only) : null;
const workers = Number(args.workers ?? 2);
/** Measured time per (workload, row); mitata's default is 642 ms. */
const minCpuNs = Number(args["min-ms"] ?? (mode === "full" ? 500 : 120)) * 1e6;
/** Target duration of one timed call (reps are calibrated to it). */
const targetCallNs = Number(args["call-us"] ?? 1000) * 1e3;

function thingVersion(): string {
  try {
    return JSON.parse(readFileSync("node_modules/@thi.ng/malloc/package.json", "utf8")).version;
  } catch {
    return "?";
  }
}

// mitata 1.x has no public knob for the per-benchmark time budget (k_min_cpu_time is
// fixed at 642 ms); B.run builds the options it passes to measure(). We only register
// static benchmarks, so this is B.run's static branch with min_cpu_time added.
function patchMitataBudget(ns: number): boolean {
  const proto = (B as any)?.prototype;
  if (!proto || typeof proto.run !== "function") return false;
  if (typeof measure !== "function") return false;
  proto.run = async function (thrw = false) {
    const heap = await (async () => {
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
    })();
    // batch_threshold 0: our calls are calibrated to ~0.5 ms, never batch them (a slow first
    // call would otherwise make mitata run 4096 calls per sample)
    const tune = { inner_gc: this._gc === "inner", gc: !this._gc ? false : undefined, heap, min_cpu_time: ns, batch_threshold: 0 };
    let stats, error;
    try {
      stats = await measure(this.f, tune);
    } catch (err) {
      error = err;
      if (thrw) throw err;
    }
    return {
      kind: "static",
      args: this._args,
      alias: this._name,
      group: this._group,
      baseline: false,
      runs: [{ stats, error, args: {}, name: this._name }],
      style: { highlight: this._highlight, compact: false },
    };
  };
  return true;
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
  stats?: Record<string, number>;
  heapBytesPerCall?: number;
  fail?: number;
}

/**
 * Reps per timed call so one call takes about targetCallNs once the loop is optimized:
 * grow until a call reaches the target (this also warms the JIT), then re-time twice at
 * that size and size from the fastest.
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
  let best = Infinity;
  for (let i = 0; i < 2; i++) {
    const t0 = nowNs();
    call(reps);
    best = Math.min(best, (nowNs() - t0) / reps);
  }
  return Math.max(1, Math.min(MAX, Math.round(targetCallNs / Math.max(best, 1e-3))));
}

async function main() {
  const t0 = Date.now();
  const rt = runtimeName();
  const patched = patchMitataBudget(minCpuNs);

  const peers: Peer[] = await loadPeers({ rows, thingVersion: thingVersion() });
  // interleave: rotate the peer order every round
  const order = peers.map((_, i) => peers[(i + round) % peers.length]);
  const wls = workloads(mode).filter((w) => !only || only.test(w.id));

  console.log(`# tsmalloc bench: ${runtimeVersion()}, mode ${mode}, round ${round}, rows ${rows.join(",")}`);
  console.log(`# TSMALLOC_BACKEND=${getEnv("TSMALLOC_BACKEND") ?? ""}; budget ${minCpuNs / 1e6} ms/bench${patched ? "" : " (mitata default: patch failed)"}, ~${targetCallNs / 1e3} us/call`);
  for (const p of peers) {
    console.log(`#   ${p.id.padEnd(16)} ${p.unavailable ? "UNAVAILABLE: " + p.unavailable : p.label + (p.version ? ` [${p.version}]` : "")}`);
  }

  const results: Row[] = [];
  const cases: { w: Workload; p: Peer; row: Row; name: string }[] = [];

  for (const w of wls) {
    group(`${w.title}  [${rt}; time per call of N ops, N in the name]`, () => {
      for (const p of order) {
        const row: Row = { workload: w.id, peer: p.id, status: "ok" };
        results.push(row);
        if (p.unavailable) {
          Object.assign(row, { status: "unavailable", reason: p.unavailable });
          continue;
        }
        if (!p.caps.includes(w.cap)) {
          Object.assign(row, { status: "n/a", reason: p.na?.[w.kind] ?? p.na?.[w.cap] ?? `no ${w.cap}` });
          continue;
        }
        const name = `${p.label}`;
        cases.push({ w, p, row, name });
        const b = bench(name, function* () {
          let P: any, S: any, loop: any, params: unknown[] = [], reps = 1;
          try {
            P = p.instance(w.hint);
            S = w.setup(P);
            loop = fresh(w.template, `${w.id} ${p.id} r${round}`);
            params = w.params(P);
            reps = calibrate((r) => do_not_optimize(loop(P, S, r, params[0], params[1])));
            row.reps = reps;
            row.opsPerCall = reps * w.opsPerRep;
            b.name(`${name}  (N=${row.opsPerCall})`);
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
        });
      }
    });
  }

  const res = await run({ format: { mitata: { name: 52 } } as any, colors: !getEnv("NO_COLOR") });

  // map mitata results back to our rows (registration order)
  let i = 0;
  for (const b of res.benchmarks as any[]) {
    const c = cases[i++];
    if (!c) break;
    if (!String(b.alias).startsWith(c.name)) throw new Error(`mitata result order: expected ${c.name}, got ${b.alias}`);
    const r = b.runs[0];
    if (r.error) {
      c.row.status = "error";
      c.row.reason ??= String(r.error?.message ?? r.error).split("\n")[0];
      continue;
    }
    const s = r.stats;
    const ops = c.row.opsPerCall ?? 1;
    c.row.nsPerOp = s.avg / ops;
    c.row.p50NsPerOp = s.p50 / ops;
    c.row.stats = { avg: s.avg, min: s.min, p50: s.p50, p75: s.p75, p99: s.p99, max: s.max, samples: s.ticks };
    if (s.heap) c.row.heapBytesPerCall = s.heap.avg;
    if (c.row.fail) {
      c.row.status = "error";
      c.row.reason = `${c.row.fail} allocations returned null`;
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
    targetCallUs: targetCallNs / 1e3,
    mitataPatched: patched,
    startedAt: new Date(t0).toISOString(),
    durationMs: Date.now() - t0,
    context: { cpu: res.context?.cpu, arch: res.context?.arch, runtime: res.context?.runtime, version: (res.context as any)?.version },
    tables: {
      sizes: tableSum(sizeTable(SEED_SIZES, 8, 4096)),
      index1000: tableSum(indexTable(SEED_INDEX, 1000)),
      larsonSizes: tableSum(sizeTable(SEED_LARSON, 8, 999)),
      stress: tableSum(randomTable(SEED_STRESS)),
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
