// zlib (libz.so.1, Debian's zlib1g) compressing and inflating a buffer whose z_stream and data
// live in a per-task arena from an ArenaPool: a real C library working on tsmalloc memory
// through each runtime's FFI (koffi on Node, Deno.dlopen, bun:ffi). zlib's own internal state
// comes from libc (zalloc/zfree left NULL); deflateEnd/inflateEnd free it before the arena is
// released, so each task ends with nothing left but the pool's retained chunk.
//
//   deno run --allow-ffi examples/zlib-arena.ts
//   bun examples/zlib-arena.ts
//   node: bundle first (Node 26's type stripping rejects the `const enum`s in src/):
//     npx esbuild examples/zlib-arena.ts --bundle --platform=node --target=node20 --format=esm \
//       --external:koffi --outfile=.out/zlib-arena.mjs && node .out/zlib-arena.mjs
//
// In your own code import from "tsmalloc" (npm) or "@tsmalloc/tsmalloc" (JSR) instead of ../mod.ts.
import { createRequire } from "node:module";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type Arena, ArenaPool, backend, bytes, dataView, pointer } from "../mod.ts";

/** zlib's entry points, taking tsmalloc addresses (numbers). */
interface Zlib {
  version: string;
  deflateInit(strm: number, level: number, version: number): number;
  deflate(strm: number, flush: number): number;
  deflateEnd(strm: number): number;
  inflateInit(strm: number, version: number): number;
  inflate(strm: number, flush: number): number;
  inflateEnd(strm: number): number;
}

const Z_OK = 0, Z_STREAM_END = 1, Z_FINISH = 4;
/** sizeof(z_stream) and its field offsets on LP64 (Linux x86-64/arm64). */
const Z_STREAM_SIZE = 112;
const NEXT_IN = 0, AVAIL_IN = 8, NEXT_OUT = 24, AVAIL_OUT = 32, TOTAL_OUT = 40;

// deno-lint-ignore no-explicit-any
type Any = any;

/** Binds libz.so.1 with the running runtime's FFI. Throws when there is none (buffer backend). */
export async function loadZlib(): Promise<Zlib> {
  if (backend().kind === "buffer") {
    throw new Error("zlib-arena: the buffer backend has no native memory for C code (run with FFI: Deno --allow-ffi, koffi/node:ffi on Node, Bun)");
  }
  const lib = "libz.so.1";
  const D = (globalThis as Any).Deno;
  if (D !== undefined) {
    const z = D.dlopen(lib, {
      zlibVersion: { parameters: [], result: "pointer" },
      deflateInit_: { parameters: ["pointer", "i32", "pointer", "i32"], result: "i32" },
      deflate: { parameters: ["pointer", "i32"], result: "i32" },
      deflateEnd: { parameters: ["pointer"], result: "i32" },
      inflateInit_: { parameters: ["pointer", "pointer", "i32"], result: "i32" },
      inflate: { parameters: ["pointer", "i32"], result: "i32" },
      inflateEnd: { parameters: ["pointer"], result: "i32" },
    }).symbols;
    return {
      version: D.UnsafePointerView.getCString(z.zlibVersion()),
      deflateInit: (s, l, v) => z.deflateInit_(pointer(s), l, pointer(v), Z_STREAM_SIZE),
      deflate: (s, f) => z.deflate(pointer(s), f),
      deflateEnd: (s) => z.deflateEnd(pointer(s)),
      inflateInit: (s, v) => z.inflateInit_(pointer(s), pointer(v), Z_STREAM_SIZE),
      inflate: (s, f) => z.inflate(pointer(s), f),
      inflateEnd: (s) => z.inflateEnd(pointer(s)),
    };
  }
  if ((process.versions as Any).bun !== undefined) {
    const ffi = await import(["bun", "ffi"].join(":")); // (not a literal: bundlers leave it alone)
    const z = ffi.dlopen(lib, {
      zlibVersion: { args: [], returns: "cstring" },
      deflateInit_: { args: ["ptr", "i32", "ptr", "i32"], returns: "i32" },
      deflate: { args: ["ptr", "i32"], returns: "i32" },
      deflateEnd: { args: ["ptr"], returns: "i32" },
      inflateInit_: { args: ["ptr", "ptr", "i32"], returns: "i32" },
      inflate: { args: ["ptr", "i32"], returns: "i32" },
      inflateEnd: { args: ["ptr"], returns: "i32" },
    }).symbols;
    return {
      version: String(z.zlibVersion()),
      deflateInit: (s, l, v) => z.deflateInit_(pointer(s), l, pointer(v), Z_STREAM_SIZE),
      deflate: (s, f) => z.deflate(pointer(s), f),
      deflateEnd: (s) => z.deflateEnd(pointer(s)),
      inflateInit: (s, v) => z.inflateInit_(pointer(s), pointer(v), Z_STREAM_SIZE),
      inflate: (s, f) => z.inflate(pointer(s), f),
      inflateEnd: (s) => z.inflateEnd(pointer(s)),
    };
  }
  const koffi = createRequire(import.meta.url)("koffi");
  // deep (RTLD_DEEPBIND): Node 20's binary exports its own bundled zlib, and without it
  // libz's internal calls bind to those symbols (deflate then segfaults, measured here)
  const z = koffi.load(lib, { deep: true });
  const f = {
    zlibVersion: z.func("const char *zlibVersion()"),
    deflateInit_: z.func("int deflateInit_(void *strm, int level, void *version, int stream_size)"),
    deflate: z.func("int deflate(void *strm, int flush)"),
    deflateEnd: z.func("int deflateEnd(void *strm)"),
    inflateInit_: z.func("int inflateInit_(void *strm, void *version, int stream_size)"),
    inflate: z.func("int inflate(void *strm, int flush)"),
    inflateEnd: z.func("int inflateEnd(void *strm)"),
  };
  return {
    version: f.zlibVersion(),
    deflateInit: (s, l, v) => f.deflateInit_(pointer(s), l, pointer(v), Z_STREAM_SIZE),
    deflate: (s, fl) => f.deflate(pointer(s), fl),
    deflateEnd: (s) => f.deflateEnd(pointer(s)),
    inflateInit: (s, v) => f.inflateInit_(pointer(s), pointer(v), Z_STREAM_SIZE),
    inflate: (s, fl) => f.inflate(pointer(s), fl),
    inflateEnd: (s) => f.inflateEnd(pointer(s)),
  };
}

