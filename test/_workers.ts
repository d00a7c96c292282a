// The worker harness the worker test files share (workers, worker-trust, worker-release): a
// fixture worker driven by messages, whether this process can see a thread end, and waiting
// for terminated workers' releases.
import { Worker } from "node:worker_threads";
import { suite, type Test } from "uvu";
import * as assert from "uvu/assert";
import { backend, collect, getOption, stats, workerHandle } from "../mod.ts";
import { SEGMAP_FREE, SEGMAP_HUGE_HEAD, SEGMAP_HUGE_REST } from "../src/arena.ts";
import { ctx } from "../src/context.ts";
import { OWNER_RELEASED } from "../src/huge.ts";
import { isGone } from "../src/shared.ts";
import { ENTRY_LIVE, ENTRY_PENDING, ENTRY_PUSHING, headerOf, P_BSIZE, P_CAPACITY, P_USED, PAGE_WORDS, S_OWNER, S_PAGE_COUNT, S_PAGES, SEGMENT_SIZE } from "../src/layout.ts";
import { entryAt, forEachFree, tableOf } from "../src/secure.ts";
import { tableBase } from "../src/region.ts";
import { divisorMatches } from "../src/page.ts";

/** A fixture worker (test/fixtures/*-worker.ts): `call` posts {op, ...args} and resolves with its reply's value. */
export interface W {
  w: Worker;
  /** Its thread id, read at start (Node and Bun reset `threadId` to -1 on exit). */
  id: number;
  exited: Promise<number>;
  call(op: string, args?: Record<string, unknown>): Promise<unknown>;
}

/**
 * `t0` where workers can share the allocator; where they cannot (secure-mode guard pages on an
 * FFI backend, a documented limitation) a test function that registers nothing, and a suite
 * `name` of one test saying so.
 */
