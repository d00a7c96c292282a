// Tests of the selected `Os` backend itself (ffi/select.ts), below the allocator core.
// The backend comes from TSMALLOC_BACKEND (auto|ffi|buffer, default auto); when
// TSMALLOC_EXPECT_BACKEND is set (the runner sets it), the kind must equal it.
import process from "node:process";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type BackendWant, detectRuntime, selectOs } from "../ffi/select.ts";
import { type Os, regionView } from "../src/os.ts";
import { mapsLineIs } from "../ffi/posix.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const want = (process.env.TSMALLOC_BACKEND ?? "auto") as BackendWant;
const expected = process.env.TSMALLOC_EXPECT_BACKEND;
const expectedFfi = process.env.TSMALLOC_EXPECT_FFI;
const os: Os = selectOs(want);
const ffi = os.kind !== "buffer";
const runtime = detectRuntime();

const t = suite(`os (${os.kind})`);

/** Reservations made by a test, released after it even when it fails. */
let live: Array<[number, number]> = [];
function reserve(size: number, align: number): number {
  const a = os.reserve(size, align);
  if (a !== 0) live.push([a, size]);
  return a;
}
function release(addr: number, size: number): void {
  os.release(addr, size);
  live = live.filter(([a]) => a !== addr);
}
t.after.each(() => {
  for (const [a, s] of live) os.release(a, s);
  live = [];
});

function firstNonZero(u8: Uint8Array): number {
  for (let i = 0; i < u8.length; i++) if (u8[i] !== 0) return i;
  return -1;
}

t("the backend is the expected one, with a reason", () => {
  assert.ok(["node", "deno", "bun", "buffer"].includes(os.kind), os.kind);
  if (expected) assert.is(os.kind, expected, `backend ${os.kind} (${os.reason}), expected ${expected}`);
  if (want === "buffer") assert.is(os.kind, "buffer");
  if (want === "ffi") assert.is(os.kind, runtime);
  assert.type(os.reason, "string");
  assert.ok(os.reason.startsWith(want + ":"), os.reason);
  if (want === "auto" && os.kind === "buffer" && runtime === "deno") {
    assert.match(os.reason, "Deno without --allow-ffi");
  }
  if (expectedFfi) assert.is(String(os.ffi), expectedFfi, `ffi ${os.ffi} (${os.reason})`);
  assert.is(os.ffi === null, os.kind === "buffer");
});

t("selectOs: ffi throws when FFI is unavailable, buffer always works, bad names are rejected", () => {
  assert.is(selectOs("buffer").kind, "buffer");
  if (ffi) assert.is(selectOs("ffi").kind, os.kind);
  else if (want === "auto") assert.throws(() => selectOs("ffi"), /ffi backend requested/);
  assert.throws(() => selectOs("fast" as BackendWant), /unknown backend/);
});

t("constants are consistent with the backend", () => {
  assert.ok(os.pageSize >= 4096 && (os.pageSize & (os.pageSize - 1)) === 0, `pageSize ${os.pageSize}`);
  assert.is(os.canProtect, ffi);
  assert.is(os.canPurge, ffi);
  // measured: Deno 64 GiB, node:ffi 16 GiB (checked below), koffi and Bun 4 GiB (8 GiB aborts)
  const expectView = os.kind === "deno" ? 64 * GiB : os.ffi === "node:ffi" ? 16 * GiB : 4 * GiB;
  assert.is(os.maxView, expectView);
});

t("reserve honours 4 MiB and 64 MiB alignments and hands out disjoint ranges", () => {
  const got: Array<[number, number]> = [];
  for (const [size, align] of [[4 * MiB, 4 * MiB], [64 * MiB, 64 * MiB], [4 * MiB, 64 * MiB], [os.pageSize, os.pageSize], [3 * os.pageSize, 4 * MiB]]) {
    const a = reserve(size, align);
    assert.ok(a > 0, `reserve(${size}, ${align}) = ${a}`);
    assert.ok(Number.isSafeInteger(a), `address ${a} is a safe integer`);
    assert.is(a % align, 0, `0x${a.toString(16)} aligned to ${align}`);
    for (const [b, s] of got) assert.ok(a + size <= b || b + s <= a, "ranges overlap");
    got.push([a, size]);
  }
});

