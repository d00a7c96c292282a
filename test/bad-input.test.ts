// The bad-input matrix of doc/API-CONTRACT.md, for every entry point of the default heap and of a
// Heap object:
//   - size/count/alignment that is not a number            -> TypeError
//   - negative, fractional, NaN, +-Infinity                -> RangeError
//   - alignment 0 or not a power of two                     -> RangeError
//   - integer size > MAX_ALLOC_SIZE                         -> 0 (malloc & co), AllocationError (alloc);
//     a failed realloc leaves the old block valid and intact
//   - free/realloc/usableSize of an address no heap owns    -> InvalidPointerError
//   - using a destroyed/deleted Heap object                 -> Error ("heap was destroyed")
// and the issue-11 regressions (test/_trust.ts): only block starts handed out are accepted
// (item 1), non-numbers are never coerced (item 2), bytes inside a huge block are never read
// as a segment header (item 3), views only inside one live block (item 5), goodSize is what
// malloc gives (item 17) — in process, and in child processes at secure levels 1-3, with a
// shared allocator and with guarded sampling.
// After EVERY error: ~50 live blocks of assorted sizes, filled with a pattern before the errors,
// still hold their pattern and usable size, and malloc/free still work.
//
// Pointer arguments: non-numbers must give TypeError; a negative/fractional/NaN/infinite pointer
// may give RangeError or InvalidPointerError (the contract names neither specifically; either
// is a clear, immediate error).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  alloc,
  AllocationError,
  bytes,
  calloc,
  DoubleFreeError,
  free,
  goodSize,
  Heap,
  InvalidPointerError,
  malloc,
  MAX_ALLOC_SIZE,
  mallocAligned,
  realloc,
  reallocAligned,
  usableSize,
  validate,
  zalloc,
  zallocAligned,
} from "../mod.ts";
import { describeChild, runChild } from "./_child.ts";
import { forgedHeadersInArena, goodSizes, interiorPointers, nonNumberArguments, views } from "./_trust.ts";
import { checkPattern, env, fillPattern, hex, KiB, MiB } from "./_util.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

interface Api {
  name: string;
  malloc(size: number): number;
  calloc(count: number, size: number): number;
  zalloc(size: number): number;
  realloc(ptr: number, size: number): number;
  free(ptr: number): void;
  mallocAligned(size: number, alignment: number): number;
  zallocAligned(size: number, alignment: number): number;
  reallocAligned(ptr: number, size: number, alignment: number): number;
  usableSize(ptr: number): number;
  alloc(size: number): number;
}

const defaultApi: Api = {
  name: "default",
  malloc,
  calloc,
  zalloc,
  realloc,
  free,
  mallocAligned,
  zallocAligned,
  reallocAligned,
  usableSize,
  alloc,
};

function heapApi(h: Heap, name: string): Api {
  return {
    name,
    malloc: (s) => h.malloc(s),
    calloc: (c, s) => h.calloc(c, s),
    zalloc: (s) => h.zalloc(s),
    realloc: (p, s) => h.realloc(p, s),
    free: (p) => h.free(p),
    mallocAligned: (s, a) => h.mallocAligned(s, a),
    zallocAligned: (s, a) => h.zallocAligned(s, a),
    reallocAligned: (p, s, a) => h.reallocAligned(p, s, a),
    usableSize: (p) => h.usableSize(p),
    alloc: (s) => h.alloc(s),
  };
}

// ---------------------------------------------------------------------------
// The witness set: ~50 live blocks made before any error, checked after every error.
// ---------------------------------------------------------------------------
interface Witness {
  ptr: number;
  size: number;
  id: number;
  usable: number;
}
const witnesses: Witness[] = [];
let witnessHeap: Heap | undefined;
let errorsSeen = 0;

