// Regression checks for issue 11 items 1, 2, 3, 5 and 17, shared by test/bad-input.test.ts
// (in process: secure level 0 and the secure run's level, FFI and buffer backends) and
// test/fixtures/trust-child.ts (child processes: the other secure levels, a shared
// allocator, guarded sampling). Each function throws (uvu assertion) on the first failure
// and returns how many bad calls it checked. Not a test file itself; public API only.
import * as assert from "uvu/assert";
import {
  backend, bytes, dataView, free, getOption, goodSize, Heap, InvalidPointerError, malloc, MAX_ALLOC_SIZE, mallocAligned, realloc,
  reallocAligned, reserveOsMemory, usableSize, validate, zalloc,
} from "../mod.ts";
import { checkPattern, fillPattern, hex, KiB, MiB } from "./_util.ts";

const SEG = 4 * MiB;

/** Every call that takes an address, on the default heap and on heap `h`. */
function pointerCalls(h: Heap): [string, (p: number) => unknown][] {
  return [
    ["free", (p) => free(p)],
    ["realloc", (p) => realloc(p, 64)],
    ["realloc (grow)", (p) => realloc(p, 100000)],
    ["usableSize", (p) => usableSize(p)],
    ["reallocAligned", (p) => reallocAligned(p, 64, 64)],
    ["heap.free", (p) => h.free(p)],
    ["heap.realloc", (p) => h.realloc(p, 32)],
    ["heap.usableSize", (p) => h.usableSize(p)],
    ["heap.reallocAligned", (p) => h.reallocAligned(p, 128, 256)],
  ];
}

interface Live {
  p: number;
  size: number;
  id: number;
  usable: number;
}

function checkLive(live: Live[], after: string): void {
  for (const b of live) {
    const off = checkPattern(b.p, b.size, b.id);
    if (off !== -1) assert.unreachable(`after ${after}: block ${hex(b.p)} (${b.size} B) changed at byte ${off}`);
    const u = usableSize(b.p);
    if (u !== b.usable) assert.unreachable(`after ${after}: usableSize(${hex(b.p)}) ${b.usable} -> ${u}`);
  }
}

function expectInvalid(label: string, f: () => unknown): void {
  let err: unknown = null;
  let ret: unknown;
  try {
    ret = f();
  } catch (e) {
    err = e;
  }
  if (err === null) assert.unreachable(`${label}: returned ${String(ret)} instead of throwing InvalidPointerError`);
  if (!(err instanceof InvalidPointerError)) assert.unreachable(`${label}: threw ${String(err)} instead of InvalidPointerError`);
}

/**
 * Item 1: no address but a block start handed out is accepted — interior addresses of
 * plain blocks sharing pages with mallocAligned blocks (alignments 32 B .. 1 MiB), of the
 * aligned blocks themselves, of huge blocks. Afterwards every block is intact and none of
 * them is handed out again by the mallocs that follow.
 */
export function interiorPointers(h: Heap): number {
  const live: Live[] = [];
  let id = 9000;
  const add = (p: number, size: number) => {
    assert.ok(p !== 0, `allocation of ${size} failed`);
    fillPattern(p, size, ++id);
    live.push({ p, size, id, usable: usableSize(p) });
  };
  for (const a of [32, 64, 256, 2048, 8192, 16384, 65536, 1 * MiB]) {
    for (const size of [16, 100, 4180, 5000, 7000, 40000]) {
      // a plain block of the size class an over-allocating mallocAligned would use, around aligned ones
      add(malloc(size), size);
      const q = mallocAligned(size, a);
      assert.ok(q % a === 0, `mallocAligned(${size}, ${a}) = ${hex(q)}`);
      add(q, size);
      add(malloc(size + a - 16), size + a - 16);
      add(h.mallocAligned(size, a), size);
      add(h.malloc(size), size);
    }
  }
  for (const size of [3 * MiB, 9 * MiB]) add(malloc(size), size);
  let n = 0, checked = 0;
  const calls = pointerCalls(h);
  for (const b of live) {
    const deltas = new Set<number>([1, 8, 15, 16, 48, 64, 100, 112, b.usable - 16, b.usable - 1]);
    for (let d = SEG - (b.p % SEG); d < b.usable; d += SEG) for (const e of [0, 16, 8192, 8192 + 64]) deltas.add(d + e);
    for (const d of deltas) {
      if (d <= 0 || d >= b.usable) continue;
      for (const [name, f] of calls) {
        expectInvalid(`${name}(${hex(b.p)} + ${d}) of a ${b.size}-byte block`, () => f(b.p + d));
        n++;
      }
    }
    if (++checked % 24 === 0) checkLive(live, `interior pointers into ${hex(b.p)} and 23 blocks before it`);
  }
  checkLive(live, "all interior pointers");
  // the original fault: a block freed by its interior pointer was handed out again
  const fresh: number[] = [];
  for (let i = 0; i < 400; i++) fresh.push(malloc([16, 100, 4180, 5000, 7000, 40000][i % 6]));
  const starts = new Set(live.map((b) => b.p));
  for (const p of fresh) if (starts.has(p)) assert.unreachable(`malloc handed out ${hex(p)}, a live block`);
  for (const p of fresh) free(p);
  checkLive(live, "400 mallocs");
  for (const b of live) free(b.p);
  assert.ok(validate().ok, "validate() after the interior-pointer checks");
  return n;
}