t("fresh memory reads zero, and writes are visible through a second view", () => {
  const size = 4 * MiB;
  const a = reserve(size, 4 * MiB);
  const v1 = new Uint8Array(os.view(a, size));
  assert.is(v1.byteLength, size);
  assert.is(firstNonZero(v1), -1);
  for (let i = 0; i < size; i += 4093) v1[i] = (i * 7 + 1) & 255;
  v1[size - 1] = 0xab;
  const v2 = new Uint8Array(os.view(a, size));
  for (let i = 0; i < size; i += 4093) assert.is(v2[i], (i * 7 + 1) & 255, `byte ${i}`);
  assert.is(v2[size - 1], 0xab);
  const w = new Int32Array(os.view(a, size));
  w[5] = -123456789;
  assert.is(new DataView(os.view(a, size)).getInt32(20, true), -123456789);
});

t("views alias: a sub-range view on FFI, a clear error on the buffer backend", () => {
  const size = 1 * MiB;
  const a = reserve(size, os.pageSize);
  const whole = new Uint8Array(os.view(a, size));
  if (ffi) {
    const sub = new Uint8Array(os.view(a + os.pageSize, 100));
    assert.is(sub.byteLength, 100);
    sub[3] = 42;
    assert.is(whole[os.pageSize + 3], 42);
  } else {
    assert.throws(() => os.view(a + os.pageSize, 100), /whole reservation/);
    assert.throws(() => os.view(a, size - os.pageSize), /whole reservation/);
    assert.throws(() => os.view(0x1234, 16), /not inside one live reservation/);
  }
});

t("purge zeroes the range, keeps its neighbours, and (FFI) gives the pages back", () => {
  const P = os.pageSize;
  const size = 64 * P;
  const a = reserve(size, 4 * MiB);
  const v = new Uint8Array(os.view(a, size));
  v.fill(0x5a);
  if (ffi) assert.ok(os.resident(a, size) >= size, `resident after touching: ${os.resident(a, size)}`);
  else assert.is(os.resident(a, size), -1);
  // purge pages 8..15 only
  os.purge(a + 8 * P, 8 * P);
  if (ffi) assert.is(os.resident(a + 8 * P, 8 * P), 0, "purged pages left RSS");
  assert.is(firstNonZero(v.subarray(8 * P, 16 * P)), -1);
  assert.is(v[8 * P - 1], 0x5a, "page before the purged range kept");
  assert.is(v[16 * P], 0x5a, "page after the purged range kept");
  if (ffi) assert.is(os.resident(a, 8 * P), 8 * P, "neighbours still resident");
  // the whole range
  os.purge(a, size);
  if (ffi) assert.is(os.resident(a, size), 0);
  assert.is(firstNonZero(v), -1);
  // still mapped and writable after purge
  v[100] = 9;
  assert.is(v[100], 9);
  if (ffi) assert.is(os.resident(a, P), P);
});

t("resident counts only the touched pages of a large range (FFI)", () => {
  if (!ffi) {
    assert.is(os.resident(0x1000, 4096), -1);
    return;
  }
  const P = os.pageSize;
  const a = reserve(64 * MiB, 64 * MiB);
  assert.is(os.resident(a, 64 * MiB), 0, "untouched reservation is not resident");
  const v = new Uint8Array(os.view(a, 64 * MiB));
  v[0] = 1;
  v[40 * MiB] = 1;
  const r = os.resident(a, 64 * MiB);
  // transparent huge pages may bring in up to 2 MiB per touch
  assert.ok(r >= 2 * P && r <= 4 * MiB, `resident ${r}`);
  assert.is(os.resident(a + 32 * MiB, 16), 0, "an untouched page far from both touches");
  v[32 * MiB + 8] = 1;
  assert.is(os.resident(a + 32 * MiB, 16), 16, "a partial-page range counts only its own bytes");
});

t("release: the range is gone and its address is not handed out again (buffer)", () => {
  const size = 2 * MiB;
  const a = reserve(size, 2 * MiB);
  new Uint8Array(os.view(a, size))[0] = 1;
  release(a, size);
  if (ffi) {
    assert.is(os.resident(a, size), -1, "mincore on an unmapped range fails");
  } else {
    assert.throws(() => os.view(a, size), /not inside one live reservation/);
    const b = reserve(size, 2 * MiB);
    assert.ok(b > a, "synthetic addresses are never reused");
  }
});

