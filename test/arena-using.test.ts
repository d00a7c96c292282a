// `using` with ArenaPool, Arena and Block (issue 13). Deno and Bun run `using` natively; Node
// runs the esbuild bundle, which lowers it. Kept apart so a runtime that rejected the syntax
// would lose only this file (reported as failing to load, never silently).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type Arena, ArenaPool, Block, stats } from "../mod.ts";

const t = suite("arena-using");

t("using arena = pool.acquire(...) releases it at scope end; using pool closes it", () => {
  let seen: Arena | null = null;
  const before = stats().arenaPools;
  {
    using pool = new ArenaPool();
    {
      using arena = pool.acquire("small", "request");
      arena.alloc(100);
      seen = arena;
      assert.equal(pool.leaks().map((l) => l.tag), ["request"]);
    }
    assert.ok(seen.isReleased, "released at the end of its block");
    assert.equal(pool.leaks(), []);
    assert.is(stats().arenaPools.pooled - before.pooled, 1);
  }
  assert.is(stats().arenaPools.pools, before.pools, "the pool closed");
});

t("using pool throws at scope end when a tag still holds an arena", () => {
  assert.throws(() => {
    using pool = new ArenaPool();
    pool.acquire("tiny", "leaky");
  }, /"leaky" x1/);
});

t("using b = Block.alloc(...) frees the block at scope end", () => {
  let b0: Block | null = null;
  const live = stats().ownedBlocks.live;
  {
    using b = Block.alloc(100, { tag: "scoped" });
    b.bytes().fill(1);
    b0 = b;
    assert.is(stats().ownedBlocks.live, live + 1);
  }
  assert.not.ok(b0.isLive);
  assert.is(stats().ownedBlocks.live, live);
});

t.run();
