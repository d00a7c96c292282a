/**
 * Arenas, as mimalloc's: large aligned reservations that 4 MiB segments are carved from.
 * Auto-created arenas grow geometrically (arenaReserve, doubling per arena up to 2^8,
 * capped at ARENA_MAX); `reserveArena` adds user-requested ones, optionally exclusive
 * (only heaps bound to that arena id use them, and they use nothing else).
 *
 * Segment headers (page descriptors, list heads, a huge block's header) live out of band, in
 * the arena's first segment slot(s), never in a segment (layout.ts headerOf: 8 KiB per segment,
 * 512 per 4 MiB slot): a stale write through a freed huge block carved from the arena reaches
 * only user data, whatever its segments hold later. Those slots are marked in use for good and
 * never counted in `used` or `segments`; a header counts as committed with its segment's
 * first slice and is purged with the segment.
 *
 * Segment state lives in the arena's own native memory, in a metadata page right after the
 * last segment, so a later worker can share it: per segment a claimer word (the tag of the
 * worker that claimed it, taken with Atomics.compareExchange, so a worker stopped half way
 * through a claim or release is known: recoverClaims), an in-use bitmap set by the claimer, a
 * dirty bitmap (free, memory not purged yet), per segment the
 * bytes counted as committed, and per segment what it holds (the segment map: a segment of
 * pages, or the head or a later segment of a huge block). No block ever covers the metadata,
 * so the segment map is what decides whether an address can be a block of ours: a segment's
 * own header is not trusted for that, since inside a huge block it is user data. The pages'
 * side tables follow the metadata (src/secure.ts "side table"), TABLE_SEGMENT_BYTES per segment, counted committed by the OS pages its pages'
 * columns reach (ensureTable) and purged with their page slot's memory (purgeColumns) or the segment's. A freed segment stays committed for the arena purge delay so
 * churn reuses it, then goes back to the OS with one purge per run of adjacent segments.
 * Reservations are never unmapped and remapped in a loop: virtual size grows only when the
 * arenas a heap may use are full.
 */
import { allowReserve, noteFailure, reserveRoom } from "./budget.ts";
import { ctx, os } from "./context.ts";
import { SEGMENT_HEADER_SIZE, SEGMENT_SHIFT, SEGMENT_SIZE, TABLE_COLUMN_ENTRIES, TABLE_SEGMENT_BYTES, TABLE_UNIT } from "./layout.ts";
import { message } from "./log.ts";
import { formatSize } from "./options.ts";
import { regionView } from "./os.ts";
import { arenaDelay } from "./purge-delay.ts";
import { Region, RegionKind } from "./region.ts";
import { registerTable } from "./secure.ts";

// ---- arena metadata (word indices from Arena.meta, the first word after the last segment)
const A_MAGIC = 0; //   ARENA_MAGIC
const A_SEGS = 1; //    segment count
const A_FLAGS = 2; //   AF_*
const A_ID = 3; //      arena id
// (words 4 and 5 held counts of used and dirty segments: popcounts of the bitmaps now, never off by a stopped worker)
const A_BITMAPS = 8; // bitmaps of W words each: in use, dirty, reset; then committed bytes per segment; then the segment map; then per segment TABLE_MAP_WORDS: which side-table units are counted committed; then the claimer words
const ARENA_MAGIC = 0x7a_a4e0; // even: never a segment cookie (those have bit 0 set)
const AF_EXCLUSIVE = 1;
/** A record for the counters' moves where there is none (not shared). */
const NO_RECORD = new Int32Array(1);
/** Claimer word of a header slot: never free, never a worker's tag (tags are > 0). */
const CLAIMER_HEADER = -1;
/** Words per segment of the side-table commit bitmap: one bit per TABLE_UNIT of its TABLE_SEGMENT_BYTES. */
const TABLE_MAP_WORDS = TABLE_SEGMENT_BYTES / TABLE_UNIT / 32;
/** Units of one page's column. */
const COLUMN_UNITS = (TABLE_COLUMN_ENTRIES * 2) / TABLE_UNIT;

/**
 * Segment map values (one word per segment). A live segment of pages holds its page shift
 * (16, 19 or 22: always > 0), so the free fast path reads the shift from here, not from the
 * segment's header.
 */
export const SEGMAP_FREE = 0;
/** The first segment of a huge block carved from the arena (its header is ours: the block starts 64 KiB in). */
export const SEGMAP_HUGE_HEAD = -1;
/** A later segment of a huge block: user data from its first byte. */
export const SEGMAP_HUGE_REST = -2;
/**
 * A header slot (never a segment). -3 so the free fast path's page index for an address in
 * one, `((off & SEGMENT_MASK) >>> -3) & 63`, is 0 (a shift by 29): its descriptor read, made
 * before it knows the address is no block, stays in the slot's first 4 KiB, and the arena's
 * second OS page can be a guard (mapArena).
 */
export const SEGMAP_HEADER = -3;

let nextArenaId = 1;

/**
 * Set by src/shared.ts once the allocator is shared between workers: arena ids come from
 * the process-wide root, new arenas are published in its directory, arenas other workers
 * created are discovered before reserving another, and reserving one is serialized by a
 * robust process-wide lock (so workers do not each reserve an arena at the same time).
 */
export const arenaHooks: {
  nextId: (() => number) | null;
  publish: ((a: Arena) => void) | null;
  discover: (() => boolean) | null;
  locked: (<T>(f: () => T) => T) | null;
  mapping: MappingRecord | null;
} = { nextId: null, publish: null, discover: null, locked: null, mapping: null };

/**
 * The shared root's record of the arena mapping in progress (one at a time: mapping happens
 * under the arena lock): its base (f64 index; 0 = none), its size in 4 KiB units, and the
 * reserved (4 KiB units) and committed bytes counted for it so far, each written together with
 * its counter (OsCounters.moveReserved/moveCommitted). A worker stopped while mapping an arena
 * leaves it here, and the next holder of the lock gives it back (recoverMapping).
 */
