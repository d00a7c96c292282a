// Leak tracking (src/track.ts; issue 13): the `track` option records per block the heap's
// tag and (sampled) the allocation site; leaks() groups live blocks by tag and site, largest
// first; printLeaks() prints them; leakCheck sets a non-zero exit code when blocks are left
// at exit (child processes). Off, the fast paths are the untracked functions.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  ArenaPool, Block, free, getOption, goodSize, Heap, leaks, malloc, mallocAligned, printLeaks, realloc, setOption, usableSize, zalloc,
} from "../mod.ts";
import { freeFn } from "../src/secure-free.ts";
import { defaultHeap } from "../src/heap.ts";
import { describeChild, runChild } from "./_child.ts";

const t = suite("track");

function tracking(f: () => void, rate = 1): void {
  const was = getOption("track"), r0 = getOption("trackSampleRate");
  setOption("trackSampleRate", rate);
  setOption("track", true);
  try {
    f();
  } finally {
    setOption("track", was);
    setOption("trackSampleRate", r0);
  }
}

const group = (tag: string) => leaks().filter((g) => g.tag === tag);

t("off (the default): malloc and free are the untracked functions, no wrapper", () => {
  assert.is(getOption("track"), false);
  free(malloc(8)); // initialized: the modes are picked
  const h = defaultHeap();
  assert.is.not(h.malloc.name, "trackedMalloc");
  assert.is.not(freeFn.name, "trackedFree");
  assert.not.ok(Object.hasOwn(h, "free") || Object.hasOwn(h, "zalloc"), "no own wrappers");
  tracking(() => {
    assert.is(h.malloc.name, "trackedMalloc");
    assert.is(freeFn.name, "trackedFree");
  });
  assert.is.not(h.malloc.name, "trackedMalloc", "turned off again");
  assert.is.not(freeFn.name, "trackedFree");
  assert.not.ok(Object.hasOwn(h, "free"));
});

t("leaks() groups live blocks by heap tag and allocation site, most bytes first; freed blocks leave", () => {
  tracking(() => {
    const h = Heap.create({ tag: "parser" });
    assert.is(h.tag, "parser");
    function parseNode(): number {
      const p = h.malloc(100);
      if (p === 0) throw new Error("out of memory"); // not a tail call: Bun (JSC) drops the frames of tail calls
      return p;
    }
    function parseBig(): number {
      const p = h.zalloc(5000);
      if (p === 0) throw new Error("out of memory"); // not a tail call: Bun (JSC) drops the frames of tail calls
      return p;
    }
    const small: number[] = [];
    for (let i = 0; i < 3; i++) small.push(parseNode()); // one site (the short stack includes the caller's line)
    const big = parseBig();
    const g = group("parser");
    assert.is(g.length, 2, JSON.stringify(g));
    assert.match(g[0].site, /parseBig/);
    assert.match(g[0].site, /track\.test\.(ts|js)/);
    assert.is(g[0].count, 1);
    assert.is(g[0].bytes, usableSize(big));
    assert.match(g[1].site, /parseNode/);
    assert.is(g[1].count, 3);
    assert.is(g[1].bytes, 3 * usableSize(small[0]));
    h.free(small[0]);
    free(small[1]);
    assert.is(group("parser").find((x) => /parseNode/.test(x.site))!.count, 1, "freed blocks leave the report");
    const moved = h.realloc(small[2], 100000);
    assert.is(group("parser").filter((x) => /parseNode/.test(x.site)).length, 0, "realloc moved the block: the record moved");
    assert.ok(group("parser").some((x) => x.bytes === usableSize(moved)));
    h.destroy();
    assert.equal(group("parser"), [], "destroy freed everything");
  });
});

t("default-heap blocks, aligned blocks and owners' tags (Block, ArenaPool chunks)", () => {
  tracking(() => {
    function allocDefault(): number {
      const p = malloc(777);
      if (p === 0) throw new Error("out of memory"); // not a tail call: Bun (JSC) drops the frames of tail calls
      return p;
    }
    const p = allocDefault();
    const q = mallocAligned(3000, 4096);
    const b = Block.alloc(123, { tag: "owned-block" });
    const pool = new ArenaPool();
    const a = pool.acquire("medium", "task");
    a.alloc(10);
    const all = leaks();
    const def = all.find((g) => g.tag === "" && /allocDefault/.test(g.site));
    assert.ok(def !== undefined && def.count === 1 && def.bytes === usableSize(p), JSON.stringify(all.slice(0, 5)));
    assert.ok(all.some((g) => g.tag === "" && g.bytes === usableSize(q) && /track\.test/.test(g.site)), "aligned block");
    assert.equal(group("owned-block").map((g) => g.count), [1]);
    assert.ok(group("ArenaPool").length >= 1, "arena chunks are tagged ArenaPool");
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].bytes >= all[i].bytes, "most bytes first");
    free(p);
    free(q);
    b.free();
    pool.release(a);
    pool.close();
    assert.equal(group("owned-block"), []);
    assert.ok(!leaks().some((g) => /allocDefault/.test(g.site)));
  });
});

