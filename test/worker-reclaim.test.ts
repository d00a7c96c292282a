// Races of reclaim and reap with a worker that stalls between reading a segment's or a huge
// block's header and acting on it (review of session 27): the segment or block was reaped,
// released, purged (its owner word reads 0 again, as an abandoned one's), or carved again by a
// worker that left since. Workers are paused at a chosen Atomics call (fixture op pauseAt, as
// in test/worker-release.test.ts) or stopped at one (crashAt with a stack match).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { collect, free, malloc, releaseWorker, stats, validate, watchWorker, workerHandle } from "../mod.ts";
import { ctx } from "../src/context.ts";
import { headerOf, P_OWNER, S_OWNER, S_PAGES, S_USED_PAGES, SEGMENT_SIZE } from "../src/layout.ts";
import { SEGMAP_FREE } from "../src/arena.ts";
import { OWNER_RELEASED } from "../src/huge.ts";
import { checkStrandedAfterEach, waitPaused, whereShareable, lastStrandedCheck, settled, startWorker, threadsVisible, type W } from "./_workers.ts";

const ext = import.meta.url.endsWith(".js") ? ".js" : ".ts";
const FIXTURE = new URL("./fixtures/trust-worker" + ext, import.meta.url);
const start = (): Promise<W> => startWorker(FIXTURE);
const HUGE = 5 * 1024 * 1024;
const LARGE = 200_000; // a large page: one per segment
/** The arena, segment index and owner word of the segment holding p. */
function where(p: number) {
  const a = ctx.arenas.find((x) => x.region.base <= p && p < x.region.base + x.region.size)!;
  const idx = Math.floor((p - a.region.base) / SEGMENT_SIZE);
  return { a, idx, owner: () => Atomics.load(a.region.i32, headerOf(idx * SEGMENT_SIZE) + S_OWNER) };
}
/** The error message a worker call ended with ("" when it returned). */
async function errorOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "";
  } catch (e) {
    return String((e as Error).message).split("\n")[0];
  }
}

/**
 * This thread's huge block, and worker F paused in its free of it at the Atomics call `at` of
 * freeForeignHuge (pauseAt's fn, nth, after): resume with Atomics.store(sync, 1, 1), then await fr.
 */
async function pausedHugeFree(at: { fn: string; nth: number; after?: boolean }, what: string) {
  workerHandle();
  collect(true);
  const p = malloc(HUGE);
  const w = where(p);
  assert.is(w.owner(), ctx.tag);
  const F = await start();
  watchWorker(F.w);
  const tagF = (await F.call("attach")) as number;
  const sync = new Int32Array(new SharedArrayBuffer(8));
  const fr = F.call("pauseAt", { action: "free", ptrs: [p], match: "freeForeignHuge", ...at, sync: sync.buffer });
  await waitPaused(sync, what);
  return { p, ...w, F, tagF, sync, fr };
}

const t0 = suite("workers: reclaim and reap races (review of session 27)");
checkStrandedAfterEach(t0);
// every test terminates its workers: their releases are waited for, so no later test counts them
let attached = 0;
t0.before.each(() => {
  attached = stats().workers;
});
t0.after.each(async () => {
  if (threadsVisible()) await settled(attached);
});
const t = whereShareable(t0, "workers: reclaim and reap races");

