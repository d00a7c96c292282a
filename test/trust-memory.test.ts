// Issue 11, "an allocator never lies" about memory: realloc growth is amortized (item 16),
// large zeroing and fills work past the runtime's largest view and never orphan a block on an
// error path (item 6), and a heap that would refuse an allocation collects and retries first
// (item 14). Secure-mode items (8, 9, 10) are in test/trust-secure.test.ts.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { backend, bytes, reserveOsMemory, calloc, collect, free, getOption, goodSize, Heap, malloc, mallocAligned, realloc, reallocAligned, setOption, stats, usableSize, validate, zalloc, zallocAligned } from "../mod.ts";
import { ctx } from "../src/context.ts";

const t = suite("trust-memory");
const KiB = 1024;
const MiB = 1024 * KiB;

// the whole kind (review round 6): reallocAligned at 16 and 4096, and realloc while guarded
// sampling is on for other sizes (both moved 79 times and copied 18.6x)
const GROWERS: [string, (n: number) => number, (p: number, n: number) => number, number][] = [
  ["realloc", (n) => malloc(n), (p, n) => realloc(p, n), 16],
  ["reallocAligned(16)", (n) => mallocAligned(n, 16), (p, n) => reallocAligned(p, n, 16), 16],
  ["reallocAligned(4096)", (n) => mallocAligned(n, 4096), (p, n) => reallocAligned(p, n, 4096), 4096],
  ["realloc, guarded sampling on below 64 KiB", (n) => malloc(n), (p, n) => realloc(p, n), 16],
  ["realloc, guarded sampling on for every size", (n) => malloc(n), (p, n) => realloc(p, n), 16],
];
for (const [name, first, grow, align] of GROWERS) t(`${name} growth is amortized (issue 11 item 16): 4 KiB -> 32 MiB by 4 KiB steps moves a few dozen times and copies < 4x the final size`, () => {
  const sampled = name.includes("guarded");
  const rate0 = getOption("guardedSampleRate"), max0 = getOption("guardedMax");
  if (sampled) {
    if (name.includes("below")) setOption("guardedMax", 64 * KiB);
    setOption("guardedSampleRate", name.includes("below") ? 1000 : 1);
  }
  try {
    grows(first, grow, align);
  } finally {
    if (sampled) {
      setOption("guardedSampleRate", rate0);
      setOption("guardedMax", max0);
    }
  }
});

t("realloc that moves a block within the size classes allocates as malloc would: with guarded sampling on for sizes from 1 KiB, an unguarded block's new block is a guarded allocation, its end at a guard page (session 30: realloc pops inline only while nothing changes malloc; the buffer backend has no guarded allocations, there the move alone is checked)", () => {
  const MOVES = [[16, 1100], [100, 3000], [500, 20000], [1000, 100000], [16, 5000], [64, 50000]];
  // each target class has a front page with a free block first: what an inline pop would take
  const warm = MOVES.map(([, to]) => malloc(to));
  for (const w of warm) free(w);
  const rate0 = getOption("guardedSampleRate"), min0 = getOption("guardedMin");
  setOption("guardedMin", 1024);
  setOption("guardedSampleRate", 1);
  try {
    const guards = backend().guardPages;
    const atGuard = (p: number) => (p + usableSize(p)) % 4096 === 0; // (mimalloc MI_GUARDED: the block ends where its guard page starts)
    for (const [from, to] of MOVES) {
      const q = malloc(to);
      if (guards) assert.ok(atGuard(q), `malloc(${to}) is a guarded allocation`);
      free(q);
      const p = malloc(from);
      bytes(p, from).fill(7);
      const r = realloc(p, to);
      assert.ok(r !== p && r !== 0, `${from} -> ${to} moved`);
      assert.ok(bytes(r, from).every((b) => b === 7), `${from} -> ${to}: the bytes moved`);
      if (guards) assert.ok(atGuard(r), `${from} -> ${to}: realloc's new block is a guarded allocation, as malloc's`);
      free(r);
    }
  } finally {
    setOption("guardedSampleRate", rate0);
    setOption("guardedMin", min0);
  }
  assert.ok(validate().ok);
});

