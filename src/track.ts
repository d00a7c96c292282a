/**
 * Leak tracking (option `track`, TSMALLOC_TRACK): for every block allocated while it is on,
 * the tag of its heap (`Heap.create({ tag })`) and, one in `trackSampleRate` allocations,
 * the allocation site (a short stack). `leaks()` walks the live blocks of this worker's heaps
 * (heap.visit: the allocator's own metadata decides what is live) and groups them by tag and
 * site, so a record left behind by a block freed without a call here (heap.destroy, a free
 * by another worker) never shows as a leak; a new allocation at that address overwrites it.
 *
 * Off (the default) the fast paths are untouched: `trackMalloc` returns the malloc setMode
 * picked and `trackFree` the free setFreeMode picked. On, they are wrapped once per
 * configuration change (heap.ts setMode, secure-free.ts setFreeMode), together with own
 * properties for the heap's other entry points.
 */
import { ctx } from "./context.ts";
import type { Heap } from "./heap.ts";

/**
 * One group of `leaks()`: live blocks of one tag and allocation site (Zig's leak report, by site).
 *
 * @example
 * ```ts
 * import { type LeakGroup, leaks } from "@tsmalloc/tsmalloc";
 *
 * const groups: LeakGroup[] = leaks();
 * for (const g of groups) console.log(g.tag, g.site, g.count, g.bytes);
 * ```
 */
export interface LeakGroup {
  /** The heap's tag at allocation (`Heap.create({ tag })`), or the owner's tag (Block, ArenaPool); "" for the default heap. */
  tag: string;
  /** The allocation site (up to three frames, innermost first); "" when not sampled or not tracked. */
  site: string;
  /** Live blocks. */
  count: number;
  /** Their usable bytes. */
  bytes: number;
}

interface Rec {
  tag: string;
  site: string;
}

const records = new Map<number, Rec>();
const heapTags = new WeakMap<object, string>();
let tagOverride: string | null = null;
let sampleCountdown = 1;
let listHeaps: () => Heap[] = () => [];

/** mod.ts: the heaps of this worker (the default heap and the live Heap.create ones). */
export function setHeapLister(f: () => Heap[]): void {
  listHeaps = f;
}

/** The heaps of this worker: the default heap and the live Heap.create ones (stats().byTag). */
export function trackedHeaps(): Heap[] {
  return listHeaps();
}

/** Records a heap's tag (Heap.create({ tag })). */
export function setHeapTag(h: object, tag: string): void {
  heapTags.set(h, tag);
}

/** The tag of a heap ("" when none was given). */
export function heapTag(h: object): string {
  return heapTags.get(h) ?? "";
}

/** Runs f with allocations tagged `tag` instead of their heap's tag (owned blocks, arena chunks). */
export function withTrackTag<T>(tag: string, f: () => T): T {
  const old = tagOverride;
  tagOverride = tag;
  try {
    return f();
  } finally {
    tagOverride = old;
  }
}

// Our own source files, skipped when a site is taken: this file's directory (src/) and mod.ts
// beside it, or, in a bundle, the bundle file itself. Learnt from a stack taken here (what
// the runtime reports: the bundle, or the .ts source when Node maps it with source maps).
let here = "", srcDir: string | null = null, modFile: string | null = null;
function learnOwnFiles(): void {
  const m = FRAME.exec((new Error().stack ?? "").split("\n").find((l) => FRAME.test(l)) ?? "");
  here = m === null ? stripFile(import.meta.url) : stripFile(m[2]);
  srcDir = here.endsWith("/src/track.ts") ? here.slice(0, -"track.ts".length) : null;
  modFile = srcDir !== null ? srcDir.slice(0, -"src/".length) + "mod.ts" : null;
}

function stripFile(u: string): string {
  return u.startsWith("file://") ? decodeURIComponent(u.slice(7)) : u;
}

function isOurs(file: string): boolean {
  if (here === "") learnOwnFiles();
  return file === here || file === modFile || (srcDir !== null && file.startsWith(srcDir));
}

const FRAME = /^\s*at (?:(.*?) \()?(.*?):(\d+):(\d+)\)?\s*$/;

/** The first three frames of the caller outside tsmalloc, as "fn (file:line:col) < ...". */
export function captureSite(): string {
  const E = Error as unknown as { stackTraceLimit?: number };
  const limit = E.stackTraceLimit;
  E.stackTraceLimit = 30;
  const stack = new Error().stack ?? "";
  E.stackTraceLimit = limit;
  return siteOf(stack);
}

/** The first three frames of a stack outside tsmalloc's own files. */
export function siteOf(stack: string): string {
  const out: string[] = [];
  for (const line of stack.split("\n")) {
    const m = FRAME.exec(line);
    if (m === null) continue;
    const file = stripFile(m[2]);
    if (out.length === 0 && isOurs(file)) continue;
    out.push(`${m[1] ? m[1] + " " : ""}(${file}:${m[3]}:${m[4]})`);
    if (out.length === 3) break;
  }
  return out.join(" < ");
}

