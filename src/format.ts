/** printStats(): stats as a readable table. */
import { formatSize } from "./options.ts";
import type { Stats } from "./stats.ts";

function pad(s: string, n: number): string {
  return s.length >= n ? s : " ".repeat(n - s.length) + s;
}
function padEnd(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}
function size(n: number): string {
  return n < 0 ? "unknown" : formatSize(n);
}

export function formatStats(s: Stats): string {
  const out: string[] = [];
  out.push(`tsmalloc stats (backend ${s.backend}, ${s.workers} worker${s.workers === 1 ? "" : "s"})`);
  out.push(`  ${padEnd("", 14)}${pad("current", 12)}${pad("peak", 12)}`);
  const row = (name: string, cur: number, peak: number) => out.push(`  ${padEnd(name, 14)}${pad(size(cur), 12)}${pad(size(peak), 12)}`);
  row("reserved", s.reserved, s.peakReserved);
  row("committed", s.committed, s.peakCommitted);
  row("resident", s.resident, s.peakResident);
  row("in use", s.inUse, s.peakInUse);
  out.push(`  ${padEnd("pending purge", 14)}${pad(size(s.pendingPurge), 12)}`);
  out.push(
    `  blocks ${s.blocks}, pages ${s.pages}, huge blocks ${s.hugeBlocks}, segments ${s.segments}, arenas ${s.arenas}`,
  );
  out.push(`  purges ${s.purges} (${size(s.purged)}), resets ${s.resets} (${size(s.resetBytes)}), budget refusals ${s.budgetRefusals}`);
  out.push(`  os calls: ${Object.entries(s.osCalls).map(([k, v]) => `${k} ${v}`).join(", ")}`);
  if (s.arenaList.length > 0) {
    out.push(`  ${padEnd("arena", 8)}${pad("size", 10)}${pad("used", 7)}${pad("dirty", 7)}${pad("segs", 7)}${pad("committed", 12)}  base`);
    for (const a of s.arenaList) {
      out.push(
        `  ${padEnd(String(a.id) + (a.exclusive ? " excl" : ""), 8)}${pad(size(a.size), 10)}${pad(String(a.segmentsUsed), 7)}` +
          `${pad(String(a.segmentsDirty), 7)}${pad(String(a.segments), 7)}${pad(size(a.committed), 12)}  0x${a.base.toString(16)}`,
      );
    }
  }
  const bins = s.bins.filter((b) => b.blocks > 0 || b.pages > 0);
  if (bins.length > 0) {
    out.push(`  ${pad("block size", 12)}${pad("blocks", 10)}${pad("bytes", 12)}${pad("pages", 8)}`);
    for (const b of bins) out.push(`  ${pad(size(b.size), 12)}${pad(String(b.blocks), 10)}${pad(size(b.bytes), 12)}${pad(String(b.pages), 8)}`);
  }
  if (s.byTag.length > 0) {
    out.push(`  ${padEnd("tag", 20)}${pad("blocks", 10)}${pad("bytes", 12)}${pad("heaps", 7)}${pad("bridges", 9)}`);
    for (const t of s.byTag) {
      const name = t.tag === "" ? "(no tag)" : JSON.stringify(t.tag);
      out.push(`  ${padEnd(name, 20)}${pad(String(t.blocks), 10)}${pad(size(t.bytes), 12)}${pad(String(t.heaps), 7)}${pad(String(t.bridges), 9)}`);
    }
  }
  const ap = s.arenaPools;
  out.push(
    `  arena pools ${ap.pools}: arenas live ${ap.live}, pooled ${ap.pooled}, capacity ${size(ap.capacity)}, used ${size(ap.used)}; ` +
      `acquires ${ap.acquires} (reused ${ap.reused}), releases ${ap.releases}, chunk allocs ${ap.chunkAllocs}, chunk frees ${ap.chunkFrees}`,
  );
  const ob = s.ownedBlocks;
  out.push(`  owned blocks ${ob.live} (${size(ob.bytes)}), collected while allocated ${ob.collected}, freed on collect ${ob.freedOnCollect}`);
  return out.join("\n");
}