export interface MappingRecord {
  m: Int32Array;
  f64: Float64Array;
  base: number;
  units: number;
  reserved: number;
  committed: number;
}
const MAP_UNIT = 4096;

function takeArenaId(): number {
  return arenaHooks.nextId !== null ? arenaHooks.nextId() : nextArenaId++;
}
/** The next id this worker would give (the shared root starts its counter there). */
export function peekArenaId(): number {
  return nextArenaId;
}

/** Set bits of an int32. */
export function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/** Index of the lowest set bit of a nonzero int32. */
function lowBit(x: number): number {
  return 31 - Math.clz32(x & -x);
}

export class Arena {
  declare readonly id: number;
  declare readonly exclusive: boolean;
  declare readonly region: Region;
  /** Segment slots, the header slots included (indices are region offset >> SEGMENT_SHIFT). */
  declare readonly segCount: number;
  /** Slots [0, headerSlots) hold the segments' headers (headerSlotsOf); segments are the rest. */
  declare readonly headerSlots: number;
  /** Bytes of the metadata page(s) after the segments, and of the side tables after those. */
  declare readonly metaBytes: number;
  /** Bytes of side tables at the end of metaBytes (src/secure.ts "side table"). */
  declare readonly tableBytes: number;
  /** Bytes of the arena's own bookkeeping (bitmaps, per-segment words) between the guard page and the side tables. */
  private declare readonly ownBytes: number;
  /** Region offset of the side tables. */
  private declare readonly tablesAt: number;
  /** Word index of the metadata in region.i32. */
  private declare readonly meta: number;
  /** Bitmap words per bitmap. */
  private declare readonly words: number;
  /** Word indices of the bitmaps: in use, dirty (free, not purged or reset yet), reset (free, reset, still committed). */
  private declare readonly inuse: number;
  private declare readonly dirty: number;
  private declare readonly reset: number;
  private declare readonly committed: number;
  /** Word index of the segment map in region.i32 (also region.segMap). */
  private declare readonly segMap: number;
  /** Word index of the side-table commit bitmaps (TABLE_MAP_WORDS per segment). */
  private declare readonly tableMap: number;
  /**
   * Word index of the claimer words, one per segment: 0 while the segment is free and no one
   * holds it, else the tag of the worker that claimed it (or holds it to purge it, or is
   * releasing it); CLAIMER_HEADER for header slots. A claim takes this word by
   * compareExchange before it sets the in-use bit, and a release writes its own tag here
   * before it touches anything else, so a worker stopped anywhere inside a claim or release
   * leaves its tag on the segment, and releasing that worker finishes the job (recoverClaims).
   */
  private declare readonly claimers: number;
  /** In-use bits that are never a segment's: header slots and the bits past the last slot. */
  private declare readonly fixedBits: number;
  /** When each free segment was freed (this worker's clock; the purge schedule). */
  private declare readonly freedAt: Float64Array;
  /** ms each segment was last decommitted (0 = never), as this worker saw it. */
  private declare readonly purgedAt: Float64Array;
  /** No free segment is purged before this time (ms, ctx.now()): see release. */
  private holdUntil = 0;
  /** Lowest word that may hold a clean free segment (search hint). */
  private hint = 0;

  /** init false: the arena exists already (another worker's, seen through this worker's view). */
  constructor(region: Region, segCount: number, metaBytes: number, id: number, exclusive: boolean, init = true) {
    this.region = region;
    this.segCount = segCount;
    this.metaBytes = metaBytes;
    this.id = id;
    this.exclusive = exclusive;
    this.words = Math.ceil(segCount / 32);
    const guard = metaGuardBytes();
    this.meta = (segCount * SEGMENT_SIZE + guard) / 4;
    this.inuse = this.meta + A_BITMAPS;
    this.dirty = this.inuse + this.words;
    this.reset = this.dirty + this.words;
    this.committed = this.reset + this.words;
    this.segMap = this.committed + segCount;
    this.tableMap = this.segMap + segCount;
    this.claimers = this.tableMap + TABLE_MAP_WORDS * segCount;
    const own = bookkeepingFor(segCount);
    this.ownBytes = own;
    this.tableBytes = metaBytes - 2 * guard - own; // (a guard page ends the reservation too)
    this.tablesAt = segCount * SEGMENT_SIZE + guard + own;
    if ((this.claimers + segCount - this.meta) * 4 > own || (this.tableBytes !== 0 && this.tableBytes !== segCount * TABLE_SEGMENT_BYTES)) {
      throw new Error("tsmalloc: arena metadata does not fit");
    }
    region.segMap = this.segMap;
    if (this.tableBytes !== 0) {
      region.tbl = new Uint16Array(region.i32.buffer, region.i32.byteOffset + this.tablesAt, this.tableBytes / 2);
      registerTable(region.i32, region.tbl);
    }
    this.headerSlots = headerSlotsOf(segCount);
    this.fixedBits = this.headerSlots + (this.words * 32 - segCount);
    this.freedAt = new Float64Array(segCount);
    this.purgedAt = new Float64Array(segCount);
    const m = region.i32;
    if (!init) {
      if (Atomics.load(m, this.meta + A_MAGIC) !== ARENA_MAGIC || m[this.meta + A_SEGS] !== segCount) {
        throw new Error(`tsmalloc: no arena at 0x${region.base.toString(16)} (shared directory out of date?)`);
      }
      return;
    }
    m[this.meta + A_SEGS] = segCount;
    m[this.meta + A_FLAGS] = exclusive ? AF_EXCLUSIVE : 0;
    m[this.meta + A_ID] = id;
    // bits past the last segment count as in use, so no scan ever hands them out; so do the header slots
    if (segCount % 32 !== 0) m[this.inuse + this.words - 1] = ~((1 << (segCount % 32)) - 1);
    for (let k = 0; k < this.headerSlots; k++) {
      m[this.inuse + (k >>> 5)] |= 1 << (k & 31);
      m[this.claimers + k] = CLAIMER_HEADER;
      m[this.segMap + k] = SEGMAP_HEADER;
    }
    Atomics.store(m, this.meta + A_MAGIC, ARENA_MAGIC);
  }