for (const purge of [true, false]) t(`a cross-worker free of a huge block stalled before its exchange of the owner word does not take the block carved at its run meanwhile: the owner reaped the freed block${purge ? ", the purge zeroed the header" : " (no purge: its header read released)"}, another worker carved a block there and detached (that live block was released, and handed out again)`, async () => {
  // F's free set the thread-free bit, saw owner = this thread (no double free), and is at `r0(m) === 0 && ... compareExchange`
  const { p, a, idx, owner, F, sync, fr } = await pausedHugeFree({ fn: "load", nth: 2 }, "F's free, at its read of the owner word before the exchange");
  collect(purge); // this thread reaps H (F's bit) and releases its run; collect(true) purges it too
  assert.is(a.segKind(idx), SEGMAP_FREE, "H's run is free");
  assert.is(owner(), purge ? 0 : OWNER_RELEASED, purge ? "purged: the owner word reads 0" : "not purged: released");
  const A = await start();
  watchWorker(A.w);
  await A.call("attach");
  const [pA] = (await A.call("alloc", { sizes: [HUGE] })) as number[];
  assert.is(pA, p, "A's block is carved at H's run (precondition)");
  await A.call("detach"); // A's block is abandoned: owner 0, live (A's data; any worker may still free it)
  assert.is(owner(), 0, "A's live block abandoned");
  Atomics.store(sync, 1, 1);
  const err = await errorOf(fr);
  const stateAfter = { segKind: a.segKind(idx), owner: owner() };
  const pM = malloc(HUGE);
  const v = validate();
  await F.w.terminate();
  await A.w.terminate();
  assert.is(err, "", "F's free did not throw");
  assert.ok(pM !== pA, `A's live (abandoned, never freed) block was handed out again (${JSON.stringify(stateAfter)})`);
  assert.ok(v.ok, `validate(): ${v.problems.slice(0, 2).join("; ")}`);
});

t("a cross-worker free of a huge block stalled right after it marked the block freed, while the owner reaps it and the purge zeroes the header, is not a DoubleFreeError (its double-free check read the header after the mark: a purged header looked like a block freed before)", async () => {
  const { a, idx, owner, F, sync, fr } = await pausedHugeFree({ fn: "or", nth: 1, after: true }, "F's free, after setting the thread-free bit");
  collect(true);
  assert.is(a.segKind(idx), SEGMAP_FREE);
  assert.is(owner(), 0);
  Atomics.store(sync, 1, 1);
  const err = await errorOf(fr);
  await F.w.terminate();
  assert.is(err, "", "the only free of the block threw");
});

t("a cross-worker free of a huge block stalled before its exchange of the owner word, the run left free and purged meanwhile: no internal error, and no tag of its left on the free segment", async () => {
  const { a, idx, owner, F, tagF, sync, fr } = await pausedHugeFree({ fn: "load", nth: 2 }, "F's free");
  collect(true);
  assert.is(a.segKind(idx), SEGMAP_FREE);
  Atomics.store(sync, 1, 1);
  const err = await errorOf(fr);
  const o = owner();
  await F.w.terminate();
  assert.is(err, "", "F's free threw");
  assert.is.not(o, tagF, "F's tag left on a free segment");
});

for (const recarve of [false, true]) t(`a releaser of a dead worker stalled at its exchange of an abandoned, freed huge block's owner word (0 to its tag) takes nothing once a reclaim has reaped the block${recarve ? ", another worker carves a block there and detaches" : ", the purge zeroes the header"}`, async () => {
  if (!threadsVisible()) return;
  workerHandle();
  collect(true);
  const X = await start();
  watchWorker(X.w);
  await X.call("attach");
  await X.call("alloc", { sizes: [100] });
  await X.call("detach"); // an abandoned segment: the reclaim hint > 0, so the next scan reaps abandoned huge blocks
  const D = await start();
  await D.call("attach");
  const [p] = (await D.call("alloc", { sizes: [HUGE] })) as number[];
  free(p); // D's owner word is its tag: left to D to reap (thread-free bit set)
  await D.w.terminate();
  const a = ctx.arenas.find((x) => x.region.base <= p && p < x.region.base + x.region.size)!;
  const idx = Math.floor((p - a.region.base) / SEGMENT_SIZE);
  const owner = () => Atomics.load(a.region.i32, headerOf(idx * SEGMENT_SIZE) + S_OWNER);
  const R = await start();
  watchWorker(R.w);
  await R.call("attach");
  const sync = new Int32Array(new SharedArrayBuffer(8));
  const rel = R.call("pauseAt", { action: "release", id: D.id, fn: "compareExchange", match: "abandonHuge", nth: 2, sync: sync.buffer });
  await waitPaused(sync, "R's release of D, at abandonHuge's second exchange");
  assert.is(owner(), 0);
  collect(true); // the reclaim scan reaps the abandoned, freed block; the purge zeroes its header
  assert.is(a.segKind(idx), SEGMAP_FREE, "reaped: the run is free");
  let pB = 0;
  let B: W | null = null;
  if (recarve) {
    B = await start();
    watchWorker(B.w);
    await B.call("attach");
    [pB] = (await B.call("alloc", { sizes: [HUGE] })) as number[];
    assert.is(pB, p, "B's block is carved at the same run (precondition)");
    await B.call("detach");
  }
  Atomics.store(sync, 1, 1);
  const err = await errorOf(rel);
  const after = { segKind: a.segKind(idx), owner: owner() };
  const pM = recarve ? malloc(HUGE) : 0;
  const v = validate();
  await R.w.terminate();
  if (B) await B.w.terminate();
  assert.is(err, "", "the release threw");
  if (recarve) assert.ok(pM !== pB, `B's live block handed out again (${JSON.stringify(after)})`);
  assert.ok(v.ok, `validate(): ${v.problems.slice(0, 2).join("; ")}`);
});

