// The worker harness the worker test files share (workers, worker-trust, worker-release): a
// fixture worker driven by messages, whether this process can see a thread end, and waiting
// for terminated workers' releases.
import { Worker } from "node:worker_threads";
import { backend, collect, stats, workerHandle } from "../mod.ts";

/** A fixture worker (test/fixtures/*-worker.ts): `call` posts {op, ...args} and resolves with its reply's value. */
export interface W {
  w: Worker;
  /** Its thread id, read at start (Node and Bun reset `threadId` to -1 on exit). */
  id: number;
  exited: Promise<number>;
  call(op: string, args?: Record<string, unknown>): Promise<unknown>;
}

/** Starts `fixture` with this thread's workerHandle() and waits for its ready message. */
export async function startWorker(fixture: URL): Promise<W> {
  const w = new Worker(fixture, { workerData: { handle: workerHandle() } });
  const id = w.threadId;
  const q: ((m: { ok: boolean; value?: unknown; error?: string }) => void)[] = [];
  w.on("message", (m) => q.shift()?.(m));
  w.on("error", (e) => {
    for (const f of q.splice(0)) f({ ok: false, error: String(e) });
  });
  const exited = new Promise<number>((res) => w.on("exit", res));
  const ready = await new Promise<{ ok: boolean; error?: string }>((res) => q.push(res));
  if (!ready.ok) throw new Error("worker failed to start: " + ready.error);
  return {
    w,
    id,
    exited,
    call(op, args = {}) {
      return new Promise((res, rej) => {
        q.push((m) => (m.ok ? res(m.value) : rej(new Error(`worker ${op}: ${m.error}`))));
        w.postMessage({ op, ...args });
      });
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const isDeno: boolean = (globalThis as { Deno?: unknown }).Deno !== undefined;
let visible: boolean | undefined;
/**
 * Whether a thread's end can be seen here. Deno's Worker "exit" fires while the thread may still
 * run, and Deno lets the buffer backend read /proc (to see threads end) only with --allow-all:
 * there a terminated worker is never released (the safe answer), and the tests assert that instead.
 */
export function threadsVisible(): boolean {
  return visible ??= seesThreads();
}
function seesThreads(): boolean {
  if (!isDeno || backend().kind !== "buffer") return true;
  try {
    (globalThis as unknown as { Deno: { readTextFileSync(p: string): string } }).Deno.readTextFileSync("/proc/thread-self/stat");
    return true;
  } catch {
    return false;
  }
}

/**
 * Waits (up to 5 s) until no more than `target` workers are attached (released threads confirmed
 * gone). Where threads cannot be seen (Deno's buffer backend without /proc) terminated workers are
 * never released: there it waits only until the count has not moved for 300 ms (a worker
 * ending normally detaches itself), not the full 5 s for a target it cannot reach.
 */
export async function settled(target: number): Promise<number> {
  let last = stats().workers, since = Date.now();
  for (let i = 0; i < 500 && stats().workers > target; i++) {
    collect(); // finishes releases waiting for a thread to stop, and releases left half done (finishDying)
    await sleep(10);
    if (threadsVisible()) continue;
    const n = stats().workers;
    if (n !== last) (last = n), (since = Date.now());
    else if (Date.now() - since >= 300) break;
  }
  return stats().workers;
}
