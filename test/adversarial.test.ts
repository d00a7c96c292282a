// The adversarial layer (issue 11): random valid and invalid calls against a shadow model.
//
// Every live block carries a fill pattern (position-dependent, per block id) and the model
// knows its address, size and usable size. Valid calls (malloc, calloc, zalloc, alloc,
// mallocAligned, zallocAligned, realloc, reallocAligned, free, usableSize, goodSize, views,
// on the default heap, a second heap and a heap bound to an exclusive arena) are checked
// against the model: no address handed out twice or overlapping a live block, alignment,
// usableSize === goodSize for plain allocations, zeroed memory where promised, contents kept
// by realloc. About 5% of the calls are invalid, each of a kind whose error is
// deterministic: interior addresses of live blocks (also at the 4 MiB boundaries inside
// huge blocks), foreign and stack-like addresses, recently freed blocks (the DoubleFreeError
// family at every level: the side tables), non-numbers, bad sizes and alignments,
// views past a block's end or over foreign memory. After every invalid call every live
// block's contents are checked. The live set stays <= 128 blocks so that costs O(live).
//
// The seed is printed; replay a run with TSMALLOC_ADVERSARIAL_SEED=<seed> (and
// TSMALLOC_ADVERSARIAL_OPS=<n>; default 350,000 per run: npm test runs this file three
// times per runtime, FFI, buffer and secure level 4, four times on Deno).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  alloc, AllocationError, bytes, calloc, dataView, DoubleFreeError, free, getOption, goodSize, Heap, InvalidPointerError, malloc,
  MAX_ALLOC_SIZE, mallocAligned, realloc, reallocAligned, reserveOsMemory, usableSize, validate, zalloc,
  zallocAligned,
} from "../mod.ts";
import { env, hex, makeRng, MiB } from "./_util.ts";

const seedEnv = env("TSMALLOC_ADVERSARIAL_SEED");
const SEED = seedEnv !== undefined && seedEnv !== "" ? Number(seedEnv) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
const OPS = Number(env("TSMALLOC_ADVERSARIAL_OPS") || 350_000);
const LIVE_MAX = 128;
const SEG = 4 * MiB;
/** Blocks larger than this get sampled patterns (head, tail, a stride). */
const BIG = 16 * 1024;

interface Blk {
  p: number;
  size: number;
  usable: number;
  id: number;
  /** 0 default heap, 1 heap h, 2 the arena-bound heap. */
  heap: number;
  w: Int32Array;
  tail: Uint8Array | null;
  /** Words the pattern was written over, and whether only a sample of them (size > BIG). */
  nw: number;
  sampled: boolean;
}

const t = suite("adversarial");

