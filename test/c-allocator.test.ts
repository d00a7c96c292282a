// cAllocator (issue 14): C libraries allocate through a tsmalloc heap. The bridge's C
// semantics and accounting are checked through a stand-in Os that hands each callback's JS
// function back (so arguments arrive exactly as each FFI delivers them: bigint, negative
// size_t from koffi); the native trampolines are checked with real clients (zlib here,
// SQLite and curl in child processes: their allocators are process-wide).
import { createRequire } from "node:module";
import process from "node:process";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { backend, bytes, cAllocator, type CAllocator, free, Heap, malloc, MAX_ALLOC_SIZE, stats, usableSize } from "../mod.ts";
import { C_FUNCTIONS, CAllocatorCore, type CFunctionName } from "../src/c-allocator.ts";
import { ctx } from "../src/context.ts";
import { destroyGuards, destroyHooks } from "../src/heap.ts";
import type { Os } from "../src/os.ts";
import { zlibExample } from "../examples/zlib.ts";
import { openZlib } from "../examples/_ffi.ts";
import { describeChild, pinnedChildren, runChild } from "./_child.ts";

const t = suite("c-allocator");
/** For tests whose child fixes its own backend and levels: registered once per runtime. */
const tc = pinnedChildren(t);
type H = Record<CFunctionName, (...a: (number | bigint)[]) => number>;

/** A bridge over a stand-in Os: the handlers, and a way to pretend to be another thread. */
function fake(heap: Heap, tag = "t") {
  free(malloc(16)); // initialized
  const real = ctx.os as Os;
  const fns: ((...a: (number | bigint)[]) => number)[] = [];
  let tid = 1, closed = 0;
  const os: Os = {
    ...real,
    threadId: () => tid,
    callback: (_r, _a, fn) => {
      fns.push(fn);
      return { address: 0x1000 + fns.length * 16, pointer: fns.length, close: () => void closed++ };
    },
  };
  const core = new CAllocatorCore(os, { heap: heap as never, tag, checkThread: true });
  const h = {} as H;
  C_FUNCTIONS.forEach((n, i) => (h[n] = fns[i]));
  return { core, h, setThread: (n: number) => (tid = n), closed: () => closed };
}

t("bridge: malloc(0) is unique, sizes arrive as number or bigint, too-large sizes are NULL", () => {
  using heap = Heap.create();
  const { core, h } = fake(heap);
  const a = h.malloc(0), b = h.malloc(0n);
  assert.ok(a > 0 && b > 0 && a !== b, "malloc(0) twice: two distinct blocks");
  const c = h.malloc(100n);
  assert.ok(c > 0 && c % 16 === 0 && usableSize(c) >= 100);
  assert.is(h.malloc(-1), 0, "koffi hands SIZE_MAX as -1");
  assert.is(h.malloc(2n ** 64n - 1n), 0, "SIZE_MAX as bigint");
  assert.is(h.malloc(MAX_ALLOC_SIZE + 1), 0);
  assert.is(h.calloc(2n ** 33n, 2n ** 33n), 0, "calloc overflow");
  assert.is(h.sqliteMalloc(-5), 0, "negative int");
  const s = core.stats();
  assert.is(s.liveBlocks, 3);
  assert.is(s.liveBytes, usableSize(a) + usableSize(b) + usableSize(c));
  assert.is(s.failures, 5);
  assert.is(s.errors, 0);
  for (const p of [a, b, c]) h.free(p);
  assert.is(core.stats().liveBlocks, 0);
  assert.is(core.stats().liveBytes, 0);
});