t("release of a page-aligned part keeps the rest usable", () => {
  const P = os.pageSize;
  const a = reserve(16 * P, P);
  const v = new Uint8Array(os.view(a, 16 * P));
  v[15 * P] = 7;
  os.release(a, 4 * P); // head
  if (ffi) {
    assert.is(os.resident(a, 4 * P), -1);
    live = [[a + 4 * P, 12 * P]];
  }
  assert.is(v[15 * P], 7);
  v[10 * P] = 3;
  assert.is(v[10 * P], 3);
});

t("pointer() returns the runtime's FFI pointer", () => {
  const a = reserve(os.pageSize, os.pageSize);
  if (os.kind === "node") {
    assert.is(os.pointer(a), BigInt(a));
  } else if (os.kind === "bun") {
    assert.is(os.pointer(a), a);
  } else if (os.kind === "deno") {
    const p = os.pointer(a);
    assert.type(p, "object");
    assert.ok(p !== null);
    const Deno = (globalThis as { Deno?: { UnsafePointer: { value(p: unknown): bigint | number } } }).Deno!;
    assert.is(BigInt(Deno.UnsafePointer.value(p)), BigInt(a));
  } else {
    assert.throws(() => os.pointer(a), /no native pointers/);
  }
});

t("absurd reservations return 0 instead of throwing", () => {
  assert.is(os.reserve(2 ** 60, os.pageSize), 0);
  assert.is(os.reserve(2 ** 50, 4 * MiB), 0); // safe integer: the kernel (or the buffer) refuses
  assert.is(os.reserve(2 ** 47 + 2 ** 46, 2 ** 40), 0); // more than the whole 47-bit user space
  const a = reserve(os.pageSize, os.pageSize);
  assert.ok(a > 0, "still works afterwards");
});

t("bad arguments are rejected", () => {
  assert.throws(() => os.reserve(100, os.pageSize), RangeError);
  assert.throws(() => os.reserve(0, os.pageSize), RangeError);
  assert.throws(() => os.reserve(os.pageSize, 3 * os.pageSize), RangeError);
  assert.throws(() => os.reserve(-os.pageSize, os.pageSize), RangeError);
});

t("protect/unprotect: a round trip keeps contents (FFI); the buffer backend throws", () => {
  const P = os.pageSize;
  const a = reserve(4 * P, P);
  const v = new Uint8Array(os.view(a, 4 * P));
  v[P + 5] = 77;
  if (ffi) {
    os.protect(a + P, P);
    os.unprotect(a + P, P);
    assert.is(v[P + 5], 77);
    v[P + 6] = 1;
    assert.throws(() => os.protect(a + 1, P), RangeError);
  } else {
    assert.throws(() => os.protect(a, P), /cannot make memory inaccessible/);
    assert.throws(() => os.unprotect(a, P), /cannot make memory inaccessible/);
  }
});

t("a 2 GiB view works (FFI, NORESERVE) and a maxView-sized view can be created", () => {
  const size = ffi ? 2 * GiB : 256 * MiB;
  const a = reserve(size, 4 * MiB);
  assert.ok(a > 0, `reserve(${size})`);
  const v = new Uint8Array(os.view(a, size));
  assert.is(v.byteLength, size);
  v[size - 1] = 0xee;
  v[size >>> 1] = 0xdd;
  assert.is(new Uint8Array(os.view(a, size))[size - 1], 0xee);
  if (ffi) {
    assert.ok(os.resident(a, size) <= 4 * MiB, "touching two bytes did not commit the range");
    const m = reserve(os.maxView, 4 * MiB);
    assert.ok(m > 0, `reserve(maxView=${os.maxView})`);
    const big = os.view(m, os.maxView);
    assert.is(big.byteLength, os.maxView);
    const tail = new Uint8Array(big, os.maxView - 16, 16);
    tail[15] = 1;
    assert.is(tail[15], 1);
  }
});

t("pid and thread id", () => {
  assert.is(os.pid(), process.pid);
  if (ffi) {
    // on Linux the main thread's tid is the pid
    assert.ok(os.threadId() > 0);
    if (process.platform === "linux") assert.is(os.threadId(), os.pid());
  } else {
    assert.is(os.threadId(), 0);
  }
});

