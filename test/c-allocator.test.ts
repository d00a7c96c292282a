// cAllocator (issue 14): C libraries allocate through a tsmalloc heap. The bridge's C
// semantics and accounting are checked through a stand-in Os that hands each callback's JS
// function back (so arguments arrive exactly as each FFI delivers them: bigint, negative
// size_t from koffi); the native trampolines are checked with real clients (zlib here,
// SQLite and curl in child processes: their allocators are process-wide).
import { createRequire } from "node:module";
import process from "node:process";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { backend, bytes, cAllocator, type CAllocator, free, Heap, malloc, MAX_ALLOC_SIZE, usableSize } from "../mod.ts";
import { C_FUNCTIONS, CAllocatorCore, type CFunctionName } from "../src/c-allocator.ts";
import { ctx } from "../src/context.ts";
import type { Os } from "../src/os.ts";
import { zlibExample } from "../examples/zlib.ts";
import { describeChild, runChild } from "./_child.ts";

const t = suite("c-allocator");
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

t("bridge: never throws into C, even when its heap was destroyed under it", () => {
  const heap = Heap.create();
  const { core, h } = fake(heap);
  const p = h.malloc(64);
  heap.destroy();
  assert.is(h.malloc(64), 0);
  assert.is(h.realloc(0, 64), 0);
  assert.is(h.strdup(0), 0);
  assert.not.throws(() => h.free(p));
  assert.ok(core.stats().errors >= 3, JSON.stringify(core.stats()));
  core.closeBridge(true);
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
  assert.is(closed(), C_FUNCTIONS.length, "every trampoline freed");
  core.closeBridge(false);
  assert.is(closed(), C_FUNCTIONS.length, "second close does nothing");
  const other = fake(heap, "forced");
  const q = other.h.malloc(100);
  other.core.closeBridge(true);
  assert.ok(heap.contains(q), "forced: the block stays allocated in the heap");
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
  t(`SQLite on ${backend().ffi}: 100,000 rows, xSize/xRoundup are usableSize/goodSize, memory gone after shutdown`, () => {
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

  t(`SQLite on ${backend().ffi}: a maxCommitted budget gives SQLITE_NOMEM, the database keeps working, nothing leaks`, () => {
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

  t(`libcurl on ${backend().ffi}: curl_global_init_mem + an 11 MiB file:// transfer, curl's memory gone after cleanup`, () => {
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

  const ffi = backend().ffi;
  if (ffi === "node:ffi") {
    t("threads on node:ffi: a call from another OS thread aborts the process (Node's rule; the heap is never reached)", () => {
      const c = runChild("c-allocator-child", ["thread"], env);
      assert.is(c.signal, "SIGABRT", describeChild(c));
      assert.match(c.stderr, /Callbacks can only be invoked on the system thread they were created on/);
      assert.is(c.result, null);
    });
  } else if (ffi === "bun") {
    t("threads on bun: a call from another OS thread never returns to C and never reaches JS (the heap is untouched)", () => {
      const c = runChild("c-allocator-child", ["thread"], env);
      assert.is(c.status, 0, describeChild(c));
      const r = c.result as Record<string, number | boolean>;
      assert.is(r.rc, 0);
      assert.is(r.allocations, 0);
      assert.is(r.liveBlocks, 0);
    });
  } else {
    t(`threads on ${ffi}: a call from another OS thread runs on the JS thread (queued to its event loop)`, () => {
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
