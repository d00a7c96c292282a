// libc malloc and native mimalloc, called through the runtime's own FFI:
// koffi on Node, Deno.dlopen on Deno, bun:ffi on Bun. Independent of ffi/ (the allocator's
// shims): these are what a user without tsmalloc would write, in each runtime's fastest
// form (measured here):
//   Node/koffi: size_t args as numbers, results as `uintptr_t` numbers (void* would be BigInt).
//   Deno: `usize`/`u64` arguments passed as BigInt and `u64` results (BigInt handles) hit
//         V8's fast-call path (~13 ns per malloc+free); numbers for 64-bit arguments fall
//         back to the slow path (~150-250 ns). So sizes are pre-converted to BigInt.
//   Bun: u64 size arguments as numbers, `ptr` results (numbers).
import { runtimeName } from "../common.ts";
import type { Handle, Ops, Peer } from "./types.ts";
import { errorMessage, unavailablePeer } from "./types.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const LIBC = "libc.so.6";
const LIBMI = "libmimalloc.so.2";

interface NativeSyms {
  malloc(n: Handle): Handle;
  free(p: Handle): void;
  calloc(c: Handle, n: Handle): Handle;
  realloc(p: Handle, n: Handle): Handle;
  aligned(n: Handle, a: Handle): Handle; // (size, alignment)
  memset(p: Handle, v: number, n: Handle): unknown;
  collect(): string;
  version?: string;
  nil: Handle;
  size(n: number): unknown;
}

// --- per-runtime loaders -------------------------------------------------------------

// deno-lint-ignore no-explicit-any
async function loadNode(kind: "libc" | "mimalloc"): Promise<NativeSyms> {
  const spec = "koffi"; // non-literal: esbuild leaves it to the runtime
  const koffi = (await import(spec)).default;
  const libc = koffi.load(LIBC);
  const memset = libc.func("memset", "uintptr_t", ["uintptr_t", "int", "size_t"]);
  if (kind === "libc") {
    const aligned = libc.func("aligned_alloc", "uintptr_t", ["size_t", "size_t"]);
    const trim = libc.func("malloc_trim", "int", ["size_t"]);
    return {
      malloc: libc.func("malloc", "uintptr_t", ["size_t"]),
      free: libc.func("free", "void", ["uintptr_t"]),
      calloc: libc.func("calloc", "uintptr_t", ["size_t", "size_t"]),
      realloc: libc.func("realloc", "uintptr_t", ["uintptr_t", "size_t"]),
      aligned: (n: number, a: number) => aligned(a, n),
      memset,
      collect: () => (trim(0), "malloc_trim(0)"),
      version: `koffi ${koffi.version}`,
      nil: 0,
      size: (n: number) => n,
    };
  }
  const mi = koffi.load(LIBMI);
  const collect = mi.func("mi_collect", "void", ["bool"]);
  const ver = mi.func("mi_version", "int", []);
  return {
    malloc: mi.func("mi_malloc", "uintptr_t", ["size_t"]),
    free: mi.func("mi_free", "void", ["uintptr_t"]),
    calloc: mi.func("mi_calloc", "uintptr_t", ["size_t", "size_t"]),
    realloc: mi.func("mi_realloc", "uintptr_t", ["uintptr_t", "size_t"]),
    aligned: mi.func("mi_malloc_aligned", "uintptr_t", ["size_t", "size_t"]),
    memset,
    collect: () => (collect(true), "mi_collect(true)"),
    version: `mi_version() ${ver()}, koffi ${koffi.version}`,
    nil: 0,
    size: (n: number) => n,
  };
}

function loadDeno(kind: "libc" | "mimalloc"): NativeSyms {
  const D = g.Deno;
  const libc = D.dlopen(LIBC, {
    memset: { parameters: ["u64", "i32", "usize"], result: "u64" },
    malloc: { parameters: ["usize"], result: "u64" },
    free: { parameters: ["u64"], result: "void" },
    calloc: { parameters: ["usize", "usize"], result: "u64" },
    realloc: { parameters: ["u64", "usize"], result: "u64" },
    aligned_alloc: { parameters: ["usize", "usize"], result: "u64" },
    malloc_trim: { parameters: ["usize"], result: "i32" },
  }).symbols;
  const memset = libc.memset;
  if (kind === "libc") {
    const aligned = libc.aligned_alloc;
    return {
      malloc: libc.malloc,
      free: libc.free,
      calloc: libc.calloc,
      realloc: libc.realloc,
      aligned: (n: bigint, a: bigint) => aligned(a, n),
      memset,
      collect: () => (libc.malloc_trim(0n), "malloc_trim(0)"),
      version: `Deno.dlopen (deno ${D.version.deno})`,
      nil: 0n,
      size: (n: number) => BigInt(n),
    };
  }
  const mi = D.dlopen(LIBMI, {
    mi_malloc: { parameters: ["usize"], result: "u64" },
    mi_free: { parameters: ["u64"], result: "void" },
    mi_calloc: { parameters: ["usize", "usize"], result: "u64" },
    mi_realloc: { parameters: ["u64", "usize"], result: "u64" },
    mi_malloc_aligned: { parameters: ["usize", "usize"], result: "u64" },
    mi_collect: { parameters: ["bool"], result: "void" },
    mi_version: { parameters: [], result: "i32" },
  }).symbols;
  return {
    malloc: mi.mi_malloc,
    free: mi.mi_free,
    calloc: mi.mi_calloc,
    realloc: mi.mi_realloc,
    aligned: mi.mi_malloc_aligned,
    memset,
    collect: () => (mi.mi_collect(true), "mi_collect(true)"),
    version: `mi_version() ${mi.mi_version()}, Deno.dlopen`,
    nil: 0n,
    size: (n: number) => BigInt(n),
  };
}

