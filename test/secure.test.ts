// Secure mode (issue 6): free lists out of band (side tables), double-free detection, validate(). Secure
// levels are fixed at first use, so most cases run in child processes of the same runtime
// (test/fixtures/secure-child.ts) on the FFI backend; the suite itself also runs once per
// runtime at TSMALLOC_SECURE=4 (scripts/test-all.mjs), which the first test checks.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { bytes, configure, free, getOption, Heap, setOption, validate } from "../mod.ts";
import { describeChild, pinnedChildren, runChild } from "./_child.ts";
import { env } from "./_util.ts";

const t = suite("secure");
/** For tests whose child fixes its own backend and levels: registered once per runtime. */
const tc = pinnedChildren(t);
const FFI = { TSMALLOC_BACKEND: "ffi" };

function child(args: string[], env: Record<string, string>, what: string): Record<string, unknown> {
  const c = runChild("secure-child", args, { ...FFI, ...env });
  assert.ok(c.status === 0 && c.result !== null, `${what}: ${describeChild(c)}`);
  return c.result!;
}

t("this process runs at the level TSMALLOC_SECURE asked for; secure and debugFill are fixed at first use", () => {
  const want = Number(env("TSMALLOC_SECURE") ?? "0");
  free(Heap.create().malloc(8)); // in use
  assert.is(getOption("secure"), want, "getOption('secure')");
  assert.throws(() => configure({ secure: (want + 1) % 5 }), /before the first allocation/);
  assert.throws(() => setOption("secure", (want + 1) % 5), /before the first allocation/);
  assert.throws(() => setOption("debugFill", !getOption("debugFill")), /before the first allocation/);
  setOption("secure", want); // the same value: no change, no error
  assert.throws(() => configure({ secure: 5 }), RangeError);
  const v = validate();
  assert.equal(v.problems, [], "validate() finds nothing wrong");
  assert.ok(v.pages > 0 && v.liveBlocks >= 0, JSON.stringify({ pages: v.pages, live: v.liveBlocks }));
});

tc("in a child: setOption of secure/debugFill after first use throws, the level is kept", () => {
  const r = child(["config"], { TSMALLOC_SECURE: "2" }, "config");
  assert.is(r.level, 2);
  for (const e of r.errors as string[]) assert.match(e, /can only be set before the first allocation/);
  assert.ok((r.protects as number) >= 2, "level 2 protects guard pages (level 1 is included)");
  assert.ok(r.ok);
});

t("a scribble over a freed block's first bytes reaches no list (the side tables, every level): validate() stays clean and the block is handed out again; with debugFill validate() reports the write after free", () => {
  const h = Heap.create();
  const ps: number[] = [];
  for (let i = 0; i < 64; i++) ps.push(h.malloc(48));
  // a view taken while the victim is live: it dangles after the free, as a use-after-free's pointer
  // does (level 3+ refuses a view of a free block)
  const view = bytes(ps[10], 8);
  for (let i = 0; i < 64; i += 2) h.free(ps[i]); // ps[10], the victim: its first 8 bytes are the link (plain lists)
  const saved = view.slice();
  assert.equal(validate().problems, [], "consistent before");
  view.fill(0x41);
  const bad = validate();
  if (getOption("debugFill")) {
    assert.match(bad.problems.join("\n"), /block size 48.*written after free/, bad.problems.join("\n"));
  } else {
    assert.equal(bad.problems, [], "the lists are out of band: the write reached none");
    const again = new Set<number>();
    for (let i = 0; i < 3000; i++) again.add(h.malloc(48)); // (more than a page: its local-free list comes back)
    for (let i = 1; i < 64; i += 2) assert.not.ok(again.has(ps[i]), "no live block handed out");
    assert.ok(again.has(ps[10]), "the scribbled block is handed out again");
    h.destroy();
    return;
  }
  view.set(saved);
  assert.equal(validate().problems, [], "consistent after the repair");
  h.destroy();
});

for (const level of ["0", "1", "2", "3", "4"]) {
  tc(`secure ${level}: a double free throws DoubleFreeError naming it; every other block stays intact and the heap keeps working`, () => {
    const r = child(["doubleFree"], { TSMALLOC_SECURE: level }, `double free at level ${level}`);
    assert.is(r.secure, Number(level));
    assert.ok((r.thrown as number) > 500, `thrown ${r.thrown}`);
    assert.match(r.message as string, /^tsmalloc: invalid pointer 0x[0-9a-f]+: double free/);
  });
}

