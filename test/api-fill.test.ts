// Port of mimalloc's test/test-api-fill.c to the tsmalloc public API (doc/API-CONTRACT.md).
// Sizes as in mimalloc: small = MI_SMALL_SIZE_MAX/2 = 512, large = MI_SMALL_SIZE_MAX*2 = 2048,
// aligned variants use MI_MAX_ALIGN_SIZE*2 = 32, "grow" multiplies the size by 3.
//
// Ported: zeroinit-zalloc-small/large, zeroinit-zalloc_small (mi_zalloc_small -> zalloc),
//   zeroinit-calloc-small/large, zeroinit-zalloc_aligned-small/large,
//   zeroinit-calloc_aligned-small/large (no callocAligned: zallocAligned(count*size, 32)).
//
// Mapped, because the API has no rezalloc/recalloc (zero-preserving realloc):
//   zeroinit-{rezalloc,recalloc}[_aligned]-{small,large}: mimalloc guarantees the grown part is
//   zero. Here realloc/reallocAligned only keep the old contents, so these become:
//   (a) zalloc/calloc/zallocAligned then grow 3x: the old part is still zero (contents kept), and
//   (b) zero-init on REUSE: a block filled with 0xFF and freed, then zalloc/calloc/zallocAligned
//       of the same size must be all zero — over many sizes, in the default heap and in a Heap.
//
// The debug-fill checks (MI_DEBUG >= 2):
//   uninit-{malloc,malloc_small,realloc,mallocn,reallocn,malloc_aligned,realloc_aligned}-{small,large}
//   (every byte 0xD0 = MI_DEBUG_UNINIT) and fill-freed-small/large (bytes [8,size) are 0xDF =
//   MI_DEBUG_FREED after free) need the debugFill option, which is fixed at first use: they run
//   in a child process, in test/fill.test.ts (scenario "fill" of test/fixtures/secure-child.ts).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  calloc,
  free,
  Heap,
  malloc,
  mallocAligned,
  realloc,
  reallocAligned,
  usableSize,
  zalloc,
  zallocAligned,
} from "../mod.ts";
import { firstNot, hex, KiB, memSet, MiB } from "./_util.ts";

const MI_SMALL_SIZE_MAX = 1024;
const MI_MAX_ALIGN_SIZE = 16;
const SMALL = MI_SMALL_SIZE_MAX / 2;
const LARGE = MI_SMALL_SIZE_MAX * 2;
const ALIGN = MI_MAX_ALIGN_SIZE * 2;

/** mimalloc's check_zero_init: p non-null and every byte of [p, p+size) is zero. */
function checkZeroInit(p: number, size: number, what: string): void {
  assert.ok(p !== 0, `${what}: returned 0`);
  assert.ok(p % 16 === 0, `${what}: ${hex(p)} not 16-aligned`);
  assert.ok(usableSize(p) >= size, `${what}: usableSize ${usableSize(p)} < ${size}`);
  const off = firstNot(p, size, 0);
  assert.is(off, -1, `${what}: byte ${off} of ${size} is not zero`);
}

const t = suite("test-api-fill");

// ---------------------------------------------------
// Zeroing allocation
// ---------------------------------------------------
t("zeroinit-zalloc-small", () => {
  const p = zalloc(SMALL);
  checkZeroInit(p, SMALL, "zalloc(512)");
  free(p);
});
t("zeroinit-zalloc-large", () => {
  const p = zalloc(LARGE);
  checkZeroInit(p, LARGE, "zalloc(2048)");
  free(p);
});
t("zeroinit-zalloc_small", () => {
  const p = zalloc(SMALL); // mi_zalloc_small
  checkZeroInit(p, SMALL, "zalloc(512)");
  free(p);
});
t("zeroinit-calloc-small", () => {
  const p = calloc(SMALL, 1);
  checkZeroInit(p, SMALL, "calloc(512,1)");
  free(p);
});
t("zeroinit-calloc-large", () => {
  const p = calloc(LARGE, 1);
  checkZeroInit(p, LARGE, "calloc(2048,1)");
  free(p);
});

// zeroinit-rezalloc/recalloc mapped: (a) grow 3x keeps the zero prefix, (b) zero on reuse.
function growKeepsZero(size: number, mk: (n: number) => number, grow: (p: number, n: number) => number, what: string) {
  const p = mk(size);
  checkZeroInit(p, size, what);
  const q = grow(p, size * 3);
  assert.ok(q !== 0, `${what}: grow to ${size * 3} returned 0`);
  assert.ok(usableSize(q) >= size * 3);
  assert.is(firstNot(q, size, 0), -1, `${what}: zero prefix lost when growing ${size} -> ${size * 3}`);
  free(q);
}
function zeroOnReuse(size: number, mk: (n: number) => number, what: string) {
  // dirty a block of this size class, free it, and the next zeroing allocation must be zero
  const d = malloc(size);
  assert.ok(d !== 0);
  memSet(d, usableSize(d), 0xff);
  free(d);
  const p = mk(size);
  checkZeroInit(p, size, `${what} after reuse`);
  free(p);
}

