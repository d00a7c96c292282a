#!/usr/bin/env node
// `npm run soak` (not in CI): mixed churn across workers sharing one allocator for an hour,
// with RSS, reserved, committed and resident sampled at a fixed interval, ending with one line
//   soak: PASS ... | soak: FAIL ...
// that says whether they stayed flat after warm-up.
//
//   node scripts/soak.mjs [--runtime=node|deno|bun] [--backend=ffi|buffer]
//   TSMALLOC_SOAK_MINUTES=60          duration (e.g. 3 for a quick try)
//   TSMALLOC_SOAK_SAMPLE_SECONDS=60   sampling interval
//   TSMALLOC_SOAK_WORKERS=2           churning workers (plus the main thread, which trades blocks)
//   TSMALLOC_SOAK_REPLACE_SECONDS=30  every so often one worker leaves (alternately detach() and
//                                     terminate() + watchWorker) and a fresh one attaches
//   TSMALLOC_SOAK_TOLERANCE=0.10      see "flat" below
//   TSMALLOC_SOAK_MIX=huge            one block in five huge (2-12 MB): races between huge frees
//                                     and their owners' reaping (e.g. 2 minutes, replace every 2 s)
//   TSMALLOC_SOAK_LEAK_MIB=0          the detector's own check: the main thread leaks this many MiB
//                                     per minute (blocks allocated, written through, never freed);
//                                     a run with e.g. 1 must FAIL
//   TSMALLOC_SOAK_CONTROL=1           the control run: the same workers started and retired on the
//                                     same schedule, but nobody allocates (workers do not attach):
//                                     how much the runtime's own RSS grows with worker churn alone
//
// "Flat" (reasoned in doc/WORKERS.md): the first max(1, 20% of the samples) are warm-up; at
// least 6 samples must follow. For each of RSS, reserved, committed and resident (our own bytes
// in RAM by mincore; not on the buffer backend), over the samples after warm-up, with
// L = their median and slack = L * tolerance + 8 MiB (one segment pair for a page in flight):
//   no trend:  the Theil-Sen slope (median of all pairwise slopes) times the span <= slack;
//   no step:   the median of the last third <= the median of the first third + slack;
//   no burst:  every sample <= 1.5 * the warm-up maximum + 8 MiB.
// A leak grows without bound, so it shows as a trend or a step whatever the noise; a level that
// wanders (pages touched and not yet purged) does not fail a run. Also: no block found
// overwritten (each block carries its own address), no worker error, validate() at the end.
// Each sample also prints the live bytes of all threads (allocated minus freed, as the soak
// counts them), so committed can be read against what is live.
//
// The parent bundles mod.ts for Node 20 (which cannot run .ts) with esbuild and runs this same
// file as the child (--child) and as each worker (workerData.role).
import { spawn } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { flatness, median } from "./flatness.mjs";

const self = fileURLToPath(import.meta.url);
const root = resolve(dirname(self), "..");
const MiB = 1024 * 1024;
const HUGE_MIX = process.env.TSMALLOC_SOAK_MIX === "huge";
const CONTROL = process.env.TSMALLOC_SOAK_CONTROL === "1";
const num = (k, d) => (process.env[k] !== undefined && process.env[k] !== "" ? Number(process.env[k]) : d);

if (isMainThread && !process.argv.includes("--child")) await launch();
else if (isMainThread) await soakMain();
else await soakWorker();

// ---------------------------------------------------------------- parent: pick the runtime, run the child
async function launch() {
  const opt = { runtime: "node", backend: "ffi" };
  for (const a of process.argv.slice(2)) {
    const m = /^--(runtime|backend)=(.*)$/.exec(a);
    if (m) opt[m[1]] = m[2];
    else {
      console.error(`soak: unknown argument ${a}`);
      process.exit(2);
    }
  }
  let mod = pathToFileURL(join(root, "mod.ts")).href;
  let out = null;
  if (opt.runtime === "node") {
    out = join(root, ".out", `soak-${process.pid}`);
    mkdirSync(out, { recursive: true });
    const esbuild = await import("esbuild");
    await esbuild.build({
      entryPoints: [join(root, "mod.ts")], outfile: join(out, "mod.js"), bundle: true, format: "esm",
      platform: "node", target: "node20", packages: "external", logLevel: "error",
    });
    mod = pathToFileURL(join(out, "mod.js")).href;
  }
  const bin = (n) => join(root, "node_modules", ".bin", n);
  const cmd = opt.runtime === "node" ? [process.execPath, self, "--child"]
    : opt.runtime === "deno" ? [bin("deno"), "run", "--no-prompt", "-A", self, "--child"]
    : opt.runtime === "bun" ? [bin("bun"), self, "--child"]
    : null;
  if (cmd === null) {
    console.error(`soak: --runtime must be node, deno or bun, got ${opt.runtime}`);
    process.exit(2);
  }
  const child = spawn(cmd[0], cmd.slice(1), {
    stdio: "inherit",
    env: { ...process.env, TSMALLOC_BACKEND: opt.backend, TSMALLOC_SOAK_MOD: mod, TSMALLOC_SOAK_RUNTIME: opt.runtime },
  });
  const code = await new Promise((res) => child.on("exit", (c, sig) => res(c ?? (sig ? 1 : 0))));
  if (out !== null) rmSync(out, { recursive: true, force: true });
  process.exit(code);
}