for (const level of ["0", "2", "3"]) tc(`secure ${level}: frees from another worker (thread-free list, in the side table) are collected back, and a double free there is caught`, () => {
  const r = child(["threadFree"], { TSMALLOC_SECURE: level }, "thread-free");
  assert.ok((r.freed as number) > 10, `freed ${r.freed}`);
  assert.ok(r.pending, "the blocks wait on the thread-free list");
  assert.ok(r.ok1, "validate() follows the thread-free list");
  assert.is(r.back, r.freed, "every block freed by the other worker is allocated again");
  assert.ok(r.ok2, "validate() after collection");
  assert.is(r.second, "DoubleFreeError");
});

for (const [what, env] of [["secure 0", { TSMALLOC_SECURE: "0" }], ["secure 1", { TSMALLOC_SECURE: "1" }], ["secure 2", { TSMALLOC_SECURE: "2" }], ["secure 3", { TSMALLOC_SECURE: "3" }], ["secure 4", { TSMALLOC_SECURE: "4" }], ["debugFill (secure 0)", { TSMALLOC_DEBUG_FILL: "1" }]] as const) {
  tc(`${what}: double frees of blocks on the free, local-free and thread-free lists throw DoubleFreeError (owner and other worker), change nothing, and each block comes back once (the side table)`, () => {
    const r = child(["doubleFreeLists"], env, `doubleFreeLists, ${what}`);
    assert.ok(r.pending, "the other worker's frees wait on the thread-free list");
    const n = (r.freed as number) / 2;
    assert.equal(r.throws, {
      "local-free, owner": n, "local-free, other": n, "thread-free, owner": n, "thread-free, other": n,
      "free list, owner": 1, "free list, other": 1,
    });
    assert.is(r.damaged, 0, "every live block intact");
    assert.is(r.dup, 0, "no live block handed out");
    assert.is(r.back, r.freed, "every freed block allocated again");
    assert.equal(r.problems, [], "validate() clean (the side table agrees with the lists)");
    assert.is(r.detected, 0);
  });
}

const UAF: [string, string][] = [
  ["0", "zero"], ["0", "live"], ["0", "inside"], ["1", "live"], ["1", "inside"], ["1", "copy-other"], ["2", "zero"], ["2", "ones"], ["2", "live"], ["2", "random"], ["2", "copy-page"], ["2", "copy-other"], ["2", "inside"], ["3", "pattern"],
  ["3", "copy-page"], ["4", "live"],
];
for (const [level, value] of UAF) {
  tc(`secure ${level}: use-after-free writes (${value}) into freed blocks never yield a wild or duplicated block, and reach no list (nothing to report)`, () => {
    const r = child(["uaf", value], { TSMALLOC_SECURE: level }, `uaf ${value} at level ${level}`);
    assert.is(r.secure, Number(level));
    assert.is(r.wild, 0, "no wild address from malloc");
    assert.is(r.dup, 0, "no address handed out twice");
    assert.is(r.damaged, 0, "no live block overwritten");
    assert.is(r.detected, 0, "no list was corrupted: they are out of band");
    assert.equal(r.problems, [], "validate() clean");
  });
}

for (const [level, value] of [["0", "live"], ["0", "random"], ["2", "live"], ["2", "pending"], ["2", "random"], ["2", "past"], ["2", "live-block"], ["2", "self"], ["2", "other"], ["2", "zero"], ["3", "live-block"], ["4", "random"]]) {
  tc(`secure ${level}: wild writes into a page's side table itself (${value}; no block lies next to it, only a stray pointer reaches it) never yield a wild or duplicated block, and a forged entry malloc meets is reported`, () => {
    const r = child(["table", value], { TSMALLOC_SECURE: level }, `table ${value} at level ${level}`);
    assert.is(r.wild, 0, "no wild address from malloc");
    assert.is(r.dup, 0, "no live block handed out");
    assert.is(r.damaged, 0, "no live block changed");
    // a cut list ("zero") or merged lists ("other") lose blocks, which malloc cannot notice; every other value is an entry no list may hold
    if (value !== "zero" && value !== "other") assert.ok((r.detected as number) > 0, `reported (${r.detected})`);
  });
}

for (const level of ["2", "3", "4"]) {
  tc(`secure ${level}: a stale write through a freed block of a page that was given back, into the page of another class now in its slot, is a write into user data: no live block handed out, nothing to report (review round 12 handed one out while side tables lay in the slot)`, () => {
    const r = child(["reusedSlot"], { TSMALLOC_SECURE: level }, `reusedSlot at level ${level}`);
    assert.is(r.wild, 0, "no wild or misaligned address");
    assert.is(r.handedLive, 0, "no live block handed out");
    assert.is(r.detected, 0, "no list reached: nothing to report");
    assert.ok(r.ok, "validate() clean");
  });
}