t("bridge: calloc zeroes, realloc keeps contents, realloc(NULL, n) and realloc(p, 0)", () => {
  using heap = Heap.create();
  const { core, h } = fake(heap);
  const z = h.calloc(10, 100n);
  assert.ok(bytes(z, 1000).every((x) => x === 0));
  const p = h.malloc(16);
  bytes(p, 16).fill(9);
  const q = h.realloc(p, 100_000n);
  assert.ok(q > 0 && bytes(q, 16).every((x) => x === 9));
  assert.not.ok(core.owns(p) && p !== q, "the old block is no longer the bridge's");
  const r = h.realloc(0, 40);
  assert.ok(r > 0 && core.owns(r));
  const r0 = h.realloc(r, 0);
  assert.ok(r0 > 0 && core.owns(r0), "realloc(p, 0): a fresh minimal block, never NULL-and-freed");
  assert.is(h.realloc(q, 2n ** 63n), 0, "too large: NULL");
  assert.ok(core.owns(q) && bytes(q, 16).every((x) => x === 9), "the old block stays valid after a failed realloc");
  for (const x of [z, q, r0]) h.free(x);
  assert.equal([core.stats().liveBlocks, core.stats().liveBytes, core.stats().errors], [0, 0, 0]);
});

t("bridge: free/realloc/usableSize of an address it did not hand out are refused, counted, harmless", () => {
  using heap = Heap.create();
  const { core, h } = fake(heap);
  const mine = h.malloc(64);
  bytes(mine, 64).fill(5);
  const theirs = malloc(64); // a live tsmalloc block the bridge never handed out
  bytes(theirs, 64).fill(6);
  h.free(0);
  h.free(theirs);
  h.free(mine + 16);
  h.free(0x7fff_0000_1230);
  h.zfree(0, 12345);
  assert.is(h.realloc(theirs, 128), 0);
  assert.is(h.usableSize(theirs), 0);
  assert.is(h.sqliteSize(mine + 8), 0);
  assert.is(core.stats().errors, 7);
  assert.match(core.stats().lastError, /not a live block of cAllocator "t"/);
  assert.ok(bytes(theirs, 64).every((x) => x === 6) && usableSize(theirs) >= 64, "the other block is intact");
  assert.ok(bytes(mine, 64).every((x) => x === 5));
  h.free(mine);
  h.free(mine); // double free: refused, not a second free
  assert.is(core.stats().errors, 8);
  const again = h.malloc(64);
  assert.ok(again > 0 && again !== theirs);
  h.free(again);
  free(theirs);
});

t("bridge: sized variants agree with usableSize and goodSize; SQLite ints stay ints", () => {
  using heap = Heap.create();
  const { h } = fake(heap);
  for (const n of [1, 100, 1000, 5000, 70_000, 3_000_000]) {
    const p = h.sqliteMalloc(n);
    assert.is(h.sqliteSize(p), usableSize(p));
    assert.is(h.usableSize(BigInt(p)), usableSize(p));
    assert.is(h.sqliteRoundup(n), h.goodSize(BigInt(n)));
    assert.ok(h.goodSize(n) >= n);
    const q = h.sqliteMalloc(h.sqliteRoundup(n));
    assert.is(usableSize(q), h.sqliteRoundup(n), `xRoundup(${n}) is exactly what xMalloc gives`);
    h.sqliteFree(p);
    h.sqliteFree(q);
  }
  assert.is(h.sqliteRoundup(0x7fff_ff00), 0x7fff_ff00, "no rounding past INT_MAX");
  assert.is(h.sqliteInit(0), 0);
  const z = h.zalloc(0, 100, 7);
  assert.ok(usableSize(z) >= 700);
  h.zfree(0, z);
});

t("bridge: a call from another OS thread never touches the heap (NULL, free a counted no-op)", () => {
  using heap = Heap.create();
  const { core, h, setThread } = fake(heap);
  const p = h.malloc(32);
  setThread(2);
  assert.is(h.malloc(32), 0);
  assert.is(h.calloc(1, 1), 0);
  assert.is(h.realloc(p, 64), 0);
  h.free(p);
  assert.is(core.stats().foreignThreadCalls, 4);
  assert.ok(core.owns(p), "not freed from the wrong thread");
  setThread(1);
  h.free(p);
  assert.is(core.stats().liveBlocks, 0);
});

