// deno-lint-ignore-file no-explicit-any
// The per-task workload (bench/workloads.ts taskRows; issue 13): per row, ns per task
// (1,000 allocations of 16 B-2 KiB, then everything given back) with mitata's measure(), and
// RSS after the row. Rows run in one process, in the order given (RSS is cumulative: the
// "RSS +" column is the growth during the row); scripts/bench-all.mjs runs one process per row
// (so RSS is the row's own) and reads --out.
//   deno run -A --v8-flags=--expose-gc bench/tasks.ts [--min-ms=N] [--rows=id,...] [--out=x.json]
//   bun bench/tasks.ts
//   node: npx esbuild bench/tasks.ts --bundle --platform=node --target=node20 --format=esm \
//           --packages=external --outfile=.out/bench/tasks.js && node --expose-gc .out/bench/tasks.js
import { do_not_optimize, measure } from "mitata";
import * as T from "../mod.ts";
import { fresh, fullGc, parseArgs, rss, runtimeVersion, writeJson } from "./common.ts";
import { taskRows } from "./workloads.ts";

const args = parseArgs();
const minCpuNs = Number(args["min-ms"] ?? 300) * 1e6;
const want = args.rows?.split(",");
const rows = taskRows().filter((r) => !want || want.includes(r.id));
const results: Record<string, unknown>[] = [];
console.log(`# per-task workload: 1,000 allocations of 16 B-2 KiB per task; ${runtimeVersion()}; backend ${T.backend().kind}`);
console.log("| row | ns per task | ns per allocation | RSS after (MiB) | RSS + (MiB) |");
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const row of rows) {
  fullGc();
  const before = rss().rss;
  const S = row.setup(T);
  const run = fresh(row.template, row.id) as any;
  run(T, S, 2); // warm-up (and the first chunks / pages)
  const reps = 20;
  const st = await measure(() => do_not_optimize(run(T, S, reps)), { min_cpu_time: minCpuNs, batch_threshold: 0 } as any);
  const after = rss().rss;
  row.teardown(T, S);
  if (S.fail) console.log(`# ${row.id}: ${S.fail} allocations failed`);
  const perTask = st.avg / reps;
  const peak = rss().hwm;
  results.push({ id: row.id, label: row.label, nsPerTask: perTask, nsPerAllocation: perTask / 1000, rssBefore: before, rssAfter: after, rssPeak: peak, fails: S.fail, samples: (st as any).samples?.length ?? null });
  console.log(`| ${row.label} | ${perTask.toFixed(0)} | ${(perTask / 1000).toFixed(1)} | ${(after / 2 ** 20).toFixed(1)} | ${((after - before) / 2 ** 20).toFixed(1)} |`);
}
if (args.out) writeJson(args.out, { runtime: runtimeVersion(), backend: T.backend().kind, ffi: T.backend().ffi, minMs: minCpuNs / 1e6, rows: results });