async function loadBun(kind: "libc" | "mimalloc"): Promise<NativeSyms> {
  const spec = "bun:ffi";
  const { dlopen, FFIType: T } = await import(spec);
  const libc = dlopen(LIBC, {
    memset: { args: [T.ptr, T.i32, T.u64], returns: T.ptr },
    malloc: { args: [T.u64], returns: T.ptr },
    free: { args: [T.ptr], returns: T.void },
    calloc: { args: [T.u64, T.u64], returns: T.ptr },
    realloc: { args: [T.ptr, T.u64], returns: T.ptr },
    aligned_alloc: { args: [T.u64, T.u64], returns: T.ptr },
    malloc_trim: { args: [T.u64], returns: T.i32 },
  }).symbols;
  const memset = libc.memset;
  if (kind === "libc") {
    const aligned = libc.aligned_alloc;
    return {
      malloc: libc.malloc,
      free: libc.free,
      calloc: libc.calloc,
      realloc: libc.realloc,
      aligned: (n: number, a: number) => aligned(a, n),
      memset,
      collect: () => (libc.malloc_trim(0), "malloc_trim(0)"),
      version: `bun:ffi (bun ${g.Bun.version})`,
      nil: 0,
      size: (n: number) => n,
    };
  }
  const mi = dlopen(LIBMI, {
    mi_malloc: { args: [T.u64], returns: T.ptr },
    mi_free: { args: [T.ptr], returns: T.void },
    mi_calloc: { args: [T.u64, T.u64], returns: T.ptr },
    mi_realloc: { args: [T.ptr, T.u64], returns: T.ptr },
    mi_malloc_aligned: { args: [T.u64, T.u64], returns: T.ptr },
    mi_collect: { args: [T.bool], returns: T.void },
    mi_version: { args: [], returns: T.i32 },
  }).symbols;
  return {
    malloc: mi.mi_malloc,
    free: mi.mi_free,
    calloc: mi.mi_calloc,
    realloc: mi.mi_realloc,
    aligned: mi.mi_malloc_aligned,
    memset,
    collect: () => (mi.mi_collect(true), "mi_collect(true)"),
    version: `mi_version() ${mi.mi_version()}, bun:ffi`,
    nil: 0,
    size: (n: number) => n,
  };
}

// --- peers ---------------------------------------------------------------------------

export async function nativePeer(kind: "libc" | "mimalloc"): Promise<Peer> {
  const rt = runtimeName();
  const via = rt === "node" ? "koffi" : rt === "deno" ? "Deno.dlopen" : "bun:ffi";
  const pid = kind === "libc" ? "libc" : "mimalloc";
  const label = kind === "libc" ? `glibc malloc via ${via}` : `mimalloc via ${via}`;
  let s: NativeSyms;
  try {
    s = rt === "node" ? await loadNode(kind) : rt === "deno" ? loadDeno(kind) : await loadBun(kind);
    // smoke test
    const p = s.malloc(s.size(64));
    if (!p) throw new Error("malloc(64) returned NULL");
    s.free(p);
  } catch (e) {
    const lib = kind === "libc" ? LIBC : LIBMI;
    return unavailablePeer(pid, label, `cannot load ${lib} through ${via}: ${errorMessage(e)}`);
  }
  const sym = s;
  return {
    id: pid,
    label,
    version: sym.version,
    caps: ["malloc", "calloc", "realloc", "aligned"],
    info: { library: kind === "libc" ? LIBC : LIBMI, via, aligned: kind === "libc" ? "aligned_alloc" : "mi_malloc_aligned" },
    instance(): Ops {
      return {
        nil: sym.nil,
        size: sym.size,
        malloc: sym.malloc,
        free: sym.free,
        calloc: sym.calloc,
        realloc: sym.realloc,
        aligned: sym.aligned,
        touch: (p: Handle, n: number) => {
          sym.memset(p, 0xab, sym.size(n));
        },
        collect: sym.collect,
      };
    },
  };
}

/**
 * memset(address, value, n) through this runtime's FFI, taking the address as a JS number:
 * used to write tsmalloc (FFI backend) blocks in the memory workloads without creating a
 * view object per block (garbage that would show up in RSS), i.e. the same way the libc and
 * mimalloc rows are written. Returns null when libc cannot be loaded.
 */
export async function numberMemset(): Promise<((p: number, v: number, n: number) => void) | null> {
  const rt = runtimeName();
  try {
    if (rt === "node") {
      const s = await loadNode("libc");
      return (p, v, n) => void s.memset(p, v, n);
    }
    if (rt === "deno") {
      const s = loadDeno("libc");
      return (p, v, n) => void s.memset(BigInt(p), v, BigInt(n));
    }
    const s = await loadBun("libc");
    return (p, v, n) => void s.memset(p, v, n);
  } catch {
    return null;
  }
}