t("zeroinit-rezalloc-small", () => {
  growKeepsZero(SMALL, zalloc, realloc, "zalloc(512)");
  zeroOnReuse(SMALL, zalloc, "zalloc(512)");
});
t("zeroinit-rezalloc-large", () => {
  growKeepsZero(LARGE, zalloc, realloc, "zalloc(2048)");
  zeroOnReuse(LARGE, zalloc, "zalloc(2048)");
});
t("zeroinit-recalloc-small", () => {
  growKeepsZero(SMALL, (n) => calloc(n, 1), realloc, "calloc(512,1)");
  zeroOnReuse(SMALL, (n) => calloc(n, 1), "calloc(512,1)");
});
t("zeroinit-recalloc-large", () => {
  growKeepsZero(LARGE, (n) => calloc(n, 1), realloc, "calloc(2048,1)");
  zeroOnReuse(LARGE, (n) => calloc(n, 1), "calloc(2048,1)");
});

// ---------------------------------------------------
// Zeroing in aligned API
// ---------------------------------------------------
t("zeroinit-zalloc_aligned-small", () => {
  const p = zallocAligned(SMALL, ALIGN);
  checkZeroInit(p, SMALL, "zallocAligned(512,32)");
  assert.ok(p % ALIGN === 0);
  free(p);
});
t("zeroinit-zalloc_aligned-large", () => {
  const p = zallocAligned(LARGE, ALIGN);
  checkZeroInit(p, LARGE, "zallocAligned(2048,32)");
  assert.ok(p % ALIGN === 0);
  free(p);
});
t("zeroinit-calloc_aligned-small", () => {
  const p = zallocAligned(SMALL * 1, ALIGN); // mi_calloc_aligned(512, 1, 32)
  checkZeroInit(p, SMALL, "zallocAligned(512*1,32)");
  assert.ok(p % ALIGN === 0);
  free(p);
});
t("zeroinit-calloc_aligned-large", () => {
  const p = zallocAligned(LARGE * 1, ALIGN);
  checkZeroInit(p, LARGE, "zallocAligned(2048*1,32)");
  assert.ok(p % ALIGN === 0);
  free(p);
});
const zA = (n: number) => zallocAligned(n, ALIGN);
const reA = (p: number, n: number) => {
  const q = reallocAligned(p, n, ALIGN);
  assert.ok(q % ALIGN === 0, `reallocAligned(.., ${n}, 32) = ${hex(q)} not aligned`);
  return q;
};
t("zeroinit-rezalloc_aligned-small", () => {
  growKeepsZero(SMALL, zA, reA, "zallocAligned(512,32)");
  zeroOnReuse(SMALL, zA, "zallocAligned(512,32)");
});
t("zeroinit-rezalloc_aligned-large", () => {
  growKeepsZero(LARGE, zA, reA, "zallocAligned(2048,32)");
  zeroOnReuse(LARGE, zA, "zallocAligned(2048,32)");
});
t("zeroinit-recalloc_aligned-small", () => {
  growKeepsZero(SMALL, zA, reA, "zallocAligned(512*1,32)");
  zeroOnReuse(SMALL, zA, "zallocAligned(512*1,32)");
});
t("zeroinit-recalloc_aligned-large", () => {
  growKeepsZero(LARGE, zA, reA, "zallocAligned(2048*1,32)");
  zeroOnReuse(LARGE, zA, "zallocAligned(2048*1,32)");
});

// ---------------------------------------------------
// Zero-init on reuse over many sizes (the rezalloc/recalloc replacement, at scale)
// ---------------------------------------------------
const REUSE_SIZES: number[] = (() => {
  const s = new Set<number>();
  for (let n = 0; n <= 1024; n++) s.add(n);
  for (let n = 1024; n <= 64 * KiB; n += 1024) for (const d of [-1, 0, 1]) s.add(n + d);
  for (let k = 16; k <= 24; k++) for (const f of [1, 1.25, 1.5, 1.75]) s.add(Math.floor(2 ** k * f) + 8);
  return [...s].sort((a, b) => a - b);
})();