/** > 0 inside a wrapped entry point: the malloc it calls records nothing (the entry point does, once). */
let nesting = 0;

function note(h: Heap, p: number): void {
  if (nesting > 0) return;
  let site = "";
  const rate = ctx.options.trackSampleRate;
  // (a countdown above the rate: the rate was lowered since; sample now and restart)
  if (rate > 0 && (--sampleCountdown <= 0 || sampleCountdown > rate)) {
    sampleCountdown = rate;
    site = captureSite();
  }
  records.set(p, { tag: tagOverride ?? heapTag(h), site });
}

type AnyFn = (...args: number[]) => number;
type Own = Record<string, AnyFn | undefined>;
/** Entry points wrapped as own properties while tracking (malloc itself comes from setMode). */
const WRAPPED = ["zalloc", "calloc", "alloc", "mallocAligned", "zallocAligned"] as const;
const installed = new WeakSet<Heap>();

/**
 * The malloc heap `h` should use: `pick` itself when tracking is off (and every own
 * property this module installed removed), else a wrapper that records each block.
 */
export function trackMalloc(h: Heap, pick: (size: number) => number): (size: number) => number {
  const own = h as unknown as Own;
  if (!ctx.options.track) {
    if (installed.has(h)) {
      for (const k of WRAPPED) delete own[k];
      delete own.realloc;
      delete own.reallocAligned;
      delete own.free;
      installed.delete(h);
    }
    return pick;
  }
  installed.add(h);
  const proto = Object.getPrototypeOf(h) as Own;
  for (const k of WRAPPED) {
    const inner = proto[k]!;
    own[k] = function tracked(a: number, b: number): number {
      nesting++;
      let p: number;
      try {
        p = inner.call(h, a, b);
      } finally {
        nesting--;
      }
      if (p !== 0) note(h, p);
      return p;
    };
  }
  for (const k of ["realloc", "reallocAligned"] as const) {
    const inner = proto[k]!;
    own[k] = function trackedRealloc(p: number, size: number, align: number): number {
      nesting++;
      let q: number;
      try {
        q = inner.call(h, p, size, align);
      } finally {
        nesting--;
      }
      if (q !== 0 && q !== p) {
        records.delete(p);
        note(h, q);
      }
      return q;
    };
  }
  const free = proto.free!;
  own.free = function trackedFree(p: number): number {
    free.call(h, p);
    records.delete(p);
    return 0;
  };
  return function trackedMalloc(size: number): number {
    const p = pick.call(h, size);
    if (p !== 0) note(h, p);
    return p;
  };
}

/** The module-level free: `pick` when tracking is off, else a wrapper that drops the record. */
export function trackFree(pick: (p: number) => void): (p: number) => void {
  if (!ctx.options.track) {
    // frees are no longer seen: a kept record would name its site for whatever block an
    // untracked malloc puts at that address later (issue 13 review), so the sites go
    records.clear();
    return pick;
  }
  return function trackedFree(p: number): void {
    pick(p);
    records.delete(p);
  };
}

/**
 * Live blocks of this worker's heaps grouped by tag and allocation site, most bytes first.
 * Records of blocks no longer live are dropped on the way.
 */
export function leakGroups(): LeakGroup[] {
  const groups = new Map<string, LeakGroup>();
  const seen = new Set<number>();
  for (const h of listHeaps()) {
    if (!h.isLive) continue;
    const htag = heapTag(h);
    h.visit((p, usable) => {
      seen.add(p);
      const r = records.get(p);
      const tag = r?.tag ?? htag, site = r?.site ?? "";
      const key = tag + "\u0000" + site;
      let g = groups.get(key);
      if (g === undefined) groups.set(key, g = { tag, site, count: 0, bytes: 0 });
      g.count++;
      g.bytes += usable;
    });
  }
  for (const p of records.keys()) if (!seen.has(p)) records.delete(p);
  return [...groups.values()].sort((a, b) => b.bytes - a.bytes || b.count - a.count || (a.tag + a.site < b.tag + b.site ? -1 : 1));
}

/** leakGroups as a readable table (one line per group). */
export function formatLeaks(groups: LeakGroup[]): string {
  if (groups.length === 0) return "tsmalloc: no live blocks";
  const count = groups.reduce((a, g) => a + g.count, 0), bytes = groups.reduce((a, g) => a + g.bytes, 0);
  const lines = [`tsmalloc: ${count} live block(s), ${bytes} bytes, in ${groups.length} group(s) (tag, site):`];
  for (const g of groups) {
    lines.push(`  ${String(g.bytes).padStart(12)} B ${String(g.count).padStart(8)} x  ${g.tag === "" ? "(no tag)" : JSON.stringify(g.tag)}  ${g.site === "" ? "(site not recorded)" : g.site}`);
  }
  return lines.join("\n");
}