  /** Segments it can hold (its slots less the header slots). */
  get segments(): number {
    return this.segCount - this.headerSlots;
  }
  /** Segments in use (by segments of pages or huge blocks): the in-use bits, never a count kept beside them. */
  get used(): number {
    return this.countBits(this.inuse) - this.fixedBits;
  }
  /** Free segments whose memory has not been purged or reset yet (their dirty bits). */
  get dirtyCount(): number {
    return this.countBits(this.dirty);
  }
  /** Set bits of a bitmap (plain loads: a count is a snapshot whatever the reads). */
  private countBits(map: number): number {
    const m = this.region.i32;
    let n = 0;
    for (let w = map; w < map + this.words; w++) n += popcount(m[w]);
    return n;
  }

  private bit(map: number, i: number): boolean {
    return (Atomics.load(this.region.i32, map + (i >>> 5)) & (1 << (i & 31))) !== 0;
  }
  isUsed(i: number): boolean {
    return this.bit(this.inuse, i);
  }
  isDirty(i: number): boolean {
    return this.bit(this.dirty, i);
  }
  /** When segment i was last decommitted by this worker's purge (ms; 0 = never). */
  purgedAtOf(i: number): number {
    return this.purgedAt[i];
  }

  /** Bytes of segment i counted as committed (whether it is in use or free). */
  committedOf(i: number): number {
    return this.region.i32[this.committed + i];
  }
  /** Sets segment i's committed bytes and moves the global counter by the difference. */
  setCommitted(i: number, bytes: number): void {
    const d = bytes - this.region.i32[this.committed + i];
    if (d !== 0) ctx.counters.moveCommitted(d, this.region.i32, this.committed + i, bytes); // (both or neither: see there)
  }
  /** Bytes counted as committed over the arena, metadata and side tables included. */
  committedBytes(): number {
    let n = this.ownBytes;
    for (let i = 0; i < this.segCount; i++) n += this.region.i32[this.committed + i] + this.tableCommittedOf(i);
    return n;
  }
  /** Committed bytes of free segments (waiting for their purge, or reset but still counted), their side tables included. */
  freeCommittedBytes(): number {
    let n = 0;
    for (let i = 0; i < this.segCount; i++) if (!this.isUsed(i)) n += this.region.i32[this.committed + i] + this.tableCommittedOf(i);
    return n;
  }

  /** Side-table bytes of segment i counted as committed: the units its pages' columns reached since its last purge. */
  tableCommittedOf(i: number): number {
    if (this.tableBytes === 0) return 0;
    let n = 0;
    for (let w = 0; w < TABLE_MAP_WORDS; w++) n += popcount(Atomics.load(this.region.i32, this.tableMap + i * TABLE_MAP_WORDS + w));
    return n * TABLE_UNIT;
  }
  /** The bits of the side-table units page column `col` of segment i needs for `blocks` blocks, [word, mask]. */
  private columnBits(i: number, col: number, blocks: number): [number, number] {
    const units = Math.ceil((2 * blocks) / TABLE_UNIT); // (<= COLUMN_UNITS; a column never crosses a word: 32 % COLUMN_UNITS === 0)
    const bit = col * COLUMN_UNITS;
    return [this.tableMap + i * TABLE_MAP_WORDS + (bit >>> 5), (units >= 32 ? -1 : (1 << units) - 1) << (bit & 31)];
  }
  /** Bytes more segment i's side table must count as committed for a page of `blocks` blocks in column `col` (0: counted already, or no tables). */
  tableNeed(i: number, col: number, blocks: number): number {
    if (this.tableBytes === 0 || blocks === 0) return 0;
    const [w, mask] = this.columnBits(i, col, blocks);
    return popcount(mask & ~Atomics.load(this.region.i32, w)) * TABLE_UNIT;
  }
  /** Counts those units committed (claimPage, after allowCommit said yes to tableNeed). */
  ensureTable(i: number, col: number, blocks: number): void {
    if (this.tableBytes === 0 || blocks === 0) return;
    const [w, mask] = this.columnBits(i, col, blocks);
    // only the segment's owner sets its bits: the map word and the shared total change together (OsCounters.moveCommitted)
    const had = Atomics.load(this.region.i32, w);
    const added = popcount(mask & ~had);
    if (added > 0) ctx.counters.moveCommitted(added * TABLE_UNIT, this.region.i32, w, had | mask);
  }
  /**
   * Purges (decommit: MADV_DONTNEED, the units leave `committed`) or resets the side table of
   * segment i, a free segment claimed while purged: one OS call over the range its counted
   * units span. Returns the bytes decommitted.
   */
  private purgeTable(i: number, decommit: boolean): number {
    const bytes = this.tableCommittedOf(i);
    if (bytes === 0) return 0;
    const m = this.region.i32;
    const w0 = this.tableMap + i * TABLE_MAP_WORDS;
    let lo = -1, hi = -1;
    for (let b = 0; b < TABLE_MAP_WORDS * 32; b++) {
      if ((m[w0 + (b >>> 5)] & (1 << (b & 31))) === 0) continue;
      if (lo < 0) lo = b;
      hi = b;
    }
    const page = os().pageSize;
    const seg = this.region.base + this.tablesAt + i * TABLE_SEGMENT_BYTES;
    const from = Math.floor((lo * TABLE_UNIT) / page) * page;
    const to = Math.min(TABLE_SEGMENT_BYTES, Math.ceil(((hi + 1) * TABLE_UNIT) / page) * page);
    if (decommit) {
      os().purge(seg + from, to - from);
      ctx.counters.purge(to - from);
      for (let w = 0; w < TABLE_MAP_WORDS; w++) {
        const had = Atomics.load(m, w0 + w); // (a free segment held by purge: no one else writes its map)
        if (had !== 0) ctx.counters.moveCommitted(-popcount(had) * TABLE_UNIT, m, w0 + w, 0); // (both or neither)
      }
      return bytes;
    }
    os().reset(seg + from, to - from);
    ctx.counters.reset(to - from);
    return 0;
  }