t("bridge: heap.destroy() refuses while the open bridge has live blocks (specific error, heap unchanged); afterwards C calls get NULL, never a throw", () => {
  const heap = Heap.create({ tag: "lib-heap" });
  const { core, h } = fake(heap, "lib");
  const p = h.malloc(64);
  bytes(p, 64).fill(3);
  const mine = heap.malloc(100);
  assert.throws(() => heap.destroy(), /heap \d+ cannot be destroyed: cAllocator "lib" allocates from it and 1 blocks \(\d+ bytes\) it handed to the library are live/);
  assert.ok(heap.isLive && heap.contains(p) && heap.contains(mine), "refused: the heap is unchanged");
  assert.ok(bytes(p, 64).every((x) => x === 3));
  assert.is(core.stats().liveBlocks, 1);
  h.free(p); // the library gives its memory back: now destroy may go ahead
  heap.destroy();
  assert.not.ok(heap.isLive);
  assert.is(h.malloc(64), 0, "the heap is gone: NULL");
  assert.is(h.realloc(0, 64), 0);
  assert.is(h.strdup(0), 0);
  assert.not.throws(() => h.free(p));
  assert.ok(core.stats().errors >= 3, JSON.stringify(core.stats()));
  assert.equal([core.stats().liveBlocks, core.stats().liveBytes], [0, 0]);
  core.closeBridge(false); // nothing live: closes without force
  assert.not.ok(core.isOpen);
});

t("bridge: after close({ force }), heap.destroy() frees the library's blocks and the bridge's counters drop them", () => {
  const heap = Heap.create();
  const { core, h } = fake(heap, "forced-destroy");
  const ps = [h.malloc(10), h.malloc(5000), h.calloc(3, 100_000), h.malloc(3_000_000)];
  assert.throws(() => heap.destroy(), /cAllocator "forced-destroy"/);
  core.closeBridge(true);
  assert.is(core.stats().liveBlocks, 4, "forced close: the blocks stay allocated");
  assert.ok(ps.every((p) => heap.contains(p)));
  heap.destroy();
  const s = core.stats();
  assert.equal([s.liveBlocks, s.liveBytes, s.frees], [0, 0, 4], "destroy freed them and the bridge knows");
  assert.not.ok(core.owns(ps[0]));
  assert.is(stats().byTag.find((x) => x.tag === "forced-destroy"), undefined, "no tag entry left behind");
});

