// stats().byTag (issue 14 item 3) and formatStats (issue 13): live blocks and bytes by tag,
// computed from the pages when stats() is called. Every live block of this worker's heaps is
// counted under exactly one tag (its heap's, or the cAllocator's that holds it: see
// c-allocator.test.ts), so the entries add up to stats().blocks and stats().inUse:
//   - tagged heaps, two heaps sharing a tag, huge blocks, frees, destroy and delete
//   - ArenaPool chunks (live, pooled, after close, after the heap's destroy) and owned Blocks
//   (blocks freed by another worker: workers.test.ts, which runs last, since attaching a
//   worker makes the allocator shared for the rest of the process)
//   - formatStats has a line for every stats() field
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ArenaPool, Block, formatStats, free, Heap, malloc, stats, type TagStats, usableSize } from "../mod.ts";
import { guardedActive } from "../src/secure.ts";

const t = suite("by-tag");

function tagOf(tag: string): TagStats | undefined {
  return stats().byTag.find((x) => x.tag === tag);
}

/** The byTag entries sum to blocks and inUse; each tag is listed once; most bytes first. */
function checkSums(): void {
  const s = stats();
  const tags = s.byTag.map((x) => x.tag);
  assert.is(new Set(tags).size, tags.length, `each tag once: ${JSON.stringify(tags)}`);
  assert.ok(tags.includes(""), "the untagged entry is always listed");
  assert.is(s.byTag.reduce((a, x) => a + x.blocks, 0), s.blocks, `blocks: ${JSON.stringify(s.byTag)}`);
  assert.is(s.byTag.reduce((a, x) => a + x.bytes, 0), s.inUse, `bytes: ${JSON.stringify(s.byTag)}`);
  for (let i = 1; i < s.byTag.length; i++) assert.ok(s.byTag[i - 1].bytes >= s.byTag[i].bytes, "most bytes first");
  for (const x of s.byTag) assert.ok(x.blocks >= 0 && x.bytes >= 0 && x.heaps >= 0 && x.bridges >= 0, JSON.stringify(x));
}

/** Block bytes as pages count them: usableSize, except guarded allocations (secure sampling) sit in larger blocks. */
function bytesOk(got: number, ptrs: number[], what: string): void {
  const want = ptrs.reduce((a, p) => a + usableSize(p), 0);
  if (guardedActive()) assert.ok(got >= want, `${what}: ${got} >= ${want}`);
  else assert.is(got, want, what);
}

const SIZES = [1, 16, 100, 1000, 5000, 70_000, 600_000, 3_000_000]; // small, medium, large pages and a huge block

t("tagged heaps: blocks and bytes per tag, two heaps sharing a tag merge, huge blocks counted", () => {
  const a = Heap.create({ tag: "by-tag-a" });
  const b1 = Heap.create({ tag: "by-tag-b" });
  const b2 = Heap.create({ tag: "by-tag-b" });
  const none = Heap.create();
  try {
    const empty = tagOf("by-tag-a")!;
    assert.equal(empty, { tag: "by-tag-a", blocks: 0, bytes: 0, heaps: 1, bridges: 0 }, "a live tagged heap is listed with no blocks");
    const pa = SIZES.map((s) => a.malloc(s));
    const pb = [...SIZES.map((s) => b1.malloc(s)), ...SIZES.slice(0, 4).map((s) => b2.calloc(2, s))];
    const untagged0 = tagOf("")!;
    const pn = SIZES.map((s) => none.malloc(s));
    const ta = tagOf("by-tag-a")!, tb = tagOf("by-tag-b")!;
    assert.is(ta.blocks, pa.length);
    bytesOk(ta.bytes, pa, "tag a bytes");
    assert.is(ta.heaps, 1);
    assert.is(tb.blocks, pb.length);
    bytesOk(tb.bytes, pb, "tag b bytes (two heaps)");
    assert.is(tb.heaps, 2);
    const untagged = tagOf("")!;
    assert.is(untagged.blocks - untagged0.blocks, pn.length, "an untagged heap counts under \"\"");
    checkSums();
    // frees: the counts follow at once (no slow-path event needed)
    for (const p of pa.slice(0, 4)) a.free(p);
    free(pb[0]);
    assert.is(tagOf("by-tag-a")!.blocks, pa.length - 4);
    bytesOk(tagOf("by-tag-a")!.bytes, pa.slice(4), "after frees");
    assert.is(tagOf("by-tag-b")!.blocks, pb.length - 1);
    checkSums();
    // destroy: the tag is gone with its only heap; the other tag's heap count drops
    a.destroy();
    assert.is(tagOf("by-tag-a"), undefined, "destroyed: no live heap and no block under the tag");
    b2.destroy();
    assert.is(tagOf("by-tag-b")!.heaps, 1);
    assert.is(tagOf("by-tag-b")!.blocks, SIZES.length - 1);
    bytesOk(tagOf("by-tag-b")!.bytes, pb.slice(1, SIZES.length), "b1's blocks only");
    checkSums();
    // delete: the blocks move to the default heap, so to ""
    const before = tagOf("")!;
    b1.delete();
    assert.is(tagOf("by-tag-b"), undefined);
    assert.is(tagOf("")!.blocks, before.blocks + SIZES.length - 1, "deleted heap's blocks now count under the default heap");
    checkSums();
    for (const p of pb.slice(1, SIZES.length)) free(p);
    for (const p of pn) free(p);
  } finally {
    for (const h of [a, b1, b2, none]) h.destroy();
  }
  checkSums();
});

