/**
 * Deno backend: libc through `Deno.dlopen`. Needs `--allow-ffi`; the permission is
 * queried without prompting, so a missing grant is a clean error, never a prompt.
 * Addresses cross the FFI as `usize` integers: no pointer objects on the hot path.
 *
 * @module
 */
import type { CType, NativeCallback, Os } from "../src/os.ts";
import { type Libc, platformFor, posixOs } from "./posix.ts";

/** The small part of the `Deno` namespace used here (declared locally: no global types). */
interface DenoApi {
  build: { os: string; arch: string };
  permissions: { querySync(d: { name: "ffi" }): { state: string } };
  dlopen(path: string, symbols: Record<string, { parameters: string[]; result: string }>): {
    symbols: Record<string, (...args: unknown[]) => unknown>;
  };
  UnsafePointer: { create(value: bigint): object | null; value(p: object | null): bigint };
  UnsafeCallback: new (
    def: { parameters: string[]; result: string },
    fn: (...args: unknown[]) => unknown,
  ) => { pointer: object; close(): void };
  UnsafePointerView: {
    new (p: object): { getInt32(offset?: number): number };
    getArrayBuffer(p: object, length: number, offset?: number): ArrayBuffer;
  };
}

/** Deno type names for callback signatures ("usize" arrives as bigint). */
const DENO_CTYPE: Record<CType, string> = { ptr: "usize", size: "usize", i32: "i32", u32: "u32", void: "void" };

/** Deno creates external ArrayBuffers of 64 GiB without trouble (measured). */
const DENO_MAX_VIEW = 64 * 1024 ** 3;

/** The `Deno.dlopen` `Os`. Throws if not on Deno or the ffi permission is not granted. */
export function createDenoOs(reason = "deno: Deno.dlopen"): Os {
  const Deno = (globalThis as { Deno?: DenoApi }).Deno;
  if (!Deno?.dlopen) throw new Error("not running on Deno");
  const state = Deno.permissions.querySync({ name: "ffi" }).state;
  // unscoped: Deno.UnsafePointer.create and pointer views refuse a scoped --allow-ffi=<path>
  if (state !== "granted") throw new Error(`Deno without --allow-ffi (ffi permission is "${state}"; a scoped --allow-ffi=<path> is not enough: pointer views need the unscoped flag)`);
  const platform = platformFor(Deno.build.os, Deno.build.arch);
  const fn = (parameters: string[], result: string) => ({ parameters, result });
  const common = {
    mmap: fn(["usize", "usize", "i32", "i32", "i32", "isize"], "isize"),
    munmap: fn(["usize", "usize"], "i32"),
    madvise: fn(["usize", "usize", "i32"], "i32"),
    mprotect: fn(["usize", "usize", "i32"], "i32"),
    mincore: fn(["usize", "usize", "buffer"], "i32"),
    getpid: fn([], "i32"),
    getpagesize: fn([], "i32"),
  };
  const linux = platform.os === "linux";
  const s = Deno.dlopen(platform.libc, {
    ...common,
    ...(linux
      ? { syscall: fn(["i64", "usize", "usize", "usize", "usize"], "i64"), __errno_location: fn([], "pointer") }
      : { pthread_self: fn([], "usize"), pthread_mach_thread_np: fn(["usize"], "u32"), __error: fn([], "pointer") }),
  }).symbols;
  const errnoLocation = linux ? s.__errno_location : s.__error;
  const nr = platform.sysGettid;
  const libc: Libc = {
    // 64-bit results come back as bigint on Deno; the mmap result is converted once here.
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
      const p = errnoLocation() as object | null;
      return p ? new Deno.UnsafePointerView(p).getInt32() : -1;
    },
    getpagesize: () => s.getpagesize() as number,
  };
  return posixOs({
    kind: "deno",
    ffi: "deno",
    reason,
    maxView: DENO_MAX_VIEW,
    libc,
    platform,
    view: (addr, size) => {
      const p = addr > 0 ? Deno.UnsafePointer.create(BigInt(addr)) : null;
      if (p === null) throw new RangeError(`view: bad address ${addr}`);
      if (size > DENO_MAX_VIEW) throw new RangeError(`view: ${size} bytes exceeds the ${DENO_MAX_VIEW}-byte limit on this runtime`);
      return Deno.UnsafePointerView.getArrayBuffer(p, size);
    },
    pointer: (addr) => Deno.UnsafePointer.create(BigInt(addr)),
    // Not threadSafe: a call from another thread is queued to this thread's event loop (the caller blocks).
    callback: (result, args, fn): NativeCallback => {
      const cb = new Deno.UnsafeCallback({ parameters: args.map((t) => DENO_CTYPE[t]), result: DENO_CTYPE[result] }, fn as (...a: unknown[]) => unknown);
      let live = true;
      return {
        address: Number(Deno.UnsafePointer.value(cb.pointer)),
        pointer: cb.pointer,
        close: () => {
          if (live) cb.close();
          live = false;
        },
      };
    },
  });
}