/**
 * Item 3: a huge block whose 4 MiB boundaries hold header-shaped bytes (a segment header
 * with a plausible page descriptor) — interior addresses there are rejected and nothing
 * is written into the block. `alloc` allocates the huge block (an arena-bound heap carves
 * it from its arena; after workerHandle() every heap does) and, once, a small block of the
 * same arena, freed so that the free fast path looks in that arena.
 */
export function forgedHeaders(alloc: (size: number) => number, release: (p: number) => void): number {
  const size = 14 * MiB;
  const p = alloc(size);
  assert.ok(p !== 0, "huge block");
  const words = new Int32Array(bytes(p, size).buffer, bytes(p, size).byteOffset, size / 4);
  for (let i = 0; i < words.length; i++) words[i] = (i * 0x9e3779b1) | 0;
  let bounds = 0;
  for (let b = p + SEG - (p % SEG); b + 64 * KiB <= p + size; b += SEG) {
    bounds++;
    const w = (b - p) / 4;
    // segment header: cookie-like word, kind small, page shift 16, 64 pages, 1 used, owner 1..
    words.set([0x7a110c5f, 0, 16, 64, 1, 1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0], w);
    for (let i = 0; i < 4; i++) {
      // page descriptors 0..3: 64-byte blocks from offset 0 (so every 64th byte is a "block start"),
      // used 5, key and owner the first thread tags, end far away, divisor of 64
      words.set([0, 0, 0, 5, 1000, 1000, 64, 0, i + 1, 0, 1, i + 1, 0x7fffffff, 0x7fffffff, 6, 1], w + 16 + i * 16);
    }
  }
  assert.ok(bounds >= 2, "the block spans segment boundaries");
  const snapshot = Int32Array.from(words);
  // a small block of the same arena freed first: the free fast path now looks in this arena
  release(alloc(64));
  let n = 0;
  for (let b = p + SEG - (p % SEG); b + 64 * KiB <= p + size; b += SEG) {
    for (const d of [0, 64, 8192, 8192 + 64, 65536]) {
      for (const [name, f] of [
        ["free", (x: number) => free(x)],
        ["usableSize", (x: number) => usableSize(x)],
        ["realloc", (x: number) => realloc(x, 64)],
      ] as const) {
        expectInvalid(`${name}(${hex(b + d)}) over a forged header inside a huge block`, () => f(b + d));
        n++;
      }
    }
  }
  for (let i = 0; i < words.length; i++) {
    if (words[i] !== snapshot[i]) assert.unreachable(`the huge block was written at byte ${i * 4}`);
  }
  release(p);
  assert.ok(validate().ok, "validate() after the forged headers");
  return n;
}

/** forgedHeaders on a huge block of a heap bound to an exclusive arena. */
export function forgedHeadersInArena(): number {
  const h = Heap.create({ arena: reserveOsMemory(32 * MiB, { exclusive: true }) });
  try {
    return forgedHeaders((s) => h.malloc(s), (p) => h.free(p));
  } finally {
    h.destroy();
  }
}

/** A value that is not a number, and whether coercing it would have run user code. */
function nonNumbers(p: number): { label: string; v: unknown; touched: () => boolean }[] {
  let called = false;
  const obj = { valueOf: () => ((called = true), p), toString: () => ((called = true), String(p)) };
  const out: { label: string; v: unknown; touched: () => boolean }[] = [
    { label: "{ valueOf }", v: obj, touched: () => called },
  ];
  const plain: [string, unknown][] = [
    ["String(p)", String(p)], ["[p]", [p]], ["new Number(p)", new Number(p)], ["BigInt(p)", BigInt(p)],
    ["null", null], ["undefined", undefined], ["true", true], ["Symbol()", Symbol("p")], ["() => p", () => p],
  ];
  for (const [label, v] of plain) out.push({ label, v, touched: () => false });
  return out;
}

