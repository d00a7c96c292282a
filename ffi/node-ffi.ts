/**
 * Node backend on Node's built-in FFI, `node:ffi` (Node >= 26; experimental there). No
 * native addon. The module is fetched with `process.getBuiltinModule`, so importing this
 * file never loads it (and works in ESM, CommonJS and bundles alike); only calling
 * {@link createNodeFfiOs} does. Node prints its one ExperimentalWarning for FFI then.
 *
 * Integer arguments are declared `uint64`/`int64`, which accept safe-integer numbers, so
 * addresses cross as numbers; 64-bit results come back as bigint and are converted once.
 *
 * @module
 */
import type { CType, NativeCallback, Os } from "../src/os.ts";
import { type Libc, platformFor, posixOs } from "./posix.ts";

type Fn = (...args: unknown[]) => unknown;

/** The part of `node:ffi` used here (declared locally: @types/node 20 does not know it). */
interface NodeFfi {
  dlopen(path: string, defs: Record<string, { return: string; arguments: string[] }>): { lib: NodeFfiLib; functions: Record<string, Fn> };
  toArrayBuffer(ptr: bigint, len: number, copy: boolean): ArrayBuffer;
  getInt32(ptr: bigint, offset?: number): number;
}

/** A `node:ffi` DynamicLibrary: callbacks are registered on (and owned by) a library. */
interface NodeFfiLib {
  registerCallback(sig: { return: string; arguments: string[] }, fn: Fn): bigint;
  unregisterCallback(ptr: bigint): void;
}

/** node:ffi type names for callback signatures (64-bit integers arrive as bigint). */
const NODE_FFI_CTYPE: Record<CType, string> = { ptr: "uint64", size: "uint64", i32: "int32", u32: "uint32", void: "void" };

interface NodeProcess {
  platform?: string;
  arch?: string;
  getBuiltinModule?(id: string): unknown;
}

/** `toArrayBuffer(ptr, 16 GiB, false)` works on Node 26 (measured); larger is not needed. */
const NODE_FFI_MAX_VIEW = 16 * 1024 ** 3;

/** `node:ffi`, or a reason it is unavailable (older Node, `--no-experimental-ffi`, a build without FFI). */
export function loadNodeFfi(): NodeFfi {
  const proc = (globalThis as { process?: NodeProcess }).process;
  if (typeof proc?.getBuiltinModule !== "function") throw new Error("process.getBuiltinModule is missing (Node < 20.16)");
  const ffi = proc.getBuiltinModule("node:ffi") as NodeFfi | undefined;
  if (ffi === undefined) throw new Error("node:ffi is not available (Node < 26, --no-experimental-ffi, or a build without FFI)");
  return ffi;
}

/** The `node:ffi` `Os`. Throws if node:ffi is unavailable or denied (permission model without --allow-ffi). */
export function createNodeFfiOs(reason = "node: node:ffi"): Os {
  const proc = (globalThis as { process?: NodeProcess }).process;
  const platform = platformFor(proc?.platform ?? "unknown", proc?.arch ?? "unknown");
  const ffi = loadNodeFfi();
  // Node 26.12.1's TurboFan aborts the process now and then while compiling our node:ffi
  // calls as fast API calls ("Check failed: index < node->op()->ValueInputCount()", SIGTRAP,
  // 3 of 8 suite runs; 0 of 11 with this flag, 5 of them set here at run time). None of these calls is on a malloc/free path.
  (proc?.getBuiltinModule?.("node:v8") as { setFlagsFromString?(f: string): void } | undefined)
    ?.setFlagsFromString?.("--no-turbo-fast-api-calls");
  const fn = (args: string[], ret: string) => ({ arguments: args, return: ret });
  const linux = platform.os === "linux";
  let s: Record<string, Fn>;
  let lib: NodeFfiLib;
  try {
    ({ lib, functions: s } = ffi.dlopen(platform.libc, {
      mmap: fn(["uint64", "uint64", "int32", "int32", "int32", "int64"], "int64"),
      munmap: fn(["uint64", "uint64"], "int32"),
      madvise: fn(["uint64", "uint64", "int32"], "int32"),
      mprotect: fn(["uint64", "uint64", "int32"], "int32"),
      mincore: fn(["uint64", "uint64", "buffer"], "int32"),
      getpid: fn([], "int32"),
      getpagesize: fn([], "int32"),
      ...(linux
        ? { syscall: fn(["int64", "uint64", "uint64", "uint64", "uint64"], "int64"), __errno_location: fn([], "pointer") }
        : { pthread_self: fn([], "uint64"), pthread_mach_thread_np: fn(["uint64"], "uint32"), __error: fn([], "pointer") }),
    }));
  } catch (e) {
    // ERR_ACCESS_DENIED under --permission without --allow-ffi
    const code = (e as { code?: string }).code;
    throw new Error(`node:ffi refused to load ${platform.libc} (${code ? code + ": " : ""}${(e as Error).message})`);
  }
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
      const p = errnoLocation() as bigint;
      return p !== 0n ? ffi.getInt32(p) : -1;
    },
    getpagesize: () => s.getpagesize() as number,
  };
  return posixOs({
    kind: "node",
    ffi: "node:ffi",
    reason,
    maxView: NODE_FFI_MAX_VIEW,
    libc,
    platform,
    view: (addr, size) => {
      if (!(addr > 0)) throw new RangeError(`view: bad address ${addr}`);
      if (size > NODE_FFI_MAX_VIEW) throw new RangeError(`view: ${size} bytes exceeds the ${NODE_FFI_MAX_VIEW}-byte limit on this runtime`);
      // copy=false: a zero-copy view of the mapping (copy defaults to true)
      return size === 0 ? new ArrayBuffer(0) : ffi.toArrayBuffer(BigInt(addr), size, false);
    },
    pointer: (addr) => BigInt(addr),
    // registerCallback: callable only on this thread; from another thread Node aborts the process.
    callback: (result, args, f): NativeCallback => {
      const wide = result === "ptr" || result === "size";
      // a 64-bit result must be a bigint; narrower ones a number
      const g = wide ? (...a: (number | bigint)[]) => BigInt(f(...a)) : f;
      const ptr = lib.registerCallback({ return: NODE_FFI_CTYPE[result], arguments: args.map((t) => NODE_FFI_CTYPE[t]) }, g as Fn);
      let live = true;
      return {
        address: Number(ptr),
        pointer: ptr,
        close: () => {
          if (live) lib.unregisterCallback(ptr);
          live = false;
        },
      };
    },
  });
}