type Mk = { name: string; mk: (n: number) => number };
const ZEROERS: Mk[] = [
  { name: "zalloc(n)", mk: (n) => zalloc(n) },
  { name: "calloc(n,1)", mk: (n) => calloc(n, 1) },
  { name: "calloc(1,n)", mk: (n) => calloc(1, n) },
  { name: "zallocAligned(n,32)", mk: (n) => zallocAligned(n, 32) },
  { name: "zallocAligned(n,4096)", mk: (n) => zallocAligned(n, 4096) },
];

t("zero on reuse: single block, every size class 0..32 MiB", () => {
  let k = 0;
  for (const n of REUSE_SIZES) {
    const z = ZEROERS[k++ % ZEROERS.length];
    // dirty: malloc n, fill the whole usable size with 0xFF, free
    const d = malloc(n);
    assert.ok(d !== 0, `malloc(${n}) returned 0`);
    memSet(d, usableSize(d), 0xff);
    free(d);
    const p = z.mk(n);
    checkZeroInit(p, n, `${z.name} n=${n}`);
    // full usable size need not be zero, but the requested size must be; dirty it again
    memSet(p, usableSize(p), 0xff);
    free(p);
    // and once more through the same zeroer, now certainly reusing a dirty block of its class
    const q = z.mk(n);
    checkZeroInit(q, n, `${z.name} n=${n} (second)`);
    free(q);
  }
});

t("zero on reuse: many dirty blocks of a class, then many zeroing allocations", () => {
  const sizes = [1, 16, 24, 48, 100, 256, 500, 1000, 2000, 4000, 8192, 20000, 70000, 300000, 1 * MiB + 5];
  for (const n of sizes) {
    const count = n <= 8192 ? 200 : n <= 300000 ? 20 : 4;
    for (const z of ZEROERS) {
      const dirty: number[] = [];
      for (let i = 0; i < count; i++) {
        const d = malloc(n);
        assert.ok(d !== 0);
        memSet(d, usableSize(d), 0xa5 ^ i);
        dirty.push(d);
      }
      // free in an interleaved order so free lists are shuffled
      for (let i = 0; i < count; i += 2) free(dirty[i]);
      for (let i = 1; i < count; i += 2) free(dirty[i]);
      const got: number[] = [];
      for (let i = 0; i < count; i++) {
        const p = z.mk(n);
        checkZeroInit(p, n, `${z.name} n=${n} #${i}`);
        memSet(p, n, 0x3c); // neighbouring zero allocations must not see this
        got.push(p);
      }
      for (const p of got) free(p);
    }
  }
});

t("zero on reuse: blocks freed by Heap.destroy and Heap.delete", () => {
  const sizes = [8, 64, 512, 2048, 10000, 100000, 3 * MiB];
  for (const n of sizes) {
    const h = Heap.create();
    for (let i = 0; i < 50; i++) {
      const d = h.malloc(n);
      assert.ok(d !== 0);
      memSet(d, usableSize(d), 0xff);
      if (n >= 100000 && i >= 3) break;
    }
    h.destroy();
    const h2 = Heap.create();
    const got: number[] = [];
    for (let i = 0; i < 50; i++) {
      const p = i % 3 === 0 ? h2.zalloc(n) : i % 3 === 1 ? h2.calloc(n, 1) : h2.zallocAligned(n, 64);
      checkZeroInit(p, n, `heap zeroing alloc of ${n} #${i} after destroy`);
      got.push(p);
      if (n >= 100000 && i >= 3) break;
    }
    for (const p of got) free(p);
    h2.delete();
    for (const m of [zalloc, (x: number) => calloc(1, x)]) {
      const p = m(n);
      checkZeroInit(p, n, `zeroing alloc of ${n} after Heap.delete`);
      free(p);
    }
  }
});

t("zero after realloc-move: the freed source is dirty, zalloc of its class is zero", () => {
  for (const n of [32, 300, 3000, 30000]) {
    const p = malloc(n);
    memSet(p, usableSize(p), 0xff);
    const q = realloc(p, n * 8); // moves (different class), frees p
    assert.ok(q !== 0);
    const z = zalloc(n);
    checkZeroInit(z, n, `zalloc(${n}) after realloc moved a dirty block`);
    free(z);
    free(q);
  }
});

t("mallocAligned then zallocAligned of the same class is zero", () => {
  for (const a of [16, 64, 256, 4096, 65536]) {
    for (const n of [1, 100, 1000, 5000]) {
      const d = mallocAligned(n, a);
      assert.ok(d !== 0 && d % a === 0);
      memSet(d, usableSize(d), 0xff);
      free(d);
      const p = zallocAligned(n, a);
      assert.ok(p % a === 0);
      checkZeroInit(p, n, `zallocAligned(${n}, ${a}) after reuse`);
      free(p);
    }
  }
});

t.run();