function grows(first: (n: number) => number, grow: (p: number, n: number) => number, align: number): void {
  let p = first(4096);
  bytes(p, 1)[0] = 1;
  let moves = 0, copied = 0;
  const FINAL = 32 * MiB;
  for (let n = 8192; n <= FINAL; n += 4096) {
    const u = usableSize(p);
    const q = grow(p, n);
    assert.ok(q !== 0, `realloc to ${n} gave 0`);
    assert.is(q % align, 0, `aligned to ${align}`);
    if (q !== p) {
      moves++;
      copied += Math.min(u, n);
    }
    p = q;
    bytes(p + n - 1, 1)[0] = (n >>> 12) & 255; // the last byte of each step: kept by every later move
  }
  assert.ok(usableSize(p) >= FINAL);
  // every mark written along the way is still there
  assert.is(bytes(p, 1)[0], 1);
  for (let n = 8192; n <= FINAL; n += 4096) {
    if (bytes(p + n - 1, 1)[0] !== ((n >>> 12) & 255)) assert.unreachable(`byte ${n - 1} lost`);
  }
  assert.ok(moves <= 60, `moves ${moves}`);
  assert.ok(copied <= 4 * FINAL, `copied ${copied} bytes (${(copied / FINAL).toFixed(2)}x the final size)`);
  free(p);
  assert.ok(validate().ok);
}

t("reallocAligned to a size whose fresh aligned block would be no smaller does not move (review round 7: a 256 KiB huge aligned block moved on every call; 16 -> 1 MiB by 16 copied 513x)", () => {
  for (const align of [4096, 8192, 65536]) {
    let p = mallocAligned(16, align);
    let moves = 0, copied = 0;
    for (let i = 0; i < 1000; i++) {
      const q = reallocAligned(p, 16, align);
      if (q !== p) moves++;
      p = q;
    }
    assert.is(moves, 0, `same-size reallocAligned(., 16, ${align}) moved`);
    if (align !== 65536) {
      free(p);
      continue; // (growth through page classes moves at each class, as realloc's does)
    }
    const FINAL = 1 * MiB;
    for (let n = 32; n <= FINAL; n += 16) {
      const u = usableSize(p);
      const q = reallocAligned(p, n, align);
      assert.is(q % align, 0);
      if (q !== p) {
        moves++;
        copied += Math.min(u, n);
      }
      p = q;
    }
    assert.ok(moves <= 60 && copied <= 4 * FINAL, `align ${align}: ${moves} moves, copied ${(copied / FINAL).toFixed(1)}x`);
    free(p);
  }
});

t("huge sizes round up in steps of at most 12.5% (as mimalloc), and goodSize equals usableSize(malloc(n))", () => {
  const sizes = [2 * MiB + 1, 2 * MiB + 300 * KiB, 5 * MiB + 1, 8 * MiB - 1, 8 * MiB + 1, 20 * MiB + 3, 32 * MiB + 1, 100 * MiB + 7];
  for (const n of sizes) {
    const p = malloc(n);
    assert.ok(p !== 0, `malloc(${n})`);
    const u = usableSize(p);
    assert.ok(u >= n && u - n <= n / 8, `usableSize(malloc(${n})) = ${u}: a step of at most 12.5%`);
    assert.is(goodSize(n), u, `goodSize(${n})`);
    free(p);
  }
});

t("realloc of a huge block shrinks and grows in place while its mapping allows, contents kept", () => {
  const p = malloc(3 * MiB);
  const a = bytes(p, 64);
  for (let i = 0; i < 64; i++) a[i] = i;
  const q = realloc(p, 24 * MiB); // moves: a mapping with room to grow
  assert.ok(q !== 0);
  const r = realloc(q, 30 * MiB); // inside the room: in place
  assert.is(r, q, "grown in place");
  const s = realloc(r, 34 * MiB); // room was 1.5 * 24 MiB = 36 MiB
  assert.is(s, q, "grown in place again");
  assert.ok(usableSize(s) >= 34 * MiB);
  const b = bytes(s, 64);
  for (let i = 0; i < 64; i++) assert.is(b[i], i);
  bytes(s + 34 * MiB - 1, 1)[0] = 7; // the grown part is ours
  free(s);
  assert.ok(validate().ok);
});

const GiB = 1024 * MiB;

