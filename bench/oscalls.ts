// The cost of the OS calls the allocator makes off its fast paths, per FFI shim: purge
// (madvise MADV_DONTNEED), reset (MADV_FREE), a guard page (mprotect PROT_NONE and back),
// reserve+release (mmap+munmap), a view (an ArrayBuffer over native memory), resident
// (mincore) and a trivial call (gettid). These are what differ between Node's two shims
// (node:ffi and koffi); the malloc/free fast paths make no FFI call at all.
// Uses the backend directly (ffi/select.ts), not the public API. One process per shim:
//   node .out/bench/oscalls.js [--node-ffi=koffi|node:ffi] [--out=x.json]
//   deno run --allow-ffi --allow-env --allow-read --allow-write bench/oscalls.ts
//   bun bench/oscalls.ts
// ns per call: the median of 7 timed batches (after a warm-up batch), wall clock.
import { selectOs, type NodeFfiWant } from "../ffi/select.ts";
import { nowNs, parseArgs, runtimeVersion, writeJson } from "./common.ts";

const args = parseArgs();
const os = selectOs("ffi", (args["node-ffi"] ?? "auto") as NodeFfiWant);
const P = os.pageSize;
const SPAN = 64; // pages cycled through, so consecutive calls touch different pages

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** ns per call of `op(i)`, batches of `n` calls. */
function time(n: number, op: (i: number) => void): number {
  const runs: number[] = [];
  for (let b = 0; b < 8; b++) {
    const t0 = nowNs();
    for (let i = 0; i < n; i++) op(i);
    if (b > 0) runs.push((nowNs() - t0) / n);
  }
  return median(runs);
}

const base = os.reserve(SPAN * P, P);
if (base === 0) throw new Error("reserve failed");
const u8 = new Uint8Array(os.view(base, SPAN * P));
let sink = 0;
const rows: { op: string; what: string; ns: number }[] = [];
const row = (op: string, what: string, ns: number) => rows.push({ op, what, ns });

row("threadId", "gettid (syscall): the floor of one FFI call", time(20000, () => (sink += os.threadId())));
row("purge", "madvise(MADV_DONTNEED) of one touched 4 KiB page", time(5000, (i) => {
  const a = (i % SPAN) * P;
  u8[a] = 1; // resident again, so every purge has work to do
  os.purge(base + a, P);
}));
row("purge-idle", "madvise(MADV_DONTNEED) of one untouched 4 KiB page", time(20000, (i) => os.purge(base + (i % SPAN) * P, P)));
row("reset", "madvise(MADV_FREE) of one touched 4 KiB page", time(5000, (i) => {
  const a = (i % SPAN) * P;
  u8[a] = 1;
  os.reset(base + a, P);
}));
row("guard", "mprotect(PROT_NONE) + mprotect(PROT_READ|WRITE) of one 4 KiB page", time(5000, (i) => {
  const a = base + (i % SPAN) * P;
  os.protect(a, P);
  os.unprotect(a, P);
}));
row("reserve", "mmap + munmap of 64 KiB (page-aligned)", time(5000, () => {
  const a = os.reserve(16 * P, P);
  if (a === 0) throw new Error("reserve failed");
  os.release(a, 16 * P);
}));
row("view", "an ArrayBuffer over 64 KiB of native memory", time(20000, (i) => (sink += os.view(base + (i % 48) * P, 16 * P).byteLength)));
row("resident", "mincore over 256 KiB", time(5000, () => (sink += os.resident(base, SPAN * P))));
os.release(base, SPAN * P);

const out = { runtime: runtimeVersion(), kind: os.kind, ffi: os.ffi, reason: os.reason, rows, sink: sink > 0 };
console.log(`# OS calls through ${os.ffi} (${runtimeVersion()}), ns per call`);
for (const r of rows) console.log(`${r.op.padEnd(12)} ${r.ns.toFixed(0).padStart(8)}  ${r.what}`);
if (args.out) writeJson(args.out, out);