function makeWitnesses() {
  witnessHeap = Heap.create();
  const sizes = [
    1, 7, 8, 15, 16, 17, 24, 32, 40, 48, 63, 64, 65, 100, 128, 200, 255, 256, 300, 500, 512, 640,
    1000, 1024, 1500, 2048, 3000, 4096, 5000, 8192, 8193, 12000, 16384, 30000, 65536, 65537,
    100000, 262144, 500000, 1 * MiB, 2 * MiB + 16, 5 * MiB,
  ];
  let id = 1;
  for (const s of sizes) {
    const p = malloc(s);
    assert.ok(p !== 0, `witness malloc(${s}) returned 0`);
    witnesses.push({ ptr: p, size: s, id, usable: usableSize(p) });
    fillPattern(p, s, id++);
  }
  for (const [s, a] of [[100, 64], [5000, 4096], [33, 256], [70000, 65536]]) {
    const p = mallocAligned(s, a);
    assert.ok(p !== 0 && p % a === 0);
    witnesses.push({ ptr: p, size: s, id, usable: usableSize(p) });
    fillPattern(p, s, id++);
  }
  for (const s of [24, 777, 9000, 300000]) {
    const p = witnessHeap.malloc(s);
    assert.ok(p !== 0);
    witnesses.push({ ptr: p, size: s, id, usable: usableSize(p) });
    fillPattern(p, s, id++);
  }
}

/** After an error: every witness intact, and the allocator still works. */
function intact(label: string) {
  errorsSeen++;
  for (const w of witnesses) {
    const off = checkPattern(w.ptr, w.size, w.id);
    if (off !== -1) {
      assert.unreachable(`after ${label}: witness ${hex(w.ptr)} (size ${w.size}) corrupted at byte ${off}`);
    }
    const u = usableSize(w.ptr);
    if (u !== w.usable) assert.unreachable(`after ${label}: witness ${hex(w.ptr)} usableSize ${w.usable} -> ${u}`);
  }
  const ps: number[] = [];
  for (const s of [0, 16, 100, 3000, 70000]) {
    const p = malloc(s);
    if (p === 0 || p % 16 !== 0) assert.unreachable(`after ${label}: malloc(${s}) = ${hex(p)}`);
    if (s > 0) bytes(p, s).fill(0xcc);
    ps.push(p);
  }
  for (const p of ps) free(p);
  // witnesses must survive the malloc/free round too
  for (const w of witnesses) {
    if (checkPattern(w.ptr, w.size, w.id) !== -1) {
      assert.unreachable(`after ${label} + malloc/free: witness ${hex(w.ptr)} corrupted`);
    }
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.constructor.name}: ${e.message}`;
  return `non-Error ${String(e)}`;
}

function showArg(v: unknown): string {
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number") return Object.is(v, -0) ? "-0" : String(v);
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** fn must throw an error accepted by `ok`; then the heap must be intact. */
function expectThrow(label: string, fn: () => unknown, ok: (e: unknown) => boolean, want: string) {
  let threw = false;
  let err: unknown;
  let ret: unknown;
  try {
    ret = fn();
  } catch (e) {
    threw = true;
    err = e;
  }
  if (!threw) assert.unreachable(`${label}: returned ${showArg(ret)} instead of throwing ${want}`);
  if (!ok(err)) assert.unreachable(`${label}: threw ${describe(err)} instead of ${want}`);
  intact(label);
}

const isType = (e: unknown) => e instanceof TypeError;
const isRange = (e: unknown) => e instanceof RangeError;
const isInvalid = (e: unknown) => e instanceof InvalidPointerError;
const isRangeOrInvalid = (e: unknown) => e instanceof RangeError || e instanceof InvalidPointerError;

const NOT_NUMBERS: unknown[] = ["16", "abc", "", undefined, null, 16n, 0n, {}, [], [16], true, () => 16];
const BAD_NUMBERS: number[] = [-1, -16, 1.5, 0.5, 16.000001, NaN, Infinity, -Infinity, -(2 ** 60)];
const BAD_ALIGNMENTS: number[] = [0, 3, 24, 48, 6, 12, 100, 4095, 4097, 2 ** 20 + 2 ** 19];
const OVERSIZED: number[] = [MAX_ALLOC_SIZE + 1, MAX_ALLOC_SIZE + 4096, 2 ** 60];

/** A fresh block of `api` filled with a pattern, for realloc cases; `done` checks and frees it. */
function victim(api: Api, size = 200) {
  const p = api.malloc(size);
  assert.ok(p !== 0);
  const id = 0x7000 + (errorsSeen & 0xfff);
  fillPattern(p, size, id);
  const u = usableSize(p);
  return {
    p,
    done(label: string) {
      const off = checkPattern(p, size, id);
      if (off !== -1) assert.unreachable(`${label}: the realloc'ed block changed at byte ${off}`);
      if (usableSize(p) !== u) assert.unreachable(`${label}: the realloc'ed block's usableSize changed`);
      api.free(p);
    },
  };
}