t("stats().byTag: a bridge's blocks count under its tag (not its heap's), only while live; heaps and bridges counted", () => {
  const tagOf = (tag: string) => stats().byTag.find((x) => x.tag === tag);
  using heap = Heap.create({ tag: "host" });
  const { core, h } = fake(heap, "lib-a");
  const other = fake(heap, "lib-b");
  const own = [heap.malloc(100), heap.malloc(70_000)];
  const la = [h.malloc(1), h.calloc(4, 1000), h.malloc(3_000_000), h.zalloc(0, 10, 10)];
  const lb = [other.h.malloc(500)];
  const sum = (ps: number[]) => ps.reduce((n, p) => n + usableSize(p), 0);
  assert.equal(tagOf("host"), { tag: "host", blocks: 2, bytes: sum(own), heaps: 1, bridges: 0 });
  assert.equal(tagOf("lib-a"), { tag: "lib-a", blocks: 4, bytes: sum(la), heaps: 0, bridges: 1 });
  assert.equal(tagOf("lib-b"), { tag: "lib-b", blocks: 1, bytes: sum(lb), heaps: 0, bridges: 1 });
  const s = stats();
  assert.is(s.byTag.reduce((n, e) => n + e.blocks, 0), s.blocks);
  assert.is(s.byTag.reduce((n, e) => n + e.bytes, 0), s.inUse);
  // realloc that moves, free through the bridge
  const moved = h.realloc(la[0], 50_000);
  h.free(la[1]);
  const la2 = [moved, la[2], la[3]];
  assert.equal([tagOf("lib-a")!.blocks, tagOf("lib-a")!.bytes], [3, sum(la2)]);
  // a block freed behind the bridge's back (by JS, not by the library): not counted under the
  // bridge any more, and not under the heap either (it is free)
  free(la[3]);
  assert.equal([tagOf("lib-a")!.blocks, tagOf("lib-a")!.bytes], [2, sum([moved, la[2]])], "stale bridge entry not counted");
  assert.equal([tagOf("host")!.blocks, tagOf("host")!.bytes], [2, sum(own)]);
  const s2 = stats();
  assert.is(s2.byTag.reduce((n, e) => n + e.bytes, 0), s2.inUse);
  // a bridge tag equal to its heap's tag: one entry
  const same = fake(heap, "host");
  const q = same.h.malloc(64);
  assert.equal(tagOf("host"), { tag: "host", blocks: 3, bytes: sum([...own, q]), heaps: 1, bridges: 1 });
  same.h.free(q);
  same.core.closeBridge(false);
  for (const p of [moved, la[2]]) h.free(p);
  other.h.free(lb[0]);
  other.core.closeBridge(false);
  assert.is(tagOf("lib-b"), undefined, "closed with nothing live: gone");
  // lib-a still lists the block JS freed behind its back: it cannot close without force,
  // and its tag shows nothing live (the page metadata decides, not the bridge's map)
  assert.throws(() => core.closeBridge(false), /cannot close: 1 blocks/);
  core.closeBridge(true);
  assert.equal(tagOf("lib-a"), { tag: "lib-a", blocks: 0, bytes: 0, heaps: 0, bridges: 0 });
  for (const p of own) heap.free(p);
  heap.destroy();
  assert.is(tagOf("lib-a"), undefined, "the heap's destroy dropped the stale entry");
});

t("bridge: a closed bridge leaves nothing behind on a long-lived heap (no destroy hook, no guard, no byTag entry)", () => {
  using heap = Heap.create();
  const hooks0 = destroyHooks.get(heap as never)?.length ?? 0;
  for (let i = 0; i < 50; i++) {
    const { core, h } = fake(heap, "short-lived");
    h.free(h.malloc(100));
    core.closeBridge(false);
  }
  assert.is(destroyHooks.get(heap as never)?.length ?? 0, hooks0, "each bridge took its hook back at close");
  assert.is(destroyGuards.get(heap as never)?.size ?? 0, 0);
  assert.is(stats().byTag.find((x) => x.tag === "short-lived"), undefined);
});

t("stats().byTag: a bridge on a heap later deleted (its blocks then in the default heap) keeps them under its tag", () => {
  const tagOf = (tag: string) => stats().byTag.find((x) => x.tag === tag);
  const heap = Heap.create({ tag: "to-delete" });
  const del = fake(heap, "on-deleted");
  const p = del.h.malloc(2000);
  const before = tagOf("")!;
  heap.delete();
  assert.equal([tagOf("on-deleted")!.blocks, tagOf("on-deleted")!.bytes], [1, usableSize(p)], "still the library's after the heap moved it");
  assert.is(tagOf("")!.blocks, before.blocks, "not counted twice under the default heap");
  assert.is(tagOf("to-delete"), undefined);
  del.h.free(p);
  assert.is(tagOf("on-deleted")!.blocks, 0);
  del.core.closeBridge(false);
});

t("bridge: close() refuses while blocks are live, close({ force }) closes and leaves them to the heap", () => {
  using heap = Heap.create();
  const { core, h, closed } = fake(heap, "lib");
  const p = h.malloc(100);
  assert.throws(() => core.closeBridge(false), /cAllocator "lib" cannot close: 1 blocks \(\d+ bytes\)/);
  assert.ok(core.isOpen);
  assert.is(closed(), 0);
  h.free(p);
  core.closeBridge(false);
  assert.not.ok(core.isOpen);
  core.closeBridge(false);
  const other = fake(heap, "forced");
  const q = other.h.malloc(100);
  other.core.closeBridge(true);
  assert.ok(heap.contains(q), "forced: the block stays allocated in the heap");
});

