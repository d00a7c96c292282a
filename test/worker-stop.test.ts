// Workers stopped between two writes of a page's lists. Bun stops a terminated worker between
// two plain stores of a pop, a free, a collection or an extension (the storm of session 28:
// `npm run storm`), not only at calls and loop heads as V8 does. The fixture (trust-worker
// op midway) leaves one of its pages in each such half-done state and idles; the test
// terminates it, waits for its release, and checks that the abandoned page is whole again
// (secure.ts repairChecked): its counts and lists agree, no block is on two lists (one chain
// on both lists was handed out twice), and no free block is lost.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { bytes, collect, free, malloc, stats, validate, watchWorker, workerHandle } from "../mod.ts";
import { abandonedProblems, settled, startWorker, threadsVisible, whereShareable } from "./_workers.ts";
import { locate } from "../src/free.ts";
import { entryAt, entryOf, finishPush, repairChecked, tableOf } from "../src/secure.ts";
import { tableBase } from "../src/region.ts";
import { ENTRY_LIVE, ENTRY_PUSHING, P_THREAD_FREE, P_USED } from "../src/layout.ts";

const ext = import.meta.url.endsWith(".js") ? ".js" : ".ts";
const FIXTURE = new URL("./fixtures/trust-worker" + ext, import.meta.url);
const SIZE = 48;
const stamped = (p: number) => new DataView(bytes(p, 8).buffer, bytes(p, 8).byteOffset).getFloat64(0, true) === p;

/** Half-done writes the fixture can leave (test/fixtures/trust-worker.ts midway). */
const KINDS: Record<string, string> = {
  "pop-unlinked": "a pop stopped after unlinking its block (the block on no list, its entry still free)",
  "pop-live": "a pop stopped after marking its block live, before counting it",
  "move-half": "a pop stopped while moving the local-free list to the free list, between its two head writes (one chain on both lists: handed out twice)",
  "free-claimed": "an owner's free stopped right after claiming the block (ENTRY_PENDING: the block was lost for good)",
  "free-linked": "an owner's free stopped after linking the block, before listing it",
  "free-listed": "an owner's free stopped after listing the block, before counting it",
  "collect-taken": "a collection stopped after taking the thread-free list, before relinking it (the taken blocks on no list)",
  "append-half": "a collection stopped after appending the free list to the local-free list (the free list's blocks on both lists)",
  "append-moved": "a collection stopped after making the local-free list the free list, before clearing its head",
  "extend-capped": "an extension stopped after recording its capacity, before publishing its blocks",
  "setup-unfinished": "a fresh page's set-up stopped before its block-start divisor was written (every free of its blocks read block 1: double frees)",
};

const t0 = suite("workers: a worker stopped between two writes of a page's lists (Bun, session 28)");
const t = whereShareable(t0, "workers: a worker stopped between two writes of a page's lists");
if (!threadsVisible()) {
  t("(Deno's buffer backend without /proc: a terminated worker is never released, so its pages are never abandoned or repaired)", async () => {
    const W = await startWorker(FIXTURE);
    watchWorker(W.w);
    await W.call("attach");
    const before = stats().workers;
    await W.w.terminate();
    assert.is(await settled(before - 1), before, "the terminated worker stays attached");
  });
} else {
  for (const [kind, what] of Object.entries(KINDS)) t(`${what}: once released, its page's counts and lists agree, nothing is handed out twice`, async () => {
    workerHandle();
    const before = stats().workers;
    const W = await startWorker(FIXTURE);
    watchWorker(W.w);
    await W.call("attach");
    const ptrs = (await W.call("midway", { phase: "prepare", size: SIZE, emptyFree: kind === "move-half" })) as number[];
    const freed = kind === "collect-taken" ? ptrs.slice(0, 5) : [];
    for (const p of freed) free(p); // this thread's frees: onto the page's thread-free list
    const { live, start, end } = (await W.call("midway", { phase: "stop", kind, freed })) as { live: number[]; start: number; end: number };
    await W.w.terminate();
    assert.is(await settled(before), before, "the stopped worker was released");
    assert.equal(abandonedProblems(), [], "the abandoned page's counts and lists");
    const setup = kind === "setup-unfinished";
    if (!setup) {
      const pr = locate(start, "test");
      assert.is(repairChecked(pr.m, pr.pg), 0, "a repaired page repaired again: nothing to do");
    }
    // this thread takes the page and allocates everything it has: each block once, none of the worker's live ones
    collect(true);
    const v = validate();
    assert.ok(v.ok, `validate() after the reclaim: ${v.problems.slice(0, 2).join("; ")}`);
    const liveSet = new Set(live);
    const got = new Set<number>();
    // (the block the stopped pop had marked live stays live, as any block a terminated worker held;
    // an unfinished set-up's slot goes back: its blocks come from whatever page takes the slot)
    const want = (end - start) / SIZE - live.length - (kind === "pop-live" ? 1 : 0);
    let onPage = 0;
    for (let i = 0; i < (setup ? 3 * want : 20_000) && (setup || onPage < want); i++) {
      const p = malloc(SIZE);
      assert.not.ok(got.has(p), `0x${p.toString(16)} handed out twice`);
      assert.not.ok(liveSet.has(p), `the stopped worker's live block 0x${p.toString(16)} handed out`);
      got.add(p);
      if (p >= start && p < end) onPage++;
    }
    if (!setup) assert.is(onPage, want, "every block of the page not live was handed out (none lost)");
    assert.ok(live.every(stamped), "the stopped worker's live blocks are intact");
    for (const p of got) free(p);
    for (const p of live) free(p); // (abandoned blocks: any worker may free them)
    const after = validate();
    assert.ok(after.ok, after.problems.slice(0, 2).join("; "));
  });
}

const u = suite("workers: finishing a stopped worker's cross-worker free (secure.ts finishPush)");
u("a live worker that lists the same block and clears its record while the releaser looks is seen: the block is not listed twice (review of session 28: a self-linked thread-free list, used counts far below 0)", () => {
  const ps: number[] = [];
  for (let i = 0; i < 10; i++) ps.push(malloc(SIZE));
  const pr = locate(ps[3], "test");
  const m = pr.m, pg = pr.pg, tb = tableOf(m);
  const n = entryOf(m, pg, ps[3] - pr.base);
  const x = entryAt(tableBase(pg), n);
  const used = m[pg + P_USED];
  // L2 (live) has recorded and claimed block n (ENTRY_LIVE -> ENTRY_PUSHING + head); a stopped worker's record names n too
  const tf = Atomics.load(m, pg + P_THREAD_FREE);
  assert.is(Atomics.compareExchange(tb, x, ENTRY_LIVE, ENTRY_PUSHING + (tf >>> 4)), ENTRY_LIVE);
  let calls = 0;
  const pushed = finishPush(tb, m, pg, n, () => {
    // the releaser asks for other records: L2 has just listed n and cleared its record
    if (calls++ === 0) Atomics.compareExchange(m, pg + P_THREAD_FREE, tf, (n << 4) | (tf & 15));
    return false;
  });
  assert.is(pushed, false, "the releaser listed a block another worker had listed");
  assert.is.not(tb[x] - ENTRY_PUSHING, n, "the block links to itself");
  collect(true);
  assert.is(m[pg + P_USED], used - 1, "one block back");
  for (const p of ps) if (p !== ps[3]) free(p);
  const v = validate();
  assert.ok(v.ok, v.problems.slice(0, 2).join("; "));
});
u.run();
t.run();
