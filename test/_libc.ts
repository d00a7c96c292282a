// libc memset through the running runtime's own FFI (koffi on Node, Deno.dlopen, bun:ffi):
// native writes into tsmalloc memory, as a user's C code would make them (guard-page tests).
// Not a test file itself.
import { createRequire } from "node:module";
import process from "node:process";
import { detectRuntime } from "../ffi/select.ts";
import { platformFor } from "../ffi/posix.ts";

export type Memset = (addr: number, value: number, len: number) => void;

// deno-lint-ignore no-explicit-any
type Any = any;

/** memset(addr, value, len) in native code. Throws when the runtime has no FFI here. */
export function nativeMemset(): Memset {
  const rt = detectRuntime();
  if (rt === "deno") {
    const D = (globalThis as Any).Deno;
    const lib = D.dlopen(platformFor(D.build.os, D.build.arch).libc, {
      memset: { parameters: ["usize", "i32", "usize"], result: "usize" },
    });
    return (a, v, n) => void lib.symbols.memset(BigInt(a), v, BigInt(n));
  }
  const libc = platformFor(process.platform, process.arch).libc;
  if (rt === "bun") {
    const req = (import.meta as Any).require as (s: string) => Any;
    const ffi = req("bun:" + "ffi");
    const lib = ffi.dlopen(libc, { memset: { args: ["usize", "i32", "usize"], returns: "usize" } });
    return (a, v, n) => void lib.symbols.memset(a, v, n);
  }
  const koffi = createRequire(import.meta.url)("koffi") as Any;
  const memset = koffi.load(libc).func("memset", "uintptr_t", ["uintptr_t", "int", "size_t"]);
  return (a, v, n) => void memset(a, v, n);
}
