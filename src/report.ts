/** stats(): a snapshot assembled by walking regions, segments and heaps (never on the fast paths). */
import { BIN_COUNT, BIN_SIZE, binOf } from "./bins.ts";
import { ctx } from "./context.ts";
import { keptBytes, pageUsage } from "./heap.ts";
import { hugeRegions, hugeSize } from "./huge.ts";
import { P_BSIZE, PAGE_WORDS, S_PAGE_COUNT, S_PAGES, SEGMENT_SIZE, headerOf } from "./layout.ts";
import { RegionKind } from "./region.ts";
import { freeSlotBytes, liveSegments, pageRefAt, pageSlotsOf } from "./segment.ts";
import type { ArenaStats, Stats, TagStats } from "./stats.ts";
import { notePeak, usage } from "./usage.ts";
import { arenaPoolStats } from "./arena-pool.ts";
import { ownedBlockStats } from "./block.ts";
import { bridgeList } from "./c-allocator.ts";
import { locate, located } from "./free.ts";
import type { Heap } from "./heap.ts";
import type { PageRef } from "./region.ts";
import { forEachFree } from "./secure.ts";
import { heapTag, trackedHeaps } from "./track.ts";

/** Live blocks and bytes of one heap's pages (byHeap below), before bridge blocks move out. */
interface Count {
  blocks: number;
  bytes: number;
}

function countOf(map: Map<Heap | null, Count>, h: Heap | null): Count {
  let c = map.get(h);
  if (c === undefined) map.set(h, c = { blocks: 0, bytes: 0 });
  return c;
}

/**
 * stats().byTag from what the pages know: each page's blocks count under its heap's tag;
 * then each block a cAllocator bridge holds moves to the bridge's tag, taken from the page
 * it is in now (a deleted heap's pages belong to the default heap) and only while the
 * allocator's own metadata says it is live (a block freed behind the bridge's back, or by
 * a destroyed heap, is not counted twice). `byHeap` holds the pages' counts per heap (null:
 * pages without a heap of this worker).
 */
function tagStats(byHeap: Map<Heap | null, Count>): TagStats[] {
  const tags = new Map<string, TagStats>();
  const entry = (tag: string): TagStats => {
    let t = tags.get(tag);
    if (t === undefined) tags.set(tag, t = { tag, blocks: 0, bytes: 0, heaps: 0, bridges: 0 });
    return t;
  };
  entry("");
  for (const h of trackedHeaps()) if (h.isLive) entry(heapTag(h)).heaps++;
  // a page's free blocks (free, local-free and thread-free lists), built once per page
  const freeSets = new Map<PageRef, Set<number>>();
  const claimed = new Set<number>();
  for (const b of bridgeList()) {
    const t = entry(b.tag);
    if (b.isOpen) t.bridges++;
    for (const p of b.liveAddresses()) {
      if (claimed.has(p)) continue;
      let pr: PageRef;
      try {
        pr = locate(p, "stats");
      } catch {
        continue; // not a live block any more (freed behind the bridge's back)
      }
      const bsize = pr.m[pr.pg + P_BSIZE];
      let size: number;
      if (bsize === -1) size = hugeSize(pr.r);
      else {
        let fs = freeSets.get(pr);
        if (fs === undefined) {
          const set = new Set<number>();
          forEachFree(pr.m, pr.pg, (off) => void set.add(off));
          freeSets.set(pr, fs = set);
        }
        if (fs.has(located.off)) continue;
        size = bsize;
      }
      claimed.add(p);
      const from = countOf(byHeap, pr.heap);
      from.blocks--;
      from.bytes -= size;
      t.blocks++;
      t.bytes += size;
    }
  }
  for (const [h, c] of byHeap) {
    if (h === null) continue;
    const t = entry(heapTag(h));
    t.blocks += c.blocks;
    t.bytes += c.bytes;
  }
  const none = byHeap.get(null);
  if (none !== undefined && (none.blocks !== 0 || none.bytes !== 0)) {
    const t = entry("");
    t.blocks += none.blocks;
    t.bytes += none.bytes;
  }
  return [...tags.values()].sort((a, b) => b.bytes - a.bytes || (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
}

export function collectStats(): Stats {
  const c = ctx.counters;
  const bins = Array.from({ length: BIN_COUNT }, (_, i) => ({ size: BIN_SIZE[i], blocks: 0, bytes: 0, pages: 0 })).slice(1);
  let inUse = 0, blocks = 0, pages = 0;
  const byHeap = new Map<Heap | null, Count>();
  const segs = liveSegments();
  for (const s of segs) {
    const m = s.r.i32;
    const sw = headerOf(s.seg);
    const count = m[sw + S_PAGE_COUNT] === pageSlotsOf(s) ? pageSlotsOf(s) : 0; // (a damaged header: validate() reports it)
    for (let i = 0; i < count; i++) {
      const bsize = m[sw + S_PAGES + i * PAGE_WORDS + P_BSIZE];
      if (bsize <= 0) continue;
      const pr = pageRefAt(s.r, s.seg, i);
      const u = pageUsage(pr);
      const hc = countOf(byHeap, pr.heap);
      hc.blocks += u.blocks;
      hc.bytes += u.bytes;
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
    const size = hugeSize(r);
    inUse += size;
    blocks++;
    const hc = countOf(byHeap, r.pages[0]?.heap ?? null);
    hc.blocks++;
    hc.bytes += size;
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
      base: a.region.base + a.headerSlots * SEGMENT_SIZE,
      size: a.segments * SEGMENT_SIZE,
      exclusive: a.exclusive,
      segmentsUsed: a.used,
      segmentsDirty: dirty,
      segments: a.segments,
      committed: a.committedBytes(),
    };
  });
  let pendingPurge = freeSlotBytes() + keptBytes();
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
    byTag: tagStats(byHeap),
  };
}