  /**
   * Purges (decommit: MADV_DONTNEED, the units leave `committed`) or resets the side-table
   * columns of segment i's free page slots (`isFree(col)`), one OS call per run of adjacent
   * columns, when a live segment purges its free slots' slices (segment.ts purgePages): a page's
   * column goes with its page, not only with its segment. Nothing where an OS page is larger
   * than a column's unit (TABLE_UNIT: a 16 KiB page would span live columns). Returns the bytes decommitted.
   */
  purgeColumns(i: number, isFree: (col: number) => boolean, decommit: boolean): number {
    if (this.tableBytes === 0 || os().pageSize > TABLE_UNIT) return 0;
    const m = this.region.i32;
    const w0 = this.tableMap + i * TABLE_MAP_WORDS;
    const seg = this.region.base + this.tablesAt + i * TABLE_SEGMENT_BYTES;
    const columns = TABLE_SEGMENT_BYTES / (COLUMN_UNITS * TABLE_UNIT);
    let dropped = 0;
    let runStart = -1;
    for (let col = 0; col <= columns; col++) {
      const bit = col * COLUMN_UNITS;
      const mask = (((1 << COLUMN_UNITS) - 1) << (bit & 31)) | 0;
      const take = col < columns && (Atomics.load(m, w0 + (bit >>> 5)) & mask) !== 0 && isFree(col);
      if (take) {
        if (runStart < 0) runStart = col;
        continue;
      }
      if (runStart < 0) continue;
      const from = runStart * COLUMN_UNITS * TABLE_UNIT;
      const bytes = (col - runStart) * COLUMN_UNITS * TABLE_UNIT;
      if (decommit) {
        os().purge(seg + from, bytes);
        ctx.counters.purge(bytes);
        for (let c = runStart; c < col; c++) {
          const b = c * COLUMN_UNITS;
          const cm = (((1 << COLUMN_UNITS) - 1) << (b & 31)) | 0;
          const had = Atomics.load(m, w0 + (b >>> 5)); // (only the segment's owner writes its map)
          const d = popcount(had & cm) * TABLE_UNIT;
          if (d !== 0) ctx.counters.moveCommitted(-d, m, w0 + (b >>> 5), had & ~cm); // (both or neither)
          dropped += d;
        }
      } else {
        os().reset(seg + from, bytes);
        ctx.counters.reset(bytes);
      }
      runStart = -1;
    }
    return dropped;
  }

  /** What segment i holds: its page shift (a live segment of pages), SEGMAP_HUGE_HEAD/REST, or SEGMAP_FREE. */
  segKind(i: number): number {
    return Atomics.load(this.region.i32, this.segMap + i);
  }
  /** Records what claimed segments [i, i+n) hold; set once their headers are written. */
  setSegKind(i: number, n: number, kind: number): void {
    for (let k = i; k < i + n; k++) Atomics.store(this.region.i32, this.segMap + k, kind);
  }
  /** Records a huge block over the claimed run [i, i+n): its head, then the rest. */
  setHugeRun(i: number, n: number): void {
    this.setSegKind(i + 1, n - 1, SEGMAP_HUGE_REST);
    this.setSegKind(i, 1, SEGMAP_HUGE_HEAD);
  }
  /**
   * The huge block covering segment i, from the segment map alone: its first segment and
   * segment count, or null when segment i is not part of one.
   */
  hugeRunAt(i: number): { idx: number; n: number } | null {
    let h = i;
    while (h >= 0 && this.segKind(h) === SEGMAP_HUGE_REST) h--;
    if (h < 0 || this.segKind(h) !== SEGMAP_HUGE_HEAD) return null;
    let e = h + 1;
    while (e < this.segCount && this.segKind(e) === SEGMAP_HUGE_REST) e++;
    return { idx: h, n: e - h };
  }

  /** The claimer word of segment i (see `claimers`): 0 when free and not held. */
  claimerOf(i: number): number {
    return Atomics.load(this.region.i32, this.claimers + i);
  }
  /** Takes the claimer words of [i, i+n) for this worker; all or nothing. */
  private hold(i: number, n: number): boolean {
    const m = this.region.i32;
    for (let k = 0; k < n; k++) {
      if (Atomics.compareExchange(m, this.claimers + i + k, 0, ctx.tag) !== 0) {
        this.unhold(i, k);
        return false;
      }
    }
    return true;
  }
  /** Gives back the claimer words of [i, i+n) (their in-use bits are clear). */
  private unhold(i: number, n: number): void {
    for (let k = i; k < i + n; k++) Atomics.store(this.region.i32, this.claimers + k, 0);
  }
  /** Holds [i, i+n) and sets their in-use bits; all or nothing. */
  private tryClaimRun(i: number, n: number): boolean {
    if (!this.hold(i, n)) return false;
    for (let k = i; k < i + n; k++) Atomics.or(this.region.i32, this.inuse + (k >>> 5), 1 << (k & 31));
    return true;
  }
  /** Clears the in-use bits of [i, i+n), then gives back their claimer words. */
  private unclaimRun(i: number, n: number): void {
    for (let k = i; k < i + n; k++) Atomics.and(this.region.i32, this.inuse + (k >>> 5), ~(1 << (k & 31)));
    this.unhold(i, n);
  }
  /**
   * Puts this worker's tag on the claimer words of claimed segments [i, i+n) before it
   * releases them (a huge run: before its header says released), so a stop inside the
   * release leaves them to recoverClaims rather than in use for good.
   */
  own(i: number, n: number): void {
    for (let k = i; k < i + n; k++) Atomics.store(this.region.i32, this.claimers + k, ctx.tag);
  }

