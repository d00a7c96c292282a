// Owned blocks (src/block.ts; issue 13): Block.alloc(size, { tag, freeOnCollect }) owns one
// native block; free() / dispose free it once; a FinalizationRegistry reports (once per tag
// and site) an owner collected while its block is allocated, and frees it by option. The
// GC is forced: Node and Deno with --expose-gc (globalThis.gc), Bun with Bun.gc(true).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Block, type BlockOptions, bytes, free, stats, usableSize, validate } from "../mod.ts";
import { setBlockWarning } from "../src/block.ts";
import { defaultHeap } from "../src/heap.ts";
import { gc, sleep } from "./_mem.ts";

const t = suite("block");

const hasGc = (): boolean => {
  const g = globalThis as { gc?: unknown; Bun?: { gc?: unknown } };
  return typeof g.gc === "function" || typeof g.Bun?.gc === "function";
};

/** Forces collections until `done()` (finalizers run in a later task), at most ~2 s. */
async function collectUntil(done: () => boolean): Promise<boolean> {
  for (let i = 0; i < 100 && !done(); i++) {
    gc();
    await sleep(20);
  }
  return done();
}

t("alloc: address, size, tag, bytes(); free() once; dispose after free does nothing", () => {
  const s0 = stats().ownedBlocks;
  const b = Block.alloc(1000, { tag: "frame" });
  assert.ok(b.address > 0 && b.address % 16 === 0);
  assert.is(b.size, 1000);
  assert.is(b.tag, "frame");
  assert.ok(b.isLive);
  assert.ok(usableSize(b.address) >= 1000);
  assert.ok(defaultHeap().contains(b.address), "a block of the default heap");
  const v = b.bytes();
  assert.is(v.length, 1000);
  v.fill(0xab);
  assert.is(bytes(b.address, 1000)[999], 0xab, "bytes() is a view of the native block");
  assert.equal(stats().ownedBlocks.live - s0.live, 1);
  assert.equal(stats().ownedBlocks.bytes - s0.bytes, 1000);
  b.free();
  assert.not.ok(b.isLive);
  assert.not.ok(defaultHeap().contains(b.address), "freed");
  assert.throws(() => b.free(), /already freed/, "free twice");
  assert.throws(() => b.bytes(), /freed/, "bytes after free");
  b[Symbol.dispose](); // nothing
  assert.equal(stats().ownedBlocks.live, s0.live);
  assert.is(Block.alloc(0).size, 0, "size 0 is a block too");
});

t("bad input: a specific error; no block allocated", () => {
  const s0 = stats();
  const bad: [string, () => unknown, new (...a: never[]) => Error][] = [
    ["alloc(-1)", () => Block.alloc(-1), RangeError],
    ["alloc(1.5)", () => Block.alloc(1.5), RangeError],
    ["alloc(NaN)", () => Block.alloc(NaN), RangeError],
    ["alloc(2^47)", () => Block.alloc(2 ** 47), RangeError],
    ["alloc('8')", () => Block.alloc("8" as unknown as number), TypeError],
    ["alloc(8, null)", () => Block.alloc(8, null as unknown as BlockOptions), TypeError],
    ["alloc(8, { tag: 1 })", () => Block.alloc(8, { tag: 1 as unknown as string }), TypeError],
    ["alloc(8, { freeOnCollect: 'yes' })", () => Block.alloc(8, { freeOnCollect: "yes" as unknown as boolean }), TypeError],
    ["alloc(8, { size: 8 })", () => Block.alloc(8, { size: 8 } as BlockOptions), RangeError],
    ["new Block()", () => new (Block as unknown as new () => Block)(), TypeError],
  ];
  for (const [what, f, want] of bad) assert.throws(f, (e: unknown) => e instanceof want, what);
  assert.is(stats().ownedBlocks.live, s0.ownedBlocks.live);
  assert.is(stats().inUse, s0.inUse);
});