type SizeEntry = { name: string; call: (api: Api, x: Any) => unknown; usesVictim?: boolean };
const SIZE_ENTRIES: SizeEntry[] = [
  { name: "malloc(x)", call: (a, x) => a.malloc(x) },
  { name: "calloc(x, 8)", call: (a, x) => a.calloc(x, 8) },
  { name: "calloc(8, x)", call: (a, x) => a.calloc(8, x) },
  { name: "zalloc(x)", call: (a, x) => a.zalloc(x) },
  { name: "realloc(0, x)", call: (a, x) => a.realloc(0, x) },
  { name: "mallocAligned(x, 16)", call: (a, x) => a.mallocAligned(x, 16) },
  { name: "mallocAligned(x, 4096)", call: (a, x) => a.mallocAligned(x, 4096) },
  { name: "zallocAligned(x, 64)", call: (a, x) => a.zallocAligned(x, 64) },
  { name: "alloc(x)", call: (a, x) => a.alloc(x) },
];
const VICTIM_SIZE_ENTRIES: SizeEntry[] = [
  { name: "realloc(p, x)", call: (a, x) => a.realloc(victimPtr, x), usesVictim: true },
  { name: "reallocAligned(p, x, 32)", call: (a, x) => a.reallocAligned(victimPtr, x, 32), usesVictim: true },
];
const ALIGN_ENTRIES: SizeEntry[] = [
  { name: "mallocAligned(64, x)", call: (a, x) => a.mallocAligned(64, x) },
  { name: "zallocAligned(64, x)", call: (a, x) => a.zallocAligned(64, x) },
  { name: "reallocAligned(p, 64, x)", call: (a, x) => a.reallocAligned(victimPtr, 64, x), usesVictim: true },
];
const PTR_ENTRIES: SizeEntry[] = [
  { name: "free(x)", call: (a, x) => a.free(x) },
  { name: "realloc(x, 16)", call: (a, x) => a.realloc(x, 16) },
  { name: "reallocAligned(x, 16, 16)", call: (a, x) => a.reallocAligned(x, 16, 16) },
  { name: "usableSize(x)", call: (a, x) => a.usableSize(x) },
];
let victimPtr = 0;

let apis: Api[] = [];
let argHeap: Heap | undefined;

/** Run `entry` with bad value x against api; realloc-style entries get a fresh patterned victim. */
function runBad(api: Api, entry: SizeEntry, x: unknown, ok: (e: unknown) => boolean, want: string) {
  const label = `${api.name}.${entry.name.replace(/\bx\b/, showArg(x))}`;
  if (entry.usesVictim) {
    const v = victim(api);
    victimPtr = v.p;
    expectThrow(label, () => entry.call(api, x), ok, want);
    v.done(label);
  } else {
    expectThrow(label, () => entry.call(api, x), ok, want);
  }
}

const t = suite("bad-input");

t.before(() => {
  makeWitnesses();
  argHeap = Heap.create();
  apis = [defaultApi, heapApi(argHeap, "heap")];
});

t.after(() => {
  for (const w of witnesses) {
    assert.is(checkPattern(w.ptr, w.size, w.id), -1, `witness ${hex(w.ptr)} corrupted at the end`);
    free(w.ptr);
  }
  witnesses.length = 0;
  witnessHeap?.destroy();
  argHeap?.destroy();
});

t("free(0) is a no-op everywhere; realloc(0, n) = malloc(n)", () => {
  free(0);
  for (const a of apis) {
    a.free(0);
    const p = a.realloc(0, 100);
    assert.ok(p !== 0 && p % 16 === 0 && usableSize(p) >= 100);
    a.free(p);
  }
  assert.is(usableSize(0), 0);
  intact("free(0)");
});

t("size/count not a number -> TypeError", () => {
  for (const a of apis) {
    for (const e of [...SIZE_ENTRIES, ...VICTIM_SIZE_ENTRIES]) {
      for (const x of NOT_NUMBERS) runBad(a, e, x, isType, "TypeError");
    }
  }
  for (const x of NOT_NUMBERS) {
    expectThrow(`goodSize(${showArg(x)})`, () => goodSize(x as Any), isType, "TypeError");
  }
});

t("size/count negative, fractional, NaN, +-Infinity -> RangeError", () => {
  for (const a of apis) {
    for (const e of [...SIZE_ENTRIES, ...VICTIM_SIZE_ENTRIES]) {
      for (const x of BAD_NUMBERS) runBad(a, e, x, isRange, "RangeError");
    }
  }
  for (const x of BAD_NUMBERS) {
    expectThrow(`goodSize(${showArg(x)})`, () => goodSize(x), isRange, "RangeError");
  }
});

