// Regenerates bench/RESULTS.md and bench/ratios.svg from bench/results/*.json.
// Called by scripts/bench-all.mjs; by hand: node bench/report.mjs
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

// node: the oldest supported Node (koffi); node26: Node 26 (tsmalloc-ffi is node:ffi there)
const RUNTIMES = ["node", "node26", "deno", "bun"];
const REF = "tsmalloc-ffi";
const REF_FALLBACK = "tsmalloc-buffer";

/** Column order and display names (short names for tables and the chart). */
const COLS = [
  ["tsmalloc-ffi", "tsmalloc (ffi)"],
  ["tsmalloc-ffi-koffi", "tsmalloc (ffi, koffi)"],
  ["tsmalloc-buffer", "tsmalloc (buffer)"],
  ["tsmalloc-ffi-secure0", "tsmalloc (ffi, secure 0)"],
  ["tsmalloc-ffi-secure1", "tsmalloc (ffi, secure 1)"],
  ["tsmalloc-ffi-secure2", "tsmalloc (ffi, secure 2)"],
  ["tsmalloc-ffi-secure3", "tsmalloc (ffi, secure 3)"],
  ["tsmalloc-ffi-secure4", "tsmalloc (ffi, secure 4)"],
  ["stub", "JS floor stub"],
  ["u8", "new Uint8Array"],
  ["ab", "new ArrayBuffer"],
  ["buffer", "Buffer.allocUnsafe"],
  ["libc", "glibc via FFI"],
  ["mimalloc", "mimalloc via FFI"],
  ["thing", "@thi.ng/malloc"],
  ["native-glibc", "C glibc (floor)"],
  ["native-mimalloc", "C mimalloc (floor)"],
];
const colName = Object.fromEntries(COLS);

