#!/usr/bin/env node
// `npm run storm` (not in CI): workers terminated at random while they churn small blocks and
// trade them with the main thread, checked after every round (test/stress/storm.ts says what).
// Ends with one line: "storm: PASS ..." or "storm: FAIL in round N (seed S): ...".
//
//   node scripts/storm.mjs [--runtime=node|deno|bun] [--backend=ffi|buffer]
//   TSMALLOC_STORM_ROUNDS=300   rounds (~75 s on Bun's buffer backend, 2 cores)
//   TSMALLOC_STORM_WORKERS=3    workers per round
//   TSMALLOC_STORM_SIZES=100    blocks of 16 .. 15 + this many bytes
//   TSMALLOC_STORM_SEED=n       the seed a FAIL printed (the threads' timing still differs)
//
// Node 20 cannot run .ts and Node 26 refuses src/'s const enums, so for Node the two files are
// bundled with esbuild (as scripts/test-all.mjs bundles the suite); Deno and Bun run them as they are.
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const opt = { runtime: "node", backend: "ffi" };
for (const a of process.argv.slice(2)) {
  const m = /^--(runtime|backend)=(.*)$/.exec(a);
  if (m === null) {
    console.error(`storm: unknown argument ${a}`);
    process.exit(2);
  }
  opt[m[1]] = m[2];
}
const src = join(root, "test", "stress");
const bin = (n) => join(root, "node_modules", ".bin", n);
let out = null;
let cmd;
if (opt.runtime === "node") {
  out = join(root, ".out", `storm-${process.pid}`);
  const esbuild = await import("esbuild");
  await esbuild.build({
    entryPoints: [join(src, "storm.ts"), join(src, "storm-worker.ts")], outdir: out, bundle: true, splitting: true,
    format: "esm", platform: "node", target: "node20", packages: "external", logLevel: "error",
  });
  cmd = [process.execPath, join(out, "storm.js")];
} else if (opt.runtime === "deno") cmd = [bin("deno"), "run", "--no-prompt", "-A", join(src, "storm.ts")];
else if (opt.runtime === "bun") cmd = [bin("bun"), join(src, "storm.ts")];
else {
  console.error(`storm: --runtime must be node, deno or bun, got ${opt.runtime}`);
  process.exit(2);
}
const child = spawn(cmd[0], cmd.slice(1), { stdio: "inherit", env: { ...process.env, TSMALLOC_BACKEND: opt.backend } });
const code = await new Promise((res) => child.on("exit", (c, sig) => res(c ?? (sig ? 1 : 0))));
if (out !== null) rmSync(out, { recursive: true, force: true });
process.exit(code);