/**
 * Item 2: every entry point that takes an address or a size throws a tsmalloc TypeError
 * for a non-number (bigint included) without coercing it; the live block named by it stays live.
 */
export function nonNumberArguments(h: Heap): number {
  let n = 0;
  const p = malloc(64);
  const hp = h.malloc(64);
  fillPattern(p, 64, 77);
  fillPattern(hp, 64, 78);
  const calls: [string, (x: unknown) => unknown][] = [
    ["free", (x) => free(x as number)],
    ["realloc(x, 16)", (x) => realloc(x as number, 16)],
    ["realloc(p, x)", (x) => realloc(p, x as number)],
    ["usableSize", (x) => usableSize(x as number)],
    ["reallocAligned(x, 16, 32)", (x) => reallocAligned(x as number, 16, 32)],
    ["malloc", (x) => malloc(x as number)],
    ["zalloc", (x) => zalloc(x as number)],
    ["mallocAligned(x, 32)", (x) => mallocAligned(x as number, 32)],
    ["mallocAligned(16, x)", (x) => mallocAligned(16, x as number)],
    ["goodSize", (x) => goodSize(x as number)],
    ["bytes(x, 8)", (x) => bytes(x as number, 8)],
    ["bytes(p, x)", (x) => bytes(p, x as number)],
    ["dataView(x, 8)", (x) => dataView(x as number, 8)],
    ["heap.free", (x) => h.free(x as number)],
    ["heap.malloc", (x) => h.malloc(x as number)],
    ["heap.calloc(x, 1)", (x) => h.calloc(x as number, 1)],
    ["heap.calloc(1, x)", (x) => h.calloc(1, x as number)],
    ["heap.realloc(x, 8)", (x) => h.realloc(x as number, 8)],
    ["heap.usableSize", (x) => h.usableSize(x as number)],
    ["heap.alloc", (x) => h.alloc(x as number)],
    ["reserveOsMemory", (x) => reserveOsMemory(x as number)],
  ];
  for (const target of [p, hp]) {
    for (const [name, f] of calls) {
      for (const { label, v, touched } of nonNumbers(target)) {
        if (name === "reserveOsMemory" && typeof v === "string") continue; // sizes like "64MiB" are strings there
        let err: unknown = null;
        try {
          f(v);
        } catch (e) {
          err = e;
        }
        const what = `${name} with ${label}`;
        if (!(err instanceof TypeError)) assert.unreachable(`${what}: ${err === null ? "did not throw" : `threw ${String(err)}`} (TypeError expected)`);
        if (!/^tsmalloc: /.test((err as Error).message)) assert.unreachable(`${what}: an engine TypeError, not tsmalloc's: ${(err as Error).message}`);
        if (touched()) assert.unreachable(`${what}: the argument was coerced (valueOf/toString called)`);
        n++;
      }
    }
  }
  // both blocks are still live: intact, and no malloc hands them out again
  assert.is(checkPattern(p, 64, 77), -1);
  assert.is(checkPattern(hp, 64, 78), -1);
  assert.ok(h.contains(hp), "the heap's block is still live");
  const more: number[] = [];
  for (let i = 0; i < 300; i++) more.push(malloc(64), h.malloc(64));
  assert.ok(!more.includes(p) && !more.includes(hp), "a block named by a non-number was handed out again");
  for (const q of more) free(q);
  free(p);
  h.free(hp);
  return n;
}

function expectRange(label: string, f: () => unknown): void {
  let err: unknown = null;
  try {
    f();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof RangeError)) assert.unreachable(`${label}: ${err === null ? "did not throw" : `threw ${String(err)}`} (RangeError expected)`);
}

/**
 * Item 5: bytes/dataView throw RangeError unless the range lies inside one live block (any
 * part of it); they never build a view over memory that is not ours (on FFI backends that
 * would kill the process at the first access).
 */