function readJson(p) {
  try {
    return JSON.parse(readFileSync(p, "utf8"));
  } catch {
    return null;
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

function fmtNs(v) {
  if (!Number.isFinite(v)) return "-";
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} ms`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)} µs`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(2)} µs`;
  if (v >= 100) return `${v.toFixed(0)} ns`;
  if (v >= 10) return `${v.toFixed(1)} ns`;
  return `${v.toFixed(2)} ns`;
}
function fmtRatio(r) {
  if (!Number.isFinite(r)) return "";
  if (r < 0.01) return `${r.toFixed(3)}×`;
  if (r >= 100) return `${r.toFixed(0)}×`;
  if (r >= 10) return `${r.toFixed(1)}×`;
  return `${r.toFixed(2)}×`;
}
const MB = (b) => (b == null || !Number.isFinite(b) ? "-" : `${(b / 1048576).toFixed(1)}`);
const esc = (s) => String(s ?? "").replace(/\|/g, "\\|").replace(/\n/g, " ");

/**
 * Aggregates one runtime: per workload and row, the median over rounds of ns/op, plus the
 * status / reason of rows that never produced a number.
 */
function aggregate(rt, native) {
  const cells = new Map(); // `${workload}|${peer}` -> {vals:[], status, reason, p50s:[]}
  const anchor = new Map(); // workload -> {ffi:[], buffer:[]} stub in both processes
  const workloads = new Map();
  const peers = new Map();
  const pending = new Map();
  for (const r of rt.rounds) {
    for (const w of r.workloads ?? []) workloads.set(w.id, w);
    // the koffi process (node26) carries a stub too; only the ffi and buffer processes' stubs count
    for (const p of r.peers ?? []) if (!(p.id === "stub" && r.process !== "ffi")) peers.set(p.id, p);
    for (const x of r.results ?? []) {
      if (x.status === "pending") {
        pending.set(x.workload, x.reason);
        continue;
      }
      if (x.peer === "stub" && r.process === "koffi") continue;
      if (x.peer === "stub") {
        const a = anchor.get(x.workload) ?? { ffi: [], buffer: [] };
        const buffer = String(r.process ?? "").startsWith("buffer"); // buffer, buffer-workers
        if (x.status === "ok") a[buffer ? "buffer" : "ffi"].push(x.cpuNsPerOp ?? x.nsPerOp);
        anchor.set(x.workload, a);
        if (buffer) continue;
      }
      const k = `${x.workload}|${x.peer}`;
      const c = cells.get(k) ?? { vals: [], wall: [], p50s: [], status: null, reason: null, fail: 0, spread: [], heap: [] };
      if (x.status === "ok") {
        c.vals.push(x.cpuNsPerOp ?? x.nsPerOp);
        if (x.heapBytesPerCall !== undefined && x.opsPerCall) c.heap.push(x.heapBytesPerCall / x.opsPerCall);
        c.wall.push(x.nsPerOp);
        if (x.stats?.p50 && x.opsPerCall) c.p50s.push(x.stats.p50 / x.opsPerCall);
        if (x.stats?.p99 && x.stats?.p50) c.spread.push(x.stats.p99 / x.stats.p50);
      } else {
        c.status = x.status;
        c.reason = x.reason;
      }
      cells.set(k, c);
    }
  }
  // native C floor: same workload ids; the C runs made right after this runtime's processes
  // (bench-all.mjs), or every run when none is tagged (results from before the interleaving)
  if (native) {
    for (const name of ["glibc", "mimalloc"]) {
      const all = native.rounds?.[name] ?? [];
      const mine = all.filter((r) => r.runtime === rt.runtime);
      for (const r of mine.length > 0 ? mine : all) {
        for (const x of r.results ?? []) {
          const k = `${x.workload}|native-${name}`;
          const c = cells.get(k) ?? { vals: [], wall: [], p50s: [], status: null, reason: null, spread: [] };
          if (x.status === "ok") {
            c.vals.push(x.cpuNsPerOp ?? x.nsPerOp);
            c.wall.push(x.nsPerOp);
            if (x.p50NsPerOp) c.p50s.push(x.p50NsPerOp);
          }
          else (c.status = "error"), (c.reason = `${x.fail} allocations failed`);
          cells.set(k, c);
        }
      }
      if (!native.builds?.[name]?.ok) {
        for (const w of workloads.keys()) cells.set(`${w}|native-${name}`, { vals: [], wall: [], p50s: [], status: "unavailable", reason: native.builds?.[name]?.reason ?? "not built" });
      }
    }
  }
  const value = (w, p) => {
    const c = cells.get(`${w}|${p}`);
    return c && c.vals.length ? median(c.vals) : NaN;
  };
  return { cells, anchor, workloads, peers, pending, value };
}

function refFor(agg, w) {
  const v = agg.value(w, REF);
  return Number.isFinite(v) ? [REF, v] : [REF_FALLBACK, agg.value(w, REF_FALLBACK)];
}

// ---------------------------------------------------------------- SVG heatmap

function svgChart(perRt) {
  const rts = perRt.filter((x) => x.agg);
  const wids = [];
  for (const { agg } of rts) for (const w of agg.workloads.keys()) if (!wids.includes(w)) wids.push(w);
  const peerCols = COLS.map(([id]) => id).filter((id) => id !== REF && rts.some(({ agg }) => wids.some((w) => agg.cells.has(`${w}|${id}`))));
  const cw = 50, ch = 22, left = 130, top = 160, gap = 16;
  const groupW = peerCols.length * cw;
  const width = left + rts.length * (groupW + gap) + 100;
  const height = top + wids.length * ch + 70;
  const mix = (a, b, t) => a.map((v, i) => Math.round(v + (b[i] - v) * t));
  const color = (r) => {
    if (!Number.isFinite(r)) return "#e6e6e6";
    const t = Math.max(-1, Math.min(1, Math.log10(r) / 2)); // ±100× saturates
    const [R, G, B] = t >= 0 ? mix([255, 255, 255], [46, 160, 67], t) : mix([255, 255, 255], [220, 60, 60], -t);
    return `rgb(${R},${G},${B})`;
  };
  const x = [];
  x.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="11">`);
  x.push(`<rect width="100%" height="100%" fill="white"/>`);
  x.push(`<text x="10" y="18" font-size="14" font-weight="bold">tsmalloc: peer time / tsmalloc time per workload (green = tsmalloc faster, red = peer faster)</text>`);
  x.push(`<text x="10" y="34" fill="#555">Reference = tsmalloc (ffi) of the same runtime (tsmalloc (buffer) where ffi is missing). Grey = n/a or unavailable. Colour saturates at 100×.</text>`);
  rts.forEach(({ rt, version, agg }, gi) => {
    const gx = left + gi * (groupW + gap);
    x.push(`<text x="${gx + groupW / 2}" y="58" text-anchor="middle" font-size="13" font-weight="bold">${rt}</text>`);
    x.push(`<text x="${gx + groupW / 2}" y="71" text-anchor="middle" fill="#777" font-size="9">${xmlEsc(version)}</text>`);
    x.push(`<line x1="${gx}" y1="76" x2="${gx + groupW - 2}" y2="76" stroke="#999"/>`);
    peerCols.forEach((id, pi) => {
      const cx = gx + pi * cw + cw / 2;
      x.push(`<text transform="translate(${cx - 2},${top - 5}) rotate(-50)" font-size="9.5" fill="#333">${xmlEsc(colName[id] ?? id)}</text>`);
    });
    wids.forEach((w, wi) => {
      const [, ref] = refFor(agg, w);
      peerCols.forEach((id, pi) => {
        const v = agg.value(w, id);
        const r = v / ref;
        const cx = gx + pi * cw, cy = top + wi * ch;
        x.push(`<rect x="${cx}" y="${cy}" width="${cw - 2}" height="${ch - 2}" fill="${color(r)}"><title>${xmlEsc(`${rt} ${w} ${colName[id] ?? id}: ${fmtNs(v)} / tsmalloc ${fmtNs(ref)} = ${fmtRatio(r) || "n/a"}`)}</title></rect>`);
        const st = agg.cells.get(`${w}|${id}`)?.status;
        const label = Number.isFinite(r) ? fmtRatio(r) : st === "n/a" ? "n/a" : st === "unavailable" ? "unavail." : st === "error" ? "error" : "";
        x.push(`<text x="${cx + (cw - 2) / 2}" y="${cy + 14}" text-anchor="middle" font-size="9.5" fill="${Number.isFinite(r) ? "#222" : "#999"}">${label}</text>`);
      });
    });
  });
  wids.forEach((w, wi) => x.push(`<text x="${left - 6}" y="${top + wi * ch + 14}" text-anchor="end">${xmlEsc(w)}</text>`));
  // legend
  const ly = top + wids.length * ch + 24;
  const stops = [0.01, 0.1, 0.5, 1, 2, 10, 100];
  x.push(`<text x="10" y="${ly + 12}">legend:</text>`);
  stops.forEach((r, i) => {
    x.push(`<rect x="${60 + i * 56}" y="${ly}" width="54" height="18" fill="${color(r)}"/>`);
    x.push(`<text x="${60 + i * 56 + 27}" y="${ly + 13}" text-anchor="middle" font-size="9.5">${fmtRatio(r)}</text>`);
  });
  x.push(`<text x="${60 + stops.length * 56 + 10}" y="${ly + 13}" fill="#555">ratio = peer ÷ tsmalloc, process CPU time per op (&gt; 1: tsmalloc faster)</text>`);
  x.push(`</svg>`);
  return x.join("\n") + "\n";
}
function xmlEsc(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

// ---------------------------------------------------------------- markdown

/** mode "quick": bench/results -> RESULTS.md, ratios.svg; "full": bench/results/full -> RESULTS-full.md, ratios-full.svg */
export function writeReport(root, mode = "quick") {
  const full = mode === "full";
  const dir = join(root, "bench", "results", ...(full ? ["full"] : []));
  const mdName = full ? "RESULTS-full.md" : "RESULTS.md";
  const svgName = full ? "ratios-full.svg" : "ratios.svg";
  const meta = readJson(join(dir, "meta.json")) ?? {};
  const native0 = readJson(join(dir, "native.json"));
  const native = native0 && (!meta.runId || native0.runId === meta.runId) ? native0 : null;
  const perRt = RUNTIMES.map((rt) => {
    const j = readJson(join(dir, `${rt}.json`));
    if (!j) return { rt, missing: "no results" };
    if (meta.runId && j.runId !== meta.runId) return { rt, missing: `stale results from run ${j.runId} (not part of run ${meta.runId})` };
    const version = j.rounds[0]?.runtimeVersion ?? rt;
    return { rt, version, data: j, agg: j.rounds.length ? aggregate(j, native) : null };
  });
  const L = [];
  const v = meta.versions ?? {};
  const m = meta.machine ?? {};
  const t = meta.timings ?? {};
  const mins = (ms) => (ms ? `${(ms / 60000).toFixed(1)} min` : "-");
  L.push(`# tsmalloc benchmark results`);
  L.push("");
  L.push(`Generated by \`node scripts/bench-all.mjs${meta.mode === "full" ? " --full" : ""}\` (\`npm run ${meta.mode === "full" ? "bench:full" : "bench"}\`) — **${meta.mode ?? "?"} mode**, ${meta.options?.rounds ?? "?"} interleaved round(s), started ${meta.startedAt ?? "?"}, finished ${meta.finishedAt ?? "?"}; wall time ${mins(t.totalMs)} (speed ${mins(t.speedMs)}, memory ${mins(t.memoryMs)}, per-task ${mins(t.tasksMs)}, C bridge ${mins(t.cAllocatorMs)}).`);
  L.push(`Raw numbers: \`bench/results/${full ? "full/" : ""}{node,node26,deno,bun,native,oscalls,tasks,c-allocator,meta}.json\`; chart: [${svgName}](${svgName}). Regenerate this file from them with \`node bench/report.mjs${full ? " --full" : ""}\`.`);
  const other = full ? "RESULTS.md" : "RESULTS-full.md";
  if (existsSync(join(root, "bench", other))) L.push(`The ${full ? "quick" : "full-scale (\`npm run bench:full\`, incl. 1,000,000 live blocks)"} results are in [${other}](${other}).`);
  L.push("");
  L.push(`## Machine and versions`);
  L.push("");
  L.push(`| | |`);
  L.push(`| --- | --- |`);
  L.push(`| CPU | ${esc(m.cpu)} — ${m.cores ?? "?"} cores |`);
  L.push(`| RAM | ${m.ramBytes ? (m.ramBytes / 2 ** 30).toFixed(1) + " GiB" : "?"} |`);
  L.push(`| OS / kernel | ${esc(m.os)} / ${esc(m.kernel)} |`);
  L.push(`| Node | ${esc(v.node)} (koffi ${esc(v.koffi)}) |`);
  if (v.node26) L.push(`| Node 26 (node26) | ${esc(v.node26)} (tsmalloc on node:ffi; the tsmalloc (ffi, koffi) row on koffi ${esc(v.koffi)}) |`);
  L.push(`| Deno | ${esc(v.deno)} |`);
  L.push(`| Bun | ${esc(v.bun)} |`);
  L.push(`| glibc (libc6) | ${esc(v.glibc)} |`);
  L.push(`| mimalloc (libmimalloc2.0 / -dev) | ${esc(v.libmimalloc)} / ${esc(v.libmimallocDev)} |`);
  L.push(`| @thi.ng/malloc | ${esc(v.thingMalloc)} |`);
  L.push(`| mitata / esbuild | ${esc(v.mitata)} / ${esc(v.esbuild)} |`);
  L.push(`| C compiler | ${esc(v.cc)} |`);
  L.push(`| tree | git ${esc(v.git)}; benchmarked sources (mod.ts, src/, ffi/) sha256 ${esc(meta.snapshot?.sha256 ?? "?")} (${meta.snapshot?.files ?? "?"} files, frozen for the whole run) |`);
  L.push(`| load average (1 min) at start / end | ${meta.load?.start?.[0]?.toFixed(2) ?? "?"} / ${meta.load?.end?.[0]?.toFixed(2) ?? "?"} |`);
  L.push("");
  L.push(`## How to read`);
  L.push("");
  L.push(`- **ns/op** is **process CPU time per operation** (user + system time of all the process's threads, measured around every timed call, divided by the ops in the call; each call is a calibrated loop of ~1 ms). CPU time does not count time the benchmark spent preempted by other processes on the machine, and it does count GC helper threads — the real cost of the GC-managed rows. mitata's wall-clock numbers (its terminal tables) are in the JSON and in the "wall clock" tables below each runtime. With several rounds the median over rounds is shown. What one op is depends on the workload (table below).`);
  L.push(`- **Ratio = peer time ÷ tsmalloc time** (the tsmalloc (ffi) row of the same runtime). **Above 1× tsmalloc is faster; below 1× the peer is faster.** The C floor columns come from one native program (the same for every runtime), run right after each runtime's processes in every round, and each runtime's C column is the median of the runs next to it (this VM's speed drifts within the hour; runs from before this interleaving: all C runs), divided by that runtime's tsmalloc.`);
  L.push(`- Every row runs the same loop text (a private copy per row so the JIT sees one allocator), stores every handle where it outlives the call, checks for null results, and passes the result to mitata's \`do_not_optimize\`; sizes and alignments are mitata computed parameters.`);
  const pins = meta.pins ?? [];
  if (pins.some((x) => x.cpu !== null && x.cpu !== undefined)) {
    const probes = pins.filter((x) => x.probe).map((x) => `${x.runtime} r${x.round + 1}: ${Object.entries(x.probe).map(([c, v]) => `CPU ${c} ${v}`).join(" / ")} → CPU ${x.cpu}`);
    L.push(`- **Pinned to one CPU** (\`--pin=${esc(meta.options?.pin ?? "auto")}\`): each runtime's single-thread speed processes of a round (every row, the buffer, koffi and secure-level processes) and the C floor run right after them ran on the same CPU, the fastest of a probe loop run just before on each CPU (random read-modify-writes over 4 MiB, best ns per iteration: ${probes.join("; ") || "a fixed CPU"}). This machine's two vCPUs differ by up to 1.6× for minutes at a time, for JIT-compiled and C code alike (doc/PERFORMANCE.md, session 22): unpinned, a process's figures depended on where the scheduler put it. The worker workloads ran in processes of their own, not pinned.`);
  } else {
    L.push(`- **Not pinned** (\`--pin=none\`, no \`taskset\`, or a run from before session 22): each process ran wherever the scheduler put it; on this machine the two vCPUs differ by up to 1.6× at times (doc/PERFORMANCE.md, session 22), so a row's figure depends on its process's CPU.`);
  }
  const settled = perRt.map((x) => x.data?.rounds?.[0]?.settleMs).find((v) => v !== undefined);
  L.push(settled === undefined
    ? `- Cells ran back to back (this run predates the settle step): process CPU time also counted the GC helper threads still working on the previous rows' garbage.`
    : settled > 0
    ? `- Before each (workload, row) cell the process runs a full GC and idles ${settled / 2} ms, twice, so the garbage of the rows before it is collected off the clock (process CPU time counts the GC's helper threads); what a row's own loop leaves stays on its clock.`
    : `- No settling between cells (\`--settle-ms=0\`): process CPU time also counts the GC helper threads still working on the previous rows' garbage.`);
  const steadies = perRt.flatMap((x) => (x.data?.rounds ?? []).flatMap((rd) => (rd.results ?? []).map((r) => r.steadyMs))).filter((v) => v !== undefined);
  L.push(steadies.length === 0
    ? `- Timing started right after calibration (this run predates the steady step): the JIT's optimization of a workload's slow paths, when it came later, was timed (larson's TurboFan compiles, 2–14 ms each, doc/PERFORMANCE.md session 26).`
    : `- After calibration each cell runs its loop until it is steady — the 88th percentile of the last 32 calls within 1.5× their median, at most 250 calls — before mitata times it, so the JIT's one-time optimization of a workload's slow paths is not timed (larson: TurboFan compiles of 2–14 ms each through its first ~1.5 M ops, doc/PERFORMANCE.md session 26). This took ${Math.min(...steadies)}–${Math.max(...steadies)} ms per cell (median ${steadies.sort((x, y) => x - y)[steadies.length >> 1]}; \`steadyMs\` in the JSON); a GC-managed row whose collections never let it settle is timed after 250 calls.`);
  const store = perRt.map((x) => x.data?.rounds?.[0]?.handleStore).find(Boolean);
  L.push(store
    ? `- Handles are stored in a \`Float64Array\` for rows whose handles are numbers (tsmalloc, the stub, FFI pointers on Node and Bun), in an \`Array\` for object handles (typed arrays, Deno's FFI pointers), so no row's storage depends on the rows before it (bench/workloads.ts \`handleArray\`).`
    : `- **This run predates per-row handle storage**: every row kept its handles in a plain \`Array\` made at a setup shared by all rows, whose element kind V8 learns per allocation site, so after a row with object handles (new Uint8Array, ArrayBuffer, Buffer; Deno's FFI pointers) the number-handle rows that followed in the same process boxed every handle they stored — tsmalloc (ffi) included, in most single-thread workloads (measured afterwards on Node 26: larson 131–163 ns per op after new Uint8Array's mixed-1000, 38–46 ns otherwise). The secure-level, buffer and koffi processes hold no object-handle row.`);
  L.push(`- **Exception: the multi-worker workloads** (\`larson-workers\`, \`xmalloc\`; \`bench/workers.ts\`) report **wall time per op**: wall time of the whole run (from releasing the ready workers until the last one reports, ${meta.mode === "full" ? "5" : "2"} s) ÷ the ops of all workers together, i.e. inverse throughput. Process CPU time would also count every worker's idle waits, so it is only kept in the JSON (\`cpuAllThreadsNsPerOp\`). Rows: tsmalloc (workerHandle()/attach(), every worker attached to the parent's allocator) and glibc / mimalloc through FFI (each worker loads its own binding); secure mode with guard pages refuses to share (n/a); the GC-managed and JS rows have no memory several workers can share (n/a). The C floor has no worker variant.`);
  L.push(`- The backend is chosen once per process, so \`tsmalloc (buffer)\` runs in a second process of the same round; the JS floor stub runs in both processes as an anchor (see "Cross-process anchor" below).`);
  L.push(`- GC-managed peers (Uint8Array, ArrayBuffer, Buffer) "free" by dropping the reference; their cost includes the garbage collector's. They zero memory (Buffer.allocUnsafe excepted) — the native allocators do not (except calloc). The floor stub touches no memory at all.`);
  L.push("");
  // workloads
  const anyAgg = perRt.find((x) => x.agg)?.agg;
  if (anyAgg) {
    L.push(`## Workloads`);
    L.push("");
    L.push(`| id | workload | one op |`);
    L.push(`| --- | --- | --- |`);
    for (const w of anyAgg.workloads.values()) L.push(`| \`${w.id}\` | ${esc(w.title)}${w.note ? ` (${esc(w.note)})` : ""} | ${esc(w.op)} |`);
    for (const [id, reason] of anyAgg.pending) L.push(`| \`${id}\` | ${esc(id)} — worker variant | **${esc(reason)}** |`);
    L.push("");
    if (meta.mode === "full") L.push(`Full mode: pairs at 8 B, 64 B, 1 KiB, 64 KiB and 1 MiB; mixed with 1,000, 100,000 and 1,000,000 live blocks; 500 ms of measurement per cell; ${meta.options?.rounds ?? 3} rounds (median shown). Memory workloads: 1,000,000 blocks for frag, 250,000 for rss-return.`);
    else L.push(`Quick mode runs pairs at 64 B / 1 KiB / 1 MiB / 8 MiB only (full adds 8 B and 64 KiB), mixed with 1,000 and 100,000 live blocks (full adds **1,000,000**), 120 ms of measurement per cell (full: 500 ms) and one round (full: three). The memory workloads use 200,000 blocks for frag and 50,000 for rss-return (full: 1,000,000 and 250,000). The allocation patterns \`batch-fifo\`, \`batch-lifo\`, \`queue\` and \`grow-shrink\` run at the same scale in both modes.`);
    L.push("");
  }
  // per-runtime tables
  const notes = [];
  for (const x of perRt) {
    L.push(`## ${x.rt}${x.version ? ` — ${x.version}` : ""}`);
    L.push("");
    if (!x.agg) {
      L.push(`No results: ${x.missing ?? "every process failed"}.`);
      for (const f of x.data?.failures ?? []) L.push(`- ${f.process} process, round ${f.round}: ${esc(f.reason)}`);
      L.push("");
      continue;
    }
    const { agg } = x;
    const cols = COLS.map(([id]) => id).filter((id) => [...agg.workloads.keys()].some((w) => agg.cells.has(`${w}|${id}`)));
    L.push(`ns/op (ratio = this column ÷ tsmalloc (ffi); **>1× = tsmalloc faster**)`);
    L.push("");
    L.push(`| workload | ${cols.map((id) => colName[id] ?? id).join(" | ")} |`);
    L.push(`| --- | ${cols.map(() => "---:").join(" | ")} |`);
    for (const w of agg.workloads.keys()) {
      const [refId, ref] = refFor(agg, w);
      const cells = cols.map((id) => {
        const c = agg.cells.get(`${w}|${id}`);
        if (!c) return "";
        if (!c.vals.length) return c.status === "n/a" ? "n/a" : c.status === "unavailable" ? "unavail." : `${c.status ?? "?"}`;
        const val = median(c.vals);
        if (id === refId) return `**${fmtNs(val)}**`;
        return `${fmtNs(val)} (${fmtRatio(val / ref)})`;
      });
      L.push(`| \`${w}\` | ${cells.join(" | ")} |`);
    }
    L.push("");
    L.push(`<details><summary>${x.rt}: wall clock (mitata mean per call / ops; and median call)</summary>`);
    L.push("");
    L.push(`| workload | ${cols.map((id) => colName[id] ?? id).join(" | ")} |`);
    L.push(`| --- | ${cols.map(() => "---:").join(" | ")} |`);
    for (const w of agg.workloads.keys()) {
      const cells = cols.map((id) => {
        const c = agg.cells.get(`${w}|${id}`);
        if (!c || !c.vals.length) return "";
        return `${fmtNs(median(c.wall))}${c.p50s.length ? ` / ${fmtNs(median(c.p50s))}` : ""}`;
      });
      L.push(`| \`${w}\` | ${cells.join(" | ")} |`);
    }
    L.push("");
    L.push(`</details>`);
    L.push("");
    const heapCols = cols.filter((id) => id.startsWith("tsmalloc") && [...agg.workloads.keys()].some((w) => agg.cells.get(`${w}|${id}`)?.heap?.length));
    if (heapCols.length) {
      L.push(`<details><summary>${x.rt}: tsmalloc's JS heap bytes per op, each process (mitata's heap sampling; 16 is one number boxed per op: a fast path the loop did not inline, doc/PERFORMANCE.md session 25)</summary>`);
      L.push("");
      L.push(`| workload | ${heapCols.map((id) => colName[id] ?? id).join(" | ")} |`);
      L.push(`| --- | ${heapCols.map(() => "---:").join(" | ")} |`);
      for (const w of agg.workloads.keys()) {
        const cells = heapCols.map((id) => (agg.cells.get(`${w}|${id}`)?.heap ?? []).map((b) => (b < 10 ? b.toFixed(1) : b.toFixed(0))).join(" / "));
        L.push(`| \`${w}\` | ${cells.join(" | ")} |`);
      }
      L.push("");
      L.push(`</details>`);
      L.push("");
    }
    // unavailable / n/a / errors
    const reasons = new Map();
    for (const [k, c] of agg.cells) {
      if (c.vals.length || !c.status) continue;
      const [w, p] = k.split("|");
      const key = `${p}: ${c.status} — ${c.reason ?? ""}`;
      if (!reasons.has(key)) reasons.set(key, []);
      reasons.get(key).push(w);
    }
    if (reasons.size) {
      L.push(`Rows without a number:`);
      L.push("");
      for (const [k, ws] of reasons) {
        const [p, rest] = [k.slice(0, k.indexOf(":")), k.slice(k.indexOf(":") + 2)];
        L.push(`- **${esc(colName[p] ?? p)}** ${esc(rest)} (${ws.length === agg.workloads.size ? "all workloads" : ws.join(", ")})`);
      }
      L.push("");
    }
    for (const f of x.data.failures ?? []) L.push(`- process failure: ${f.process}, round ${f.round}: ${esc(f.reason)}`);
    // anomaly checks (per-call spread only means something on a quiet machine)
    const loadsAll = x.data.rounds.map((r) => r.load?.start).filter((l) => l != null);
    const busy = 1 + (m.cores ?? 2) * 0.4; // the benchmark process itself counts ~1
    const quiet = loadsAll.length > 0 && Math.max(...loadsAll) <= busy;
    for (const w of agg.workloads.keys()) {
      const stub = agg.value(w, "stub");
      for (const [id] of COLS) {
        const v = agg.value(w, id);
        if (!Number.isFinite(v) || id === "stub") continue;
        if (Number.isFinite(stub) && v < stub * 0.8 && !id.startsWith("native")) notes.push(`${x.rt} \`${w}\`: ${colName[id]} (${fmtNs(v)}) is faster than the JS floor stub (${fmtNs(stub)}) — check for an elided loop.`);
        if (v < 0.3) notes.push(`${x.rt} \`${w}\`: ${colName[id]} at ${fmtNs(v)} per op is suspiciously fast.`);
        const c = agg.cells.get(`${w}|${id}`);
        const sp = c?.spread?.length ? median(c.spread) : 0;
        if (sp > 20 && quiet) notes.push(`${x.rt} \`${w}\`: ${colName[id]} p99/p50 per call = ${sp.toFixed(0)} (GC pauses or preemption dominate the mean).`);
      }
      const a = agg.anchor.get(w);
      if (a && a.ffi.length && a.buffer.length) {
        const d = median(a.buffer) / median(a.ffi);
        if (d > 1.25 || d < 0.8) notes.push(`${x.rt} \`${w}\`: the floor stub measured ${fmtRatio(d)} in the buffer process vs the FFI process — cross-process comparison of tsmalloc (buffer) is off by about that much.`);
      }
    }
    const rounds = x.data.rounds;
    const loads = rounds.map((r) => r.load?.start).filter((l) => l != null);
    if (loads.length && Math.max(...loads) > busy) notes.push(`${x.rt}: load average up to ${Math.max(...loads).toFixed(2)} at the start of a process on ${m.cores} cores — other work was running. The CPU-time figures are robust to that; the wall-clock tables are not (per-call spread checks skipped).`);
  }
  // secure-mode overhead per level (issue 6), same run: against level 0 run alone like the others
  const SECURE = [1, 2, 3, 4].map((l) => `tsmalloc-ffi-secure${l}`);
  const SECURE0 = "tsmalloc-ffi-secure0";
  const secRows = [];
  for (const x of perRt) {
    if (!x.agg) continue;
    for (const w of x.agg.workloads.keys()) {
      const shared = x.agg.value(w, REF);
      const alone = x.agg.value(w, SECURE0);
      const base = Number.isFinite(alone) ? alone : shared;
      const vals = SECURE.map((id) => x.agg.value(w, id));
      if (!Number.isFinite(base) || !vals.some(Number.isFinite)) continue;
      const cell = (v) => (Number.isFinite(v) ? `${fmtNs(v)} (${v >= base ? "+" : ""}${((v / base - 1) * 100).toFixed(0)}%)` : "");
      secRows.push(`| ${x.rt} | \`${w}\` | ${Number.isFinite(shared) ? fmtNs(shared) : "-"} | ${Number.isFinite(alone) ? fmtNs(alone) : "-"} | ${vals.map(cell).join(" | ")} |`);
    }
  }
  if (secRows.length) {
    const secOpt = meta.options?.secure;
    const secOnly = meta.options?.secureOnly;
    L.push(`## Secure-mode overhead`);
    L.push("");
    L.push(`tsmalloc (ffi) with \`configure({ secure: L })\`, process CPU time per op (doc/SECURE.md). Each level runs in processes of its own with only the tsmalloc row${Array.isArray(secOpt) ? ` (levels ${secOpt.join(", ")})` : ""}${meta.options?.secureRepeat > 1 ? `, ${meta.options.secureRepeat} interleaved processes per level and round (median)` : ""}${secOnly ? `, on the workloads matching \`${esc(secOnly)}\` only (\`--secure-only\`)` : ""}; the percentages are against level 0 run the same way in the same run ("level 0 alone"; where it is missing, against the tsmalloc (ffi) row, which shares its process with every other row). Issue 6 asks for level 2 within +15% on \`pairs-64\` and \`mixed-1000\`.`);
    L.push("");
    L.push(`| runtime | workload | level 0 (with the peers) | level 0 alone | secure 1 | secure 2 | secure 3 | secure 4 |`);
    L.push(`| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |`);
    L.push(...secRows);
    L.push("");
  }
  // memory
  L.push(`## Memory`);
  L.push("");
  L.push(`RSS from \`/proc/self/status\` (VmRSS; peak = VmHWM after resetting it through \`/proc/self/clear_refs\`), one process per row and workload, deltas from the RSS just before the workload. Every block is written in full (memset / fill) so its pages are resident.`);
  L.push(`- **frag**: allocate N × 64 B, free every other block, allocate N/2 × 128 B (a larger size class, which cannot reuse the 64 B holes). Live = N/2·64 + N/2·128 bytes. Lower is better; 1.0 would be no overhead at all.`);
  L.push(`- Handles are kept in a JS array; on Deno the FFI rows' handles are BigInts (heap objects), which adds a little to their RSS. tsmalloc (ffi) blocks are written with libc memset through FFI like the libc/mimalloc rows; tsmalloc (buffer) through \`bytes(p, n).fill()\`.
- **rss-return**: allocate M blocks of 8 B–4 KiB (the "mixed" size table), free them all; RSS after the frees, then after the row's own give-back call (tsmalloc \`collect(true)\`, \`mi_collect(true)\`, \`malloc_trim(0)\`, or \`gc()\` for GC-managed rows), measured after a 300 ms grace period and a second call. "returned" = share of the loaded RSS given back.`);
  L.push("");
  for (const x of perRt) {
    const mem = x.data?.memory ?? [];
    if (!mem.length) continue;
    L.push(`### ${x.rt}`);
    L.push("");
    L.push(`| row | frag: peak RSS / live | frag: end RSS / live | frag: allocator's own / live ² | rss-return: loaded MiB | after free MiB | after give-back MiB | returned | give-back call |`);
    L.push(`| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |`);
    const rowsMem = [...new Set(mem.map((r) => r.peer))];
    const nat = native?.memory ?? [];
    const all = [...rowsMem.map((p) => [p, mem]), ...["native-glibc", "native-mimalloc"].filter((p) => nat.some((r) => r.peer === p)).map((p) => [p, nat])];
    for (const [p, src] of all) {
      const f = src.find((r) => r.peer === p && r.workload === "frag");
      const rr = src.find((r) => r.peer === p && r.workload === "rss-return");
      const bad = (r) => (r ? (r.status === "unavailable" ? "unavail." : `error`) : "-");
      const fr = f?.status === "ok" ? f.result : null;
      const rt = rr?.status === "ok" ? rr.result : null;
      const fragCell = (v) => (v == null ? "-" : v.toFixed(2) + (fr?.reduced ? " ¹" : ""));
      // tsmalloc's own figure at the end of frag: stats().resident (mincore over its mappings),
      // or committed where residency is unknown (buffer backend: ArrayBuffers it wrote in full)
      const st = fr?.extra?.stats;
      const own = st && fr.liveBytes ? (st.resident >= 0 ? (st.resident / fr.liveBytes).toFixed(3) : `${(st.committed / fr.liveBytes).toFixed(3)} (committed)`) : "-";
      L.push(`| ${esc(colName[p] ?? p)} | ${fr ? fragCell(fr.peakPerLive) : bad(f)} | ${fr ? fragCell(fr.endPerLive) : bad(f)} | ${own} | ${rt ? MB(rt.loadedBytes) : bad(rr)} | ${rt ? MB(rt.afterFreeBytes) : "-"} | ${rt ? MB(rt.afterCollectBytes) : "-"} | ${rt?.returnedFraction != null ? (rt.returnedFraction * 100).toFixed(0) + "%" : "-"} | ${esc(rt?.collect ?? "")} |`);
      for (const r of [f, rr]) if (r && r.status !== "ok") notes.push(`${x.rt} memory ${r.workload} ${colName[p] ?? p}: ${r.status} — ${r.reason ?? ""}`);
      if (fr?.fail || rt?.fail) notes.push(`${x.rt} memory ${colName[p] ?? p}: ${fr?.fail ?? 0 + rt?.fail ?? 0} allocations failed.`);
    }
    if (mem.some((r) => r.result?.reduced)) L.push(`\n¹ ${esc(mem.find((r) => r.result?.reduced).result.reduced)}.`);
    L.push(`\n² tsmalloc's own resident bytes (\`stats().resident\`: mincore over its mappings, metadata included) at the end of frag ÷ live; the C floor rows' RSS is their allocator's own. The process RSS columns also hold what the JS runtime grew by while the loop ran (compiled code, GC heap): mimalloc through FFI, the same allocator as the C row, shows that difference.`);
    L.push("");
  }
  // OS call costs per FFI shim (bench/oscalls.ts)
  const osc = readJson(join(dir, "oscalls.json"));
  if (osc && (!meta.runId || osc.runId === meta.runId) && osc.runs?.length) {
    const cols = [...new Set(osc.runs.map((r) => `${r.runtime} (${r.ffi})`))];
    const ops = [...new Set(osc.runs.flatMap((r) => r.rows.map((x) => x.op)))];
    const what = Object.fromEntries(osc.runs.flatMap((r) => r.rows.map((x) => [x.op, x.what])));
    L.push(`## OS calls per FFI shim`);
    L.push("");
    L.push(`\`bench/oscalls.ts\`: the calls the allocator makes off its fast paths (purge, reset, guard pages, reserve, views, residency), through each FFI, one process per runtime and shim; wall-clock ns per call, median over ${osc.runs.length / cols.length} round(s) of the median of 7 batches. malloc/free make none of these calls.`);
    L.push("");
    L.push(`| call | what | ${cols.map(esc).join(" | ")} |`);
    L.push(`| --- | --- | ${cols.map(() => "---:").join(" | ")} |`);
    for (const op of ops) {
      const cells = cols.map((c) => median(osc.runs.filter((r) => `${r.runtime} (${r.ffi})` === c).flatMap((r) => r.rows.filter((x) => x.op === op).map((x) => x.ns))));
      L.push(`| \`${op}\` | ${esc(what[op])} | ${cells.map(fmtNs).join(" | ")} |`);
    }
    for (const f of osc.failures ?? []) notes.push(`os calls ${f.runtime}${f.shim ? ` (${f.shim})` : ""} round ${f.round}: ${f.reason}`);
    L.push("");
  }
  // per-task workload (bench/tasks.ts; issue 13)
  const machineLine = `Machine: ${esc(m.cpu)}, ${m.cores ?? "?"} cores, ${esc(m.os)}; load average (1 min) at start / end of the run ${meta.load?.start?.[0]?.toFixed(2) ?? "?"} / ${meta.load?.end?.[0]?.toFixed(2) ?? "?"} (versions above).`;
  const tasks = readJson(join(dir, "tasks.json"));
  if (tasks && (!meta.runId || tasks.runId === meta.runId) && (tasks.runs?.length || tasks.failures?.length)) {
    const rts = RUNTIMES.filter((rt) => tasks.runs.some((r) => r.runtime === rt));
    const rows = [...new Map(tasks.runs.map((r) => [r.id, r.label])).entries()];
    const cell = (rt, id, f) => median(tasks.runs.filter((r) => r.runtime === rt && r.id === id).map(f));
    const rounds = Math.max(1, ...rts.map((rt) => tasks.runs.filter((r) => r.runtime === rt && r.id === rows[0]?.[0]).length));
    L.push(`## Per-task workload (ArenaPool)`);
    L.push("");
    L.push(`\`bench/tasks.ts\` (issue 13): one task = 1,000 allocations of 16 B–2 KiB (the mixed-size table), each block written, then everything given back — for ArenaPool an arena acquired from a pool and released, for tsmalloc 1,000 \`malloc\` and 1,000 \`free\`, for \`new Uint8Array\` dropping the references (the GC frees them), for a fresh Heap one \`Heap.create()\` and its \`destroy()\`. One process per runtime, row${rounds > 1 ? " and round (median of " + rounds + " rounds)" : ""}, FFI backend; time per task is mitata's mean wall-clock time per call (20 tasks per call, ${tasks.minMs} ms per row) ÷ 20. **Ratio = row ÷ ArenaPool on the same runtime** (above 1× the pool is faster). RSS: growth of the process's resident set during the row, and its peak (VmHWM, the runtime's own baseline included).`);
    L.push("");
    L.push(machineLine);
    L.push("");
    L.push(`| row | ${rts.map((rt) => `${rt} per task | ratio`).join(" | ")} |`);
    L.push(`| --- | ${rts.map(() => "---: | ---:").join(" | ")} |`);
    for (const [id, label] of rows) {
      const cells = rts.map((rt) => {
        const v = cell(rt, id, (r) => r.nsPerTask), ref = cell(rt, "arena-pool", (r) => r.nsPerTask);
        return `${fmtNs(v)} | ${id === "arena-pool" ? "1×" : fmtRatio(v / ref)}`;
      });
      L.push(`| ${esc(label)} | ${cells.join(" | ")} |`);
    }
    L.push("");
    L.push(`| row | ${rts.map((rt) => `${rt} RSS + (MiB) | peak RSS (MiB)`).join(" | ")} |`);
    L.push(`| --- | ${rts.map(() => "---: | ---:").join(" | ")} |`);
    for (const [id, label] of rows) {
      L.push(`| ${esc(label)} | ${rts.map((rt) => `${MB(cell(rt, id, (r) => r.rssAfter - r.rssBefore))} | ${MB(cell(rt, id, (r) => r.rssPeak))}`).join(" | ")} |`);
    }
    const failedRows = tasks.runs.filter((r) => r.fails > 0);
    for (const r of failedRows) notes.push(`tasks ${r.runtime} ${r.id} round ${r.round}: ${r.fails} allocations failed`);
    for (const f of tasks.failures ?? []) notes.push(`tasks ${f.runtime} ${f.row} round ${f.round}: ${f.reason}`);
    L.push("");
  }
  // C allocator bridge (bench/c-allocator.ts; issue 14)
  const ca = readJson(join(dir, "c-allocator.json"));
  if (ca && (!meta.runId || ca.runId === meta.runId) && (ca.runs?.length || ca.failures?.length)) {
    const cols = [...new Set(ca.runs.map((r) => `${r.runtime} (${r.shim})`))];
    const val = (c, modeName, k) => median(ca.runs.filter((r) => `${r.runtime} (${r.shim})` === c && r.mode === modeName && Number.isFinite(r[k])).map((r) => r[k]));
    const rate = (v, unit) => (Number.isFinite(v) ? `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${unit}` : "-");
    const count = (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "-");
    L.push(`## C allocator bridge (cAllocator)`);
    L.push("");
    L.push(`\`bench/c-allocator.ts\` (issue 14), one process per runtime, FFI shim and mode (SQLite's allocator is process-wide). zlib (Debian's \`libz.so.1\`): \`deflateInit_\`+\`deflateEnd\` (5 allocations and 5 frees inside zlib) on zlib's default libc malloc and through a cAllocator bridge (best of 5 × 3,000); "added per malloc+free" = (bridged − libc) ÷ 5 (negative: the libc run was the slower one); deflate of 8 MiB at level 1 (best of 3). SQLite (\`libsqlite3.so.0\`): 50,000 single-row INSERTs (one prepared statement, one transaction) into an in-memory table, with SQLite's default malloc and with \`SQLITE_CONFIG_MALLOC\` pointing at the bridge. Wall clock; **ratio = bridged ÷ libc** (throughput: below 1× the bridge is slower; time: above 1× the bridge is slower).`);
    L.push("");
    L.push(machineLine);
    L.push("");
    L.push(`| | ${cols.map(esc).join(" | ")} |`);
    L.push(`| --- | ${cols.map(() => "---:").join(" | ")} |`);
    const line = (name, f) => L.push(`| ${name} | ${cols.map(f).join(" | ")} |`);
    line("zlib deflateInit_+deflateEnd, libc malloc", (c) => fmtNs(val(c, "zlib", "libcInitEndNs")));
    line("zlib deflateInit_+deflateEnd, bridged", (c) => fmtNs(val(c, "zlib", "bridgeNoCheckInitEndNs")));
    line("ratio bridged ÷ libc (time)", (c) => fmtRatio(val(c, "zlib", "bridgeNoCheckInitEndNs") / val(c, "zlib", "libcInitEndNs")));
    const signed = (v) => (v < 0 ? `−${fmtNs(-v)}` : fmtNs(v));
    line("added per bridged malloc+free", (c) => signed(val(c, "zlib", "addedPerPairNs")));
    line("added per bridged malloc+free, checkThread", (c) => signed(val(c, "zlib", "addedPerPairCheckThreadNs")));
    line("zlib deflate level 1, libc malloc", (c) => rate(val(c, "zlib", "deflateLibcMiBs"), "MiB/s"));
    line("zlib deflate level 1, bridged", (c) => rate(val(c, "zlib", "deflateBridgeMiBs"), "MiB/s"));
    line("ratio bridged ÷ libc (MiB/s)", (c) => fmtRatio(val(c, "zlib", "deflateBridgeMiBs") / val(c, "zlib", "deflateLibcMiBs")));
    line("SQLite inserts/s, libc malloc", (c) => count(val(c, "sqlite-libc", "insertsPerSecond")));
    line("SQLite inserts/s, bridged", (c) => count(val(c, "sqlite-bridge", "insertsPerSecond")));
    line("ratio bridged ÷ libc (inserts/s)", (c) => fmtRatio(val(c, "sqlite-bridge", "insertsPerSecond") / val(c, "sqlite-libc", "insertsPerSecond")));
    line("SQLite allocations through the bridge (50,000 rows)", (c) => count(val(c, "sqlite-bridge", "allocationsThroughBridge")));
    for (const f of ca.failures ?? []) notes.push(`c-allocator ${f.runtime}${f.shim ? ` (${f.shim})` : ""} ${f.mode} round ${f.round}: ${f.reason}`);
    L.push("");
  }
  // cross-process anchor table
  const anchorRows = [];
  for (const x of perRt) {
    if (!x.agg) continue;
    for (const [w, a] of x.agg.anchor) if (a.ffi.length && a.buffer.length) anchorRows.push(`| ${x.rt} | \`${w}\` | ${fmtNs(median(a.ffi))} | ${fmtNs(median(a.buffer))} |`);
  }
  if (anchorRows.length) {
    L.push(`## Cross-process anchor`);
    L.push("");
    L.push(`The JS floor stub in the FFI-backend process and in the buffer-backend process of the same round. Close values mean the tsmalloc (buffer) column compares fairly with the peers measured in the other process.`);
    L.push("");
    L.push(`| runtime | workload | stub, FFI process | stub, buffer process |`);
    L.push(`| --- | --- | ---: | ---: |`);
    L.push(...anchorRows);
    L.push("");
  }
  // pending + notes
  L.push(`## Pending`);
  L.push("");
  const pend = anyAgg ? [...anyAgg.pending] : [];
  if (pend.length) for (const [id, reason] of pend) L.push(`- \`${id}\` (${meta.options?.workers ?? 2} workers): ${esc(reason)}. Hook: \`bench/workers.ts\`.`);
  else L.push(`- none`);
  L.push("");
  L.push(`## Automatic checks`);
  L.push("");
  if (native?.failures?.length) for (const f of native.failures) notes.push(`native ${f.allocator} round ${f.round}: ${f.reason}`);
  if (meta.bundleNote) notes.push(meta.bundleNote);
  const tabs = perRt.map((x) => x.data?.rounds?.[0]?.tables).filter(Boolean);
  const ctab = native?.rounds?.glibc?.[0]?.tables;
  if (ctab && tabs.length) {
    const same = tabs.every((tt) => JSON.stringify(tt) === JSON.stringify(ctab));
    notes.push(same ? `Random tables identical in JS and C (checksums ${Object.values(ctab).join(", ")}).` : `Random tables DIFFER between JS and C: ${JSON.stringify(tabs[0])} vs ${JSON.stringify(ctab)}.`);
  }
  if (!notes.length) L.push(`- nothing flagged`);
  for (const n of notes) L.push(`- ${n}`);
  L.push("");
  writeFileSync(join(root, "bench", mdName), L.join("\n"));
  writeFileSync(join(root, "bench", svgName), svgChart(perRt));
  return [`bench/${mdName}`, `bench/${svgName}`];
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  const mode = process.argv.includes("--full") ? "full" : "quick";
  if (!existsSync(join(root, "bench", "results", ...(mode === "full" ? ["full"] : []), "meta.json"))) {
    console.error(`no ${mode} results: run npm run ${mode === "full" ? "bench:full" : "bench"} first`);
    process.exit(1);
  }
  console.log(writeReport(root, mode).join(", "));
}
