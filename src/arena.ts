/**
 * Arenas: large aligned reservations that segments are carved from. A freed segment stays
 * committed ("dirty") for purgeDelay ms so churn reuses it, then its pages go back to the
 * OS with one purge per run of adjacent segments. Reservations are never unmapped and
 * remapped in a loop: virtual size grows only when every arena is full.
 */
import { ctx, os } from "./context.ts";
import { SEGMENT_SHIFT, SEGMENT_SIZE } from "./layout.ts";
import { Region, RegionKind } from "./region.ts";

const enum SegState { Clean = 0, Used = 1, Dirty = 2 }

export class Arena {
  readonly region: Region;
  readonly segCount: number;
  readonly state: Uint8Array;
  readonly freedAt: Float64Array;
  used = 0;
  dirty = 0;
  /** Lowest slot that may be free (search hint). */
  private hint = 0;

  constructor(region: Region) {
    this.region = region;
    this.segCount = Math.floor(region.size / SEGMENT_SIZE);
    this.state = new Uint8Array(this.segCount);
    this.freedAt = new Float64Array(this.segCount);
  }

  /** Claims a segment; returns its byte offset or -1. Dirty (still committed) slots first. */
  claim(): number {
    let idx = -1;
    if (this.dirty > 0) {
      for (let i = 0; i < this.segCount; i++) {
        if (this.state[i] === SegState.Dirty) { idx = i; break; }
      }
      this.dirty--;
    } else {
      for (let i = this.hint; i < this.segCount; i++) {
        if (this.state[i] === SegState.Clean) { idx = i; break; }
      }
      if (idx < 0) return -1;
      this.hint = idx + 1;
      ctx.counters.commit(SEGMENT_SIZE);
    }
    this.state[idx] = SegState.Used;
    this.used++;
    return idx << SEGMENT_SHIFT;
  }

  /** Gives a segment back; it is purged after the delay (at once when delay is 0). */
  release(seg: number): void {
    const idx = seg >>> SEGMENT_SHIFT;
    this.state[idx] = SegState.Dirty;
    this.freedAt[idx] = ctx.now();
    this.used--;
    this.dirty++;
    if (idx < this.hint) this.hint = idx;
  }

  /** Purges dirty segments older than `delay` ms (all when force). Adjacent runs are one OS call. */
  purge(now: number, delay: number, force: boolean): void {
    if (this.dirty === 0) return;
    let runStart = -1;
    for (let i = 0; i <= this.segCount; i++) {
      const expired = i < this.segCount && this.state[i] === SegState.Dirty &&
        (force || now - this.freedAt[i] >= delay);
      if (expired) {
        if (runStart < 0) runStart = i;
        this.state[i] = SegState.Clean;
        this.dirty--;
      } else if (runStart >= 0) {
        const bytes = (i - runStart) * SEGMENT_SIZE;
        os().purge(this.region.base + runStart * SEGMENT_SIZE, bytes);
        ctx.counters.purge(bytes);
        ctx.counters.decommit(bytes);
        runStart = -1;
      }
    }
  }
}

/** Reserves a new arena (sizes double from options.arenaReserve); null when the OS refuses. */
export function newArena(): Arena | null {
  const o = os();
  const opts = ctx.options;
  let size = opts.arenaReserve * 2 ** Math.min(ctx.arenas.length, 8);
  if (size > opts.arenaMax) size = opts.arenaMax;
  size = Math.floor(size / SEGMENT_SIZE) * SEGMENT_SIZE;
  if (size > o.maxView) size = Math.floor(o.maxView / SEGMENT_SIZE) * SEGMENT_SIZE;
  let base = 0;
  while (size >= SEGMENT_SIZE) {
    base = o.reserve(size, SEGMENT_SIZE);
    ctx.counters.osCall("reserve");
    if (base !== 0) break;
    size = Math.floor(size / 2 / SEGMENT_SIZE) * SEGMENT_SIZE; // the OS refused: try smaller
  }
  if (base === 0) return null;
  ctx.counters.reserve(size);
  const region = new Region(base, size, RegionKind.Arena, o.view(base, size));
  ctx.regions.add(region);
  const arena = new Arena(region);
  ctx.arenas.push(arena);
  return arena;
}

/** A fresh segment from any arena, reserving a new arena when all are full. */
export function claimSegment(): { arena: Arena; seg: number } | null {
  const arenas = ctx.arenas;
  for (let pass = 0; pass < 2; pass++) {
    // first pass: arenas with dirty segments (reuse committed memory); second: any
    for (let i = 0; i < arenas.length; i++) {
      const a = arenas[i];
      if (a.used >= a.segCount || (pass === 0 && a.dirty === 0)) continue;
      const seg = a.claim();
      if (seg >= 0) return { arena: a, seg };
    }
  }
  const a = newArena();
  if (a === null) return null;
  const seg = a.claim();
  return seg >= 0 ? { arena: a, seg } : null;
}

export function arenaOf(r: Region): Arena | null {
  for (const a of ctx.arenas) if (a.region === r) return a;
  return null;
}
