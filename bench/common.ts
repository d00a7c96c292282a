// Shared helpers for the benchmark entry points (bench/main.ts, bench/memory.ts).
// Runs unchanged on Node (bundled by esbuild), Deno and Bun.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

export type RuntimeName = "node" | "deno" | "bun";

/** Deno first (it has `process`), then Bun (it fakes `process.versions.node`), then Node. */
export function runtimeName(): RuntimeName {
  if (typeof g.Deno?.version?.deno === "string") return "deno";
  if (g.process?.versions?.bun) return "bun";
  return "node";
}

export function runtimeVersion(): string {
  const rt = runtimeName();
  if (rt === "deno") return `deno ${g.Deno.version.deno} (v8 ${g.Deno.version.v8})`;
  if (rt === "bun") return `bun ${g.Bun.version}`;
  return `node ${g.process.versions.node} (v8 ${g.process.versions.v8})`;
}

/** `--key=value` / `--flag` command-line options. */
export function parseArgs(): Record<string, string> {
  const argv: string[] = runtimeName() === "deno" ? g.Deno.args : g.process.argv.slice(2);
  const out: Record<string, string> = {};
  for (const a of argv) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(a);
    if (m) out[m[1]] = m[2] ?? "1";
  }
  return out;
}

export function getEnv(name: string): string | undefined {
  try {
    return runtimeName() === "deno" ? g.Deno.env.get(name) : g.process.env[name];
  } catch {
    return undefined;
  }
}

/** Full, synchronous garbage collection (needs --expose-gc on V8 runtimes). */
export function fullGc(): boolean {
  if (g.Bun?.gc) {
    g.Bun.gc(true);
    return true;
  }
  if (typeof g.gc === "function") {
    g.gc();
    return true;
  }
  return false;
}

/**
 * Resident set size and its peak (VmRSS / VmHWM from /proc/self/status), bytes.
 * Deno guards /proc/self behind --allow-all; without it we fall back to
 * Deno.memoryUsage().rss (same kernel figure) and report no peak (hwm = NaN).
 */
export function rss(): { rss: number; hwm: number } {
  let s: string;
  try {
    s = readFileSync("/proc/self/status", "utf8");
  } catch {
    const r = runtimeName() === "deno" ? g.Deno.memoryUsage().rss : g.process.memoryUsage().rss;
    return { rss: r, hwm: NaN };
  }
  const kb = (k: string) => {
    const m = new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s);
    return m ? Number(m[1]) * 1024 : NaN;
  };
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

/** Reset the kernel's peak-RSS counter (VmHWM) to the current RSS (Linux >= 4.0). */
export function resetPeakRss(): boolean {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

export function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(value, null, 1) + "\n");
}

let freshId = 0;
/**
 * A private copy of a loop template: re-evaluates the function's source text so every
 * (peer, workload) pair gets its own JIT feedback (monomorphic call sites). A unique
 * comment is inserted into the body: without it V8's compilation cache hands back the
 * *same* SharedFunctionInfo for identical source text, the copies share feedback, calls
 * go polymorphic and, on Deno, FFI fast calls silently drop to the slow path (measured:
 * 13 ns vs 150-250 ns per malloc+free pair).
 * Templates must be self-contained: parameters only, no free variables.
 */
// deno-lint-ignore ban-types
export function fresh<T extends Function>(template: T, tag: string): T {
  const src = template.toString();
  const brace = src.indexOf("{");
  const unique = `/* ${tag.replace(/\*\//g, "")} #${freshId++} */`;
  const body = src.slice(0, brace + 1) + unique + src.slice(brace + 1);
  return new Function(`return (${body});`)() as T;
}

/** xorshift32: the same generator (and seeds) as bench/native/bench.c. */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

export const TABLE = 65536; // every random table has 2^16 entries (index & 0xffff)
export const SEED_SIZES = 0x9e3779b9;
export const SEED_INDEX = 0x85ebca6b;
export const SEED_LARSON = 4141;
export const SEED_STRESS = 0x7feb352d;
export const SEED_ORDER = 0xc2b2ae35;

/** Uniform sizes in [lo, hi], TABLE entries. */
export function sizeTable(seed: number, lo: number, hi: number): Int32Array {
  const r = xorshift32(seed);
  const t = new Int32Array(TABLE);
  for (let i = 0; i < TABLE; i++) t[i] = lo + (r() % (hi - lo + 1));
  return t;
}

/** Uniform slot indices in [0, n), TABLE entries. */
export function indexTable(seed: number, n: number): Int32Array {
  const r = xorshift32(seed);
  const t = new Int32Array(TABLE);
  for (let i = 0; i < TABLE; i++) t[i] = r() % n;
  return t;
}

/** A random permutation of 0..n-1 (Fisher-Yates from the top, j = r() % (i + 1)). */
export function permutation(seed: number, n: number): Int32Array {
  const r = xorshift32(seed);
  const t = new Int32Array(n);
  for (let i = 0; i < n; i++) t[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = r() % (i + 1);
    const x = t[i];
    t[i] = t[j];
    t[j] = x;
  }
  return t;
}

export function randomTable(seed: number): Uint32Array {
  const r = xorshift32(seed);
  const t = new Uint32Array(TABLE);
  for (let i = 0; i < TABLE; i++) t[i] = r();
  return t;
}

/** Cheap checksum so JS and C can prove they use identical tables. */
export function tableSum(t: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < t.length; i++) s = (s * 31 + t[i]) >>> 0;
  return s;
}

/**
 * Process CPU time (user + system, all threads) in ns, microsecond resolution.
 * Unlike wall time it does not count time the process spent preempted by other work on the
 * machine, and it does count GC helper threads (a real cost of GC-managed peers).
 */
export function cpuNs(): number {
  const u = g.process.cpuUsage();
  return (u.user + u.system) * 1000;
}

export function nowNs(): number {
  return g.Bun?.nanoseconds ? g.Bun.nanoseconds() : performance.now() * 1e6;
}