t("alignment not a number -> TypeError", () => {
  for (const a of apis) {
    for (const e of ALIGN_ENTRIES) for (const x of NOT_NUMBERS) runBad(a, e, x, isType, "TypeError");
  }
});

t("alignment 0, not a power of two, negative, fractional, NaN, +-Infinity -> RangeError", () => {
  for (const a of apis) {
    for (const e of ALIGN_ENTRIES) {
      for (const x of [...BAD_ALIGNMENTS, ...BAD_NUMBERS]) runBad(a, e, x, isRange, "RangeError");
    }
  }
});

t("oversized sizes -> 0 from malloc & co, AllocationError from alloc", () => {
  for (const a of apis) {
    for (const x of OVERSIZED) {
      const label = (s: string) => `${a.name}.${s.replace("x", String(x))}`;
      assert.is(a.malloc(x), 0, label("malloc(x)"));
      assert.is(a.calloc(x, 1), 0, label("calloc(x, 1)"));
      assert.is(a.calloc(1, x), 0, label("calloc(1, x)"));
      assert.is(a.zalloc(x), 0, label("zalloc(x)"));
      assert.is(a.realloc(0, x), 0, label("realloc(0, x)"));
      assert.is(a.mallocAligned(x, 16), 0, label("mallocAligned(x, 16)"));
      assert.is(a.mallocAligned(x, 4096), 0, label("mallocAligned(x, 4096)"));
      assert.is(a.zallocAligned(x, 16), 0, label("zallocAligned(x, 16)"));
      // count * size just over the limit
      assert.is(a.calloc(Math.floor(MAX_ALLOC_SIZE / 8) + 1, 8), 0, label("calloc(MAX/8+1, 8)"));
      intact(label("oversized"));

      // a failed realloc leaves the old block valid and intact
      for (const [nm, f] of [
        ["realloc(p, x)", (p: number) => a.realloc(p, x)],
        ["reallocAligned(p, x, 16)", (p: number) => a.reallocAligned(p, x, 16)],
      ] as const) {
        for (const size of [40, 5000, 200000, 3 * MiB]) {
          const p = a.malloc(size);
          assert.ok(p !== 0);
          const id = size + x % 1000;
          fillPattern(p, size, id);
          const u = usableSize(p);
          assert.is(f(p), 0, label(nm));
          assert.is(checkPattern(p, size, id), -1, `${label(nm)}: old block of ${size} changed`);
          assert.is(usableSize(p), u);
          // still a valid block: it can grow and be freed normally
          const q = a.realloc(p, size * 2);
          assert.ok(q !== 0);
          assert.is(checkPattern(q, size, id), -1, `${label(nm)}: contents lost in the next realloc`);
          a.free(q);
        }
      }
      intact(label("realloc oversized"));

      let err: unknown;
      try {
        a.alloc(x);
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof AllocationError, `${label("alloc(x)")} threw ${describe(err)}`);
      const ae = err as AllocationError;
      assert.ok(ae instanceof Error);
      assert.is(ae.size, x, "AllocationError.size");
      assert.type(ae.stats, "object");
      assert.ok(ae.stats !== null);
      assert.type(ae.stats.inUse, "number");
      assert.type(ae.stats.reserved, "number");
      assert.type(ae.stats.committed, "number");
      assert.ok(ae.stats.inUse > 0, "AllocationError.stats.inUse should count the live witnesses");
      intact(label("alloc(x)"));
    }
  }
});

t("malloc(MAX_ALLOC_SIZE) returns 0 or a usable block (never throws)", () => {
  const p = malloc(MAX_ALLOC_SIZE);
  if (p !== 0) {
    assert.ok(p % 16 === 0, `malloc(MAX_ALLOC_SIZE) = ${hex(p)} is not 16-aligned`);
    const u = usableSize(p);
    assert.ok(u >= MAX_ALLOC_SIZE, `malloc(MAX_ALLOC_SIZE) = ${hex(p)}: usableSize ${u} < ${MAX_ALLOC_SIZE}`);
    free(p);
  }
  intact("malloc(MAX_ALLOC_SIZE)");
});

