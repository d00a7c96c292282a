// Helpers for the memory, budget, arena and options tests (not a test file itself).
import { readFileSync } from "node:fs";
import { backend, collect, getOption, setOption, stats } from "../mod.ts";
import { ctx } from "../src/context.ts";

export const MiB = 1024 * 1024;

/**
 * Process RSS in bytes, from /proc/self/status (VmRSS). Deno lets only --allow-all read
 * /proc/self; there Deno.memoryUsage().rss, which reads the same kernel counter, is used.
 */
export function rss(): number {
  let text: string | null = null;
  try {
    text = readFileSync("/proc/self/status", "utf8");
  } catch (e) {
    const d = (globalThis as { Deno?: { memoryUsage(): { rss: number } } }).Deno;
    if (d === undefined) throw e;
    return d.memoryUsage().rss;
  }
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  if (m === null) throw new Error("no VmRSS in /proc/self/status");
  return Number(m[1]) * 1024;
}

/** A full garbage collection where the runtime exposes one (Node/Deno --expose-gc, Bun.gc). */
export function gc(): void {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (typeof g.gc === "function") g.gc();
  else g.Bun?.gc(true);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** True on the FFI backends (real OS memory: purges show in RSS). */
export function isFfi(): boolean {
  return backend().kind !== "buffer";
}

/** collect(true), then a GC, then the numbers. */
export function settle(): { rss: number; committed: number; resident: number; reserved: number } {
  collect(true);
  gc();
  const s = stats();
  return { rss: rss(), committed: s.committed, resident: s.resident, reserved: s.reserved };
}

export function mib(n: number): string {
  return (n / MiB).toFixed(1) + " MiB";
}

/**
 * A deterministic mix of sizes totalling about `total` bytes: ~70% small (16..1 KiB),
 * ~25% medium (1..64 KiB), ~5% large (64 KiB..1 MiB) and a few huge ones (3..11 MiB).
 */
export function mixedSizes(total: number, seed: number): number[] {
  let x = seed >>> 0;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const out: number[] = [];
  let sum = 0;
  let i = 0;
  while (sum < total) {
    const r = rnd();
    const s = i % 400 === 17 ? 3 * MiB + Math.floor(rnd() * 8 * MiB)
      : r < 0.7 ? 16 + Math.floor(rnd() * 1008)
      : r < 0.95 ? 1024 + Math.floor(rnd() * 63 * 1024)
      : 64 * 1024 + Math.floor(rnd() * 960 * 1024);
    out.push(s);
    sum += s;
    i++;
  }
  return out;
}

/**
 * Unmaps the cached huge mappings (so a baseline holds none): hugeCacheMax 0, then back; and
 * at checked levels the retired ones (src/huge.ts HugeCache.retired), as a reserve budget's
 * relief would.
 */
export function dropHugeCache(): void {
  const max = getOption("hugeCacheMax");
  setOption("hugeCacheMax", 0);
  setOption("hugeCacheMax", max);
  ctx.huge?.releaseAll();
}
