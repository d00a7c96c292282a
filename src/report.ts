/** stats(): a snapshot assembled by walking regions, segments and heaps (never on the fast paths). */
import { BIN_COUNT, BIN_SIZE, binOf } from "./bins.ts";
import { ctx } from "./context.ts";
import { pageUsage } from "./heap.ts";
import { hugeRegions, hugeSize } from "./huge.ts";
import { P_BSIZE, PAGE_WORDS, S_PAGE_COUNT, S_PAGES } from "./layout.ts";
import { RegionKind } from "./region.ts";
import { liveSegments, pageRefAt, pendingPageBytes } from "./segment.ts";
import type { ArenaStats, Stats } from "./stats.ts";
import { notePeak, usage } from "./usage.ts";
import { arenaPoolStats } from "./arena-pool.ts";
import { ownedBlockStats } from "./block.ts";

export function collectStats(): Stats {
  const c = ctx.counters;
  const bins = Array.from({ length: BIN_COUNT }, (_, i) => ({ size: BIN_SIZE[i], blocks: 0, bytes: 0, pages: 0 })).slice(1);
  let inUse = 0, blocks = 0, pages = 0;
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
      b.bytes += u.bytes;
    }
  }
  const huge = hugeRegions();
  for (const r of huge) {
    inUse += hugeSize(r);
    blocks++;
  }
  notePeak(inUse);

  // resident: ask the kernel about each reservation (arenas with their metadata page, own huge mappings and cached ones)
  const o = ctx.os;
  let resident = o === null ? 0 : 0;
  if (o !== null) {
    for (const r of ctx.regions.all()) {
      const size = r.kind === RegionKind.Arena ? r.viewSize : r.size;
      const n = o.resident(r.base, size);
      if (n < 0) {
        resident = -1;
        break;
      }
      resident += n;
    }
  }
  if (resident > c.peakResident) c.peakResident = resident;

  const arenaList: ArenaStats[] = ctx.arenas.map((a) => {
    let dirty = 0;
    for (let i = 0; i < a.segCount; i++) if (a.isDirty(i) && !a.isUsed(i)) dirty++;
    return {
      id: a.id,
      base: a.region.base,
      size: a.region.size,
      exclusive: a.exclusive,
      segmentsUsed: a.used,
      segmentsDirty: dirty,
      segments: a.segCount,
      committed: a.committedBytes(),
    };
  });
  let pendingPurge = pendingPageBytes();
  for (const a of ctx.arenas) pendingPurge += a.freeCommittedBytes();
  if (ctx.huge !== null) pendingPurge += ctx.huge.committedBytes();

  return {
    backend: o === null ? "uninitialized" : o.kind,
    // shared between workers: process-wide totals (a worker may decommit what another committed)
    reserved: c.totalReserved,
    committed: c.totalCommitted,
    resident: o === null ? 0 : resident,
    inUse,
    blocks,
    peakReserved: c.shared === null ? c.peakReserved : Number(Atomics.load(c.shared.b, c.shared.peakReserved)),
    peakCommitted: c.shared === null ? c.peakCommitted : Number(Atomics.load(c.shared.b, c.shared.peakCommitted)),
    peakResident: o === null ? 0 : resident < 0 ? -1 : c.peakResident,
    peakInUse: usage.peak,
    pendingPurge,
    purges: c.purges,
    purged: c.purged,
    resets: c.resets,
    resetBytes: c.resetBytes,
    budgetRefusals: c.budgetRefusals,
    osCalls: { ...c.calls },
    arenas: ctx.arenas.length,
    segments: segs.length,
    pages: pages + huge.length,
    hugeBlocks: huge.length,
    workers: c.shared === null ? 1 : c.shared.workers(),
    arenaList,
    bins,
    arenaPools: arenaPoolStats(),
    ownedBlocks: ownedBlockStats(),
  };
}
