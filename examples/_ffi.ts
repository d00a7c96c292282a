// Opens a C library through the FFI tsmalloc runs on (backend().ffi): node:ffi, koffi,
// Deno.dlopen or bun:ffi. C code that calls a cAllocator callback must be entered through
// the same FFI (Node 26 aborts when koffi-entered code calls a node:ffi callback).
// Every argument is a number (addresses too: declared as pointer-sized integers), every
// result is converted to a number. Shared by the examples and their tests.
import { createRequire } from "node:module";
import { bytes, free, malloc } from "../mod.ts";

/** "ptr" an address (number), "size" size_t, "i32" int, "u32" unsigned, "i64" long, "void". */
export type T = "ptr" | "size" | "i32" | "u32" | "i64" | "void";
export type Fn = (...args: number[]) => number;

// deno-lint-ignore no-explicit-any
type Any = any;

const NODE_FFI: Record<T, string> = { ptr: "uint64", size: "uint64", i32: "int32", u32: "uint32", i64: "int64", void: "void" };
const KOFFI: Record<T, string> = { ptr: "uintptr_t", size: "size_t", i32: "int", u32: "unsigned int", i64: "int64_t", void: "void" };
const DENO: Record<T, string> = { ptr: "usize", size: "usize", i32: "i32", u32: "u32", i64: "i64", void: "void" };
const BUN = DENO;

/** Every library object opened here: a collected one may unload its library under the functions bound from it. */
const loaded: unknown[] = [];

const RTLD_NOW = 2, RTLD_DEEPBIND = 8; // Linux values

/**
 * Loads `path` once with RTLD_DEEPBIND, so its own calls between its functions stay inside
 * it. Node links its own zlib (with another `deflate_state` layout) and exports its symbols:
 * without this, libz.so.1's deflateInit_ calls Node's deflateReset and deflate crashes.
 * A later dlopen of the same path gets this copy.
 */
function preloadDeep(ffi: string, path: string): void {
  if (path.startsWith("libc.")) return;
  const libc = openLib(ffi, "libc.so.6", { dlopen: ["ptr", ["ptr", "i32"]] });
  const b = new TextEncoder().encode(path + "\0");
  const p = malloc(b.length);
  bytes(p, b.length).set(b);
  const h = libc.dlopen(p, RTLD_NOW | RTLD_DEEPBIND);
  free(p);
  if (h === 0) throw new Error(`dlopen(${path}) failed`);
}

/** Opens `path` through `ffi` and binds `defs` (name -> [result, ...args]). */
export function openLib(ffi: string, path: string, defs: Record<string, [T, T[]]>): Record<string, Fn> {
  preloadDeep(ffi, path);
  const out: Record<string, Fn> = {};
  const conv = (r: unknown) => (r === undefined || r === null ? 0 : Number(r));
  if (ffi === "node:ffi") {
    const f = (globalThis as Any).process.getBuiltinModule("node:ffi");
    const m: Record<string, unknown> = {};
    for (const [k, [r, a]] of Object.entries(defs)) m[k] = { return: NODE_FFI[r], arguments: a.map((t) => NODE_FFI[t]) };
    const lib = f.dlopen(path, m);
    loaded.push(lib);
    const s = lib.functions;
    for (const k of Object.keys(defs)) out[k] = (...a) => conv(s[k](...a));
  } else if (ffi === "koffi") {
    const koffi = createRequire(import.meta.url)("koffi");
    const lib = koffi.load(path);
    loaded.push(lib);
    for (const [k, [r, a]] of Object.entries(defs)) {
      const fn = lib.func(k, KOFFI[r], a.map((t) => KOFFI[t]));
      out[k] = (...x) => conv(fn(...x));
    }
  } else if (ffi === "deno") {
    const m: Record<string, unknown> = {};
    for (const [k, [r, a]] of Object.entries(defs)) m[k] = { parameters: a.map((t) => DENO[t]), result: DENO[r] };
    const lib = (globalThis as Any).Deno.dlopen(path, m);
    loaded.push(lib);
    const s = lib.symbols;
    for (const k of Object.keys(defs)) out[k] = (...a) => conv(s[k](...a));
  } else if (ffi === "bun") {
    const bunFfi = (import.meta as Any).require("bun:" + "ffi");
    const m: Record<string, unknown> = {};
    for (const [k, [r, a]] of Object.entries(defs)) m[k] = { args: a.map((t) => BUN[t]), returns: BUN[r] };
    const lib = bunFfi.dlopen(path, m);
    loaded.push(lib);
    const s = lib.symbols;
    for (const k of Object.keys(defs)) out[k] = (...a) => conv(s[k](...a));
  } else {
    throw new Error(`no FFI to open ${path} with (${ffi})`);
  }
  return out;
}

/** The zlib functions the tests and examples use. */
export function openZlib(ffi: string): Record<string, Fn> {
  return openLib(ffi, "libz.so.1", {
    zlibVersion: ["ptr", []],
    deflateInit_: ["i32", ["ptr", "i32", "ptr", "i32"]],
    deflate: ["i32", ["ptr", "i32"]],
    deflateEnd: ["i32", ["ptr"]],
    inflateInit_: ["i32", ["ptr", "ptr", "i32"]],
    inflate: ["i32", ["ptr", "i32"]],
    inflateEnd: ["i32", ["ptr"]],
  });
}