  /**
   * Finishes what worker `tag` (gone: its thread has stopped) left half done: segments it
   * claimed and had not recorded yet (segment map still free, or a huge run's later segments
   * without their head), segments it held to purge, and runs it was releasing (a huge head
   * whose header says released: `releasedHead`) go back to the arena. Segments it claimed and
   * recorded are live and left alone (their owner word says what becomes of them). Returns
   * the segments given back.
   */
  recoverClaims(tag: number, releasedHead: (idx: number) => boolean, now = ctx.now()): number {
    const m = this.region.i32;
    let n = 0;
    for (let i = this.headerSlots; i < this.segCount; i++) {
      if (m[this.claimers + i] !== tag) continue; // (plain: no live worker writes a gone worker's tag)
      const kind = this.segKind(i);
      if (kind === SEGMAP_HUGE_HEAD && !releasedHead(i)) {
        const run = this.hugeRunAt(i)!;
        i += run.n - 1; // a live huge block: its later segments may carry the tag too
        continue;
      }
      if (kind > 0) continue; // a live segment of pages
      // free, or a huge run being released, or later segments whose head is gone: not live
      this.release(i, 1, now);
      n++;
    }
    return n;
  }

  /** Clears bit i of a bitmap; true when it was set. */
  private clearBit(map: number, i: number): boolean {
    const bit = 1 << (i & 31);
    return (Atomics.and(this.region.i32, map + (i >>> 5), ~bit) & bit) !== 0;
  }
  /** Sets bit i of a bitmap; true when it was clear. */
  private setBit(map: number, i: number): boolean {
    const bit = 1 << (i & 31);
    return (Atomics.or(this.region.i32, map + (i >>> 5), bit) & bit) === 0;
  }

  /** Claims one free segment at index ≤ last marked in bitmap `map` (dirty or reset; -1: any free one); -1 when none. */
  private claimMarked(map: number, last: number): number {
    const m = this.region.i32;
    for (let w = 0; w < this.words && w << 5 <= last; w++) {
      let bits = (map < 0 ? -1 : Atomics.load(m, map + w)) & ~Atomics.load(m, this.inuse + w);
      while (bits !== 0) {
        const i = (w << 5) + lowBit(bits);
        if (i > last) break;
        if (this.tryClaimRun(i, 1)) return i;
        bits &= bits - 1;
      }
    }
    return -1;
  }

  /**
   * Claims n adjacent free segments ending at index ≤ last; returns the first index or -1. A
   * single segment is taken dirty (recently freed, still committed) first, then reset (still
   * committed), then clean.
   */
  claim(n: number, last = this.segCount - 1): number {
    if (this.used + n > this.segments) return -1;
    const m = this.region.i32;
    let got = -1;
    if (n === 1) {
      if (this.dirtyCount > 0) got = this.claimMarked(this.dirty, last);
      if (got < 0) got = this.claimMarked(this.reset, last);
      for (let w = this.hint; got < 0 && w < this.words && w << 5 <= last; w++) {
        let bits = ~(Atomics.load(m, this.inuse + w) | Atomics.load(m, this.dirty + w) | Atomics.load(m, this.reset + w));
        while (bits !== 0) {
          const i = (w << 5) + lowBit(bits);
          if (i > last) break;
          if (this.tryClaimRun(i, 1)) {
            got = i;
            break;
          }
          bits &= bits - 1;
        }
        if (got < 0 && (w + 1) << 5 <= last + 1) this.hint = w + 1; // a word checked only in part stays hinted
      }
      if (got < 0) got = this.claimMarked(-1, last); // anything free (a stale hint)
    } else {
      for (let i = 0; i + n - 1 <= last; i++) {
        let k = 0;
        while (k < n && !this.isUsed(i + k)) k++;
        if (k < n) {
          i += k; // skip past the used segment
          continue;
        }
        if (this.tryClaimRun(i, n)) {
          got = i;
          break;
        }
      }
    }
    if (got < 0) return -1;
    for (let k = got; k < got + n; k++) {
      this.clearBit(this.dirty, k);
      this.clearBit(this.reset, k);
    }
    return got;
  }

  /** Gives back [i, i+n); segments with committed memory become dirty and are purged after the delay (from `now`, ms). */
  release(i: number, n: number, now = ctx.now()): void {
    this.own(i, n); // (a stop from here on: recoverClaims finishes it)
    this.setSegKind(i, n, SEGMAP_FREE); // before anyone can claim them again
    for (let k = i; k < i + n; k++) {
      if (this.committedOf(k) > 0) this.setBit(this.dirty, k);
      this.freedAt[k] = now;
    }
    // mimalloc's arena schedule (mi_arena_schedule_purge): a release while others wait pushes
    // the purge of all of them back a little (a series of releases: the program is shrinking
    // and may grow again), never past one purge delay from now
    const delay = arenaDelay();
    this.holdUntil = this.holdUntil > now ? Math.min(this.holdUntil + ARENA_PURGE_EXTEND, now + delay) : now + delay;
    this.unclaimRun(i, n);
    if (i >>> 5 < this.hint) this.hint = i >>> 5;
  }

