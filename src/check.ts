/**
 * Heap validation (`validate()`): walks every page of this worker's segments and every huge
 * block and checks the free-list invariants — links inside their page and on block starts,
 * side-table entries that agree with the lists, no block listed twice, counts
 * that add up (free + local-free + used = capacity) — plus, under debugFill, that free
 * blocks still hold the 0xDF fill (a write after free otherwise). Never on a fast path.
 */
import { hugeRegions } from "./huge.ts";
import {
  P_BSIZE, P_CAPACITY, P_END, P_FLAGS, P_FREE, P_KEY, P_LOCAL_FREE, P_OWNER, P_RESERVED, P_START, P_USED, PAGE_WORDS,
  PF_CHECKED, PF_CORRUPT, PF_HAS_ALIGNED, S_PAGE_COUNT, S_PAGES, S_USED_PAGES, TABLE_COLUMN_ENTRIES, headerOf,
} from "./layout.ts";
import { detected, forEachFree, guardCounts, guardedBlocks, guardsLive, sec, tableProblem } from "./secure.ts";
import { liveSegments, pageSlotsOf } from "./segment.ts";
import { divisorMatches, freeKey } from "./page.ts";

/** What validate() found. */
export interface ValidateReport {
  /** No problems now and no corruption detected since the start. */
  ok: boolean;
  /** Segments walked. */
  segments: number;
  /** Pages walked. */
  pages: number;
  /** Huge blocks walked. */
  hugeBlocks: number;
  /** Blocks handed out and not freed (huge blocks included). */
  liveBlocks: number;
  /** Blocks on free lists. */
  freeBlocks: number;
  /** Inconsistencies found by this walk (empty when the heap is consistent). */
  problems: string[];
  /** Corrupted free lists detected at run time by secure mode and dropped (count, and the latest messages). */
  detectedCount: number;
  /** The latest messages of those detections. */
  detected: string[];
  /** Guard pages protected now, and those skipped because the guard budget was used up (doc/SECURE.md). */
  guardPages: { live: number; skipped: number };
}

const MAX_PROBLEMS = 100;

export function validateAll(): ValidateReport {
  const problems: string[] = [];
  const add = (p: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push(p);
  };
  let pages = 0, liveBlocks = 0, freeBlocks = 0;
  const segs = liveSegments();
  for (const s of segs) {
    const m = s.r.i32;
    const sw = headerOf(s.seg);
    const count = pageSlotsOf(s); // (a wild write may have changed the header's own count: session 30 review)
    if (m[sw + S_PAGE_COUNT] !== count) {
      add(`segment 0x${(s.r.base + s.seg).toString(16)}: its header says ${m[sw + S_PAGE_COUNT]} pages, its kind has ${count} (a write into the segment header)`);
      continue;
    }
    let used = 0;
    for (let i = 0; i < count; i++) {
      const pg = sw + S_PAGES + i * PAGE_WORDS;
      const bsize = m[pg + P_BSIZE];
      if (bsize === 0) continue;
      used++;
      pages++;
      const where = `segment 0x${(s.r.base + s.seg).toString(16)} page ${i} (block size ${bsize})`;
      const r = checkPage(s.r.i32, s.r.u8, pg, where, add);
      liveBlocks += r.live;
      freeBlocks += r.free;
    }
    if (used !== m[sw + S_USED_PAGES]) add(`segment 0x${(s.r.base + s.seg).toString(16)}: ${m[sw + S_USED_PAGES]} pages counted in use, ${used} found`);
  }
  const huge = hugeRegions();
  liveBlocks += huge.length;
  for (const [block, g] of guardedBlocks) {
    const m = g.pr.m;
    if (m[g.pr.pg + P_BSIZE] <= 0 || (m[g.pr.pg + P_FLAGS] & PF_HAS_ALIGNED) === 0) {
      add(`guarded allocation 0x${g.p.toString(16)}: its page is not live or not marked as holding shifted blocks`);
      continue;
    }
    let free = false;
    forEachFree(m, g.pr.pg, (b) => {
      if (g.pr.base + b === block) free = true;
      return !free;
    });
    if (free) add(`guarded allocation 0x${g.p.toString(16)}: its block is on a free list`);
  }
  return {
    ok: problems.length === 0 && detected.count === 0,
    segments: segs.length,
    pages,
    hugeBlocks: huge.length,
    liveBlocks,
    freeBlocks,
    problems,
    detectedCount: detected.count,
    detected: [...detected.recent],
    guardPages: { live: guardsLive(), skipped: guardCounts.skipped },
  };
}