export function whereShareable(t0: Test, name: string): Test {
  if (!(getOption("secure") >= 1 && backend().guardPages)) return t0;
  const g = suite(`${name} (secure guard pages: sharing refused, nothing to test)`);
  g("sharing is refused with secure-mode guard pages", () => assert.throws(() => workerHandle(), /not supported/));
  g.run();
  return Object.assign(() => {}, { run() {} }) as unknown as Test;
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

/** Waits (up to 5 s) until a worker the fixture op pauseAt paused says so (sync[0] = 1). */
export async function waitPaused(sync: Int32Array, what: string): Promise<void> {
  for (let i = 0; i < 500 && Atomics.load(sync, 0) === 0; i++) await sleep(10);
  assert.is(Atomics.load(sync, 0), 1, `${what} paused`);
}

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

/**
 * Segments no one can ever free (this thread idle): in use with nothing recorded in the segment
 * map, later segments of a huge run without their head, a huge run whose header says released,
 * or a free segment still held (Arena.recoverClaims' cases) — whose claimer is gone (detached or
 * released) or is this thread (idle here). Another claimer still attached is left out: a live worker may be in the middle of it, and
 * a worker terminated and not released yet (no watchWorker/releaseWorker, as some tests leave
 * theirs) still has its release to come, which finishes it. (Session 21: "in use, nothing
 * recorded (claimer tag 67)" reported by every check of one run in ~36, from before the first
 * check, most likely a worker an earlier test terminated without releasing it while a timer of
 * its was releasing a segment — Arena.release between the segment map and the in-use bit, e.g.
 * the kept-page sweep.)
 */
export function stranded(): string[] {
  const out: string[] = [];
  for (const a of ctx.arenas) {
    for (let i = a.headerSlots; i < a.segCount; i++) {
      const at = `arena ${a.id} segment ${i}`;
      const c = a.claimerOf(i);
      if (c !== 0 && c !== ctx.tag && !isGone(c)) continue;
      if (!a.isUsed(i)) {
        if (c !== 0) out.push(`${at}: free but held by tag ${c}`);
        continue;
      }
      const kind = a.segKind(i);
      if (kind === SEGMAP_FREE) out.push(`${at}: in use, nothing recorded (claimer tag ${c})`);
      else if (kind === SEGMAP_HUGE_REST && a.hugeRunAt(i) === null) out.push(`${at}: part of a huge run without its head`);
      else if (kind === SEGMAP_HUGE_HEAD && Atomics.load(a.region.i32, headerOf(i * SEGMENT_SIZE) + S_OWNER) === OWNER_RELEASED) {
        out.push(`${at}: a huge run its header says released`);
      }
    }
  }
  return out;
}

/**
 * What validate() cannot see (it walks this thread's segments): the pages of abandoned
 * segments (owner word 0) whose counts do not add up — blocks on the free and local-free lists
 * plus the used count (thread-free blocks and blocks a stopped worker was freeing stay counted
 * used) must be the capacity — or whose lists are broken, or whose block-start divisor is not
 * its block size's (a set-up stopped half way: session 28). Only while no other worker runs
 * (another could be reclaiming one). Session 27: two workers that both took one segment left
 * such pages, seen only once a later reclaim adopted them.
 */
export function abandonedProblems(): string[] {
  const out: string[] = [];
  for (const a of ctx.arenas) {
    const m = a.region.i32;
    for (let i = a.headerSlots; i < a.segCount; i++) {
      const s = headerOf(i * SEGMENT_SIZE);
      if (a.segKind(i) <= 0 || Atomics.load(m, s + S_OWNER) !== 0) continue;
      for (let k = 0; k < m[s + S_PAGE_COUNT]; k++) {
        const pg = s + S_PAGES + k * PAGE_WORDS;
        if (m[pg + P_BSIZE] <= 0) continue;
        let listed = 0;
        const bad = forEachFree(m, pg, (_b, list) => {
          if (list !== "thread-free") listed++;
        });
        const used = m[pg + P_USED], cap = m[pg + P_CAPACITY];
        if (!divisorMatches(m, pg)) out.push(`arena ${a.id} segment ${i} page ${k} (block size ${m[pg + P_BSIZE]}, capacity ${cap}): its block-start divisor is not its block size's`);
        if (bad !== "" || listed + used !== cap) {
          out.push(`arena ${a.id} segment ${i} page ${k} (block size ${m[pg + P_BSIZE]}): ${bad || `${listed} free + ${used} used != capacity ${cap}`} (${entryCensus(m, pg)})`);
        }
      }
    }
  }
  return out;
}

/** A page's side-table entries by state (secure.ts "side table"), for a report. */
function entryCensus(m: Int32Array, pg: number): string {
  const t = tableOf(m), tb = tableBase(pg), cap = m[pg + P_CAPACITY];
  let live = 0, pending = 0, pushing = 0, links = 0;
  const odd: string[] = [];
  for (let n = 1; n <= cap; n++) {
    const e = t[entryAt(tb, n)];
    if (e === ENTRY_LIVE) live++;
    else if (e === ENTRY_PENDING) pending++, odd.push(`${n}: pending`);
    else if (e >= ENTRY_PUSHING) pushing++, odd.push(`${n}: pushing, next ${e - ENTRY_PUSHING}`);
    else if (e <= cap) links++;
    else odd.push(`${n}: ${e}`);
  }
  return `entries: ${live} live, ${pending} pending, ${pushing} pushing, ${links} free links${odd.length > 0 ? "; " + odd.slice(0, 6).join(", ") : ""}`;
}

/**
 * Checks after every test of `suite` that no segment was left stranded, so a leak is named by
 * the test that left it rather than found by a later one: a finding fails the next test with the
 * culprit's name (uvu runs after.each hooks again after a failure, outside any try: a hook that
 * throws there ends the suite, so the finding waits for the next before.each). Register the
 * suite's last test with {@link lastStrandedCheck}, or the last test's finding goes unreported.
 */
export function checkStrandedAfterEach(suite: Test): void {
  let found: string | null = null;
  const reported = new Set<string>(); // (each finding fails one test, not every later one)
  suite.after.each(async (state) => {
    if (found !== null || ctx.arenas.length === 0) return;
    let left: string[];
    try {
      const fresh = () => stranded().filter((x) => !reported.has(x));
      left = fresh();
      if (left.length > 0) {
        await sleep(200); // (a release waiting for a thread to stop)
        collect(true);
        left = fresh();
      }
    } catch (e) {
      left = [`the check itself threw: ${e}`];
    }
    if (left.length === 0) return;
    for (const x of left) reported.add(x);
    found = `"${String(state.__test__).slice(0, 120)}": ${left.slice(0, 4).join("; ")}`;
  });
  suite.before.each(() => {
    if (found === null) return;
    const f = found;
    found = null;
    throw new Error(`segments left stranded by the previous test ${f}`);
  });
}

/** The last test of a suite checked by {@link checkStrandedAfterEach}: fails if the test before it left a segment stranded. */
export function lastStrandedCheck(t: Test): void {
  t("no segment left stranded by the test before (checkStrandedAfterEach)", () => {});
}