t("bridge: close() never frees a trampoline; a library that calls after close gets NULL from every allocating call, counted (review finding: curl_easy_init after close() crashed with SIGSEGV in a freed trampoline)", () => {
  using heap = Heap.create();
  const { core, h, closed } = fake(heap, "late");
  const p = h.malloc(100);
  core.closeBridge(true); // forced: p stays allocated
  assert.is(closed(), 0, "no trampoline freed");
  const e0 = core.stats().errors;
  assert.is(h.malloc(16), 0);
  assert.is(h.calloc(2, 8), 0);
  assert.is(h.realloc(0, 16), 0);
  assert.is(h.realloc(p, 400), 0, "realloc of a live block: NULL, the block stays valid");
  assert.is(h.zalloc(0, 2, 8), 0);
  assert.is(h.sqliteMalloc(16), 0);
  assert.is(core.stats().errors - e0, 6, "each counted");
  assert.match(core.stats().lastError, /cAllocator "late" was closed/);
  assert.ok(heap.contains(p), "the forced block is still allocated");
  h.free(p); // the library's late free of its own block still frees it
  assert.is(core.stats().liveBlocks, 0);
  assert.not.ok(heap.contains(p));
  h.free(p); // a second free: refused, counted
  assert.is(core.stats().errors - e0, 7);
});

t("cAllocator: option checks", () => {
  if (backend().kind === "buffer") return;
  assert.throws(() => cAllocator({ tag: 5 as unknown as string }), TypeError);
  assert.throws(() => cAllocator({ heap: {} as Heap }), TypeError);
  assert.throws(() => cAllocator({ bogus: 1 } as never), /unknown option "bogus"/);
  const dead = Heap.create();
  dead.destroy();
  assert.throws(() => cAllocator({ heap: dead }), /live Heap/);
});

