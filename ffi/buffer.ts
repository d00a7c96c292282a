/**
 * The buffer backend: no FFI. "OS memory" is a `SharedArrayBuffer` per reservation (an
 * `ArrayBuffer` where shared memory is unavailable), and addresses are synthetic:
 * handed out from a counter that starts at 4 GiB, aligned as asked, and never reused,
 * so a stale address is detected instead of aliasing newer memory.
 *
 * Views alias, never copy: `view(addr, size)` must name exactly one whole reservation
 * and returns its buffer. The core keeps one view per reservation and only asks for
 * whole ones; any other range throws.
 *
 * @module
 */
import { threadId as workerThreadId } from "node:worker_threads";
import type { Os } from "../src/os.ts";
import { isPowerOfTwo } from "./posix.ts";

const PAGE = 4096;
/** First synthetic address; keeps small integers (and 0) out of the address space. */
const FIRST_ADDRESS = 0x1_0000_0000;
/** Gap left after every reservation so an overrun never lands in the next one. */
const GAP = 64 * 1024;
/** Typed arrays over a buffer are limited to 4 GiB on Node 20 and Bun. */
const BUFFER_MAX_VIEW = 4 * 1024 ** 3;

interface Reservation {
  base: number;
  size: number;
  /** Bytes not yet released; the buffer is dropped when this reaches 0. */
  live: number;
  buffer: ArrayBuffer;
}

/** The buffer `Os`. Works everywhere; never throws for lack of FFI. */
export function createBufferOs(reason = "buffer"): Os {
  const Shared = typeof SharedArrayBuffer === "function" ? SharedArrayBuffer : undefined;
  // Sorted by base: addresses only grow, so appending keeps the order.
  const list: Reservation[] = [];
  let next = FIRST_ADDRESS;

  function find(addr: number): Reservation | undefined {
    let lo = 0, hi = list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = list[mid];
      if (addr < r.base) hi = mid - 1;
      else if (addr >= r.base + r.size) lo = mid + 1;
      else return r;
    }
    return undefined;
  }
  function owner(call: string, addr: number, size: number): Reservation {
    const r = find(addr);
    if (!r || size < 0 || addr + size > r.base + r.size) {
      throw new RangeError(`${call}: 0x${addr.toString(16)} + ${size} is not inside one live reservation of the buffer backend`);
    }
    return r;
  }
  /**
   * Zeroes a range page by page, skipping pages that already read as zero: writing zeroes
   * into never-touched pages would make them resident, so a purge would grow RSS.
   */
  function zero(r: Reservation, addr: number, size: number): void {
    const off = addr - r.base;
    if (off % PAGE !== 0 || size % PAGE !== 0) {
      new Uint8Array(r.buffer, off, size).fill(0);
      return;
    }
    const w = new Int32Array(r.buffer, off, size / 4);
    const PW = PAGE / 4;
    for (let p = 0; p < w.length; p += PW) {
      let any = 0;
      for (let i = p; i < p + PW; i++) any |= w[i];
      if (any !== 0) w.fill(0, p, p + PW);
    }
  }

  return {
    kind: "buffer",
    reason,
    pageSize: PAGE,
    canProtect: false,
    canPurge: false,
    maxView: BUFFER_MAX_VIEW,

    reserve(size: number, align: number): number {
      if (!(size > 0 && size % PAGE === 0)) throw new RangeError(`reserve: size ${size} is not a positive multiple of ${PAGE}`);
      if (!isPowerOfTwo(align)) throw new RangeError(`reserve: alignment ${align} is not a power of two`);
      if (size > BUFFER_MAX_VIEW) return 0;
      const base = Math.ceil(next / align) * align;
      if (base + size + GAP > Number.MAX_SAFE_INTEGER) return 0;
      let buffer: ArrayBuffer;
      try {
        buffer = Shared ? (new Shared(size) as unknown as ArrayBuffer) : new ArrayBuffer(size);
      } catch {
        return 0; // RangeError: allocation failed
      }
      next = base + size + GAP;
      list.push({ base, size, live: size, buffer });
      return base;
    },

    release(addr: number, size: number): void {
      const r = owner("release", addr, size);
      if (size === r.size) r.live = 0;
      else {
        zero(r, addr, size);
        r.live -= size;
      }
      if (r.live <= 0) list.splice(list.indexOf(r), 1);
    },

    purge(addr: number, size: number): void {
      zero(owner("purge", addr, size), addr, size);
    },

    // No OS to tell: the contents stay (allowed: they are undefined after a reset).
    reset(addr: number, size: number): void {
      owner("reset", addr, size);
    },

    protect(): void {
      throw new Error("protect: the buffer backend cannot make memory inaccessible (canProtect is false)");
    },
    unprotect(): void {
      throw new Error("unprotect: the buffer backend cannot make memory inaccessible (canProtect is false)");
    },

    view(addr: number, size: number): ArrayBuffer {
      const r = owner("view", addr, size);
      if (addr !== r.base || size !== r.size) {
        throw new RangeError(
          `view: the buffer backend can only view a whole reservation (0x${r.base.toString(16)} + ${r.size}), ` +
            `not 0x${addr.toString(16)} + ${size}`,
        );
      }
      return r.buffer;
    },

    pointer(): never {
      throw new Error("pointer: the buffer backend has no native pointers (use an FFI backend to pass memory to C)");
    },

    resident: () => -1,
    pid: () => (globalThis as { process?: { pid?: number } }).process?.pid ?? 0,
    threadId: () => workerThreadId ?? 0,
  };
}
