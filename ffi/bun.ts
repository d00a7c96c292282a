/**
 * Bun backend: libc through `bun:ffi`. The module is required with a computed specifier
 * inside the factory, so Deno and JSR never resolve `bun:ffi`.
 *
 * @module
 */
import type { CType, NativeCallback, Os } from "../src/os.ts";
import { type Libc, platformFor, posixOs } from "./posix.ts";

/** The part of `bun:ffi` used here (declared locally). */
interface BunFfi {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): {
    symbols: Record<string, (...args: unknown[]) => unknown>;
  };
  toArrayBuffer(ptr: number, byteOffset: number, byteLength: number): ArrayBuffer;
  read: { i32(ptr: number, offset?: number): number };
  JSCallback: new (
    fn: (...args: unknown[]) => unknown,
    def: { args: string[]; returns: string; threadsafe?: boolean },
  ) => { ptr: number | null; close(): void };
}

/** bun:ffi type names for callback signatures ("usize" arrives as bigint). */
const BUN_CTYPE: Record<CType, string> = { ptr: "usize", size: "usize", i32: "i32", u32: "u32", void: "void" };

/** Bun fails with "Out of memory" for 8 GiB views; 4 GiB works (measured). */
const BUN_MAX_VIEW = 4 * 1024 ** 3;

function loadBunFfi(): BunFfi {
  const spec = "bun:" + "ffi";
  const req = (import.meta as unknown as { require?: (s: string) => unknown }).require;
  if (typeof req !== "function") throw new Error("import.meta.require is unavailable (not running on Bun)");
  return req(spec) as BunFfi;
}

/** The `bun:ffi` `Os`. Throws if not on Bun. */
export function createBunOs(reason = "bun: bun:ffi"): Os {
  const proc = (globalThis as { process?: { platform?: string; arch?: string; versions?: { bun?: string } } }).process;
  if (!proc?.versions?.bun) throw new Error("not running on Bun");
  const platform = platformFor(proc.platform ?? "unknown", proc.arch ?? "unknown");
  const ffi = loadBunFfi();
  // i64_fast/u64_fast return a number when it is a safe integer (MAP_FAILED is -1), else a bigint.
  const fn = (args: string[], returns: string) => ({ args, returns });
  const linux = platform.os === "linux";
  const s = ffi.dlopen(platform.libc, {
    mmap: fn(["usize", "usize", "i32", "i32", "i32", "isize"], "i64_fast"),
    munmap: fn(["usize", "usize"], "i32"),
    madvise: fn(["usize", "usize", "i32"], "i32"),
    mprotect: fn(["usize", "usize", "i32"], "i32"),
    mincore: fn(["usize", "usize", "buffer"], "i32"),
    getpid: fn([], "i32"),
    getpagesize: fn([], "i32"),
    ...(linux
      ? { syscall: fn(["i64", "usize", "usize", "usize", "usize"], "i64_fast"), __errno_location: fn([], "ptr") }
      : { pthread_self: fn([], "u64_fast"), pthread_mach_thread_np: fn(["usize"], "u32"), __error: fn([], "ptr") }),
  }).symbols;
  const errnoLocation = linux ? s.__errno_location : s.__error;
  const nr = platform.sysGettid;
  const libc: Libc = {
    mmap: (addr, len, prot, flags) => Number(s.mmap(addr, len, prot, flags, -1, 0)),
    munmap: (addr, len) => s.munmap(addr, len) as number,
    madvise: (addr, len, advice) => s.madvise(addr, len, advice) as number,
    mprotect: (addr, len, prot) => s.mprotect(addr, len, prot) as number,
    mincore: (addr, len, vec) => s.mincore(addr, len, vec) as number,
    getpid: () => s.getpid() as number,
    threadId: linux
      ? () => Number(s.syscall(nr, 0, 0, 0, 0))
      : () => s.pthread_mach_thread_np(s.pthread_self()) as number,
    syscall4: linux ? (n, a, b, c, d) => Number(s.syscall(n, a, b, c, d)) : undefined,
    errno: () => {
      const p = errnoLocation() as number | null;
      return p ? ffi.read.i32(p) : -1;
    },
    getpagesize: () => s.getpagesize() as number,
  };
  return posixOs({
    kind: "bun",
    ffi: "bun",
    reason,
    maxView: BUN_MAX_VIEW,
    libc,
    platform,
    view: (addr, size) => {
      if (!(addr > 0)) throw new RangeError(`view: bad address ${addr}`);
      if (size > BUN_MAX_VIEW) throw new RangeError(`view: ${size} bytes exceeds the ${BUN_MAX_VIEW}-byte limit on this runtime`);
      // toArrayBuffer treats a missing/zero length as "up to the first NUL byte".
      return size === 0 ? new ArrayBuffer(0) : ffi.toArrayBuffer(addr, 0, size);
    },
    pointer: (addr) => addr,
    // Not threadsafe: a threadsafe JSCallback runs later and its result is lost (C would
    // see NULL from malloc); a plain one called from another thread never returns.
    callback: (result, args, fn): NativeCallback => {
      const cb = new ffi.JSCallback(fn as (...a: unknown[]) => unknown, { args: args.map((t) => BUN_CTYPE[t]), returns: BUN_CTYPE[result] });
      if (cb.ptr === null) throw new Error("bun:ffi JSCallback has no pointer");
      return { address: cb.ptr, pointer: cb.ptr, close: () => cb.close() };
    },
  });
}