t("a reclaim that adopts an abandoned segment with no page (its worker stopped before setting its first page up) and gives it back at once does not take over the page another worker sets up there meanwhile (it read the descriptors after giving the segment back) (Deno's buffer backend without /proc: never released there)", async () => {
  if (!threadsVisible()) return;
  workerHandle();
  collect(true);
  const X = await start();
  await X.call("attach");
  // X stops after its new segment is recorded, before its first page is set up (a terminate there)
  const c = (await X.call("crashAt", { action: "malloc", size: LARGE, count: 1, fn: "load", match: "tableNeed[\\s\\S]*claimPage", k: 1 })) as { crashed: boolean; where: string };
  assert.ok(c.crashed, "X stopped");
  await X.w.terminate();
  assert.ok(releaseWorker(X.id), "X released");
  // X's segment: abandoned with no page
  let seg = -1;
  let a = ctx.arenas[0];
  for (const b of ctx.arenas) {
    for (let i = b.headerSlots; i < b.segCount; i++) {
      const s = headerOf(i * SEGMENT_SIZE);
      if (b.segKind(i) > 0 && Atomics.load(b.region.i32, s + S_OWNER) === 0 && b.region.i32[s + S_USED_PAGES] === 0) (seg = i), (a = b);
    }
  }
  assert.ok(seg >= 0, "an abandoned segment with no live page");
  const R = await start();
  watchWorker(R.w);
  const tagR = (await R.call("attach")) as number;
  await R.call("setOption", { name: "purgeDelay", value: 0 });
  const sync = new Int32Array(new SharedArrayBuffer(8));
  const rc = R.call("pauseAt", { action: "collect", fn: "load", match: "purgeExpired[\\s\\S]*adoptSegment", nth: 1, sync: sync.buffer });
  await waitPaused(sync, "R's reclaim, after adoptSegment released the empty segment");
  const p = malloc(LARGE); // this thread: a new large segment (the dirty one R just released)
  assert.ok(a.region.base <= p && p < a.region.base + a.region.size, "this thread's new segment is in that arena (precondition)");
  const idx = Math.floor((p - a.region.base) / SEGMENT_SIZE);
  assert.is(idx, seg, "this thread's new segment is the one R released (precondition)");
  const s = headerOf(idx * SEGMENT_SIZE);
  Atomics.store(sync, 1, 1);
  const r = (await rc) as { paused: string };
  const pageOwner = Atomics.load(a.region.i32, s + S_PAGES + P_OWNER);
  const segOwner = Atomics.load(a.region.i32, s + S_OWNER);
  const v = validate();
  await R.w.terminate();
  assert.match(r.paused, /adoptSegment/);
  assert.is(segOwner, ctx.tag, "the segment is this thread's");
  assert.is.not(pageOwner, tagR, "R took over this thread's page in this thread's segment");
  assert.ok(v.ok, `validate(): ${v.problems.slice(0, 2).join("; ")}`);
});

lastStrandedCheck(t);
t.run();