t("trackSampleRate: 0 records no site, N records one in N; untracked blocks have their heap's tag", () => {
  const h = Heap.create({ tag: "sampled" });
  const before = h.malloc(64); // allocated while track is off
  tracking(() => {
    for (let i = 0; i < 10; i++) h.malloc(64);
    const g = group("sampled");
    assert.equal(g.map((x) => [x.site, x.count]), [["", 11]]);
  }, 0);
  tracking(() => {
    for (let i = 0; i < 40; i++) h.malloc(64);
    const g = group("sampled");
    const withSite = g.filter((x) => x.site !== "").reduce((s, x) => s + x.count, 0);
    assert.ok(withSite >= 3 && withSite <= 5, `1 in 10 of 40 sampled: ${withSite}`);
  }, 10);
  h.free(before);
  h.destroy();
});

t("turning track off drops the recorded sites: a block freed untracked never lends its site to a later block at its address (review finding: leaks() named an old site for a new untracked block)", () => {
  const h = Heap.create({ tag: "reuse" });
  let p = 0;
  tracking(() => {
    function oldParser(): number {
      const q = h.malloc(100);
      if (q === 0) throw new Error("out of memory"); // not a tail call (Bun)
      return q;
    }
    p = oldParser();
    assert.match(group("reuse")[0]?.site ?? "", /oldParser/);
  });
  h.free(p); // untracked free
  const again: number[] = [];
  for (let i = 0; i < 5000 && !again.includes(p); i++) again.push(h.malloc(100));
  assert.ok(again.includes(p), "the address was reused");
  for (const g of group("reuse")) assert.not.match(g.site, /oldParser/, "no stale site");
  assert.is(group("reuse").reduce((a, g) => a + g.count, 0), again.length);
  h.destroy();
});

t("printLeaks() prints one line per group with tag, site, count and bytes", () => {
  tracking(() => {
    const h = Heap.create({ tag: "printed" });
    function makeThing(): number {
      const p = h.malloc(2000);
      if (p === 0) throw new Error("out of memory"); // not a tail call: Bun (JSC) drops the frames of tail calls
      return p;
    }
    makeThing();
    let out = "";
    printLeaks((s) => (out += s));
    const line = out.split("\n").find((l) => l.includes('"printed"'));
    assert.ok(line !== undefined, out);
    assert.match(line, /makeThing/);
    assert.match(line, /\b1 x/);
    assert.match(line, new RegExp(`\\b${goodSize(2000)} B`));
    h.destroy();
  });
});

t("trackSampleRate counts entry points: a zalloc (which mallocs inside) is one allocation", () => {
  const h = Heap.create({ tag: "zsampled" });
  tracking(() => {
    for (let i = 0; i < 20; i++) h.zalloc(64);
    const withSite = group("zsampled").filter((x) => x.site !== "").reduce((s, x) => s + x.count, 0);
    assert.is(withSite, 10, "1 in 2 of 20 zallocs");
  }, 2);
  h.destroy();
});

t("zalloc/calloc/realloc through the module functions are tracked too", () => {
  tracking(() => {
    const z = zalloc(4444);
    const r = realloc(0, 5555);
    const all = leaks();
    assert.ok(all.some((g) => g.bytes >= usableSize(z) && /track\.test/.test(g.site)));
    assert.ok(all.some((g) => g.bytes >= usableSize(r) && /track\.test/.test(g.site)));
    free(z);
    free(r);
  });
});

t("leakCheck: a leak at exit prints the tag and site and exits 1 (child process)", () => {
  const c = runChild("leak-child", ["leak"], { TSMALLOC_TRACK: "1", TSMALLOC_LEAK_CHECK: "1" });
  assert.is(c.status, 1, describeChild(c));
  assert.ok(c.result !== null, describeChild(c));
  assert.match(c.stderr, /"session"/);
  assert.match(c.stderr, /loadSession/);
  assert.match(c.stderr, /leakCheck: live blocks at exit/);
});

t("leakCheck: nothing left at exit (heaps destroyed, pools closed, blocks freed) exits 0 (child process)", () => {
  for (const scenario of ["clean", "arena"]) {
    const c = runChild("leak-child", [scenario], { TSMALLOC_TRACK: "1", TSMALLOC_LEAK_CHECK: "1" });
    assert.is(c.status, 0, `${scenario}: ${describeChild(c)}`);
    assert.not.match(c.stderr, /live block/, scenario);
  }
});

if ((globalThis as { Deno?: unknown }).Deno !== undefined) {
  t("leakCheck on Deno: Deno.exit(0) (which skips the process exit event) still reports and exits 1; nothing left exits 0", () => {
    const c = runChild("leak-child", ["deno-exit"], { TSMALLOC_TRACK: "1", TSMALLOC_LEAK_CHECK: "1" });
    assert.is(c.status, 1, describeChild(c));
    assert.ok(c.result !== null, describeChild(c));
    assert.match(c.stderr, /"session"/);
    assert.match(c.stderr, /leakCheck: live blocks at exit/);
    assert.is(c.stderr.split("leakCheck: live blocks at exit").length, 2, "reported once");
    const clean = runChild("leak-child", ["deno-exit-clean"], { TSMALLOC_TRACK: "1", TSMALLOC_LEAK_CHECK: "1" });
    assert.is(clean.status, 0, describeChild(clean));
    assert.not.match(clean.stderr, /live block/);
  });
}

t("leakCheck without track still fails the exit, grouped by heap tag (no site)", () => {
  const c = runChild("leak-child", ["leak"], { TSMALLOC_TRACK: "0", TSMALLOC_LEAK_CHECK: "1" });
  assert.is(c.status, 1, describeChild(c));
  assert.match(c.stderr, /"session"\s+\(site not recorded\)/);
});

t.run();
