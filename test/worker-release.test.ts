// The release of a stopped worker when the releaser itself is slow or stopped, and when another
// worker races with it (review round 20). Workers are paused at a chosen Atomics call (fixture
// op pauseAt) or stopped at the k-th one (crashAt, action "release"), as test/worker-trust.test.ts does.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { backend, collect, free, getOption, malloc, releaseWorker, stats, validate, watchWorker, workerHandle } from "../mod.ts";
import { ctx } from "../src/context.ts";
import { headerOf, S_OWNER, SEGMENT_SIZE } from "../src/layout.ts";
import { SEGMAP_FREE, SEGMAP_HUGE_REST } from "../src/arena.ts";
import { sweepPlan } from "./_util.ts";
import { checkStrandedAfterEach, waitPaused, whereShareable, lastStrandedCheck, settled, startWorker, threadsVisible, type W } from "./_workers.ts";

const ext = import.meta.url.endsWith(".js") ? ".js" : ".ts";
const FIXTURE = new URL("./fixtures/trust-worker" + ext, import.meta.url);
const start = (): Promise<W> => startWorker(FIXTURE);
/** Segments of pages or huge heads whose owner word holds a worker tag (nobody reclaims a gone worker's: only owner 0 is). */
function owned(): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const a of ctx.arenas) {
    for (let i = a.headerSlots; i < a.segCount; i++) {
      const k = a.segKind(i);
      if (k === SEGMAP_FREE || k === SEGMAP_HUGE_REST) continue;
      const o = Atomics.load(a.region.i32, headerOf(i * SEGMENT_SIZE) + S_OWNER);
      if (o > 0 && o !== ctx.tag) out.set(o, [...(out.get(o) ?? []), `arena ${a.id} segment ${i}`]);
    }
  }
  return out;
}
/** mallocs n blocks of `size`; true when an address repeats. */
function handedTwice(size: number, n: number): boolean {
  const ps = new Set<number>();
  let dup = false;
  for (let i = 0; i < n; i++) {
    const p = malloc(size);
    if (ps.has(p)) dup = true;
    ps.add(p);
  }
  for (const p of ps) free(p);
  return dup;
}

const SWEEP = sweepPlan(backend().ffi === "node:ffi", backend().kind === "buffer", getOption("secure"));
const t0 = suite(`workers: release (review round 20${SWEEP.full ? "" : "; stop-at-each-call sweeps try every third call here (sweepPlan)"})`);
checkStrandedAfterEach(t0);
const t = whereShareable(t0, "workers: release");

t("a new worker that attaches while a dead worker's release is under way never gets its slot (the releaser would finish the new worker's cross-worker free as the dead one's: a block listed twice) (Deno's buffer backend without /proc: never released there)", async () => {
  if (!threadsVisible()) return;
  workerHandle();
  const n0 = stats().workers;
  const D = await start();
  await D.call("attach");
  await D.w.terminate();
  const R = await start();
  watchWorker(R.w);
  await R.call("attach");
  const p = malloc(1280);
  const sync = new Int32Array(new SharedArrayBuffer(8));
  const rel = R.call("pauseAt", { action: "release", id: D.id, match: "at discover[\\s\\S]*releaseEntry", nth: 1, sync: sync.buffer });
  await waitPaused(sync, "the releaser");
  const N = await start();
  watchWorker(N.w);
  await N.call("attach");
  const sync2 = new Int32Array(new SharedArrayBuffer(8));
  const fr = N.call("pauseAt", { action: "free", ptrs: [p], match: "pushThreadFreeChecked", nth: 2, sync: sync2.buffer });
  await waitPaused(sync2, "the new worker's free");
  Atomics.store(sync, 1, 1);
  await rel;
  Atomics.store(sync2, 1, 1);
  await fr;
  await N.call("detach");
  await N.w.terminate();
  await R.w.terminate();
  assert.is(await settled(n0), n0, "every worker released");
  const v = validate();
  assert.ok(v.ok, `validate(): ${v.problems.slice(0, 2).join("; ")}`);
  assert.not.ok(handedTwice(1280, 3000), "no address handed out twice");
});

t("a dead worker stopped before its claim of another worker's block acted is not taken for its claimer: a detached worker's free of that block, in flight, is not pushed twice (Deno's buffer backend without /proc: never released there)", async () => {
  if (!threadsVisible()) return;
  workerHandle();
  const n0 = stats().workers;
  const p = malloc(1280);
  let D: W | null = null;
  for (let k = 1; k < 30 && D === null; k++) {
    const d = await start();
    await d.call("attach");
    const r = (await d.call("crashAt", { action: "free", ptrs: [p], k })) as { crashed: boolean; where: string };
    assert.ok(r.crashed, "the free was stopped before its claim");
    if (r.where.includes("compareExchange") && r.where.includes("pushThreadFreeChecked")) D = d; // its record written, the claim not made
    else {
      await d.w.terminate();
      releaseWorker(d.id);
    }
  }
  assert.ok(D !== null, "a stop at the claim");
  await D!.w.terminate();
  const X = await start();
  watchWorker(X.w);
  await X.call("attach");
  await X.call("detach"); // (its frees have no slot to record in)
  const sync = new Int32Array(new SharedArrayBuffer(8));
  const fr = X.call("pauseAt", { action: "free", ptrs: [p], match: "pushThreadFreeChecked", nth: 2, sync: sync.buffer });
  await waitPaused(sync, "the detached worker's free");
  assert.is(releaseWorker(D!.id), true, "the stopped worker is released");
  Atomics.store(sync, 1, 1);
  await fr;
  await X.w.terminate();
  assert.is(await settled(n0), n0, "every worker released");
  const v = validate();
  assert.ok(v.ok, `validate(): ${v.problems.slice(0, 2).join("; ")}`);
  assert.not.ok(handedTwice(1280, 3000), "no address handed out twice");
});