t("pointer argument not a number -> TypeError", () => {
  for (const a of apis) {
    for (const e of PTR_ENTRIES) for (const x of NOT_NUMBERS) runBad(a, e, x, isType, "TypeError");
  }
});

t("pointer argument negative, fractional, NaN, +-Infinity -> RangeError or InvalidPointerError", () => {
  for (const a of apis) {
    for (const e of PTR_ENTRIES) {
      for (const x of BAD_NUMBERS) runBad(a, e, x, isRangeOrInvalid, "RangeError or InvalidPointerError");
    }
  }
});

t("addresses no heap owns -> InvalidPointerError", () => {
  const far = [
    0x1234560, // never allocated, far outside
    0x3990080, // mimalloc #1087
    16,
    4096,
    0x10000,
    0x7ffc_1234_5670, // stack-like
    0x7fff_ffff_f000,
    2 ** 47 + 0x123450, // beyond the user address space
    2 ** 52 - 16,
    2 ** 53 - 16, // largest "exact" 16-aligned numbers
  ];
  // random huge 16-aligned numbers above the 48-bit user address space (never ours on any backend)
  for (let i = 0; i < 6; i++) far.push(2 ** 48 + 16 * Math.floor(Math.random() * 2 ** 48));
  for (const a of apis) {
    for (const e of PTR_ENTRIES) {
      for (const x of far) runBad(a, e, x, isInvalid, "InvalidPointerError");
    }
  }
});

t("a freed huge block's address (and addresses inside its range) -> InvalidPointerError", () => {
  for (const a of apis) {
    for (const e of PTR_ENTRIES) {
      for (const delta of [0, 16, 64 * KiB, 1 * MiB, 1 * MiB + 16, 4 * MiB]) {
        // fresh each time: nothing is allocated between the free and the bad call
        const h = a.malloc(8 * MiB);
        assert.ok(h !== 0);
        bytes(h, 8 * MiB).fill(0x77);
        a.free(h);
        runBad(a, e, h + delta, isInvalid, "InvalidPointerError");
      }
    }
  }
});

t("inside a freed huge block: free/realloc of its start is a DoubleFreeError, of any other address InvalidPointerError \"not the start of a block\", never DoubleFreeError (review round 4)", () => {
  const h = malloc(5 * MiB);
  assert.ok(h !== 0);
  free(h);
  for (const delta of [16, 4096, 64 * KiB, 4 * MiB]) {
    for (const f of [() => free(h + delta), () => realloc(h + delta, 100)]) {
      assert.throws(f, (e: Error) => e instanceof InvalidPointerError && !(e instanceof DoubleFreeError) && /not the start of a block/.test(e.message), `+${delta}`);
    }
  }
  assert.throws(() => free(h), (e: Error) => e instanceof DoubleFreeError, "its start: a double free");
  assert.ok(validate().ok);
});

t("interior, misaligned addresses of live blocks -> InvalidPointerError, block intact", () => {
  for (const a of apis) {
    for (const e of PTR_ENTRIES) {
      for (const size of [64, 1000, 100000, 3 * MiB]) {
        for (const delta of [1, 3, 8, 15]) {
          const p = a.malloc(size);
          assert.ok(p !== 0);
          fillPattern(p, size, size + delta);
          const u = usableSize(p);
          runBad(a, e, p + delta, isInvalid, "InvalidPointerError");
          assert.is(checkPattern(p, size, size + delta), -1, `block changed after ${e.name} of p+${delta}`);
          assert.is(usableSize(p), u);
          a.free(p);
        }
      }
    }
  }
});

t("blocks of an already-destroyed heap -> InvalidPointerError", () => {
  for (const e of PTR_ENTRIES) {
    for (const size of [64, 3000, 100000, 5 * MiB]) {
      const h = Heap.create();
      const ps: number[] = [];
      for (let i = 0; i < 5; i++) {
        const p = h.malloc(size);
        assert.ok(p !== 0);
        bytes(p, Math.min(size, 4096)).fill(0x99);
        ps.push(p);
      }
      h.destroy();
      runBad(defaultApi, e, ps[2], isInvalid, "InvalidPointerError");
    }
  }
});

