/**
 * Node backend: libc through koffi (a Node-API addon; an optional dependency, the
 * fallback where `node:ffi` is missing). Loaded synchronously with `createRequire`, so
 * importing this module never loads koffi; only calling {@link createNodeOs} does. The
 * require is anchored at this module (ESM), at the bundle's file (a CommonJS bundle,
 * where esbuild leaves `import.meta` empty), or at the working directory.
 *
 * @module
 */
import { createRequire } from "node:module";
import type { CType, NativeCallback, Os } from "../src/os.ts";
import { type Libc, platformFor, posixOs } from "./posix.ts";

/** The part of koffi 3 used here (pointers are bigint or number). */
interface Koffi {
  load(path: string): { func(name: string, result: string, args: string[]): (...args: unknown[]) => unknown };
  view(addr: number | bigint, len: number): ArrayBuffer;
  errno(): number;
  proto(result: string, args: string[]): unknown;
  pointer(type: unknown): unknown;
  register(fn: (...args: unknown[]) => unknown, type: unknown): bigint;
  unregister(ptr: bigint): void;
}

/** koffi type names for callback signatures ("size_t" >= 2^63 arrives as a negative number). */
const KOFFI_CTYPE: Record<CType, string> = { ptr: "uintptr_t", size: "size_t", i32: "int", u32: "unsigned int", void: "void" };

declare const __filename: string | undefined; // defined in CommonJS only

/** A `require` that resolves packages as this module would; never throws. */
function requireHere(): (id: string) => unknown {
  const url = (import.meta as { url?: string }).url;
  if (typeof url === "string" && url !== "") return createRequire(url);
  if (typeof __filename === "string" && __filename !== "") return createRequire(__filename);
  const cwd = (globalThis as { process?: { cwd?(): string } }).process?.cwd?.() ?? ".";
  return createRequire(cwd + "/");
}

/** koffi aborts the process for views of 8 GiB; 4 GiB works. */
const NODE_MAX_VIEW = 4 * 1024 ** 3;

/** The koffi `Os` for Node (also usable on Bun, which runs Node-API addons). Throws if koffi cannot load. */
export function createNodeOs(reason = "node: koffi"): Os {
  const proc = (globalThis as { process?: { platform?: string; arch?: string } }).process;
  const platform = platformFor(proc?.platform ?? "unknown", proc?.arch ?? "unknown");
  let koffi: Koffi;
  try {
    koffi = requireHere()("koffi") as Koffi;
  } catch (e) {
    throw new Error(`koffi could not be loaded (${(e as Error).message?.split("\n")[0]})`);
  }
  const lib = koffi.load(platform.libc);
  const f = (name: string, result: string, args: string[]) => lib.func(name, result, args);
  const mmap = f("mmap", "intptr_t", ["uintptr_t", "size_t", "int", "int", "int", "intptr_t"]);
  const munmap = f("munmap", "int", ["uintptr_t", "size_t"]);
  const madvise = f("madvise", "int", ["uintptr_t", "size_t", "int"]);
  const mprotect = f("mprotect", "int", ["uintptr_t", "size_t", "int"]);
  const mincore = f("mincore", "int", ["uintptr_t", "size_t", "uint8_t *"]);
  const getpid = f("getpid", "int", []);
  const getpagesize = f("getpagesize", "int", []);
  let threadId: () => number;
  let syscall4: ((nr: number, a: number, b: number, c: number, d: number) => number) | undefined;
  if (platform.os === "linux") {
    // one prototype for every call: pointer-width integer arguments (extra ones are ignored)
    const syscall = f("syscall", "long", ["long", "uintptr_t", "uintptr_t", "uintptr_t", "uintptr_t"]);
    const nr = platform.sysGettid;
    threadId = () => Number(syscall(nr, 0, 0, 0, 0));
    syscall4 = (n, a, b, c, d) => Number(syscall(n, a, b, c, d));
  } else {
    const self = f("pthread_self", "uintptr_t", []);
    const mach = f("pthread_mach_thread_np", "uint32_t", ["uintptr_t"]);
    threadId = () => mach(self()) as number;
  }
  const libc: Libc = {
    mmap: (addr, len, prot, flags) => Number(mmap(addr, len, prot, flags, -1, 0)),
    munmap: (addr, len) => munmap(addr, len) as number,
    madvise: (addr, len, advice) => madvise(addr, len, advice) as number,
    mprotect: (addr, len, prot) => mprotect(addr, len, prot) as number,
    mincore: (addr, len, vec) => mincore(addr, len, vec) as number,
    getpid: () => getpid() as number,
    threadId,
    syscall4,
    errno: () => koffi.errno(),
    getpagesize: () => getpagesize() as number,
  };
  return posixOs({
    kind: "node",
    ffi: "koffi",
    reason,
    maxView: NODE_MAX_VIEW,
    libc,
    platform,
    view: (addr, size) => {
      if (!(addr > 0)) throw new RangeError(`view: bad address ${addr}`);
      if (size > NODE_MAX_VIEW) throw new RangeError(`view: ${size} bytes exceeds the ${NODE_MAX_VIEW}-byte limit on this runtime`);
      return koffi.view(addr, size);
    },
    pointer: (addr) => BigInt(addr),
    // koffi runs a call from another thread on this thread's event loop (the caller blocks).
    callback: (result, args, fn): NativeCallback => {
      const type = koffi.pointer(koffi.proto(KOFFI_CTYPE[result], args.map((t) => KOFFI_CTYPE[t])));
      const ptr = koffi.register(fn as (...a: unknown[]) => unknown, type);
      let live = true;
      return {
        address: Number(ptr),
        pointer: ptr,
        close: () => {
          if (live) koffi.unregister(ptr);
          live = false;
        },
      };
    },
  });
}
