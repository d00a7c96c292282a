// examples/zlib-arena.ts (issue 13): zlib (libz.so.1) deflates and inflates a buffer whose
// z_stream and data live in a per-task arena, through the runtime's FFI. In process (every
// runtime and backend: the buffer backend has no native memory for C, and says so) and as a
// user runs it (a child process running its main()).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ArenaPool, backend, stats } from "../mod.ts";
import { loadZlib, roundTrip, sampleText } from "../examples/zlib-arena.ts";
import { describeChild, runChild } from "./_child.ts";

const t = suite("examples");
const ffi = backend().kind !== "buffer";

if (ffi) {
  t("zlib-arena: deflate + inflate in a per-task arena round-trips; the arenas are released and reused", async () => {
    const zlib = await loadZlib();
    assert.match(zlib.version, /^1\./);
    using pool = new ArenaPool();
    const s0 = stats().arenaPools;
    for (const n of [1, 1000, 200_000, 200_000]) {
      const input = sampleText(n);
      const r = roundTrip(zlib, pool, input);
      assert.ok(r.identical, `${n} B round trip`);
      assert.is(r.inputBytes, n);
      if (n >= 1000) assert.ok(r.compressedBytes < n / 3, `compressed ${n} B to ${r.compressedBytes} B`);
      assert.ok(r.arenaUsed >= 2 * n + r.compressedBytes, "input, output and inflated copy were arena memory");
    }
    assert.equal(pool.leaks(), []);
    const s1 = stats().arenaPools;
    assert.is(s1.acquires - s0.acquires, 4);
    assert.ok(s1.reused - s0.reused >= 1, "the second 200 KB task reused the first one's arena");
  });
  t("zlib-arena: runs as a user runs it (child process, main())", () => {
    const c = runChild("zlib-example", [], {});
    assert.is(c.status, 0, describeChild(c));
    const lines = c.stdout.split("\n").filter((l) => l.startsWith("zlib "));
    assert.is(lines.length, 3, c.stdout);
    for (const l of lines) assert.match(l, /-> identical; .* pool: \[\] leaked/);
    assert.ok(c.result !== null && (c.result as { pools: number }).pools === 0, "the pool was closed");
  });
} else {
  t("zlib-arena: impossible on the buffer backend (no native memory for C); loadZlib says so", async () => {
    try {
      await loadZlib();
      assert.unreachable("loadZlib must refuse on the buffer backend");
    } catch (e) {
      assert.match(String(e), /buffer backend has no native memory/);
    }
  });
}

t.run();