t("using a destroyed or deleted Heap object -> Error", () => {
  const isErr = (e: unknown) => e instanceof Error && /destroy|delet/i.test((e as Error).message);
  for (const how of ["destroy", "delete", "dispose"] as const) {
    const h = Heap.create();
    const keep = h.malloc(100);
    fillPattern(keep, 100, 4242);
    if (how === "destroy") h.destroy();
    else if (how === "delete") h.delete();
    else h[Symbol.dispose]();
    const want = `Error ("heap was destroyed") after ${how}()`;
    expectThrow(`heap.malloc(16) after ${how}`, () => h.malloc(16), isErr, want);
    expectThrow(`heap.calloc(1, 16) after ${how}`, () => h.calloc(1, 16), isErr, want);
    expectThrow(`heap.zalloc(16) after ${how}`, () => h.zalloc(16), isErr, want);
    expectThrow(`heap.realloc(0, 16) after ${how}`, () => h.realloc(0, 16), isErr, want);
    expectThrow(`heap.mallocAligned(16, 64) after ${how}`, () => h.mallocAligned(16, 64), isErr, want);
    expectThrow(`heap.zallocAligned(16, 64) after ${how}`, () => h.zallocAligned(16, 64), isErr, want);
    expectThrow(`heap.reallocAligned(0, 16, 64) after ${how}`, () => h.reallocAligned(0, 16, 64), isErr, want);
    expectThrow(`heap.alloc(16) after ${how}`, () => h.alloc(16), isErr, want);
    expectThrow(`heap.visit() after ${how}`, () => h.visit(() => {}), isErr, want);
    if (how === "delete") {
      // the block now belongs to the default heap and is still valid
      assert.is(checkPattern(keep, 100, 4242), -1);
      free(keep);
    }
  }
});

t("issue 11 item 1: free/realloc/usableSize/reallocAligned and heap methods accept only block starts handed out (pages with aligned blocks, aligned blocks, huge blocks)", () => {
  assert.ok(interiorPointers(argHeap!) > 10000);
  intact("interior pointers");
});

t("issue 11 item 3: header-shaped bytes at 4 MiB boundaries inside a huge block carved from an arena are never trusted", () => {
  assert.ok(forgedHeadersInArena() > 0);
  intact("forged headers");
});

t("issue 11 item 2: non-numbers ({ valueOf }, strings, arrays, Number objects, bigint, ...) -> tsmalloc TypeError, never coerced, block still live", () => {
  assert.ok(nonNumberArguments(argHeap!) > 300);
  intact("non-number arguments");
});

t("issue 11 item 5: bytes/dataView outside one live block (foreign, too long, freed huge block) -> RangeError, never a view", () => {
  assert.ok(views() > 20);
  intact("views");
});

t("issue 11 item 17: goodSize(n) === usableSize(malloc(n)), and 0 (what malloc gives) above MAX_ALLOC_SIZE", () => {
  assert.ok(goodSizes() > 500);
});

/** The same checks in a child process of this runtime and backend (secure level and sharing are fixed at first use). */
function trustChild(scenario: string, level: number): Record<string, unknown> {
  const backend = env("TSMALLOC_BACKEND") === "buffer" ? "buffer" : "ffi";
  const c = runChild("trust-child", [scenario], { TSMALLOC_BACKEND: backend, TSMALLOC_SECURE: String(level) });
  assert.ok(c.status === 0 && c.result !== null, `trust-child ${scenario} at level ${level}: ${describeChild(c)}`);
  const r = c.result!;
  assert.is(r.secure, level);
  for (const k of ["interior", "forgedArena", "nonNumbers", "views", "goodSizes"]) assert.ok((r[k] as number) > 0, `${k} checks ran`);
  return r;
}

for (const level of [1, 2, 3]) {
  t(`issue 11 items 1, 2, 3, 5, 17 at secure level ${level} (child process)`, () => {
    trustChild("levels", level);
  });
}

t("issue 11 items 1, 2, 3, 5, 17 with a shared allocator, incl. forged headers in another worker's huge block (child process, level 0: sharing refuses guard pages)", () => {
  const r = trustChild("shared", 0);
  assert.ok((r.forgedDefault as number) > 0 && (r.forgedForeign as number) > 0);
  assert.ok((r.reusedRuns as number) >= 24, "a freed run's region reused (huge.ts freedRuns)");
});

t("issue 11 items 1, 2, 5, 17 with every allocation sampled for a guarded allocation: usableSize === goodSize (child process)", () => {
  trustChild("guarded", 0);
});

t("witnesses saw every error", () => {
  assert.ok(errorsSeen > 500, `only ${errorsSeen} errors were checked`);
  intact("final");
});

t.run();