function checkPage(m: Int32Array, u8: Uint8Array, pg: number, where: string, add: (p: string) => void): { live: number; free: number } {
  const bsize = m[pg + P_BSIZE];
  const start = m[pg + P_START];
  const cap = m[pg + P_CAPACITY];
  const flags = m[pg + P_FLAGS];
  if ((flags & PF_CHECKED) === 0) add(`${where}: not a checked page (every page keeps its lists in its side table)`);
  if (cap > m[pg + P_RESERVED]) add(`${where}: capacity ${cap} > reserved ${m[pg + P_RESERVED]}`);
  if (m[pg + P_END] !== start + cap * bsize) add(`${where}: end does not match capacity`);
  if (!divisorMatches(m, pg)) add(`${where}: its block-start divisor is not its block size's (frees would read the wrong block)`);
  if (!(cap >= 0 && cap <= TABLE_COLUMN_ENTRIES && bsize > 0 && start >= 0)) {
    add(`${where}: capacity ${cap}, block size ${bsize}, start ${start}: not a page's (a write into the segment header)`);
    return { live: 0, free: 0 };
  }
  const used = m[pg + P_USED];
  if (used < 0 || used > cap) add(`${where}: used ${used} outside 0..${cap}`);
  const key = freeKey(flags, m[pg + P_OWNER]);
  if (m[pg + P_KEY] !== key) add(`${where}: fast-free key ${m[pg + P_KEY]} does not match its flags (expected ${key})`);
  if (m[pg + P_FREE] !== 0 || m[pg + P_LOCAL_FREE] !== 0) add(`${where}: the descriptor's unused words P_FREE/P_LOCAL_FREE are not 0`);
  const seen = new Uint8Array(cap);
  const counts: Record<string, number> = { "free": 0, "local-free": 0, "thread-free": 0 };
  let badFill = "";
  const problem = forEachFree(m, pg, (b, list) => {
    const d = b - start;
    if (d % bsize !== 0) {
      add(`${where}: ${list} list links to offset 0x${b.toString(16)}, not a block start`);
      return false;
    }
    const idx = d / bsize;
    if (seen[idx]) {
      add(`${where}: block ${idx} is twice on the free lists (double free or cycle)`);
      return false;
    }
    seen[idx] = 1;
    counts[list]++;
    if (sec.fill && badFill === "") {
      for (let k = b; k < b + bsize; k++) {
        if (u8[k] !== 0xdf) {
          badFill = `${where}: free block at offset 0x${b.toString(16)} was written after free (byte ${k - b} is 0x${u8[k].toString(16)}, not 0xdf)`;
          break;
        }
      }
    }
  });
  const corrupt = (flags & PF_CORRUPT) !== 0;
  if (problem !== "" && !corrupt) add(`${where}: ${problem}`);
  if (badFill !== "") add(badFill);
  const free = counts["free"] + counts["local-free"];
  // thread-free blocks stay counted in used until their owner collects them
  if (free + used !== cap && !corrupt && problem === "") add(`${where}: ${free} free + ${used} used blocks != capacity ${cap}`);
  const b = tableProblem(m, pg, seen, corrupt || problem !== "");
  if (b !== "") add(`${where}: ${b}`);
  return { live: used - counts["thread-free"], free: free + counts["thread-free"] };
}

/** The problems validateAll finds (empty when the heap is consistent). */
export function validateHeaps(): string[] {
  return validateAll().problems;
}
