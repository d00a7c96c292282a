// Memory workloads, one peer per process (RSS is per process, so nothing else may share it):
//   frag:  allocate N blocks of 64 B (touched), free every other one, refill the holes'
//          count with 128 B blocks (a larger size class that cannot reuse 64 B holes);
//          report peak RSS and final RSS per live byte.
//   rss-return: allocate M blocks of 8 B-4 KiB (same size table as "mixed"), touch them,
//          free everything; RSS after the frees, and after the peer's own "give memory
//          back" call (tsmalloc collect(true), mi_collect(true), malloc_trim(0), gc()).
// RSS is VmRSS from /proc/self/status; peak is VmHWM after resetting it via
// /proc/self/clear_refs. Figures are deltas from the RSS measured just before the workload.
//   node --expose-gc .out/bench/memory.js --peer=libc --workload=frag|rss-return --mode=quick --out=x.json
import { fullGc, getEnv, parseArgs, resetPeakRss, rss, runtimeName, runtimeVersion, SEED_SIZES, sizeTable, TABLE, writeJson } from "./common.ts";
import { loadPeers } from "./peers/index.ts";
import type { Handle, Ops } from "./peers/types.ts";
import { readFileSync } from "node:fs";

// deno-lint-ignore-file no-explicit-any

const args = parseArgs();
const mode = args.mode === "full" ? "full" : "quick";
const peerId = args.peer ?? "libc";
export const FRAG_N = mode === "full" ? 1_000_000 : 200_000;
export const RET_M = mode === "full" ? 250_000 : 50_000;

function thingVersion(): string {
  try {
    return JSON.parse(readFileSync("node_modules/@thi.ng/malloc/package.json", "utf8")).version;
  } catch {
    return "?";
  }
}

/**
 * The handle array, with its final element kind before the baseline is taken: filling
 * with a double first makes number handles land in an unboxed double store (no
 * reallocation when the first address > 2^31 arrives); object/BigInt nils then turn it
 * into a plain pointer store.
 */
function handles(n: number, nil: Handle): Handle[] {
  const a: Handle[] = new Array(n).fill(1.5);
  return a.fill(nil);
}

function settle(): void {
  // let GC-managed peers drop garbage from setup, so the baseline is clean
  fullGc();
  fullGc();
}

/** MemPool's free() and first-fit malloc walk its lists: frag is O(N^2) there. */
const THING_FRAG_N = 20_000;

function frag(P: Ops, peer: string): Record<string, unknown> {
  const N = peer === "thing" ? Math.min(FRAG_N, THING_FRAG_N) : FRAG_N;
  const a = handles(N, P.nil);
  const malloc = P.malloc, free = P.free, touch = P.touch!;
  const s64 = P.size(64), s128 = P.size(128);
  settle();
  const base = rss().rss;
  const peakReset = resetPeakRss();
  let fail = 0;
  for (let i = 0; i < N; i++) {
    const h = malloc(s64);
    if (!h) fail++;
    else touch(h, 64);
    a[i] = h;
  }
  const afterFill = rss().rss - base;
  for (let i = 1; i < N; i += 2) {
    free(a[i]);
    a[i] = P.nil;
  }
  for (let i = 1; i < N; i += 2) {
    const h = malloc(s128);
    if (!h) fail++;
    else touch(h, 128);
    a[i] = h;
  }
  const r = rss();
  const live = (N / 2) * 64 + (N / 2) * 128;
  const out = {
    blocks: N,
    liveBytes: live,
    afterFillBytes: afterFill,
    peakBytes: peakReset ? r.hwm - base : null,
    endBytes: r.rss - base,
    peakPerLive: peakReset ? (r.hwm - base) / live : null,
    endPerLive: (r.rss - base) / live,
    fail,
    reduced: N < FRAG_N ? `N reduced from ${FRAG_N} to ${N}: free() and first-fit malloc are O(live blocks)` : undefined,
    extra: P.extra?.(),
  };
  if (!P.bulkRelease) for (let i = 0; i < N; i++) if (a[i]) free(a[i]);
  return out;
}

async function rssReturn(P: Ops, _peer: string): Promise<Record<string, unknown>> {
  const M = RET_M;
  const sizes = sizeTable(SEED_SIZES, 8, 4096);
  const a = handles(M, P.nil);
  const malloc = P.malloc, free = P.free, touch = P.touch!;
  settle();
  const base = rss().rss;
  let bytes = 0, fail = 0;
  for (let i = 0; i < M; i++) {
    const n = sizes[i & (TABLE - 1)];
    const h = malloc(P.size(n));
    if (!h) fail++;
    else touch(h, n);
    a[i] = h;
    bytes += n;
  }
  const loaded = rss().rss - base;
  const extraLoaded = P.extra?.();
  if (P.bulkRelease) {
    // MemPool: free() is O(live blocks); freeAll() is its O(1) "free everything"
    P.freeAll?.();
    a.fill(P.nil);
  } else {
    for (let i = 0; i < M; i++) {
      if (a[i]) free(a[i]);
      a[i] = P.nil;
    }
  }
  const afterFree = rss().rss - base;
  const how = P.collect ? P.collect() : "none";
  const afterCollectNow = rss().rss - base;
  // V8 frees ArrayBuffer backing stores on a background sweeper after a GC: give every
  // peer the same grace period, then collect again and measure.
  await new Promise((r) => setTimeout(r, 300));
  P.collect?.();
  const afterCollect = rss().rss - base;
  return {
    blocks: M,
    requestedBytes: bytes,
    loadedBytes: loaded,
    afterFreeBytes: afterFree,
    afterCollectNowBytes: afterCollectNow,
    afterCollectBytes: afterCollect,
    collect: how,
    returnedFraction: loaded > 0 ? 1 - afterCollect / loaded : null,
    fail,
    extraLoaded,
    extra: P.extra?.(),
  };
}

async function main() {
  const t0 = Date.now();
  const [peer] = await loadPeers({ rows: [peerId], thingVersion: thingVersion() });
  const out: Record<string, unknown> = {
    schema: 1,
    runtime: runtimeName(),
    runtimeVersion: runtimeVersion(),
    mode,
    peer: peer.id,
    label: peer.label,
    version: peer.version,
    backendEnv: getEnv("TSMALLOC_BACKEND") ?? null,
    info: peer.info,
  };
  if (peer.unavailable) {
    out.status = "unavailable";
    out.reason = peer.unavailable;
  } else {
    // one workload per process: allocator caches left by one would flatter the other
    const name = args.workload === "rss-return" ? "rss-return" : "frag";
    const hint = name === "frag"
      ? { workload: "frag", liveBlocks: FRAG_N, liveBytes: FRAG_N * 128 }
      : { workload: "rss-return", liveBlocks: RET_M, liveBytes: RET_M * 4104 };
    out.workload = name;
    try {
      const P = peer.instance(hint);
      if (!P.touch) throw new Error("peer cannot touch its memory");
      out.result = name === "frag" ? frag(P, peer.id) : await rssReturn(P, peer.id);
      out.status = "ok";
      P.release?.();
    } catch (e) {
      out.status = "error";
      out.reason = e instanceof Error ? e.message : String(e);
    }
  }
  out.durationMs = Date.now() - t0;
  if (args.out) writeJson(args.out, out);
  else console.log(JSON.stringify(out, null, 1));
}

await main();
