// Runs test/fixtures/<name>.ts in a child process of the same runtime (secure mode, debug
// fill and guard pages are fixed at first use, and a guard-page hit kills the process).
// Node runs the esbuild bundle of the fixture (.out/test-<pid>/fixtures/<name>.js), Deno and
// Bun the .ts source. Not a test file itself.
import { spawnSync } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { detectRuntime } from "../ffi/select.ts";

/**
 * Node children compile optimized code on the main thread. Node's exit can deadlock
 * (nodejs/node#54918, open): the main thread waits in NodePlatform::DrainTasks for the worker
 * tasks while a concurrent TurboFan job waits in CollectionBarrier::AwaitCollectionBackground
 * for a GC only the main thread can run. Seen here as a 120 s timeout after a child had printed
 * its RESULT (twice in fresh-clone CI runs, Node 20, the guarded trust child; 2 of 147 runs of
 * that child in a loop; gdb showed exactly those two stacks); 0 of 300 with
 * --no-concurrent-recompilation (OSR jobs run on the same background threads: off too).
 */
export const NODE_EXIT_DEADLOCK_FLAGS = ["--no-concurrent-recompilation", "--no-concurrent-osr"];

/**
 * Where tests whose children fix their own backend, secure level and debugFill register: once
 * per runtime, in its run on the FFI backend at level 0 (and in Node 26's koffi run, whose
 * children load koffi). Such a child is the same process whatever the parent's backend or
 * level, so the buffer, no-FFI and secure-level runs would only start it again (scripts/
 * test-all.mjs; a run with no TSMALLOC_BACKEND, e.g. `deno run -A test/run.ts`, has them too).
 */
export const PINNED_CHILDREN: boolean = !["buffer", "auto"].includes(process.env.TSMALLOC_BACKEND ?? "") &&
  (process.env.TSMALLOC_SECURE ?? "0") === "0" && (process.env.TSMALLOC_DEBUG_FILL ?? "0") === "0";

/** `test` itself in the runs where PINNED_CHILDREN holds, elsewhere a registrar that registers nothing. */
export function pinnedChildren<T>(test: T): T {
  return PINNED_CHILDREN ? test : ((() => {}) as unknown as T);
}

export interface ChildResult {
  /** Exit code, or null when a signal ended it. */
  status: number | null;
  /** "SIGSEGV" etc. when a signal ended it. */
  signal: string | null;
  stdout: string;
  stderr: string;
  /** The scenario's RESULT line, parsed (null when it printed none). */
  result: Record<string, unknown> | null;
}

/**
 * Runs fixture `name` with `args`. `env` adds to (and overrides) the parent's environment;
 * TSMALLOC_SECURE and TSMALLOC_DEBUG_FILL default to off so a secure-mode test run does not
 * leak into children that did not ask for it. `timeoutMs` (default 120 s) ends a hung child
 * (spawnSync throws, with the tail of what it printed).
 */
export function runChild(name: string, args: string[], env: Record<string, string>, timeoutMs = 120_000): ChildResult {
  const ext = import.meta.url.endsWith(".js") ? ".js" : ".ts";
  const file = fileURLToPath(new URL(`./fixtures/${name}${ext}`, import.meta.url));
  const rt = detectRuntime();
  const exe = rt === "deno" ? (globalThis as unknown as { Deno: { execPath(): string } }).Deno.execPath() : process.execPath;
  const argv = rt === "deno"
    ? ["run", "--no-prompt", "--allow-env", "--allow-read", "--allow-ffi", file, ...args]
    : rt === "node"
    ? [...NODE_EXIT_DEADLOCK_FLAGS, file, ...args]
    : [file, ...args];
  const r = spawnSync(exe, argv, {
    env: { ...process.env, TSMALLOC_SECURE: "0", TSMALLOC_DEBUG_FILL: "0", NO_COLOR: "1", ...env },
    encoding: "utf8",
    timeout: timeoutMs,
  });
  if (r.error) {
    // a timeout keeps what the child printed, so a hang says where it was
    const tail = (x: unknown) => String(x ?? "").trim().split("\n").slice(-8).join("\n    ");
    throw new Error(`${name} ${args.join(" ")}: ${r.error.message}\n  stdout: ${tail(r.stdout)}\n  stderr: ${tail(r.stderr)}`, { cause: r.error });
  }
  const stdout = String(r.stdout ?? "");
  const line = stdout.split("\n").find((l) => l.startsWith("RESULT "));
  return {
    status: r.status,
    signal: r.signal,
    stdout,
    stderr: String(r.stderr ?? ""),
    result: line === undefined ? null : JSON.parse(line.slice(7)),
  };
}

/** A one-line summary of a child's end for assertion messages. */
export function describeChild(c: ChildResult): string {
  const tail = (s: string) => s.trim().split("\n").slice(-6).join("\n    ");
  return `exit ${c.status}, signal ${c.signal}\n  stdout: ${tail(c.stdout)}\n  stderr: ${tail(c.stderr)}`;
}