const linux = (globalThis as { process?: { platform?: string } }).process?.platform === "linux";
if (ffi && !linux) {
  t(`isSharedMapping is absent without /proc/self/maps (${process.platform}): attach cannot tell a copied root apart`, () => {
    assert.is(os.isSharedMapping, undefined);
  });
} else {
  t("isSharedMapping: only the very range reserveShared returned, never a private reservation, a part of it, or a copy of its bytes (the shared root's check)", () => {
    const o = ffi ? os : selectOs("buffer"); // a fresh buffer Os: sharing changes how it reserves
    if (!ffi) (o as Os & { shareState(): unknown }).shareState();
    assert.type(o.reserveShared, "function");
    assert.type(o.isSharedMapping, "function");
    const S = 65536;
    const sh = o.reserveShared!(S, S);
    const priv = o.reserve(S, S);
    assert.ok(sh > 0 && priv > 0);
    try {
      assert.is(sh % S, 0);
      const v = regionOf(o, sh, S);
      v.fill(0x3c);
      regionOf(o, priv, S).set(v); // the same bytes in private memory
      assert.is(o.isSharedMapping!(sh, S), true);
      assert.is(o.isSharedMapping!(priv, S), false, "a private reservation with the same bytes");
      assert.is(o.isSharedMapping!(sh, S / 2), false, "the first half only");
      assert.is(o.isSharedMapping!(sh + 4096, S - 4096), false, "a range starting inside");
      assert.is(o.isSharedMapping!(sh - S, S), false, "the range before");
      assert.ok(v.every((x) => x === 0x3c), "asking changed nothing");
    } finally {
      o.release(priv, S);
      if (ffi) o.release(sh, S);
    }
  });
}

function regionOf(o: Os, a: number, n: number): Uint8Array {
  const r = regionView(o, a, n);
  return new Uint8Array(r.buffer, r.byteOffset, n);
}

if (ffi && linux) {
  t("mapsLineIs reads /proc/self/maps lines: start, end, shared permission, /dev/zero path", () => {
    const a = 0x7f1858170000, S = 65536;
    const line = (s: number, e: number, perm: string, path: string) => `${s.toString(16)}-${e.toString(16)} ${perm} 0000d000 00:01 1026                       ${path}`;
    assert.is(mapsLineIs(line(a - S, a, "rw-s", "/dev/zero (deleted)"), a, S), undefined, "ends before: read on");
    assert.is(mapsLineIs(line(a, a + S, "rw-s", "/dev/zero (deleted)"), a, S), true);
    assert.is(mapsLineIs(line(a, a + S, "rw-p", ""), a, S), false, "private");
    assert.is(mapsLineIs(line(a, a + 2 * S, "rw-s", "/dev/zero (deleted)"), a, S), false, "longer");
    assert.is(mapsLineIs(line(a - S, a + S, "rw-s", "/dev/zero (deleted)"), a, S), false, "starts before");
    assert.is(mapsLineIs(line(a, a + S, "rw-s", "/memfd:x (deleted)"), a, S), false, "another shared object");
    assert.is(mapsLineIs("garbage", a, S), undefined);
  });
  t("futex through FFI (Linux): a wait on a changed word returns at once, a wait on an unchanged word times out, wake is harmless", () => {
    assert.type(os.futexWait, "function");
    assert.type(os.futexWake, "function");
    const a = reserve(4096, 4096);
    const w = new Int32Array(os.view(a, 4096));
    w[0] = 5;
    let t0 = performance.now();
    os.futexWait!(a, 6, 2000); // expected 6, word is 5: EAGAIN at once
    assert.ok(performance.now() - t0 < 500, `a mismatched wait blocked ${performance.now() - t0} ms`);
    t0 = performance.now();
    os.futexWait!(a, 5, 40); // word is 5: blocks until the 40 ms timeout
    const waited = performance.now() - t0;
    assert.ok(waited >= 25, `a matching wait returned after ${waited} ms (no futex?)`);
    os.futexWake!(a, 1); // no waiter: returns
    assert.is(w[0], 5);
    w[0] = -5; // lock words use the sign bit: the expected value crosses as its 32 bits
    t0 = performance.now();
    os.futexWait!(a, -6, 2000);
    assert.ok(performance.now() - t0 < 500, "a mismatched negative word: at once");
    t0 = performance.now();
    os.futexWait!(a, -5, 40);
    assert.ok(performance.now() - t0 >= 25, "a matching negative word waits");
  });
} else {
  t(`no futex on this backend (${os.kind}): locks wait with Atomics.wait instead`, () => {
    assert.is(os.futexWait, undefined);
  });
}

t.run();
