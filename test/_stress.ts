// A port of mimalloc's test/test-stress.c (helpers; not a test file). Threads become
// workers attached to one allocator; the shared `transfer` array is a BigInt64Array over a
// SharedArrayBuffer exchanged with Atomics.exchange, as the C test's atomic_exchange_ptr.
// Differences: the random generator is a 32-bit mix (the C one is 64-bit splitmix), and a
// block of `items` 8-byte words holds ((items - i) ^ cookie) as two 32-bit halves.
import { bytes, calloc, free, realloc } from "../mod.ts";

const COOKIE_LO = 0x1ce4e5b9 | 0;
const COOKIE_HI = 0xbf58476d | 0;
export const TRANSFERS = 1000;

export interface StressArgs {
  tid: number;
  scale: number;
  transfer: SharedArrayBuffer;
  allowLarge: boolean;
}

export function makeRandom(seed: number): { pick(): number; chance(perc: number): boolean } {
  let x = seed | 0 || 1;
  const pick = () => {
    x ^= x >>> 15;
    x = Math.imul(x, 0x2c1b3c6d);
    x ^= x >>> 12;
    x = Math.imul(x, 0x297a2d39);
    x ^= x >>> 15;
    return x >>> 0;
  };
  return { pick, chance: (perc: number) => pick() % 100 <= perc };
}

function words(p: number, items: number): Int32Array {
  const b = bytes(p, items * 8);
  return new Int32Array(b.buffer, b.byteOffset, items * 2);
}

export function allocItems(items: number, r: ReturnType<typeof makeRandom>, allowLarge: boolean): number {
  if (r.chance(1)) {
    if (r.chance(1) && allowLarge) items *= 10000; // 0.01% giant
    else if (r.chance(10) && allowLarge) items *= 1000; // 0.1% huge
    else items *= 100; // 1% large objects
  }
  if (items === 40) items++;
  if (items === 0) items = 1;
  const p = calloc(items, 8);
  if (p === 0) throw new Error(`calloc(${items}, 8) failed`);
  const w = words(p, items);
  for (let i = 0; i < items; i++) {
    if (w[2 * i] !== 0 || w[2 * i + 1] !== 0) throw new Error(`calloc: block 0x${p.toString(16)} not zero at item ${i}`);
    w[2 * i] = (items - i) ^ COOKIE_LO;
    w[2 * i + 1] = COOKIE_HI;
  }
  return p;
}

export function freeItems(p: number): void {
  if (p === 0) return;
  const items = (words(p, 1)[0] ^ COOKIE_LO) >>> 0;
  const w = words(p, items);
  for (let i = 0; i < items; i++) {
    if ((w[2 * i] ^ COOKIE_LO) !== items - i || w[2 * i + 1] !== COOKIE_HI) {
      throw new Error(`memory corruption at block 0x${p.toString(16)} at ${i}`);
    }
  }
  free(p);
}

/** stress(tid) of test-stress.c; returns the number of allocations made. */
export function stressWorker(a: StressArgs): number {
  const transfer = new BigInt64Array(a.transfer);
  const r = makeRandom((a.tid + 1) * 43);
  const maxItemShift = 5;
  const maxItemRetainedShift = maxItemShift + 2;
  let allocs = 100 * a.scale * ((a.tid % 8) + 1);
  let retain = allocs >>> 1;
  const total = allocs + retain;
  // data and retained live in native memory too, as in the C test (grown with realloc)
  let dataSize = 0;
  let data = 0;
  let dataTop = 0;
  const retained = calloc(retain, 8);
  let retainTop = 0;
  const slot = (base: number, i: number) => new Float64Array(bytes(base + i * 8, 8).buffer, bytes(base + i * 8, 8).byteOffset, 1);
  while (allocs > 0 || retain > 0) {
    if (retain === 0 || (r.chance(50) && allocs > 0)) {
      allocs--;
      if (dataTop >= dataSize) {
        dataSize += 100000;
        data = realloc(data, dataSize * 8);
        if (data === 0) throw new Error("realloc of the data array failed");
      }
      slot(data, dataTop++)[0] = allocItems(1 << (r.pick() % maxItemShift), r, a.allowLarge);
    } else {
      slot(retained, retainTop++)[0] = allocItems(1 << (r.pick() % maxItemRetainedShift), r, a.allowLarge);
      retain--;
    }
    if (r.chance(66) && dataTop > 0) {
      const s = slot(data, r.pick() % dataTop);
      freeItems(s[0]);
      s[0] = 0;
    }
    if (r.chance(25) && dataTop > 0) {
      const s = slot(data, r.pick() % dataTop);
      const t = r.pick() % TRANSFERS;
      s[0] = Number(Atomics.exchange(transfer, t, BigInt(s[0])));
    }
  }
  for (let i = 0; i < retainTop; i++) freeItems(slot(retained, i)[0]);
  for (let i = 0; i < dataTop; i++) freeItems(slot(data, i)[0]);
  free(retained);
  free(data);
  return total;
}
