// libcurl allocating from a tsmalloc heap, as Lightpanda's ZigToCurlAllocator does:
// curl_global_init_mem with the bridge's malloc/free/realloc/strdup/calloc, then a file://
// transfer through the easy interface. curl's allocator is process-wide: run this in a
// process of its own.
//   deno run --allow-ffi --allow-env --allow-read --allow-write examples/curl.ts     bun examples/curl.ts
import process from "node:process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backend, cAllocator, dataView, free, Heap, malloc } from "../mod.ts";
import { openLib } from "./_ffi.ts";
import { cString } from "./sqlite.ts";

const CURL_GLOBAL_ALL = 3, CURLOPT_URL = 10002, CURLOPT_WRITEDATA = 10001, CURLINFO_SIZE_DOWNLOAD_T = 0x600000 + 8;

/** What the example saw; bytes are usable bytes in the bridge. */
export interface CurlResult {
  fileSize: number;
  downloaded: number;
  /** Bridge live bytes while the easy handle lived (after the transfer), after curl_easy_cleanup and after curl_global_cleanup. */
  liveWithHandle: number;
  afterEasyCleanup: number;
  afterGlobalCleanup: number;
  allocations: number;
}

/**
 * Transfers a file:// URL to /dev/null with curl's memory in a heap of its own: the file at
 * `path`, or else a fresh temporary file of `size` bytes.
 */
export function curlExample(path?: string, size = 3 * 1024 * 1024): CurlResult {
  const ffi = backend().ffi ?? "none";
  const curl = openLib(ffi, "libcurl.so.4", {
    curl_global_init_mem: ["i32", ["i64", "ptr", "ptr", "ptr", "ptr", "ptr"]],
    curl_global_cleanup: ["void", []],
    curl_easy_init: ["ptr", []],
    curl_easy_setopt: ["i32", ["ptr", "i32", "ptr"]], // variadic in C; one pointer argument here
    curl_easy_perform: ["i32", ["ptr"]],
    curl_easy_getinfo: ["i32", ["ptr", "i32", "ptr"]],
    curl_easy_cleanup: ["void", ["ptr"]],
  });
  const libc = openLib(ffi, "libc.so.6", { fopen: ["ptr", ["ptr", "ptr"]], fclose: ["i32", ["ptr"]] });
  const dir = path === undefined ? mkdtempSync(join(tmpdir(), "tsmalloc-curl-")) : null;
  const file = dir === null ? path! : join(dir, "data.bin");
  if (dir !== null) writeFileSync(file, new Uint8Array(size).map((_, i) => i * 31));
  const fileSize = statSync(file).size;
  const heap = Heap.create();
  const c = cAllocator({ heap, tag: "curl" });
  const strs: number[] = [];
  const str = (s: string) => (strs.push(cString(s)), strs[strs.length - 1]);
  const out = malloc(8);
  try {
    const a = c.address;
    if (curl.curl_global_init_mem(CURL_GLOBAL_ALL, a.malloc, a.free, a.realloc, a.strdup, a.calloc) !== 0) throw new Error("curl_global_init_mem failed");
    const sink = libc.fopen(str("/dev/null"), str("w"));
    const h = curl.curl_easy_init();
    if (h === 0) throw new Error("curl_easy_init returned NULL");
    curl.curl_easy_setopt(h, CURLOPT_URL, str(`file://${file}`));
    curl.curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    const rc = curl.curl_easy_perform(h);
    if (rc !== 0) throw new Error(`curl_easy_perform = ${rc}`);
    curl.curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, out);
    const downloaded = Number(dataView(out, 8).getBigInt64(0, true));
    const liveWithHandle = c.stats().liveBytes;
    curl.curl_easy_cleanup(h);
    const afterEasyCleanup = c.stats().liveBytes;
    curl.curl_global_cleanup();
    const afterGlobalCleanup = c.stats().liveBytes;
    libc.fclose(sink);
    const allocations = c.stats().allocations;
    c.close(); // throws if curl still held a block
    return { fileSize, downloaded, liveWithHandle, afterEasyCleanup, afterGlobalCleanup, allocations };
  } finally {
    for (const p of strs) free(p);
    free(out);
    heap.destroy();
    if (dir !== null) rmSync(dir, { recursive: true, force: true });
  }
}

// run as a script (not when imported, bundled or not)
if (process.argv[1]?.replace(/\\/g, "/").endsWith("examples/curl.ts")) console.log(curlExample());