  /**
   * Purges free segments freed at least `delay` ms ago (all when force), one OS call per
   * run of adjacent segments. decommit: MADV_DONTNEED and the bytes leave `committed`
   * (segments that were only reset are purged too); else MADV_FREE, still committed.
   * Segments are claimed (in-use bits) while purged, so no one takes them meanwhile.
   * Returns the bytes decommitted.
   */
  purge(now: number, delay: number, force: boolean, decommit: boolean): number {
    // a detached worker holds no segment: its tag is gone and its slot recycled, so a stop while
    // it held one would be recovered by no one (a timer that fired after detach: review round 20)
    if (ctx.detached) return 0;
    const m = this.region.i32;
    let any = this.dirtyCount > 0;
    if (!any && decommit) for (let w = 0; w < this.words && !any; w++) any = Atomics.load(m, this.reset + w) !== 0;
    if (!any) return 0;
    let dropped = 0;
    let runStart = -1;
    let runCommitted = 0;
    for (let i = 0; i <= this.segCount; i++) {
      // a segment another worker freed: its delay runs from when this worker first sees it
      // (else it is purged at once, zeroing a header that a free racing with its release reads)
      if (!force && i < this.segCount && this.freedAt[i] === 0 && this.isDirty(i) && !this.isUsed(i)) this.freedAt[i] = now;
      const take = i < this.segCount && (this.isDirty(i) || (decommit && this.bit(this.reset, i))) && !this.isUsed(i) &&
        (force || (now - this.freedAt[i] >= delay && now >= this.holdUntil)) && this.hold(i, 1); // (held, its in-use bit clear: not counted used)
      if (take) {
        if (runStart < 0) runStart = i;
        runCommitted += this.committedOf(i);
        continue;
      }
      if (runStart < 0) continue;
      const addr = this.region.base + runStart * SEGMENT_SIZE;
      const bytes = (i - runStart) * SEGMENT_SIZE;
      if (decommit) {
        os().purge(addr, bytes);
        ctx.counters.purge(bytes);
        dropped += runCommitted;
      } else {
        os().reset(addr, bytes);
        ctx.counters.reset(bytes);
      }
      if (decommit) this.purgeHeaders(runStart, i);
      message(2, `${decommit ? "purged" : "reset"} ${formatSize(bytes)} of free segments in arena ${this.id}`);
      for (let k = runStart; k < i; k++) {
        dropped += this.purgeTable(k, decommit);
        this.clearBit(this.dirty, k);
        if (decommit) {
          this.setCommitted(k, 0);
          if (!force) this.purgedAt[k] = now; // (see noteRecommit: only purges on the schedule count)
          this.clearBit(this.reset, k);
          if (k >>> 5 < this.hint) this.hint = k >>> 5; // clean again
        } else this.setBit(this.reset, k);
      }
      this.unhold(runStart, i - runStart);
      runStart = -1;
      runCommitted = 0;
    }
    return dropped;
  }

  /**
   * Decommits the headers of segments [i, j) (they count with each segment's first slice, so
   * no counter moves): the OS pages wholly inside their 8 KiB each. A page shared with a live
   * segment's header (pages over 8 KiB) stays; a header is rewritten when its segment is claimed.
   */
  private purgeHeaders(i: number, j: number): void {
    const page = os().pageSize;
    const from = Math.ceil((i * SEGMENT_HEADER_SIZE) / page) * page;
    const to = Math.floor((j * SEGMENT_HEADER_SIZE) / page) * page;
    if (to <= from) return;
    os().purge(this.region.base + from, to - from);
    ctx.counters.purge(to - from);
  }

  /** Earliest time a dirty segment's purge is due (Infinity when none). */
  nextDue(delay: number): number {
    if (this.dirtyCount === 0) return Infinity;
    let t = Infinity;
    for (let i = 0; i < this.segCount; i++) {
      if (this.isDirty(i) && !this.isUsed(i) && this.freedAt[i] + delay < t) t = this.freedAt[i] + delay;
    }
    return t === Infinity ? t : Math.max(t, this.holdUntil);
  }
}

/** ms a released segment pushes back the arena's pending purges (mimalloc: 10 ms). */
const ARENA_PURGE_EXTEND = 10;

/** Bytes of an arena's own metadata (bitmaps, per-segment words), in whole OS pages. */
function bookkeepingFor(segCount: number): number {
  const bytes = (A_BITMAPS + 3 * Math.ceil(segCount / 32) + (3 + TABLE_MAP_WORDS) * segCount) * 4;
  const page = os().pageSize;
  return Math.ceil(bytes / page) * page;
}

/** Header slots of an arena of `slots` segment slots: 8 KiB of header per slot, 512 per 4 MiB (layout.ts headerOf). */
function headerSlotsOf(slots: number): number {
  return Math.ceil(slots / (SEGMENT_SIZE / SEGMENT_HEADER_SIZE));
}

/**
 * Slots of an arena holding `segs` segments (its header slots added), and at least one OS page
 * of the header slots past the last segment's header left unused: mapArena makes it a guard
 * page, so no underflow off the first segment's first block reaches a header.
 */
function slotsFor(segs: number): number {
  let s = segs + 1;
  while (s - headerSlotsOf(s) < segs || s * SEGMENT_HEADER_SIZE + os().pageSize > headerSlotsOf(s) * SEGMENT_SIZE) s++;
  return s;
}

/**
 * Bytes of each guard page around an arena's metadata: one OS page between its last segment
 * and its metadata, and one after its side tables, PROT_NONE where the backend can protect
 * (mapArena), so no overflow off the last block, nor an underflow off a mapping placed right
 * after the arena, reaches the segment map or the side tables, at any secure level (levels 1+
 * also end each segment with a guard).
 */
function metaGuardBytes(): number {
  return os().pageSize;
}

/** Bytes one reservation for an arena of `segs` segments takes: header slots, segments, metadata, side tables. */
function arenaBytes(segs: number): number {
  const slots = slotsFor(segs);
  return slots * SEGMENT_SIZE + metaSizeFor(slots);
}

/** Bytes reserved after an arena's segments: a guard page, its metadata, the side tables, a guard page. */
function metaSizeFor(segCount: number): number {
  return 2 * metaGuardBytes() + bookkeepingFor(segCount) + segCount * TABLE_SEGMENT_BYTES;
}