if (backend().kind === "buffer") {
  t("cAllocator on the buffer backend: a clear error (no FFI, no native callbacks)", () => {
    assert.throws(() => cAllocator(), /cAllocator needs an FFI backend.*buffer backend has none/);
  });
} else {
  t(`cAllocator on ${backend().ffi}: native pointers in the FFI's own form, numbers in address, using closes`, () => {
    let seen: number;
    {
      using c = cAllocator({ tag: "x" });
      const want = backend().ffi === "deno" ? "object" : backend().ffi === "bun" ? "number" : "bigint";
      for (const name of C_FUNCTIONS) {
        assert.is(typeof c[name], want, name);
        assert.ok(Number.isSafeInteger(c.address[name]) && c.address[name] > 0, name);
      }
      assert.is(new Set(Object.values(c.address)).size, C_FUNCTIONS.length);
      seen = c.address.malloc;
      assert.ok(c.isOpen);
    }
    assert.ok(seen > 0);
  });

  t(`zlib on ${backend().ffi}: deflate+inflate 4 MiB, the stream state is in the heap while it lives and gone after End`, () => {
    const r = zlibExample(4 * 1024 * 1024);
    assert.ok(r.roundTrip, "inflate gives the input back");
    assert.ok(r.compressed > 0 && r.compressed < r.input);
    assert.ok(r.deflateLive >= 256 * 1024, `deflate state (window, hash, pending) counted: ${r.deflateLive}`);
    assert.is(r.deflateHeapBytes, r.deflateLive, "the heap holds exactly the bridge's blocks");
    assert.ok(r.inflateLive > 0, "inflate state counted");
    assert.is(r.afterDeflateEnd, 0);
    assert.is(r.afterInflateEnd, 0);
  });

  t(`zlib on ${backend().ffi} with checkThread: every call passes the gettid check on the creating thread`, () => {
    const r = zlibExample(256 * 1024, true);
    assert.ok(r.roundTrip);
    assert.ok(r.deflateLive >= 256 * 1024);
    assert.is(r.afterDeflateEnd, 0);
    assert.is(r.afterInflateEnd, 0);
  });

  // Calls a bridge function through its native pointer with the FFI's own argument conversion
  // (koffi.call, Deno.UnsafeFnPointer, bun:ffi CFunction); node:ffi is exercised by the C clients.
  const callers = (c: CAllocator): Record<string, (...a: (number | bigint)[]) => number> | null => {
    const f = backend().ffi;
    const sig: Record<string, [string, string[]]> = { malloc: ["ptr", ["size"]], calloc: ["ptr", ["size", "size"]], free: ["void", ["ptr"]], strdup: ["ptr", ["ptr"]], realloc: ["ptr", ["ptr", "size"]] };
    const out: Record<string, (...a: (number | bigint)[]) => number> = {};
    // deno-lint-ignore no-explicit-any
    const g = globalThis as any;
    for (const [name, [r, a]] of Object.entries(sig)) {
      const addr = c.address[name as CFunctionName];
      if (f === "koffi") {
        const koffi = createRequire(import.meta.url)("koffi");
        const kt = (t: string) => (t === "size" ? "size_t" : t === "ptr" ? "uintptr_t" : "void");
        const proto = koffi.proto(kt(r), a.map(kt));
        out[name] = (...x) => Number(koffi.call(BigInt(addr), proto, ...x) ?? 0);
      } else if (f === "deno") {
        const fp = new g.Deno.UnsafeFnPointer(g.Deno.UnsafePointer.create(BigInt(addr)), { parameters: a.map(() => "usize"), result: r === "void" ? "void" : "usize" });
        out[name] = (...x) => Number(fp.call(...x.map(BigInt)) ?? 0);
      } else if (f === "bun") {
        const { CFunction } = (import.meta as unknown as { require(s: string): { CFunction: (d: object) => (...a: unknown[]) => unknown } }).require("bun:" + "ffi");
        const fn = CFunction({ ptr: addr, args: a.map(() => "usize"), returns: r === "void" ? "void" : "usize" });
        out[name] = (...x) => Number(fn(...x) ?? 0);
      } else return null;
    }
    return out;
  };

  t(`C semantics through the real ${backend().ffi} trampolines: SIZE_MAX is NULL, malloc(0) unique, strdup, calloc overflow`, () => {
    using heap = Heap.create();
    const c = cAllocator({ heap, tag: "direct" });
    const call = callers(c);
    if (call === null) {
      c.close();
      return; // node:ffi: no call through a raw function pointer here; the C clients cover it
    }
    assert.is(call.malloc(2n ** 64n - 1n), 0, "SIZE_MAX (koffi hands it as -1, Deno/Bun as bigint)");
    assert.is(call.malloc(2n ** 63n), 0, "2^63");
    assert.is(call.calloc(2n ** 32n, 2n ** 32n), 0, "calloc overflow");
    const a = call.malloc(0), b = call.malloc(0);
    assert.ok(a > 0 && b > 0 && a !== b && c.owns(a) && c.owns(b));
    const text = new TextEncoder().encode("tsmalloc\0");
    const src = malloc(text.length);
    bytes(src, text.length).set(text);
    const dup = call.strdup(src);
    assert.ok(dup > 0 && dup !== src && c.owns(dup));
    assert.equal([...bytes(dup, text.length)], [...text]);
    const r = call.realloc(dup, 5000);
    assert.equal([...bytes(r, text.length)], [...text], "realloc keeps contents");
    call.free(src); // not the bridge's: refused and counted, src stays live
    assert.ok(usableSize(src) >= text.length && bytes(src, 8)[0] === text[0]);
    for (const p of [a, b, r, 0]) call.free(p);
    const s = c.stats();
    assert.equal([s.liveBlocks, s.liveBytes, s.failures, s.errors], [0, 0, 3, 1]);
    free(src);
    c.close();
  });

  const env = { TSMALLOC_BACKEND: "ffi" };
  tc(`SQLite on ${backend().ffi}: 100,000 rows, xSize/xRoundup are usableSize/goodSize, memory gone after shutdown`, () => {
    const c = runChild("c-allocator-child", ["sqlite"], env);
    assert.is(c.status, 0, describeChild(c));
    const r = c.result as Record<string, number | boolean>;
    assert.is(r.rows, 100_000);
    assert.is(r.sum, 5_000_050_000);
    assert.ok((r.liveWithTable as number) > 4_000_000, `the table is in the heap: ${r.liveWithTable}`);
    assert.is(r.liveWithTable, r.sqliteMemoryUsed, "SQLite's own count (through xSize) equals the bridge's");
    assert.is(r.afterClose, 0);
    assert.is(r.afterShutdown, 0);
    assert.is(r.closed, true);
  });

  tc(`SQLite on ${backend().ffi}: a maxCommitted budget gives SQLITE_NOMEM, the database keeps working, nothing leaks`, () => {
    const c = runChild("c-allocator-child", ["sqlite-budget"], env);
    assert.is(c.status, 0, describeChild(c));
    const r = c.result as Record<string, number>;
    assert.is(r.rc, r.nomem, "SQLITE_NOMEM");
    assert.ok(r.rows >= 10_000, `some rows fit the budget: ${r.rows}`);
    assert.is(r.count, r.rows, "the failed statement was rolled back, the rest is intact");
    assert.ok(r.failures >= 1, "the refusal reached SQLite as NULL");
    assert.is(r.errors, 0);
    assert.is(r.closeRc, 0);
    assert.is(r.liveAfterShutdown, 0);
    assert.is(r.blocksAfterShutdown, 0);
  });

  tc(`SQLite on ${backend().ffi}: stats().byTag shows SQLite's memory under the bridge's tag (bridge on the default heap), gone after shutdown`, () => {
    const c = runChild("c-allocator-child", ["sqlite-bytag"], env);
    assert.is(c.status, 0, describeChild(c));
    const r = c.result as Record<string, unknown> & { withTable: Record<string, number>; afterShutdown: Record<string, number> };
    assert.ok(r.withTable.bytes > 1_000_000, `the table is under "sqlite": ${JSON.stringify(r.withTable)}`);
    assert.is(r.withTable.blocks, r.bridgeBlocks, "the tag's blocks are the bridge's");
    assert.is(r.withTable.bytes, r.bridgeBytes, "and its bytes");
    assert.is(r.withTable.heaps, 0);
    assert.is(r.withTable.bridges, 1);
    assert.is(r.sumBlocks, r.blocks, "tags add up to stats().blocks");
    assert.is(r.sumBytes, r.inUse, "and to inUse");
    assert.ok((r.untaggedDelta as number) < 50, `SQLite's blocks are not counted under the default heap's "": +${r.untaggedDelta}`);
    assert.match(r.tableLine as string, /^\s+"sqlite"\s+\d+\s+\S+ \S+\s+0\s+1$/, "formatStats shows the tag");
    assert.equal([r.afterShutdown.blocks, r.afterShutdown.bytes], [0, 0], "nothing left after sqlite3_shutdown");
    assert.is(r.afterClose, null, "closed: the entry is gone");
    assert.is(r.ownLive, true);
  });

  t(`zlib on ${backend().ffi}: stats().byTag shows a stream's state under the bridge's tag while it lives (default heap and a tagged heap)`, () => {
    const z = openZlib(backend().ffi ?? "none");
    const tagOf = (tag: string) => stats().byTag.find((x) => x.tag === tag);
    const strm = malloc(112);
    const heap = Heap.create({ tag: "zlib-heap" });
    try {
      for (const c of [cAllocator({ tag: "zlib-default" }), cAllocator({ heap, tag: "zlib" })]) {
        bytes(strm, 112).fill(0);
        const v = new DataView(bytes(strm, 112).buffer, bytes(strm, 112).byteOffset, 112);
        v.setBigUint64(64, BigInt(c.address.zalloc), true);
        v.setBigUint64(72, BigInt(c.address.zfree), true);
        assert.is(z.deflateInit_(strm, 9, z.zlibVersion(), 112), 0);
        const live = tagOf(c.tag)!;
        assert.ok(live.blocks >= 3 && live.bytes >= 256 * 1024, JSON.stringify(live));
        assert.equal([live.blocks, live.bytes], [c.stats().liveBlocks, c.stats().liveBytes], "the tag holds exactly the bridge's blocks");
        if (c.heap === heap) assert.equal([tagOf("zlib-heap")!.blocks, tagOf("zlib-heap")!.heaps], [0, 1], "not under the heap's tag");
        const s = stats();
        assert.is(s.byTag.reduce((n, e) => n + e.bytes, 0), s.inUse);
        z.deflateEnd(strm);
        assert.equal([tagOf(c.tag)!.blocks, tagOf(c.tag)!.bytes], [0, 0], "gone after deflateEnd");
        c.close();
        assert.is(tagOf(c.tag), undefined);
      }
    } finally {
      free(strm);
      heap.destroy();
    }
  });

  tc(`libcurl on ${backend().ffi}: curl_global_init_mem + an 11 MiB file:// transfer, curl's memory gone after cleanup`, () => {
    const file = `${process.cwd()}/node_modules/esbuild/bin/esbuild`;
    const c = runChild("c-allocator-child", ["curl", file], env);
    assert.is(c.status, 0, describeChild(c));
    const r = c.result as Record<string, number>;
    assert.ok(r.fileSize > 4 * 1024 * 1024);
    assert.is(r.downloaded, r.fileSize);
    assert.ok(r.liveWithHandle > 0, "the easy handle's memory is in the heap");
    assert.ok(r.allocations >= 10);
    assert.is(r.afterEasyCleanup, 0);
    assert.is(r.afterGlobalCleanup, 0);
  });

  tc(`libcurl on ${backend().ffi}: a bridge closed while curl still holds its pointers answers NULL, never a crash (review finding: SIGSEGV in curl_easy_init)`, () => {
    const c = runChild("c-allocator-child", ["curl-after-close"], env);
    assert.is(c.status, 0, describeChild(c));
    const r = c.result as Record<string, number | string>;
    assert.is(r.liveAtClose, 0);
    assert.is(r.h2, 0, "curl_easy_init got NULL from the closed bridge");
    assert.ok((r.errors as number) > 0, "the late calls were counted");
    assert.match(String(r.lastError), /was closed/);
  });

  const ffi = backend().ffi;
  if (ffi === "node:ffi") {
    tc("threads on node:ffi: a call from another OS thread aborts the process (Node's rule; the heap is never reached)", () => {
      const c = runChild("c-allocator-child", ["thread"], env);
      assert.is(c.signal, "SIGABRT", describeChild(c));
      assert.match(c.stderr, /Callbacks can only be invoked on the system thread they were created on/);
      assert.is(c.result, null);
    });
  } else if (ffi === "bun") {
    tc("threads on bun: a call from another OS thread never returns to C and never reaches JS (the heap is untouched)", () => {
      const c = runChild("c-allocator-child", ["thread"], env);
      assert.is(c.status, 0, describeChild(c));
      const r = c.result as Record<string, number | boolean>;
      assert.is(r.rc, 0);
      assert.is(r.allocations, 0);
      assert.is(r.liveBlocks, 0);
    });
  } else {
    tc(`threads on ${ffi}: a call from another OS thread runs on the JS thread (queued to its event loop)`, () => {
      const c = runChild("c-allocator-child", ["thread"], env);
      assert.is(c.status, 0, describeChild(c));
      const r = c.result as Record<string, number | boolean>;
      assert.is(r.rc, 0);
      assert.is(r.allocations, 1, "the call was served");
      assert.is(r.foreign, 0, "and on the creating thread");
      assert.is(r.joined, 0);
      assert.is(r.owned, true, "the thread got the bridge's block back");
    });
  }
}

t.run();
