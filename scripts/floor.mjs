#!/usr/bin/env node
// Runs bench/floor.ts (the worker rows' floors, doc/PERFORMANCE.md session 29) on every
// runtime, each process pinned to one CPU, and prints one table (ns per op, best of the
// process's rounds; with --repeat=N every runtime runs N processes, interleaved, and the
// table shows the best and the worst of them).
//   node scripts/floor.mjs [--cpu=1] [--repeat=2] [--runtime=node,node26,deno,bun]
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { mkdirSync } from "node:fs";
import { node26, oldNode } from "./nodes.mjs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const arg = (k, d) => process.argv.find((a) => a.startsWith(`--${k}=`))?.split("=")[1] ?? d;
const cpu = arg("cpu", "1");
const repeat = Number(arg("repeat", "2"));
const runtimes = arg("runtime", "node,node26,deno,bun").split(",");

const nodeOld = oldNode();
const bin = (n) => join(root, "node_modules", ".bin", n);
const out = join(root, ".out", "bench", "floor.js");
mkdirSync(dirname(out), { recursive: true });
await build({
  entryPoints: [join(root, "bench", "floor.ts")], bundle: true, platform: "node", format: "esm", target: "node20",
  outfile: out, external: ["koffi"], logLevel: "warning",
});
const cmd = {
  node: [nodeOld, out],
  node26: [node26(root), out],
  deno: [bin("deno"), "run", "-A", join(root, "bench", "floor.ts")],
  bun: [bin("bun"), join(root, "bench", "floor.ts")],
};
const results = {}; // runtime -> id -> [ns...]
let what = {};
const notes = new Set();
for (let r = 0; r < repeat; r++) {
  for (const rt of r % 2 === 0 ? runtimes : [...runtimes].reverse()) {
    const [exe, ...args] = cmd[rt];
    const p = spawnSync("taskset", ["-c", cpu, exe, ...args], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    const last = p.stdout.trim().split("\n").pop() ?? "";
    if (!last.startsWith("{")) throw new Error(`${rt}: no result (exit ${p.status ?? p.signal})`);
    // Deno sometimes dies by SIGSEGV at exit after a worker used mimalloc through Deno.dlopen
    // (not with tsmalloc's workers alone: doc/PERFORMANCE.md session 29); the figures are complete by then
    if (p.status !== 0) notes.add(`${rt} exited with ${p.status ?? p.signal} after printing its figures`);
    const o = JSON.parse(last);
    what = { ...what, ...o.what };
    results[rt] ??= { version: o.version };
    for (const [id, ns] of Object.entries(o.nsPerOp)) (results[rt][id] ??= []).push(ns);
  }
}
const ids = Object.keys(what);
const fmt = (xs) => xs === undefined ? "n/a" : xs.length === 1 ? xs[0].toFixed(1) : `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;
console.log(`| ns per op (pinned to CPU ${cpu}, ${repeat} process(es) each) | ${runtimes.map((rt) => `${rt} (${results[rt].version})`).join(" | ")} |`);
console.log(`| --- | ${runtimes.map(() => "---:").join(" | ")} |`);
for (const id of ids) console.log(`| \`${id}\`: ${what[id]} | ${runtimes.map((rt) => fmt(results[rt][id])).join(" | ")} |`);
for (const n of notes) console.log(`\n(${n})`);