t("an owner collected while its block is allocated: one warning per tag and site naming both; the block stays allocated (forced GC)", async () => {
  assert.ok(hasGc(), "a forced GC is available (--expose-gc on Node/Deno, Bun.gc)");
  const warnings: string[] = [];
  const old = setBlockWarning((s) => warnings.push(s));
  const addrs: number[] = [];
  try {
    const c0 = stats().ownedBlocks.collected;
    (function leakOwnedBuffers(): void {
      for (let i = 0; i < 5; i++) {
        const b = Block.alloc(4096, { tag: "dropped" });
        addrs.push(b.address); // the number only: the Block itself becomes garbage
        b.bytes().fill(i);
      }
    })();
    const ok = await collectUntil(() => stats().ownedBlocks.collected - c0 >= 5);
    assert.ok(ok, `owners collected: ${stats().ownedBlocks.collected - c0} of 5`);
    const mine = warnings.filter((w) => w.includes('"dropped"'));
    assert.is(mine.length, 1, `once per tag and site: ${JSON.stringify(warnings)}`);
    assert.match(mine[0], /leakOwnedBuffers/);
    assert.match(mine[0], /block\.test\.(ts|js)/);
    assert.match(mine[0], /stays allocated/);
    for (const [i, p] of addrs.entries()) {
      assert.ok(defaultHeap().contains(p), "still allocated (freeOnCollect is off)");
      assert.is(bytes(p, 4096)[4095], i, "and intact");
    }
  } finally {
    setBlockWarning(old);
    for (const p of addrs) if (defaultHeap().contains(p)) free(p); // now ours to free: no owner is left
  }
  assert.is(validate().ok, true);
});

t("freeOnCollect: a collected owner's block is freed (forced GC); an explicitly freed one is never freed again", async () => {
  assert.ok(hasGc(), "a forced GC is available");
  const warnings: string[] = [];
  const old = setBlockWarning((s) => warnings.push(s));
  try {
    const s0 = stats().ownedBlocks;
    const inUse0 = stats().inUse;
    const addrs: number[] = [];
    (function dropAutoFreed(): void {
      for (let i = 0; i < 3; i++) addrs.push(Block.alloc(100_000, { tag: "auto", freeOnCollect: true }).address);
    })();
    // explicitly freed, then collected: the registry must not free the address again
    const reusers: Block[] = [];
    (function freeThenDrop(): void {
      for (let i = 0; i < 3; i++) {
        const b = Block.alloc(64, { tag: "freed-first", freeOnCollect: true });
        b.free();
      }
    })();
    const ok = await collectUntil(() => stats().ownedBlocks.freedOnCollect - s0.freedOnCollect >= 3);
    assert.ok(ok, `freed on collect: ${stats().ownedBlocks.freedOnCollect - s0.freedOnCollect} of 3`);
    for (const p of addrs) assert.not.ok(defaultHeap().contains(p), "freed by the registry");
    // give the explicitly freed owners time to be collected too: they must not be reported or freed
    for (let i = 0; i < 64; i++) reusers.push(Block.alloc(64, { tag: "reuser" })); // reuses the freed addresses
    await collectUntil(() => false); // ~2 s of forced collections
    for (const b of reusers) assert.ok(b.isLive && defaultHeap().contains(b.address), "no reuser's block was freed by a stale registration");
    assert.is(stats().ownedBlocks.freedOnCollect - s0.freedOnCollect, 3, "only the 3 dropped live blocks");
    assert.not.ok(warnings.some((w) => w.includes("freed-first")), "an explicitly freed block is never reported");
    assert.ok(warnings.some((w) => w.includes('"auto"') && /Freed it/.test(w)));
    assert.is(stats().inUse <= inUse0 + 64 * 64 + 4096, true, "the 300 KB went back");
    for (const b of reusers) b.free();
    assert.is(validate().ok, true);
  } finally {
    setBlockWarning(old);
  }
});

t.run();