/** A zeroed z_stream in the arena (zalloc, zfree, opaque = NULL: zlib uses libc for its state). */
function zStream(arena: Arena): number {
  const s = arena.alloc(Z_STREAM_SIZE, 16);
  bytes(s, Z_STREAM_SIZE).fill(0);
  return s;
}

function setPtr(s: number, off: number, p: number): void {
  dataView(s, Z_STREAM_SIZE).setBigUint64(off, BigInt(p), true);
}

/** What one task did. */
export interface RoundTrip {
  inputBytes: number;
  compressedBytes: number;
  /** The inflated bytes equal the input. */
  identical: boolean;
  /** Bytes the task's arena handed out (z_streams, version string, input, output, inflated copy). */
  arenaUsed: number;
}

/**
 * One task: copy `input` into an arena, deflate it there, inflate the result into a third
 * arena buffer, compare, release the arena (by `using`).
 */
export function roundTrip(zlib: Zlib, pool: ArenaPool, input: Uint8Array): RoundTrip {
  const n = input.length;
  using arena = pool.acquire(3 * n + 4096, "zlib-task");
  const version = arena.alloc(zlib.version.length + 1, 1);
  const vb = bytes(version, zlib.version.length + 1);
  for (let i = 0; i < zlib.version.length; i++) vb[i] = zlib.version.charCodeAt(i);
  vb[zlib.version.length] = 0;
  const src = arena.alloc(n);
  bytes(src, n).set(input);
  const cap = n + (n >>> 8) + 64; // > deflateBound for level 6
  const packed = arena.alloc(cap);

  const ds = zStream(arena);
  check(zlib.deflateInit(ds, 6, version), Z_OK, "deflateInit");
  setPtr(ds, NEXT_IN, src);
  dataView(ds, Z_STREAM_SIZE).setUint32(AVAIL_IN, n, true);
  setPtr(ds, NEXT_OUT, packed);
  dataView(ds, Z_STREAM_SIZE).setUint32(AVAIL_OUT, cap, true);
  const rc = zlib.deflate(ds, Z_FINISH);
  const compressed = Number(dataView(ds, Z_STREAM_SIZE).getBigUint64(TOTAL_OUT, true));
  check(zlib.deflateEnd(ds), Z_OK, "deflateEnd");
  check(rc, Z_STREAM_END, "deflate");

  const out = arena.alloc(n);
  const is = zStream(arena);
  check(zlib.inflateInit(is, version), Z_OK, "inflateInit");
  setPtr(is, NEXT_IN, packed);
  dataView(is, Z_STREAM_SIZE).setUint32(AVAIL_IN, compressed, true);
  setPtr(is, NEXT_OUT, out);
  dataView(is, Z_STREAM_SIZE).setUint32(AVAIL_OUT, n, true);
  const rc2 = zlib.inflate(is, Z_FINISH);
  const inflated = Number(dataView(is, Z_STREAM_SIZE).getBigUint64(TOTAL_OUT, true));
  check(zlib.inflateEnd(is), Z_OK, "inflateEnd");
  check(rc2, Z_STREAM_END, "inflate");

  const a = bytes(out, n);
  let identical = inflated === n;
  for (let i = 0; identical && i < n; i++) if (a[i] !== input[i]) identical = false;
  return { inputBytes: n, compressedBytes: compressed, identical, arenaUsed: arena.used };
}

function check(got: number, want: number, what: string): void {
  if (got !== want) throw new Error(`zlib-arena: ${what} returned ${got}, expected ${want}`);
}

/** Some text worth compressing: `n` bytes of a repeated, slowly varying log line. */
export function sampleText(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = "";
  for (let i = 0; s.length < n; i++) s += `GET /items/${i % 97} 200 ${(i * 7919) % 1000}ms user=${i % 13}\n`;
  for (let i = 0; i < n; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Runs three tasks through one pool and prints what happened. */
export async function main(): Promise<void> {
  const zlib = await loadZlib();
  using pool = new ArenaPool();
  for (const size of [10_000, 300_000, 300_000]) {
    const r = roundTrip(zlib, pool, sampleText(size));
    console.log(
      `zlib ${zlib.version}: ${r.inputBytes} B -> ${r.compressedBytes} B -> ${r.identical ? "identical" : "DIFFERENT"}; ` +
        `arena used ${r.arenaUsed} B; pool: ${JSON.stringify(pool.leaks())} leaked`,
    );
    if (!r.identical) process.exitCode = 1;
  }
}

// run as a script (deno/bun run it, or node runs its bundle), not when imported
const isMain = (import.meta as { main?: boolean }).main ??
  (process.argv[1] !== undefined && /zlib-arena\.(ts|js|mjs)$/.test(process.argv[1]) && fileURLToPath(import.meta.url) === process.argv[1]);
if (isMain) await main();