t("ArenaPool chunks count under the pool heap's tag: live, pooled, closed, and after the heap's destroy", () => {
  const heap = Heap.create({ tag: "by-tag-pool" });
  const pool = new ArenaPool({ heap, onLeak: "warn" });
  const arena = pool.acquire("small", "task");
  for (let i = 0; i < 200; i++) arena.alloc(16 + (i % 50) * 40);
  const live = tagOf("by-tag-pool")!;
  assert.ok(live.blocks >= 1, "chunks are blocks of the heap");
  assert.ok(live.bytes >= arena.capacity, `${live.bytes} >= capacity ${arena.capacity}`);
  checkSums();
  pool.release(arena);
  const pooled = tagOf("by-tag-pool")!;
  assert.ok(pooled.bytes > 0 && pooled.bytes <= live.bytes, "chunks kept up to the retain limit stay live blocks");
  pool.close();
  assert.equal([tagOf("by-tag-pool")!.blocks, tagOf("by-tag-pool")!.bytes], [0, 0], "closed: every chunk freed");
  // a live arena when the heap is destroyed: nothing is left counted anywhere
  const pool2 = new ArenaPool({ heap, onLeak: "warn" });
  const a2 = pool2.acquire("medium", "task");
  a2.alloc(100_000);
  const blocks0 = stats().blocks;
  assert.ok(tagOf("by-tag-pool")!.blocks >= 1);
  heap.destroy();
  assert.is(tagOf("by-tag-pool"), undefined);
  assert.ok(stats().blocks < blocks0);
  checkSums();
  pool2.release(a2);
  pool2.close();
  checkSums();
});

t("owned Blocks count under the default heap's \"\" (their own totals are stats().ownedBlocks)", () => {
  const before = tagOf("")!;
  const b = Block.alloc(5000, { tag: "by-tag-block" });
  assert.is(tagOf("by-tag-block"), undefined, "a Block's tag is a report name, not a heap tag");
  assert.is(tagOf("")!.blocks, before.blocks + 1);
  bytesOk(tagOf("")!.bytes - before.bytes, [b.address], "the Block's bytes");
  checkSums();
  b.free();
  assert.is(tagOf("")!.blocks, before.blocks);
});

// every stats() field and the formatStats line that shows it
const LINES: Record<string, RegExp> = {
  backend: /backend \w+/,
  workers: /\d+ workers?\)/,
  reserved: /reserved\s+\S+ \S+\s+\S+/,
  peakReserved: /reserved\s+\S+ \S+\s+\S+/,
  committed: /committed\s+\S+ \S+\s+\S+/,
  peakCommitted: /committed\s+\S+ \S+\s+\S+/,
  resident: /resident\s+\S+/,
  peakResident: /resident\s+\S+/,
  inUse: /in use\s+\S+ \S+\s+\S+/,
  peakInUse: /in use\s+\S+ \S+\s+\S+/,
  pendingPurge: /pending purge\s+\S+/,
  blocks: /blocks \d+,/,
  pages: /pages \d+/,
  hugeBlocks: /huge blocks \d+/,
  segments: /segments \d+/,
  arenas: /arenas \d+/,
  purges: /purges \d+ \(/,
  purged: /purges \d+ \(\S+ \S+\)/,
  resets: /resets \d+ \(/,
  resetBytes: /resets \d+ \(\S+ \S+\)/,
  budgetRefusals: /budget refusals \d+/,
  osCalls: /os calls: reserve \d+, release \d+, purge \d+, reset \d+, protect \d+, unprotect \d+, view \d+, resident \d+, futexWait \d+, futexWake \d+/,
  arenaList: /arena\s+size\s+used\s+dirty\s+segs\s+committed\s+base/,
  bins: /block size\s+blocks\s+bytes\s+pages/,
  arenaPools: /arena pools \d+: arenas live \d+, pooled \d+, capacity \S+ \S+, used \S+ \S+; acquires \d+ \(reused \d+\), releases \d+, chunk allocs \d+, chunk frees \d+/,
  ownedBlocks: /owned blocks \d+ \(\S+ \S+\), collected while allocated \d+, freed on collect \d+/,
  byTag: /tag\s+blocks\s+bytes\s+heaps\s+bridges\n\s+"by-tag-fmt"\s+1\s+\S+ \S+\s+1\s+0/,
};

t("formatStats shows every stats() field: arena pools, owned blocks and the per-tag table included", () => {
  using heap = Heap.create({ tag: "by-tag-fmt" });
  using pool = new ArenaPool();
  using arena = pool.acquire("tiny", "fmt");
  arena.alloc(10);
  const p = heap.malloc(1 << 20);
  const b = Block.alloc(64);
  const q = malloc(100);
  try {
    const s = stats();
    const text = formatStats(s);
    for (const k of Object.keys(s)) {
      assert.ok(LINES[k] !== undefined, `stats().${k} has no formatStats line in this test's table (add one to src/format.ts and here)`);
      assert.match(text, LINES[k], `stats().${k}:\n${text}`);
    }
    assert.match(text, new RegExp(`arena pools ${s.arenaPools.pools}: arenas live ${s.arenaPools.live}, pooled ${s.arenaPools.pooled}`));
    assert.match(text, new RegExp(`owned blocks ${s.ownedBlocks.live} `));
    assert.match(text, /\(no tag\)/);
  } finally {
    b.free();
    free(q);
    heap.free(p);
  }
});

t.run();