/** Maps one arena of `segs` segments (and its header slots); null when the OS refuses. Budget checked by the caller. publish false: the caller publishes it (arenaHooks.publish) once it keeps it. */
function mapArena(segs: number, id: number, exclusive: boolean, publish = true): Arena | null {
  const o = os();
  const segCount = slotsFor(segs);
  const size = segCount * SEGMENT_SIZE;
  const metaBytes = metaSizeFor(segCount);
  const rec = arenaHooks.mapping;
  if (rec !== null) recoverMapping(rec); // (under the arena lock: a record left there is a stopped worker's)
  const base = o.reserve(size + metaBytes, SEGMENT_SIZE);
  if (base === 0) return null;
  if (o.canProtect) {
    // the arena's guard pages, never unprotected: its second OS page (in header 0's 8 KiB, which
    // no segment has: slot 0 holds headers; not its first page, where free's fast path reads a
    // descriptor for an address in a header slot: SEGMAP_HEADER; only where two OS pages fit in
    // 8 KiB), the header slots' unused end before its first segment (slotsFor), after its last
    // segment and after its side tables (metaGuardBytes)
    const g = metaGuardBytes();
    if (2 * o.pageSize <= SEGMENT_HEADER_SIZE) o.protect(base + o.pageSize, o.pageSize);
    o.protect(base + headerSlotsOf(segCount) * SEGMENT_SIZE - o.pageSize, o.pageSize);
    o.protect(base + size, g);
    o.protect(base + size + metaBytes - g, g);
  }
  const units = (size + metaBytes) / MAP_UNIT;
  if (rec !== null) {
    rec.m[rec.units] = units;
    rec.f64[rec.base] = base;
  }
  const bk = bookkeepingFor(segCount);
  ctx.counters.moveReserved(size + metaBytes, rec?.m ?? NO_RECORD, rec?.reserved ?? 0, units);
  ctx.counters.moveCommitted(bk, rec?.m ?? NO_RECORD, rec?.committed ?? 0, bk); // (side tables: as pages reach them, Arena.ensureTable)
  const v = regionView(o, base, size + metaBytes);
  const region = new Region(base, size, RegionKind.Arena, v.buffer, v.byteOffset, size + metaBytes);
  ctx.regions.add(region);
  const arena = new Arena(region, segCount, metaBytes, id, exclusive);
  ctx.arenas.push(arena);
  if (publish) {
    arenaHooks.publish?.(arena);
    if (rec !== null) endMapping(rec);
  } // (else the caller publishes it, then ends the record)
  message(1, `reserved ${exclusive ? "exclusive " : ""}arena ${id}: ${formatSize(segs * SEGMENT_SIZE)} at 0x${base.toString(16)}`);
  return arena;
}

/**
 * Most segments one arena can have on this backend: its metadata and segments are one
 * reservation, seen through one view (at most maxView bytes, and maxReserve where set).
 * A huge block carved from arenas needs that many at most.
 */
export function arenaSegmentsMax(): number {
  const o = os();
  const limit = Math.min(o.maxView, o.maxReserve ?? Infinity);
  let n = Math.floor(limit / SEGMENT_SIZE);
  while (n > 0 && arenaBytes(n) > limit) n--;
  return n;
}

/** Largest segment count of one arena as arenas are sized (arenaMax), within arenaSegmentsMax. */
function maxSegments(): number {
  return Math.min(Math.floor(ctx.options.arenaMax / SEGMENT_SIZE), arenaSegmentsMax());
}

/**
 * Reserves a new shared (non-exclusive) arena with room for at least `minSegs` segments:
 * sizes double from options.arenaReserve, shrink to fit maxReserved, and halve while the
 * OS refuses. null when the budget or the OS says no.
 */
export function newArena(minSegs = 1): Arena | null {
  const opts = ctx.options;
  const auto = ctx.arenas.filter((a) => !a.exclusive).length;
  let segs = Math.ceil(opts.arenaReserve * 2 ** Math.min(auto, 8) / SEGMENT_SIZE);
  const most = arenaSegmentsMax();
  if (minSegs > most) {
    // (one view over it would be larger than the runtime allows: mapArena's view threw)
    noteFailure(`${formatSize(minSegs * SEGMENT_SIZE)} is more than one arena can hold on this backend (${formatSize(most * SEGMENT_SIZE)})`);
    return null;
  }
  segs = Math.max(Math.min(segs, maxSegments()), minSegs);
  const need = arenaBytes;
  if (need(segs) > reserveRoom()) {
    // the budget allows less than the usual size: take what fits, or refuse (after relief)
    if (!allowReserve(need(minSegs))) return null;
    const room = reserveRoom();
    let fit = Math.floor(room / SEGMENT_SIZE);
    while (fit > minSegs && need(fit) > room) fit--;
    segs = Math.max(minSegs, Math.min(segs, fit));
  }
  for (;;) {
    const a = mapArena(segs, arenaHooks.nextId !== null ? arenaHooks.nextId() : nextArenaId, false);
    if (a !== null) {
      if (arenaHooks.nextId === null) nextArenaId++;
      return a;
    }
    if (segs === minSegs) break;
    segs = Math.max(minSegs, Math.floor(segs / 2)); // the OS refused: try smaller
  }
  noteFailure(`the OS refused to reserve an arena of ${formatSize(minSegs * SEGMENT_SIZE)}`);
  return null;
}

/**
 * Reserves `size` bytes (rounded up to 4 MiB segments) as one arena id, split into several
 * reservations when larger than one arena may be. Exclusive arenas serve only heaps bound
 * to them. Returns the id, or 0 (with the reason in ctx.refusal) when the budget or the OS
 * refuses; nothing stays reserved then.
 */
export function reserveArena(size: number, exclusive: boolean): number {
  return arenaHooks.locked !== null ? arenaHooks.locked(() => reserveArenaLocked(size, exclusive)) : reserveArenaLocked(size, exclusive);
}
function reserveArenaLocked(size: number, exclusive: boolean): number {
  let segs = Math.ceil(size / SEGMENT_SIZE);
  const per = maxSegments();
  let total = 0;
  for (let left = segs; left > 0; left -= per) total += arenaBytes(Math.min(left, per));
  if (!allowReserve(total)) return 0;
  const id = takeArenaId();
  const made: Arena[] = [];
  const rec = arenaHooks.mapping;
  for (; segs > 0; segs -= per) {
    // the root records one mapping: a worker stopped while mapping a later part leaks the earlier ones
    if (rec !== null && made.length > 0) endMapping(rec);
    const a = mapArena(Math.min(segs, per), id, exclusive, false);
    if (a === null) {
      if (rec !== null) endMapping(rec); // (before the drops: a stop between leaks, never gives back twice)
      for (const b of made) dropArena(b);
      noteFailure(`the OS refused to reserve ${formatSize(size)}`);
      return 0;
    }
    made.push(a);
  }
  // published once all are mapped: another worker may view a published arena at any time, so
  // one dropped after it was published would be unmapped under its views
  for (const a of made) arenaHooks.publish?.(a);
  if (rec !== null) endMapping(rec);
  return id;
}