t("a releaser stopped at any Atomics call of its release of a dead worker leaves the release to be finished by another: the dead worker's segments end abandoned and reclaimed, none owned by a gone tag (Deno's buffer backend without /proc: never released there)", async () => {
  if (!threadsVisible()) return;
  workerHandle();
  const n0 = stats().workers;
  // every call up to 60 (the release's start, an arena mapping, the free in flight, the first
  // claims and segments), then every 7th (the scans repeat the same steps per segment); where
  // this run tries every third point (sweepPlan), every third up to 60
  for (let k = SWEEP.first; k < 400; k += k < 60 ? SWEEP.step : 7) {
    const D = await start();
    await D.call("attach");
    const kept = (await D.call("crashAt", { action: "malloc", size: 900 * 1024, count: 2, k: 0 })) as { ptrs: number[] };
    const small = (await D.call("alloc", { sizes: [100, 5000] })) as number[];
    await D.w.terminate();
    const R = await start();
    watchWorker(R.w);
    await R.call("attach");
    const r = (await R.call("crashAt", { action: "release", id: D.id, k })) as { crashed: boolean; where: string };
    await R.w.terminate();
    releaseWorker(D.id); // (stopped before its release began: this one does it; else "none")
    assert.is(await settled(n0), n0, `stopped at Atomics call ${k} of the release (${r.where}): every worker released`);
    for (const q of [...kept.ptrs, ...small]) free(q);
    collect(true);
    assert.equal([...owned().keys()], [], `stopped at Atomics call ${k} of the release (${r.where}): no segment owned by a gone worker`);
    const v = validate();
    assert.ok(v.ok, `stopped at Atomics call ${k}: validate(): ${v.problems.slice(0, 2).join("; ")}`);
    if (!r.crashed) return;
  }
  throw new Error("more than 400 Atomics calls");
});

t("a reclaim that read a segment as abandoned and stalled before taking it does not take it once it was reclaimed, emptied, released and purged meanwhile (its owner word reads 0 again) (session 27: it took the free segment and released it a second time; with a worker setting the segment up meanwhile, two workers allocated in one segment: blocks handed out twice and page counts off, found by a stress of terminated workers on Bun's buffer backend)", async () => {
  workerHandle();
  collect(true); // every segment earlier tests left abandoned is this thread's now: the stalled scan meets only X's
  const X = await start();
  watchWorker(X.w);
  await X.call("attach");
  const [p] = (await X.call("alloc", { sizes: [1000] })) as number[]; // X's first block: in a segment of its own
  await X.call("detach"); // abandoned
  await X.w.terminate();
  const a = ctx.arenas.find((x) => x.region.base <= p && p < x.region.base + x.region.size)!;
  const idx = Math.floor((p - a.region.base) / SEGMENT_SIZE);
  const owner = () => Atomics.load(a.region.i32, headerOf(idx * SEGMENT_SIZE) + S_OWNER);
  assert.is(owner(), 0, "X's segment is abandoned");
  const C = await start();
  watchWorker(C.w);
  const tagC = (await C.call("attach")) as number;
  const sync = new Int32Array(new SharedArrayBuffer(8));
  // (in reclaim's own frame: its scan read the segment map and the owner word, the exchange is next)
  const rc = C.call("pauseAt", { action: "collect", fn: "compareExchange", match: "^[^\\n]*\\n[^\\n]*\\n\\s*at (\\S+\\.)?reclaim\\b", nth: 1, sync: sync.buffer });
  await waitPaused(sync, "C's reclaim, at its exchange of the owner word");
  collect(true); // this thread reclaims the segment
  assert.is(owner(), ctx.tag, "this thread reclaimed it");
  free(p);
  collect(true); // emptied: back to the arena, purged, its header decommitted
  assert.is(a.segKind(idx), SEGMAP_FREE, "the segment is free again");
  assert.is(owner(), 0, "the purge left its owner word 0, as an abandoned segment's");
  Atomics.store(sync, 1, 1);
  const r = (await rc) as { paused: string };
  assert.match(r.paused, /compareExchange/);
  assert.is.not(owner(), tagC, "the stalled reclaim did not take the free segment");
  assert.is(a.segKind(idx), SEGMAP_FREE, "nor set it up or released it");
  await C.w.terminate();
  const v = validate();
  assert.ok(v.ok, `validate(): ${v.problems.slice(0, 2).join("; ")}`);
  assert.not.ok(handedTwice(1000, 3000), "no address handed out twice");
});

lastStrandedCheck(t);
t.run();