for (const [level, fill] of [["0", "1"], ["1", "0"], ["2", "1"], ["4", "255"]]) {
  const checked = Number(level) >= 2;
  tc(`secure ${level}: a stale write through a freed huge block whose mapping left the cache, into the 64 KiB before a huge block mapped since (fill ${fill}, and a forged size), reaches no header: usableSize, views, free and the counts hold (review round 13)${checked ? "; at checked levels the freed range stays reserved, so no new mapping starts inside an old block" : ""}`, () => {
    const r = child(["hugeRemap", fill], { TSMALLOC_SECURE: level }, `hugeRemap ${fill} at level ${level}`);
    if (checked) assert.is(r.hits, 0, "no new block's mapping starts inside an old block (retired ranges are reused as they were)");
    else assert.ok((r.hits as number) >= 1, `the kernel placed a new huge block where a freed one was (${r.hits} hits): the precondition`);
    assert.equal(r.errors, [], "every new block intact");
    assert.is(r.hugeBefore, 5, "five huge blocks counted");
    assert.is(r.hugeAfter, 0, "all freed");
    assert.is(r.inUse, 0, "nothing left in use");
    assert.ok(r.ok, "validate() clean");
  });
}

for (const level of ["2", "4"]) {
  tc(`secure ${level}: a huge block's mapping that leaves the cache stays reserved (PROT_NONE), so no arena is later mapped where a stale pointer to it points (review round 13: on Bun an arena landed there and a stale fill crashed the process)`, () => {
    const r = child(["arenaInHole"], { TSMALLOC_SECURE: level }, `arenaInHole at level ${level}`);
    assert.ok((r.arenaCount as number) >= 2, `arenas grew (${r.arenaCount})`);
    assert.is(r.arenas, 0, "no arena in the freed block's range");
    assert.is(r.inside, 0, "no live block there");
    assert.ok(r.keptReserved, "the range is still counted reserved");
    assert.is(r.refused, "RangeError", "a view of the freed block is refused");
    assert.ok(r.ok, "validate() clean");
  });
}

for (const [level, cases] of [["2", ["01 pages", "ff pages", "00 huge", "rand huge"]], ["3", ["ff pages", "rand huge"]], ["4", ["01 pages", "00 huge"]]] as const) {
  for (const c of cases) {
    const [fill, reuse] = c.split(" ");
    tc(`secure ${level}: a stale write (${fill}) through a freed huge block carved from an exclusive arena, into the first bytes of its segments since reused ${reuse === "pages" ? "for pages of every kind" : "by another huge block"}, reaches no header: every live block intact and freed without error, validate clean (review round 13: the headers lay there; frees threw, malloc threw "segment page count is inconsistent", Bun crashed)`, () => {
      const r = child(["carvedStale", fill, reuse], { TSMALLOC_SECURE: level }, `carvedStale ${c} at level ${level}`);
      assert.ok((r.reused as number) >= (reuse === "pages" ? 8 : 3), `the freed run's segments were reused (${r.reused} in use)`);
      assert.ok((r.inRun as number) >= 2, `live blocks in the freed run (${r.inRun})`);
      assert.ok((r.written as number) >= 12288, "the stale writes happened");
      assert.is(r.bad, 0, "every live block's stamp intact");
      if (reuse === "huge") assert.is(r.bigSize, 5 * 1024 * 1024, "the huge block on the reused segments keeps its size");
      assert.equal(r.errors, [], "no free threw");
      assert.ok(r.distinct, "the heap allocates distinct blocks again");
      assert.ok(r.ok, "validate() clean");
    });
  }
}

tc("secure 2: retired huge mappings are bounded: a block that keeps growing (80 steps of 8 MiB, none reusable) reserves at most 1 GiB of retired mappings beyond its own (review round 13: 40 GiB against level 0's 660 MiB)", () => {
  const r = child(["hugeGrowth"], { TSMALLOC_SECURE: "2" }, "hugeGrowth at level 2");
  assert.ok((r.grew as number) <= 1024 * 1024 * 1024 + 2 * (r.last as number), `reserved grew ${((r.grew as number) / 2 ** 20).toFixed(0)} MiB for a ${((r.last as number) / 2 ** 20).toFixed(0)} MiB block`);
  assert.ok(r.ok, "validate() clean");
});

t.run();