/** No mapping in progress: records first, base last (a stop between: the arena is published, recoverMapping only clears). */
function endMapping(rec: MappingRecord): void {
  rec.m[rec.reserved] = 0;
  rec.m[rec.committed] = 0;
  rec.f64[rec.base] = 0;
}

/**
 * Gives back an arena mapping a stopped worker left unpublished in the root's record (its
 * counters first, with their records; then the record's base; then the memory: a worker
 * stopped in here leaks the range rather than unmapping it twice). Call holding the arena lock.
 */
export function recoverMapping(rec: MappingRecord): void {
  const base = rec.f64[rec.base];
  if (base === 0) return;
  arenaHooks.discover?.();
  if (ctx.arenas.some((a) => a.region.base === base)) {
    endMapping(rec); // published: stopped after that, nothing to give back
    return;
  }
  const bytes = rec.m[rec.units] * MAP_UNIT;
  const reserved = rec.m[rec.reserved] * MAP_UNIT, committed = rec.m[rec.committed];
  if (committed !== 0) ctx.counters.moveCommitted(-committed, rec.m, rec.committed, 0);
  if (reserved !== 0) ctx.counters.moveReserved(-reserved, rec.m, rec.reserved, 0);
  rec.f64[rec.base] = 0;
  os().release(base, bytes);
  message(1, `gave back an arena of ${formatSize(bytes)} at 0x${base.toString(16)} that a stopped worker left unpublished`);
}

/** Unmaps an unused arena (only for a reserveArena that failed half way). */
function dropArena(a: Arena): void {
  ctx.arenas.splice(ctx.arenas.indexOf(a), 1);
  ctx.regions.remove(a.region);
  os().release(a.region.base, a.region.size + a.metaBytes);
  ctx.counters.unreserve(a.region.size + a.metaBytes);
  ctx.counters.decommit(a.committedBytes());
}

/** May a heap bound to `arenaId` (0 = none) take segments from arena a? */
export function suitable(a: Arena, arenaId: number): boolean {
  return arenaId === 0 ? !a.exclusive : a.id === arenaId;
}

/** True when some arena has this id. */
export function arenaExists(id: number): boolean {
  return ctx.arenas.some((a) => a.id === id);
}

/**
 * n adjacent free segments, the last at index ≤ `last` of its arena (pages: PAGE_SEGMENT_MAX),
 * from an arena that heaps bound to `arenaId` may use; reserves a new shared arena when those
 * are full and the heap is not bound to an arena. Dirty (still committed) segments are
 * preferred. null when none can be had.
 */
export function claimSegments(arenaId: number, n: number, last = Infinity): { arena: Arena; idx: number } | null {
  const arenas = ctx.arenas;
  for (let pass = 0; pass < 2; pass++) {
    // first pass: arenas with dirty segments (reuse committed memory); second: any
    for (let i = 0; i < arenas.length; i++) {
      const a = arenas[i];
      if (!suitable(a, arenaId) || a.used + n > a.segments || (pass === 0 && (n > 1 || a.dirtyCount === 0))) continue;
      const idx = a.claim(n, Math.min(last, a.segCount - 1));
      if (idx >= 0) return { arena: a, idx };
    }
  }
  if (arenaId !== 0) {
    noteFailure(`arena ${arenaId} has no ${n > 1 ? `run of ${n} free segments` : "free segment"} left`);
    return null;
  }
  const fresh = (): { arena: Arena; idx: number } | null => {
    // shared: arenas other workers reserved meanwhile may have room
    if (arenaHooks.discover !== null && arenaHooks.discover()) {
      for (const a of ctx.arenas) {
        if (!suitable(a, 0) || a.used + n > a.segments) continue;
        const idx = a.claim(n, Math.min(last, a.segCount - 1));
        if (idx >= 0) return { arena: a, idx };
      }
    }
    const a = newArena(n);
    if (a === null) return null;
    const idx = a.claim(n, Math.min(last, a.segCount - 1));
    return idx >= 0 ? { arena: a, idx } : null;
  };
  return arenaHooks.locked !== null ? arenaHooks.locked(fresh) : fresh();
}

/** Sees an arena another worker reserved (shared allocator): this worker's own views of it. */
export function adoptArena(base: number, segCount: number, metaBytes: number, id: number, exclusive: boolean): Arena {
  const size = segCount * SEGMENT_SIZE;
  const v = regionView(os(), base, size + metaBytes);
  const region = new Region(base, size, RegionKind.Arena, v.buffer, v.byteOffset, size + metaBytes);
  const arena = new Arena(region, segCount, metaBytes, id, exclusive, false);
  ctx.regions.add(region);
  ctx.arenas.push(arena);
  return arena;
}

/**
 * For error messages: which arena-internal memory address p lies in — an arena's segment
 * headers (its first slot) or its metadata and side tables (after its segments) — or null.
 */
export function arenaInternal(p: number): string | null {
  for (const a of ctx.arenas) {
    const off = p - a.region.base;
    if (off >= 0 && off < a.headerSlots * SEGMENT_SIZE) return `inside arena ${a.id}'s segment headers (allocator metadata, never a block)`;
    if (off >= a.region.size && off < a.region.size + a.metaBytes) {
      return `inside arena ${a.id}'s ${off >= a.region.size + a.metaBytes - a.tableBytes ? "side tables" : "metadata"} (allocator metadata, never a block)`;
    }
  }
  return null;
}

export function arenaOf(r: Region): Arena | null {
  for (const a of ctx.arenas) if (a.region === r) return a;
  return null;
}

export { SEGMENT_SHIFT };
