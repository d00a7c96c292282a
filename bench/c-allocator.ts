// cAllocator bench, one mode per process (SQLite's allocator is process-wide):
//   zlib            bridged malloc+free pair cost (deflateInit_+deflateEnd: 5 allocations and
//                   5 frees each) against zlib's default libc malloc, and deflate MiB/s with
//                   and without the bridge, with checkThread on and off
//   sqlite-libc     SQLite inserts/s (one prepared INSERT per row) on libc malloc
//   sqlite-bridge   the same with SQLITE_CONFIG_MALLOC pointing at a cAllocator bridge
// Prints one JSON line. Run all runtimes and modes with `node bench/c-allocator.mjs`.
import process from "node:process";
import { backend, bytes, cAllocator, type CAllocator, dataView, free, Heap, malloc } from "../mod.ts";
import { openZlib } from "../examples/_ffi.ts";
import { configureSqlite, Db, openSqlite, SQLITE_DONE } from "../examples/sqlite.ts";

const mode = process.argv.slice(2).find((a) => !a.startsWith("-")) ?? "zlib";
const now = () => performance.now();

function zlibBench(): Record<string, number> {
  const z = openZlib(backend().ffi ?? "none");
  const strm = malloc(112);
  const v = dataView(strm, 112);
  const version = z.zlibVersion();
  const size = 8 * 1024 * 1024;
  const input = malloc(size), output = malloc(size + (size >> 8) + 1024);
  const src = bytes(input, size);
  let x = 1;
  for (let i = 0; i < size; i++) src[i] = (x = (x * 1103515245 + 12345) >>> 0) % 48; // text-like entropy
  const setup = (c: CAllocator | null) => {
    bytes(strm, 112).fill(0);
    if (c !== null) {
      v.setBigUint64(64, BigInt(c.address.zalloc), true);
      v.setBigUint64(72, BigInt(c.address.zfree), true);
    }
  };
  /** ns per deflateInit_+deflateEnd (5 allocations + 5 frees). */
  const initEnd = (c: CAllocator | null, n: number) => {
    const t0 = now();
    for (let i = 0; i < n; i++) {
      setup(c);
      if (z.deflateInit_(strm, 1, version, 112) !== 0) throw new Error("deflateInit_");
      z.deflateEnd(strm);
    }
    return ((now() - t0) * 1e6) / n;
  };
  /** MiB/s deflating `size` bytes at level 1. */
  const deflateRate = (c: CAllocator | null) => {
    setup(c);
    if (z.deflateInit_(strm, 1, version, 112) !== 0) throw new Error("deflateInit_");
    v.setBigUint64(0, BigInt(input), true);
    v.setUint32(8, size, true);
    v.setBigUint64(24, BigInt(output), true);
    v.setUint32(32, size + (size >> 8) + 1024, true);
    const t0 = now();
    if (z.deflate(strm, 4) !== 1) throw new Error("deflate");
    const ms = now() - t0;
    z.deflateEnd(strm);
    return size / 1048576 / (ms / 1000);
  };
  const heap = Heap.create();
  const checked = cAllocator({ heap, tag: "bench", checkThread: true });
  const unchecked = cAllocator({ heap, tag: "bench-nocheck", checkThread: false });
  const n = 3000;
  const best = (f: () => number, rounds = 5) => Math.min(...Array.from({ length: rounds }, f));
  const bestRate = (f: () => number, rounds = 3) => Math.max(...Array.from({ length: rounds }, f));
  initEnd(null, 200), initEnd(checked, 200), initEnd(unchecked, 200); // warm up
  const libcNs = best(() => initEnd(null, n));
  const bridgeNs = best(() => initEnd(checked, n));
  const bridgeNoCheckNs = best(() => initEnd(unchecked, n));
  const r = {
    libcInitEndNs: libcNs,
    bridgeInitEndNs: bridgeNs,
    bridgeNoCheckInitEndNs: bridgeNoCheckNs,
    // what the bridge adds per malloc+free pair (deflateInit_+deflateEnd makes 5 of each)
    addedPerPairCheckThreadNs: (bridgeNs - libcNs) / 5,
    addedPerPairNs: (bridgeNoCheckNs - libcNs) / 5,
    deflateLibcMiBs: bestRate(() => deflateRate(null)),
    deflateBridgeMiBs: bestRate(() => deflateRate(unchecked)),
  };
  checked.close();
  unchecked.close();
  heap.destroy();
  return r;
}

function sqliteBench(bridge: boolean): Record<string, number> {
  const sq = openSqlite();
  const heap = Heap.create();
  let c: CAllocator | null = null;
  if (bridge) {
    c = cAllocator({ heap, tag: "sqlite" });
    configureSqlite(sq, c);
  } else sq.sqlite3_initialize();
  const db = new Db(sq);
  db.exec("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)");
  const rows = 50_000;
  db.exec("BEGIN");
  const t0 = now();
  if (db.insertEach(1, rows) !== SQLITE_DONE) throw new Error("insert failed");
  const ms = now() - t0;
  db.exec("COMMIT");
  const calls = c?.stats().allocations ?? 0;
  db.close();
  sq.sqlite3_shutdown();
  return { insertsPerSecond: rows / (ms / 1000), allocationsThroughBridge: calls };
}

const result = mode === "zlib" ? zlibBench() : mode === "sqlite-libc" ? sqliteBench(false) : mode === "sqlite-bridge" ? sqliteBench(true) : null;
if (result === null) throw new Error(`unknown mode ${mode} (zlib, sqlite-libc, sqlite-bridge)`);
console.log(JSON.stringify({ mode, ffi: backend().ffi, ...result }));
free(0);