export function views(): number {
  const p = malloc(64);
  const u = usableSize(p);
  const q = malloc(5000);
  const hu = malloc(6 * MiB);
  const hs = usableSize(hu);
  const dead = malloc(8 * MiB);
  free(dead);
  const bad: [string, number, number][] = [
    ["12345", 12345, 8], ["4096", 4096, 1], ["stack-like", 0x7ffc_1234_5670, 8], ["2^47", 2 ** 47, 8],
    ["p, 2^32", p, 2 ** 32], ["p, usable + 1", p, u + 1], ["p + usable - 4, 8", p + u - 4, 8],
    ["p - 16, 32 (across a block start)", p - 16, 32], ["q, 5000 + 4096", q, usableSize(q) + 4096],
    ["huge, size + 1", hu, hs + 1], ["huge - 64 KiB", hu - 64 * KiB, 16], ["huge, 2^33", hu, 2 ** 33],
    ["freed huge block", dead, 8], ["inside a freed huge block", dead + 5 * MiB, 8],
  ];
  let n = 0;
  for (const [label, a, len] of bad) {
    expectRange(`bytes(${label})`, () => bytes(a, len));
    expectRange(`dataView(${label})`, () => dataView(a, len));
    n += 2;
  }
  // views inside a block, whole or in part, are fine
  assert.is(bytes(p, u).length, u);
  assert.is(bytes(p + 8, u - 8).length, u - 8);
  assert.is(dataView(q + 100, 200).byteLength, 200);
  assert.is(bytes(hu + hs - 16, 16).length, 16);
  bytes(hu + 5 * MiB, 64).fill(1);
  free(p);
  free(q);
  free(hu);
  return n + freedViews();
}

/**
 * Views of a block freed into a page that still holds live blocks: refused (RangeError) at every
 * level (the page's side table tells). A block threaded but never handed out likewise.
 */
function freedViews(): number {
  if (getOption("guardedSampleRate") > 0) return 0; // (every block a guarded allocation: no page of neighbours)
  const h = Heap.create();
  const ps: number[] = [];
  for (let i = 0; i < 8; i++) ps.push(h.malloc(100));
  const [a, b, c] = [ps[2], ps[3], ps[4]];
  const u = usableSize(a);
  h.free(b);
  let n = 0;
  // a block of the same page threaded but never handed out: a gap between the blocks handed out
  // (level 3+ threads in random order), else the block after the highest (in order below level 3)
  const lo = Math.min(...ps), hi = Math.max(...ps);
  let never = hi + u;
  for (let x = lo + u; x < hi; x += u) if (!ps.includes(x)) (never = x, x = hi);
  for (const [label, x, len] of [["a freed block", b, 16], ["inside a freed block", b + 32, 8], ["a never handed out block", never, 8]] as const) {
    expectRange(`bytes(${label})`, () => bytes(x, len));
    expectRange(`dataView(${label})`, () => dataView(x, len));
    n += 2;
  }
  // live neighbours stay viewable; a view from a live block across into the freed one runs past its end
  assert.is(bytes(a, u).length, u);
  assert.is(bytes(c, u).length, u);
  expectRange("bytes(from a live block into the freed one)", () => bytes(a, u + 16));
  h.destroy();
  return n + 1;
}

/** Item 17: goodSize(n) is what malloc(n) gives: its usable size, and 0 when malloc gives 0. */
export function goodSizes(): number {
  let n = 0;
  const sizes: number[] = [];
  for (let s = 0; s <= 4096; s += 7) sizes.push(s);
  for (let s = 4096; s <= 4 * MiB; s = Math.ceil(s * 1.37)) sizes.push(s, s + 1, s - 1);
  sizes.push(2 * MiB, 2 * MiB + 1, 5 * MiB + 3, 17 * MiB);
  for (const s of sizes) {
    const p = malloc(s);
    assert.ok(p !== 0);
    const u = usableSize(p);
    if (u !== goodSize(s)) assert.unreachable(`malloc(${s}): usableSize ${u}, goodSize ${goodSize(s)}`);
    free(p);
    n++;
  }
  // past one mapping's limit on the buffer backend (one ArrayBuffer, 4 GiB; review round 11:
  // goodSize gave the size, malloc 0). The FFI backends map these (virtual memory only), except
  // under debugFill, whose 0xD0 fill would write 4 GiB: the FFI run at level 0 covers them.
  if (backend().kind === "buffer" || !getOption("debugFill")) {
    for (const s of [4 * 2 ** 30 - 65536, 4 * 2 ** 30 + 1]) {
      const p = malloc(s);
      assert.is(p === 0 ? 0 : usableSize(p), goodSize(s), `malloc(${s}) gave ${p === 0 ? 0 : usableSize(p)} bytes, goodSize ${goodSize(s)}`);
      if (p !== 0) free(p);
      n++;
    }
  }
  for (const s of [MAX_ALLOC_SIZE + 1, MAX_ALLOC_SIZE + 65536, 2 ** 53]) {
    assert.is(malloc(s), 0, `malloc(${s})`);
    assert.is(goodSize(s), 0, `goodSize(${s}) = what malloc gives: 0`);
    n++;
  }
  return n;
}
