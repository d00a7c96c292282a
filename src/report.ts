/** stats(): a snapshot assembled by walking regions, segments and heaps (never on the fast paths). */
import { BIN_COUNT, BIN_SIZE } from "./bins.ts";
import { ctx } from "./context.ts";
import { heapById, pageUsage } from "./heap.ts";
import { P_BSIZE, P_HEAP, PAGE_WORDS, S_PAGE_COUNT, S_PAGES } from "./layout.ts";
import { RegionKind } from "./region.ts";
import { liveSegments, pageRefAt } from "./segment.ts";
import type { Stats } from "./stats.ts";
import { binOf } from "./bins.ts";

export function collectStats(): Stats {
  const c = ctx.counters;
  const bins = Array.from({ length: BIN_COUNT }, (_, i) => ({ size: BIN_SIZE[i], blocks: 0, pages: 0 })).slice(1);
  let inUse = 0, blocks = 0, pages = 0, hugeBlocks = 0;
  const segs = liveSegments();
  for (const s of segs) {
    const m = s.r.i32;
    const sw = s.seg >> 2;
    const count = m[sw + S_PAGE_COUNT];
    for (let i = 0; i < count; i++) {
      const bsize = m[sw + S_PAGES + i * PAGE_WORDS + P_BSIZE];
      if (bsize <= 0) continue;
      const u = pageUsage(pageRefAt(s.r, s.seg, i));
      pages++;
      inUse += u.bytes;
      blocks += u.blocks;
      const b = bins[binOf(bsize) - 1];
      b.pages++;
      b.blocks += u.blocks;
    }
  }
  let resident = 0;
  const o = ctx.os;
  for (const r of ctx.regions.all()) {
    if (r.kind === RegionKind.Huge && r.pages[0] !== undefined && r.i32[S_PAGES + P_BSIZE] === -1) {
      const u = pageUsage(r.pages[0]);
      inUse += u.bytes;
      blocks++;
      hugeBlocks++;
      void heapById(r.i32[S_PAGES + P_HEAP]);
    }
    if (o !== null && resident >= 0) {
      const n = o.resident(r.base, r.size);
      resident = n < 0 ? -1 : resident + n;
    }
  }
  return {
    backend: o === null ? "uninitialized" : o.kind,
    reserved: c.reserved,
    committed: c.committed,
    resident: o === null ? 0 : resident,
    inUse,
    blocks,
    peakReserved: c.peakReserved,
    peakCommitted: c.peakCommitted,
    purges: c.purges,
    purged: c.purged,
    osCalls: { ...c.calls },
    arenas: ctx.arenas.length,
    segments: segs.length,
    pages: pages + hugeBlocks,
    hugeBlocks,
    bins,
  };
}