for (const how of ["calloc", "zalloc"] as const) {
  t(`${how} of a reused 4 GiB + 64 KiB block (above koffi's and bun:ffi's largest view) is zeroed and never orphaned (issue 11 item 6)`, () => {
    const N = 4 * GiB + 64 * KiB;
    const cacheMax = getOption("hugeCacheMax");
    setOption("hugeCacheMax", "8GiB");
    try {
      const before = stats().inUse;
      const a = malloc(N);
      if (a === 0) {
        // the buffer backend cannot make an ArrayBuffer this large: 0, and nothing taken
        assert.is(backend().kind, "buffer", "only the buffer backend may refuse");
        assert.is(stats().inUse, before);
        return;
      }
      bytes(a + N - 1, 1)[0] = 0xab;
      bytes(a, 1)[0] = 0xcd;
      bytes(a + 4 * GiB - 1, 2).fill(0xef);
      free(a);
      const c = how === "calloc" ? calloc(1, N) : zalloc(N);
      assert.ok(c !== 0, `${how} gave 0`);
      assert.is(bytes(c + N - 1, 1)[0], 0, "last byte");
      assert.is(bytes(c, 1)[0], 0, "first byte");
      assert.equal([...bytes(c + 4 * GiB - 1, 2)], [0, 0], "across the 4 GiB boundary");
      assert.is(stats().inUse - before, usableSize(c), "one live block counted");
      free(c);
      assert.is(stats().inUse, before, "nothing orphaned");
      assert.ok(validate().ok);
    } finally {
      setOption("hugeCacheMax", cacheMax);
      collect(true);
    }
  });
}

t("an error while zeroing gives the block back (issue 11 item 6): zalloc/zallocAligned/calloc rethrow, stats and the heap intact", () => {
  const o = ctx.os!;
  const was = o.purge;
  const keep = malloc(100);
  bytes(keep, 100).fill(0x5a);
  // a dirty huge block: freed into the cache, so the next zalloc of its size must zero it
  free(zalloc(8 * MiB));
  const before = stats().inUse;
  const delay = getOption("purgeDelay");
  setOption("purgeDelay", 3_600_000); // the cached mapping stays dirty (a purge would make it read as zero)
  const cacheMax = getOption("hugeCacheMax");
  setOption("hugeCacheMax", 0); // empties the huge cache: the only mapping in it will be the dirty one below
  setOption("hugeCacheMax", 64 * MiB);
  const fail = () => {
    throw new Error("injected purge failure");
  };
  for (const f of [() => zalloc(8 * MiB), () => calloc(2, 4 * MiB), () => zallocAligned(8 * MiB, 4096)]) {
    free(malloc(8 * MiB)); // a dirty 8 MiB mapping in the huge cache: the next call must zero it
    (o as { purge: typeof was }).purge = fail;
    let threw = "";
    try {
      f();
    } catch (e) {
      threw = (e as Error).message;
    } finally {
      (o as { purge: typeof was }).purge = was;
    }
    assert.match(threw, /injected purge failure/);
    assert.is(stats().inUse, before, "no block orphaned");
  }
  setOption("purgeDelay", delay);
  setOption("hugeCacheMax", cacheMax);
  assert.is(stats().inUse, before, "nothing orphaned");
  assert.ok(bytes(keep, 100).every((x) => x === 0x5a), "the other block is intact");
  assert.ok(validate().ok);
  free(keep);
  const z = zalloc(8 * MiB);
  assert.ok(z !== 0 && bytes(z, 16).every((x) => x === 0));
  free(z);
});

t("a heap bound to a full exclusive arena collects and retries before refusing (issue 11 item 14): 72 blocks freed, then malloc(6 MiB) succeeds", () => {
  const id = reserveOsMemory(8 * MiB, { exclusive: true });
  const h = Heap.create({ arena: id });
  const ps: number[] = [];
  for (let i = 0; i < 72; i++) {
    const p = h.malloc(100_000);
    if (p === 0) break;
    ps.push(p);
  }
  assert.ok(ps.length >= 40, `blocks ${ps.length}`);
  for (const p of ps) h.free(p);
  const big = h.malloc(6 * MiB);
  assert.ok(big !== 0, "malloc(6 MiB) after freeing everything");
  bytes(big + 6 * MiB - 1, 1)[0] = 1;
  h.free(big);
  // and the other way: small pages come back once the huge block is gone
  const again: number[] = [];
  for (let i = 0; i < 72; i++) again.push(h.malloc(100_000));
  assert.ok(again.filter((p) => p !== 0).length >= ps.length, "the arena serves as many blocks again");
  for (const p of again) if (p !== 0) h.free(p);
  assert.ok(validate().ok);
  h.destroy();
});

t.run();