t(`random valid and invalid calls against a shadow model (seed ${SEED}, ${OPS} operations)`, () => {
  console.log(`adversarial: seed ${SEED}, ${OPS} operations (replay: TSMALLOC_ADVERSARIAL_SEED=${SEED} TSMALLOC_ADVERSARIAL_OPS=${OPS})`);
  const rnd = makeRng(SEED);
  const below = (n: number) => rnd() % n;
  const chance = (x: number) => rnd() < x * 4294967296;
  const level = getOption("secure") as number;

  const h = Heap.create();
  const ah = Heap.create({ arena: reserveOsMemory(96 * MiB, { exclusive: true }) });
  const heaps = [null, h, ah] as const;
  const live: Blk[] = [];
  const byAddr = new Map<number, Blk>();
  let nextId = 1;
  let op = 0;
  let desc = "";
  /** A huge block freed by the previous call (nothing allocated since), or 0. */
  let justFreedHuge = 0;
  const recentlyFreed: number[] = [];
  const counts = { valid: 0, invalid: 0, doubleFreeErrors: 0, arenaFull: 0, checkedWords: 0 };

  const fail = (what: string): never => {
    assert.unreachable(`seed ${SEED}, operation ${op} (${desc}): ${what}`);
    throw new Error("unreachable");
  };

  // ---- patterns
  const key = (id: number) => Math.imul(id, 0x9e3779b1) | 0;
  function views(p: number, size: number): { w: Int32Array; tail: Uint8Array | null } {
    const n = size >>> 2;
    const w = n > 0 ? new Int32Array(bytes(p, n * 4).buffer, bytes(p, n * 4).byteOffset, n) : new Int32Array(0);
    const tail = (size & 3) !== 0 ? bytes(p + n * 4, size & 3) : null;
    return { w, tail };
  }
  /** Word indices a pattern covers: all of them for small blocks, head, tail and a stride for big ones. */
  function forWords(n: number, big: boolean, f: (i: number) => void): void {
    if (!big) {
      for (let i = 0; i < n; i++) f(i);
      return;
    }
    for (let i = 0; i < 256; i++) f(i);
    for (let i = 256; i < n - 256; i += 1021) f(i);
    for (let i = Math.max(256, n - 256); i < n; i++) f(i);
  }
  function fill(b: Blk): void {
    const v = key(b.id), w = b.w;
    if (!b.sampled) for (let i = 0; i < w.length; i++) w[i] = v ^ i;
    else forWords(w.length, true, (i) => (w[i] = v ^ i));
    if (b.tail !== null) for (let k = 0; k < b.tail.length; k++) b.tail[k] = (v + k) & 255;
  }
  /** b's pattern, read through view w (b's own, or a realloc's new block) up to `limit` bytes. */
  function check(b: Blk, after: string, w: Int32Array = b.w, limit = b.size, at = b.p): void {
    const v = key(b.id);
    const n = Math.min(b.nw, limit >>> 2);
    let bad = -1;
    if (!b.sampled) {
      for (let i = 0; i < n; i++) {
        if (w[i] !== (v ^ i)) {
          bad = i;
          break;
        }
      }
      counts.checkedWords += n;
    } else {
      forWords(b.nw, true, (i) => {
        if (bad < 0 && i < n && w[i] !== (v ^ i)) bad = i;
      });
    }
    if (bad >= 0) fail(`${after}: block ${hex(at)} (${b.size} B, id ${b.id}) changed at byte ${bad * 4}`);
    if (b.tail !== null && limit >= b.size) {
      const tail = at === b.p ? b.tail : bytes(at + b.nw * 4, b.tail.length);
      for (let k = 0; k < tail.length; k++) if (tail[k] !== ((v + k) & 255)) fail(`${after}: block ${hex(at)} tail byte ${k} changed`);
    }
  }
  function checkAll(after: string): void {
    for (const b of live) check(b, after);
  }

  // ---- the model
  function overlaps(p: number, usable: number, except: number): Blk | null {
    for (const b of live) if (b.p !== except && p < b.p + b.usable && b.p < p + usable) return b;
    return null;
  }
  function adopt(p: number, size: number, heap: number, what: string, align = 16, exact = true, zeroed = false): void {
    if (p === 0) {
      if (heap === 2) {
        counts.arenaFull++; // the exclusive arena is full: 0 is the documented answer
        return;
      }
      fail(`${what} returned 0`);
    }
    if (p % align !== 0) fail(`${what} = ${hex(p)} is not ${align}-aligned`);
    const usable = usableSize(p);
    if (usable < size) fail(`${what}: usableSize ${usable} < ${size}`);
    if (exact && usable !== goodSize(size)) fail(`${what}: usableSize ${usable} !== goodSize ${goodSize(size)}`);
    const o = overlaps(p, usable, 0);
    if (o !== null) fail(`${what} = ${hex(p)} (+${usable}) overlaps the live block ${hex(o.p)} (+${o.usable})`);
    const { w, tail } = views(p, size);
    if (zeroed) {
      let nz = -1;
      forWords(w.length, size > BIG, (i) => {
        if (nz < 0 && w[i] !== 0) nz = i;
      });
      if (nz >= 0 || (tail !== null && tail.some((x) => x !== 0))) fail(`${what} = ${hex(p)} is not zeroed`);
    }
    const b: Blk = { p, size, usable, id: nextId++, heap, w, tail, nw: w.length, sampled: size > BIG };
    fill(b);
    live.push(b);
    byAddr.set(p, b);
    justFreedHuge = 0;
  }
  function drop(b: Blk): void {
    const i = live.indexOf(b);
    live[i] = live[live.length - 1];
    live.pop();
    byAddr.delete(b.p);
    recentlyFreed.push(b.p);
    if (recentlyFreed.length > 64) recentlyFreed.shift();
  }
  function randomSize(heap: number): number {
    const r = below(1000);
    if (r < 600) return below(129);
    if (r < 900) return 129 + below(896);
    if (r < 985) return 1025 + below(15360);
    if (r < 998) return 16385 + below(245760);
    // huge, a few at a time (the arena heap's up to 12 MiB, spanning segment boundaries)
    if (live.filter((b) => b.size > 2 * MiB).length >= 4) return below(129);
    return 2 * MiB + 1 + below(heap === 2 ? 10 * MiB : 6 * MiB);
  }
  const pick = () => live[below(live.length)];

  // ---- valid calls
  function validCall(): void {
    counts.valid++;
    const r = below(100);
    if (live.length >= LIVE_MAX || (live.length > 20 && r < 32)) {
      const b = pick();
      desc = `free(${hex(b.p)}) of ${b.size} B`;
      check(b, "before free");
      const wasHuge = b.size > 2 * MiB;
      if (chance(0.5)) free(b.p);
      else (heaps[b.heap] ?? h).free(b.p); // any heap's free takes any block
      drop(b);
      justFreedHuge = wasHuge ? b.p : 0;
      return;
    }
    if (r < 70) {
      const heap = r < 50 ? 0 : r < 62 ? 1 : 2;
      const size = randomSize(heap);
      const hp = heaps[heap];
      const k = below(5);
      if (k === 0) {
        desc = `calloc(${size}, 1) heap ${heap}`;
        adopt(hp === null ? calloc(size, 1) : hp.calloc(size, 1), size, heap, desc, 16, true, true);
      } else if (k === 1) {
        desc = `zalloc(${size}) heap ${heap}`;
        adopt(hp === null ? zalloc(size) : hp.zalloc(size), size, heap, desc, 16, true, true);
      } else if (k === 2 && heap !== 2) {
        desc = `alloc(${size}) heap ${heap}`;
        adopt(hp === null ? alloc(size) : hp.alloc(size), size, heap, desc);
      } else {
        desc = `malloc(${size}) heap ${heap}`;
        adopt(hp === null ? malloc(size) : hp.malloc(size), size, heap, desc);
      }
      return;
    }
    if (r < 76) {
      const heap = below(2);
      const a = 2 ** (4 + below(below(4) === 0 ? 17 : 10)); // 16 B .. 1 MiB, mostly up to 8 KiB
      const size = below(4) === 0 ? below(40000) : below(600);
      const zero = chance(0.3);
      desc = `${zero ? "zallocAligned" : "mallocAligned"}(${size}, ${a}) heap ${heap}`;
      const hp = heaps[heap];
      const p = zero ? (hp === null ? zallocAligned(size, a) : hp.zallocAligned(size, a)) : (hp === null ? mallocAligned(size, a) : hp.mallocAligned(size, a));
      adopt(p, size, heap, desc, a, false, zero);
      return;
    }
    if (r < 86 && live.length > 0) {
      const b = pick();
      const aligned = chance(0.2);
      const a = aligned ? 2 ** (4 + below(8)) : 16;
      const n = chance(0.5) ? below(b.size * 2 + 64) : randomSize(b.heap === 2 ? 2 : 0);
      desc = `${aligned ? `reallocAligned(${hex(b.p)}, ${n}, ${a})` : `realloc(${hex(b.p)}, ${n})`} of ${b.size} B`;
      check(b, "before realloc");
      const q = aligned ? (heaps[b.heap] ?? h).reallocAligned(b.p, n, a) : realloc(b.p, n);
      if (q === 0) {
        if (b.heap === 2) {
          counts.arenaFull++; // the arena is full; the block stays valid
          check(b, "after a failed realloc");
          return;
        }
        fail("realloc returned 0");
      }
      if (q % a !== 0) fail(`${hex(q)} is not ${a}-aligned`);
      // the old contents up to min(size, n) moved with it
      const keep = Math.min(b.size, n);
      check(b, "realloc kept the contents", views(q, keep).w, keep, q);
      const usable = usableSize(q);
      if (usable < n) fail(`usableSize ${usable} < ${n}`);
      const o = overlaps(q, usable, b.p);
      if (o !== null) fail(`${hex(q)} overlaps the live block ${hex(o.p)}`);
      drop(b);
      if (q === b.p) recentlyFreed.pop(); // grown or shrunk in place: still live
      const nv = views(q, n);
      const nb: Blk = { p: q, size: n, usable, id: nextId++, heap: b.heap, w: nv.w, tail: nv.tail, nw: nv.w.length, sampled: n > BIG };
      fill(nb);
      live.push(nb);
      byAddr.set(q, nb);
      justFreedHuge = 0;
      return;
    }
    if (r < 92 && live.length > 0) {
      const b = pick();
      desc = `usableSize(${hex(b.p)})`;
      const u = chance(0.5) ? usableSize(b.p) : (heaps[b.heap] ?? h).usableSize(b.p);
      if (u !== b.usable) fail(`usableSize ${u}, was ${b.usable}`);
      return;
    }
    if (r < 97 && live.length > 0) {
      const b = pick();
      const d = below(b.usable); // (an empty view too needs an address inside the block)
      const len = below(b.usable - d + 1);
      desc = `bytes(${hex(b.p)} + ${d}, ${len}) of a ${b.usable}-byte block`;
      const v = chance(0.5) ? bytes(b.p + d, len) : dataView(b.p + d, len);
      if (v.byteLength !== len) fail(`a view of ${v.byteLength} bytes`);
      return;
    }
    const n = chance(0.9) ? below(5 * MiB) : below(2 ** 40);
    desc = `goodSize(${n})`;
    const g = goodSize(n);
    if (g === 0) {
      // no mapping of this backend holds n (the buffer backend: over 4 GiB): malloc agrees
      const p = malloc(n);
      if (p !== 0) {
        free(p);
        fail(`goodSize 0 but malloc gave a block`);
      }
    } else if (g < n || g > n + n / 4 + 65536) fail(`goodSize ${g}`);
  }

  // ---- invalid calls: each must throw the error named, and change nothing
  function expectError(label: string, want: "invalid" | "type" | "range", f: () => unknown, touched = () => false): void {
    desc = label;
    let err: unknown = null;
    let ret: unknown;
    try {
      ret = f();
    } catch (e) {
      err = e;
    }
    if (err === null) fail(`returned ${String(ret)} instead of throwing`);
    const ok = want === "invalid" ? err instanceof InvalidPointerError : want === "type" ? err instanceof TypeError : err instanceof RangeError;
    if (!ok) fail(`threw ${String(err)} (${want} expected)`);
    if (want === "type" && !/^tsmalloc: /.test((err as Error).message)) fail(`an engine TypeError: ${(err as Error).message}`);
    if (touched()) fail("a non-number argument was coerced");
    if (err instanceof DoubleFreeError) counts.doubleFreeErrors++;
  }
  const pointerCalls: [string, (x: number) => unknown][] = [
    ["free", (x) => free(x)],
    ["realloc", (x) => realloc(x, 48)],
    ["usableSize", (x) => usableSize(x)],
    ["reallocAligned", (x) => reallocAligned(x, 48, 64)],
    ["h.free", (x) => h.free(x)],
    ["h.realloc", (x) => h.realloc(x, 5000)],
    ["ah.usableSize", (x) => ah.usableSize(x)],
  ];
  function invalidCall(): void {
    counts.invalid++;
    const kind = below(8);
    const [cname, call] = pointerCalls[below(pointerCalls.length)];
    if (kind === 0 && live.length > 0) {
      // an interior address of a live block (huge blocks: often at a 4 MiB boundary)
      const b = pick();
      let d = 1 + below(b.usable - 1);
      if (chance(0.5)) d = Math.max(16, d & ~15);
      if (b.usable > SEG && chance(0.6)) {
        const first = SEG - (b.p % SEG);
        const k = Math.floor(below(b.usable) / SEG);
        d = first + k * SEG + [0, 16, 64, 8192, 65536][below(5)];
        if (d >= b.usable) d = first;
      }
      if (d <= 0 || d >= b.usable) return;
      expectError(`${cname}(${hex(b.p)} + ${d}) of a ${b.usable}-byte block`, "invalid", () => call(b.p + d));
    } else if (kind === 1) {
      const x = [12345, 16 * (1 + below(4096)), 0x7ffc_0000_0000 + 16 * below(2 ** 20), 2 ** 47 + 16 * below(2 ** 30), 2 ** 52 - 16][below(5)];
      if (byAddr.has(x) || overlaps(x, 1, 0) !== null) return;
      expectError(`${cname}(${hex(x)}), a foreign address`, "invalid", () => call(x));
    } else if (kind === 2) {
      // freed blocks: any recently freed one (or, before any, a huge block freed just now)
      const x = recentlyFreed.length > 0 ? recentlyFreed[below(recentlyFreed.length)] : justFreedHuge;
      if (x === 0 || byAddr.has(x) || overlaps(x, 1, 0) !== null) return;
      expectError(`${cname}(${hex(x)}), a freed block`, "invalid", () => call(x));
    } else if (kind === 3 && live.length > 0) {
      const b = pick();
      let called = false;
      const values: [string, unknown][] = [
        ["{ valueOf }", { valueOf: () => ((called = true), b.p) }], ["String(p)", String(b.p)], ["[p]", [b.p]],
        ["new Number(p)", new Number(b.p)], ["BigInt(p)", BigInt(b.p)], ["null", null], ["undefined", undefined],
        ["true", true], ["Symbol()", Symbol()],
      ];
      const [vname, v] = values[below(values.length)];
      const entries: [string, () => unknown][] = [
        ["free(x)", () => free(v as number)], ["realloc(x, 16)", () => realloc(v as number, 16)],
        ["realloc(p, x)", () => realloc(b.p, v as number)], ["usableSize(x)", () => usableSize(v as number)],
        ["malloc(x)", () => malloc(v as number)], ["calloc(x, 2)", () => calloc(v as number, 2)], ["zalloc(x)", () => zalloc(v as number)],
        ["mallocAligned(x, 64)", () => mallocAligned(v as number, 64)], ["mallocAligned(64, x)", () => mallocAligned(64, v as number)],
        ["goodSize(x)", () => goodSize(v as number)], ["bytes(x, 8)", () => bytes(v as number, 8)], ["bytes(p, x)", () => bytes(b.p, v as number)],
        ["dataView(x, 4)", () => dataView(v as number, 4)], ["alloc(x)", () => alloc(v as number)], ["h.malloc(x)", () => h.malloc(v as number)],
        ["h.free(x)", () => h.free(v as number)], ["ah.realloc(x, 8)", () => ah.realloc(v as number, 8)],
      ];
      const [ename, f] = entries[below(entries.length)];
      expectError(`${ename} with x = ${vname} (p = ${hex(b.p)})`, "type", f, () => called);
    } else if (kind === 4) {
      const x = [-1, -16, 1.5, 0.25, NaN, Infinity, -Infinity, MAX_ALLOC_SIZE + 16][below(8)];
      const b = live.length > 0 ? pick() : null;
      const entries: [string, () => unknown][] = [
        ["malloc", () => malloc(x)], ["calloc(x, 1)", () => calloc(x, 1)], ["calloc(1, x)", () => calloc(1, x)], ["zalloc", () => zalloc(x)],
        ["alloc", () => alloc(x)], ["mallocAligned(x, 32)", () => mallocAligned(x, 32)], ["goodSize", () => goodSize(x)],
        ["h.malloc", () => h.malloc(x)], ["ah.zalloc", () => ah.zalloc(x)],
        ...(b !== null ? [["realloc(p, x)", () => realloc(b.p, x)], ["bytes(p, x)", () => bytes(b.p, x)]] as [string, () => unknown][] : []),
      ];
      const [ename, f] = entries[below(entries.length)];
      if (x === MAX_ALLOC_SIZE + 16) {
        // an integer, only too large: malloc & co give 0 (C semantics) and goodSize says so,
        // alloc throws AllocationError, a view of that length is a RangeError
        desc = `${ename} with ${x} (> MAX_ALLOC_SIZE)`;
        if (ename === "bytes(p, x)") expectError(desc, "range", f);
        else if (ename === "alloc") {
          let err: unknown = null;
          try {
            f();
          } catch (e) {
            err = e;
          }
          if (!(err instanceof AllocationError)) fail(`threw ${String(err)} (AllocationError expected)`);
        } else if (f() !== 0) fail("did not return 0");
        checkAll(`the refused call ${desc}`);
        return;
      }
      expectError(`${ename} with x = ${x}`, "range", f);
    } else if (kind === 5) {
      const a = [0, 3, 24, 48, 96, -16, 1.5, NaN, 2 ** 40 + 1][below(9)];
      const b = live.length > 0 ? pick() : null;
      if (b !== null && chance(0.5)) expectError(`reallocAligned(${hex(b.p)}, 64, ${a})`, "range", () => reallocAligned(b.p, 64, a));
      else expectError(`mallocAligned(64, ${a})`, "range", () => mallocAligned(64, a));
    } else if (kind === 6 && live.length > 0) {
      // views that do not fit in one live block
      const b = pick();
      const c = below(5);
      const [a, len] = c === 0 ? [b.p, b.usable + 1 + below(4096)] : c === 1 ? [b.p + b.usable - 4, 8 + below(64)] : c === 2 ? [b.p, 2 ** 32 + below(4096)]
        : c === 3 ? [12345, 8] : [0x7ffc_0000_0000 + 16 * below(2 ** 20), 16];
      expectError(`${chance(0.5) ? "bytes" : "dataView"}(${hex(a)}, ${len}) over a ${b.usable}-byte block`, "range", () => (chance(0.5) ? bytes(a, len) : dataView(a, len)));
    } else if (kind === 7 && live.length > 0) {
      // realloc/usableSize of a block start plus junk bits
      const b = pick();
      const x = b.p + [0.5, 0.25, 4, 8][below(4)]; // (fractions an address of 2^47 can still carry exactly)
      expectError(`${cname}(${x}), not an integer or not a block start`, x % 1 === 0 ? "invalid" : "range", () => call(x));
    } else return;
    checkAll(`the invalid call ${desc}`);
  }

  for (op = 0; op < OPS; op++) {
    if (below(100) < 5) invalidCall();
    else validCall();
  }
  desc = "the end";
  checkAll("the last operation");
  for (const b of [...live]) {
    free(b.p);
    drop(b);
  }
  const v = validate();
  if (!v.ok) fail(`validate(): ${v.problems.slice(0, 5).join("; ")}`);
  h.destroy();
  ah.destroy();
  console.log(`adversarial: ${counts.valid} valid and ${counts.invalid} invalid calls (${counts.doubleFreeErrors} DoubleFreeError, ${counts.arenaFull} refusals of the full arena), ${counts.checkedWords} words checked; secure level ${level}`);
  assert.ok(counts.invalid > OPS / 40, "about 5% of the calls were invalid");
  if (OPS >= 100_000) assert.ok(counts.doubleFreeErrors > 0, "double frees were caught as DoubleFreeError");
});

t.run();