// ---------------------------------------------------------------- shared: churn with stamped blocks
function stamp(lib, p) {
  const b = lib.bytes(p, 8);
  new DataView(b.buffer, b.byteOffset, 8).setFloat64(0, p, true);
}
function stamped(lib, p) {
  const b = lib.bytes(p, 8);
  return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true) === p;
}
/** Frees p and takes its usable size off `st.live`: the bytes this thread allocated minus the
 * bytes it freed; summed over every thread that ever ran, that is the process's live bytes. */
function freeCounted(lib, st, p) {
  st.live -= lib.usableSize(p);
  lib.free(p);
}

/** One chunk of churn: `ops` malloc/free steps over a ring of live blocks, trading some through `tr`. */
function churn(lib, st, ops, tr, bad) {
  for (let i = 0; i < ops; i++) {
    let x = st.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    st.seed = x;
    const k = (x >>> 0) % st.ring.length;
    const q = st.ring[k];
    if (q !== 0) {
      // cleared before the free: a worker terminated in between leaks the block, never frees it twice
      st.ring[k] = 0;
      if (!stamped(lib, q)) Atomics.add(bad, 0, 1);
      freeCounted(lib, st, q);
    }
    const r = (x >>> 4) & 1023;
    // mostly small, some medium and large, rarely huge (> 32 MiB class: 1..5 MiB here is large/huge mix)
    // TSMALLOC_SOAK_MIX=huge: 20% huge blocks (2-12 MB), the mix that found a huge run released twice in seconds
    const size = HUGE_MIX
      ? (r < 700 ? 16 + (x >>> 14) % 1000 : r < 800 ? 65536 + (x >>> 8) % 1_000_000 : 2_100_000 + (x >>> 8) % 10_000_000)
      : r < 900 ? 16 + (x >>> 14) % 1000 : r < 1010 ? 1024 + (x >>> 12) % 60000 : r < 1022 ? 65536 + (x >>> 8) % 1_000_000 : 1_000_000 + (x >>> 8) % 4_000_000;
    const p = lib.malloc(size);
    if (p === 0) throw new Error(`malloc(${size}) returned 0`);
    st.live += lib.usableSize(p);
    stamp(lib, p);
    if ((x & 7) === 0) {
      const old = Atomics.exchange(tr, k % tr.length, BigInt(p));
      if (old !== 0n) {
        if (!stamped(lib, Number(old))) Atomics.add(bad, 0, 1);
        freeCounted(lib, st, Number(old)); // very likely another worker's block
      }
    } else st.ring[k] = p;
  }
}

// ---------------------------------------------------------------- worker
async function soakWorker() {
  const { handle, transfer, bad, stop, seed, ring, live } = workerData;
  const lib = await import(process.env.TSMALLOC_SOAK_MOD);
  if (!CONTROL) lib.attach(handle);
  const tr = new BigInt64Array(transfer);
  const badA = new Int32Array(bad);
  const stopA = new Int32Array(stop);
  const st = { seed: seed | 1, ring: new Float64Array(ring), live: 0 }; // ring shared: main frees it after a terminate
  const liveA = new BigInt64Array(live); // st.live published for main's samples
  let leaving = false;
  parentPort.on("message", (m) => {
    if (m === "detach") leaving = true;
  });
  parentPort.postMessage("ready");
  for (;;) {
    if (!CONTROL) churn(lib, st, 2000, tr, badA);
    Atomics.store(liveA, 0, BigInt(st.live));
    if (leaving || Atomics.load(stopA, 0) !== 0) break;
    await new Promise((r) => setTimeout(r, 0)); // let messages (and terminate) in
  }
  // a thread that ends normally frees what it holds, then leaves (blocks others hold from it
  // through the trade array stay live in its abandoned pages)
  for (let k = 0; k < st.ring.length; k++) {
    const q = st.ring[k];
    if (q === 0) continue;
    st.ring[k] = 0;
    if (!stamped(lib, q)) Atomics.add(badA, 0, 1);
    freeCounted(lib, st, q);
  }
  Atomics.store(liveA, 0, BigInt(st.live));
  if (!CONTROL) lib.detach();
  parentPort.postMessage("detached");
}

