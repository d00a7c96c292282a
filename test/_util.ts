// Shared helpers for the uvu test files (not a test file itself).
// Only uses the public API of ../mod.ts.
import { bytes } from "../mod.ts";

export const KiB = 1024;
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** Blocks larger than this get a sampled pattern (head, tail, strided samples) instead of a full one. */
export const FULL_PATTERN_LIMIT = 64 * KiB;

/** Pattern byte for offset i of the block with the given id. Not periodic in 256 (i >>> 8 term). */
export function patByte(id: number, i: number): number {
  const h = Math.imul(id | 0, 0x9e3779b1) >>> 24;
  return (h ^ Math.imul(i, 7) ^ (i >>> 8) ^ 0x5a) & 255;
}

function sampleStride(size: number): number {
  return Math.max(1, Math.floor(size / 61));
}

/** Write the pattern of `id` into [ptr, ptr+size): everywhere for small blocks, sampled for large ones. */
export function fillPattern(ptr: number, size: number, id: number): void {
  if (size <= 0) return;
  const h = Math.imul(id | 0, 0x9e3779b1) >>> 24;
  if (size <= FULL_PATTERN_LIMIT) {
    const v = bytes(ptr, size);
    for (let i = 0; i < size; i++) v[i] = (h ^ Math.imul(i, 7) ^ (i >>> 8) ^ 0x5a) & 255;
    return;
  }
  const head = bytes(ptr, 64);
  for (let i = 0; i < 64; i++) head[i] = patByte(id, i);
  const tail = bytes(ptr + size - 64, 64);
  for (let i = 0; i < 64; i++) tail[i] = patByte(id, size - 64 + i);
  const all = bytes(ptr, size);
  const stride = sampleStride(size);
  const off = (id >>> 0) % 13;
  for (let i = off; i < size; i += stride) all[i] = patByte(id, i);
}

/**
 * Check the pattern of `id` written by fillPattern(ptr, size, id), restricted to offsets < limit.
 * Returns -1 when intact, else the first offset that differs.
 */
export function checkPattern(ptr: number, size: number, id: number, limit: number = size): number {
  const n = Math.min(size, limit);
  if (n <= 0) return -1;
  const h = Math.imul(id | 0, 0x9e3779b1) >>> 24;
  if (size <= FULL_PATTERN_LIMIT) {
    const v = bytes(ptr, n);
    for (let i = 0; i < n; i++) {
      if (v[i] !== ((h ^ Math.imul(i, 7) ^ (i >>> 8) ^ 0x5a) & 255)) return i;
    }
    return -1;
  }
  const head = bytes(ptr, Math.min(64, n));
  for (let i = 0; i < head.length; i++) if (head[i] !== patByte(id, i)) return i;
  if (size - 64 < n) {
    const start = size - 64;
    const tail = bytes(ptr + start, n - start);
    for (let i = 0; i < tail.length; i++) if (tail[i] !== patByte(id, start + i)) return start + i;
  }
  const all = bytes(ptr, n);
  const stride = sampleStride(size);
  const off = (id >>> 0) % 13;
  for (let i = off; i < n; i += stride) if (all[i] !== patByte(id, i)) return i;
  return -1;
}

/** Every byte of [ptr, ptr+len) equals val (checked in chunks so huge ranges work). Returns -1 or first bad offset. */
export function firstNot(ptr: number, len: number, val: number): number {
  const CH = 16 * MiB;
  for (let base = 0; base < len; base += CH) {
    const n = Math.min(CH, len - base);
    const v = bytes(ptr + base, n);
    for (let i = 0; i < n; i++) if (v[i] !== val) return base + i;
  }
  return -1;
}

export function memIsZero(ptr: number, len: number): boolean {
  return ptr !== 0 && firstNot(ptr, len, 0) === -1;
}

export function memSet(ptr: number, len: number, val: number): void {
  const CH = 16 * MiB;
  for (let base = 0; base < len; base += CH) {
    const n = Math.min(CH, len - base);
    bytes(ptr + base, n).fill(val);
  }
}

/** ptr % align === 0 for JS-number addresses (exact for addresses < 2^53). */
export function isAligned(ptr: number, align: number): boolean {
  return ptr % align === 0;
}

/** splitmix32: small, fast, seedable PRNG. Returns uint32. */
export function makeRng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Read an environment variable on Node, Deno and Bun; undefined when unavailable or not permitted. */
export function env(name: string): string | undefined {
  try {
    // deno-lint-ignore no-explicit-any
    const p = (globalThis as any).process;
    if (p && p.env) return p.env[name];
  } catch { /* no permission */ }
  try {
    // deno-lint-ignore no-explicit-any
    const d = (globalThis as any).Deno;
    if (d && d.env) return d.env.get(name);
  } catch { /* no permission */ }
  return undefined;
}

export function hex(n: number): string {
  return "0x" + n.toString(16);
}

/**
 * Which stop points a stop-at-each-call sweep (worker-trust, worker-release) tries in this run.
 * Every one on Node 26's node:ffi run at secure level 0 (FFI) and on Bun's buffer backend
 * (buffer); every third on the other runs, starting at 1, 2 or 3 by runtime (the older Node is
 * whichever is not 26), so that the matrix as a whole still tries
 * every point on each backend at least once. A sweep costs a worker start per point (0.1-0.3 s):
 * trying every point on all ten runs took about 3 of the suite's 26 minutes.
 */
export function sweepPlan(isNodeFfi: boolean, isBuffer: boolean, secure: number): { first: number; step: number; full: boolean } {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  const runtime = g.Bun ? "bun" : g.Deno ? "deno" : String(g.process?.versions?.node ?? "").startsWith("26.") ? "node26" : "node-old";
  if (isNodeFfi && secure === 0) return { first: 1, step: 1, full: true };
  if (isBuffer && runtime === "bun") return { first: 1, step: 1, full: true };
  // FFI: the older Node (koffi) 1, Deno 2, Node 26 koffi and Bun 3; buffer: the older Node 1, Node 26 and Deno 2 (Bun: all)
  const first = runtime === "node-old" ? 1 : runtime === "deno" ? 2 : runtime === "bun" ? 3 : isBuffer ? 2 : 3;
  return { first, step: 3, full: false };
}