// ---------------------------------------------------------------- main
async function soakMain() {
  const lib = await import(process.env.TSMALLOC_SOAK_MOD);
  const minutes = num("TSMALLOC_SOAK_MINUTES", 60);
  const sampleMs = num("TSMALLOC_SOAK_SAMPLE_SECONDS", 60) * 1000;
  const nWorkers = Math.max(1, num("TSMALLOC_SOAK_WORKERS", 2));
  const replaceMs = num("TSMALLOC_SOAK_REPLACE_SECONDS", 30) * 1000;
  const tol = num("TSMALLOC_SOAK_TOLERANCE", 0.10);
  const leakMiB = num("TSMALLOC_SOAK_LEAK_MIB", 0);
  let leaked = 0;
  const handle = lib.workerHandle();
  const be = lib.backend();
  console.log(`soak: ${process.env.TSMALLOC_SOAK_RUNTIME} ${be.kind}, ${minutes} min, ${nWorkers} workers + main, sample every ${sampleMs / 1000} s, tolerance ${tol * 100}%${CONTROL ? " (CONTROL: no allocation, worker churn only)" : ""}`);
  const transfer = new SharedArrayBuffer(1024 * 8);
  const tr = new BigInt64Array(transfer);
  const bad = new SharedArrayBuffer(4);
  const badA = new Int32Array(bad);
  const stop = new SharedArrayBuffer(4);
  const errors = [];
  let nextSeed = 1;
  let workersStarted = 0, detaches = 0, terminates = 0;

  function startWorker() {
    const ring = new SharedArrayBuffer((HUGE_MIX ? 256 : 4096) * 8);
    const live = new SharedArrayBuffer(8);
    const w = new Worker(new URL(import.meta.url), {
      workerData: { handle, transfer, bad, stop, seed: nextSeed++ * 2654435761, ring, live },
    });
    if (!CONTROL) lib.watchWorker(w);
    w.on("error", (e) => errors.push(String(e?.stack ?? e)));
    workersStarted++;
    const ready = new Promise((res) => w.once("message", res));
    return { w, ready, ring: new Float64Array(ring), live: new BigInt64Array(live) };
  }

  /** Resolves when the worker detached (or exited, or after ms). */
  const leftWithin = (x, ms) => new Promise((res) => {
    x.w.on("message", (m) => m === "detached" && res());
    x.w.on("exit", res); // a worker that failed
    setTimeout(res, ms);
  });
  const ws = [];
  for (let i = 0; i < nWorkers; i++) ws.push(startWorker());
  await Promise.all(ws.map((x) => x.ready));

  const mainSt = { seed: 0x9e3779b9 | 0, ring: new Float64Array(HUGE_MIX ? 256 : 4096), live: 0 };
  // Live bytes, process-wide: every thread's allocated-minus-freed, the workers' as last
  // published (after each chunk of 2,000 operations: a terminated worker's last partial chunk
  // is missed, a few hundred KiB at most).
  let retiredLive = 0;
  const liveNow = () => mainSt.live + retiredLive + ws.reduce((a, x) => a + Number(Atomics.load(x.live, 0)), 0);
  const t0 = Date.now();
  const end = t0 + minutes * 60_000;
  let nextSample = t0 + sampleMs;
  let nextReplace = t0 + replaceMs;
  let retireByDetach = true;
  const samples = [];
  const rss = () => process.memoryUsage().rss;

  while (Date.now() < end && errors.length === 0) {
    if (!CONTROL) churn(lib, mainSt, 1000, tr, badA);
    await new Promise((r) => setTimeout(r, 1));
    const now = Date.now();
    for (; leakMiB > 0 && leaked < ((now - t0) / 60_000) * leakMiB * MiB; leaked += 65536) {
      const p = lib.malloc(65536);
      lib.bytes(p, 65536).fill(1);
    }
    if (now >= nextReplace) {
      nextReplace += replaceMs;
      const old = ws.shift();
      if (retireByDetach) {
        old.w.postMessage("detach");
        await leftWithin(old, 30_000);
        await old.w.terminate();
        detaches++;
      } else if (CONTROL) {
        await old.w.terminate();
        terminates++;
      } else {
        const before = lib.stats().workers;
        await old.w.terminate();
        terminates++;
        // its live blocks are freed here once its thread is confirmed gone (released by watchWorker)
        for (let i = 0; i < 1000 && lib.stats().workers >= before; i++) {
          lib.collect();
          await new Promise((r) => setTimeout(r, 10));
        }
        if (lib.stats().workers < before) {
          for (const p of old.ring) {
            if (p === 0) continue;
            if (!stamped(lib, p)) badA[0]++;
            freeCounted(lib, mainSt, p);
          }
        } else errors.push("a terminated worker was not released within 10 s (its thread did not end)");
      }
      retiredLive += Number(Atomics.load(old.live, 0));
      retireByDetach = !retireByDetach;
      const fresh = startWorker();
      await fresh.ready;
      ws.push(fresh);
    }
    if (now >= nextSample) {
      nextSample += sampleMs;
      const s = lib.stats();
      const row = { min: (now - t0) / 60_000, rss: rss(), reserved: s.reserved, committed: s.committed, resident: s.resident, live: liveNow(), workers: s.workers, abandoned: lib.sharedStats().abandonedSegments };
      samples.push(row);
      const rest = row.resident < 0 ? "" : `  (not ours ${((row.rss - row.resident) / MiB).toFixed(1)} MiB)`;
      console.log(`soak: t=${row.min.toFixed(1)} min  rss ${(row.rss / MiB).toFixed(1)} MiB${rest}  reserved ${(row.reserved / MiB).toFixed(1)} MiB  committed ${(row.committed / MiB).toFixed(1)} MiB  resident ${row.resident < 0 ? "n/a" : `${(row.resident / MiB).toFixed(1)} MiB`}  live ${(row.live / MiB).toFixed(1)} MiB (all threads)  workers ${row.workers}  abandoned segments ${row.abandoned}`);
    }
  }

  // wind down: the workers end their loops and detach; main frees what is left in its hands
  Atomics.store(new Int32Array(stop), 0, 1);
  await Promise.all(ws.map((x) => leftWithin(x, 30_000)));
  await Promise.all(ws.map((x) => x.w.terminate()));
  for (let k = 0; k < tr.length; k++) {
    const p = Number(Atomics.exchange(tr, k, 0n));
    if (p !== 0) {
      if (!stamped(lib, p)) badA[0]++;
      lib.free(p);
    }
  }
  for (const p of mainSt.ring) if (p !== 0) lib.free(p);
  lib.collect(true);
  const v = lib.validate();

  // verdict
  const fails = [];
  if (errors.length > 0) fails.push(`worker error: ${errors[0].split("\n")[0]}`);
  if (badA[0] !== 0) fails.push(`${badA[0]} blocks found overwritten`);
  if (!v.ok) fails.push(`validate(): ${JSON.stringify(v.problems ?? v).slice(0, 200)}`);
  // resident: our own mapped bytes in RAM (mincore over the ranges this thread sees); -1 on the buffer backend
  const keys = ["rss", "reserved", "committed"];
  if (samples.every((s) => s.resident >= 0)) keys.push("resident");
  const flat = flatness(samples, keys, tol);
  fails.push(...flat.fails);
  const { detail, warm } = flat;
  const after = samples.slice(warm);
  const f1 = (b) => (b / MiB).toFixed(1);
  const lives = after.map((s) => s.live);
  if (lives.length > 0) detail.push(`live ${f1(median(lives))} MiB (median; committed/live ${(median(after.map((s) => s.committed / Math.max(1, s.live)))).toFixed(2)})`);
  // what of RSS is not ours (the runtime, its FFI library, worker stacks): the attribution of a growth
  if (samples.every((s) => s.resident >= 0) && samples.length > warm) {
    const rest = (s) => s.rss - s.resident;
    const w = Math.max(...samples.slice(0, warm).map(rest)), last = rest(samples[samples.length - 1]);
    detail.push(`not ours (rss - resident) warm-up ${(w / MiB).toFixed(1)} MiB, last ${(last / MiB).toFixed(1)} MiB`);
  }
  const summary = `${samples.length} samples (${warm} warm-up), workers started ${workersStarted} (${detaches} detached, ${terminates} terminated); ${detail.join("; ")}`;
  console.log(fails.length === 0 ? `soak: PASS ${summary}` : `soak: FAIL ${fails.join("; ")} | ${summary}`);
  process.exit(fails.length === 0 ? 0 : 1);
}
