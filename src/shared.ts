/**
 * One allocator shared by the workers of a process (workerHandle / attach).
 *
 * The process-wide state lives in a small "root" reservation in native memory (for the
 * buffer backend: in the shared pool, see ffi/buffer.ts), which every attached worker views:
 *
 * - counters: the next thread tag (each worker a distinct nonzero tag) and the next arena id;
 * - the arena directory: an append-only table of (base, segments, metadata bytes, id, flags).
 *   Appending is lock-free (claim a slot with Atomics.add, write it, publish its `ready` word
 *   last), so a reader never sees a half-written entry. A worker learns about arenas other
 *   workers reserved lazily: when it meets an address it does not know, and before it
 *   reserves a new arena itself (under the arena lock, so workers do not all reserve at once);
 * - the worker table: per attached worker its tag, state (alive / dying / gone), JS threadId,
 *   pid and OS thread id. A terminated worker cannot say it is gone: its parent calls
 *   releaseWorker(threadId) (mod.ts watchWorker does it on the Worker's "exit" event), which
 *   marks it gone and abandons its segments on its behalf — only once the kernel says its OS
 *   thread has ended (Deno fires "exit" while the thread still runs); until then it is dying,
 *   and whoever looks next (retry timer, any slow path, collect) completes the release.
 *   Liveness is this explicit word, not a heartbeat: it never declares a slow worker dead;
 * - the robust arena lock (src/lock.ts), the count of abandoned segments, and the
 *   process-wide committed/reserved byte counters that stats() reports and budgets check.
 *
 * A handle is untrusted input: attach() reads the root only after the OS said the range is
 * mapped and readable (Os.mapped), then checks magic, version, pid and a 52-bit random id.
 *
 * Ownership (mimalloc's): a segment's header names its owner's tag (0 = abandoned), and so
 * does each page. A free of another worker's block is one atomic push onto the page's
 * thread-free list; the owner collects lazily. Pages parked in the owner's full queue are
 * revisited whenever the owner would claim a fresh page (Heap.rescue), so no free is lost.
 * Huge blocks (arena segment runs while shared) freed by another worker get bit 0 of their
 * thread-free word set; the owner reaps them at its next slow-path event, or, when the
 * owner is gone (segment owner 0), the freer claims the run and frees it itself.
 *
 * Detach / death: the worker's empty pages are given back, the others keep their blocks:
 * page and segment owners become 0 (every free then goes to a thread-free list), and the
 * abandoned count grows. A worker that needs a page first reclaims abandoned segments
 * (compare-exchange of the owner word 0 → its tag decides who gets one), collecting what
 * was freed into them meanwhile. Nothing a dead worker allocated is lost: it can be freed
 * from anywhere and its memory is reused.
 */
import { adoptArena, type Arena, arenaHooks, peekArenaId, recoverMapping, SEGMAP_FREE, SEGMAP_HEADER, suitable, SEGMAP_HUGE_HEAD, SEGMAP_HUGE_REST } from "./arena.ts";
import { ctx, os, sharedHooks } from "./context.ts";
import { DoubleFreeError } from "./errors.ts";
import type { Heap } from "./heap.ts";
import { adoptForeignRun, disownRun, dropStaleForeignRun, OWNER_RELEASED, releaseForeignRun } from "./huge.ts";
import {
  P_BSIZE, P_FLAGS, P_HEAP, P_OWNER, P_THREAD_FREE, PAGE_WORDS, PF_CHECKED, S_COOKIE, S_OWNER, S_PAGE_COUNT, S_PAGES, S_USED_PAGES,
  SEGMENT_SHIFT, SEGMENT_SIZE, SMALL_PAGE_SHIFT, headerOf,
} from "./layout.ts";
import { noteBudget } from "./budget.ts";
import { RobustLock } from "./lock.ts";
import { regionView } from "./os.ts";
import { setPageFlags } from "./page.ts";
import type { PageRef, Region } from "./region.ts";
import { adoptSegment, forgetSegment, liveSegments, pageRefAt, pageSlotsOf, releaseCached, segmentCookie } from "./segment.ts";
import { finishPush, guardedActive, guardedBlocks, repairChecked } from "./secure.ts";
import { message } from "./log.ts";
import { setFreeMode } from "./secure-free.ts";

// ---- root layout (int32 word indices)
const R_MAGIC = 0;
const R_VERSION = 1;
const R_PID = 2; //        creating process
const R_NEXT_TAG = 3; //   Atomics.add
const R_NEXT_ARENA = 4; // Atomics.add
const R_DIR_COUNT = 5; //  directory slots claimed
const R_ABANDONED = 6; //  abandoned segments not reclaimed yet (a hint, never low: reclaim scans only when > 0; counted before the abandon, uncounted after the reclaim)
const R_ID = 7; //         random id, low 32 bits: tells this root from stale or foreign memory
const R_ID_HI = 12; //     random id, high 20 bits (the handle's id is a 52-bit safe integer)
const R_LOCK64 = 4; //     bigint64 index (bytes 32..39): the arena lock
const R_TEST_LOCK64 = 5; // bigint64 index (bytes 40..47): a lock only tests take
const R_DYING = 13; //     workers whose exit was seen but whose OS thread may still run (a hint)
const R_SECURITY = 14; //  1 + secure level + 8 * debugFill: every worker of the allocator runs with these
const R_BUDGETED = 15; //  nonzero once any worker has a maxCommitted/maxReserved budget (sticky; src/budget.ts)
const R_COUNTERS64 = 8; // bigint64 index (bytes 64..95): committed, reserved, peak committed, peak reserved
const R_MAP_BASE64 = 12; // float64 index (words 24..25): the arena mapping in progress (arena.ts MappingRecord), then words 26..28
const R_WORKERS = 64; //   worker table: WORKER_WORDS per entry
const WORKER_WORDS = 5; // tag, state, JS threadId, pid, OS thread id (0 = unknown)
const MAX_WORKERS = 396;
const R_DIR = 2048; //     directory: DIR_WORDS per entry
const DIR_WORDS = 8; //    ready, id, segCount, metaBytes, exclusive, -, base (float64 at words 6..7)
const MAX_ARENAS = 1024;
const R_INFLIGHT = R_DIR + MAX_ARENAS * DIR_WORDS; // per worker-table slot INFLIGHT_WORDS: its cross-worker free in flight (context.ts inflight)
/** A cache line per slot: every cross-worker free writes its record twice, and two workers' records in one line cost xmalloc 24 → 36 ns/op in half the runs (Bun). */
const INFLIGHT_WORDS = 16;
export const ROOT_SIZE = 128 * 1024; // (the in-flight records end at word R_INFLIGHT + MAX_WORKERS * INFLIGHT_WORDS)
const ROOT_MAGIC = 0x7a5a_ed01;
const VERSION = 3;
const W_ALIVE = 1;
const W_GONE = 2;
/** Its exit was seen, but its OS thread may still run (Deno fires "exit" early): released once the thread is gone. */
const W_DYING = 3;
/**
 * States from W_RELEASING up: being released (releaseEntry) by the worker whose tag is the state
 * less W_RELEASING (taken in the one compare-exchange that starts the release): its in-flight
 * record and segments are being recovered; the slot is not reused until it is gone, and a
 * releaser that stops half way is replaced (finishDying). Counted in R_DYING.
 */
const W_RELEASING = 16;
/**
 * A tombstone (Deno): "exit" was seen for this JS threadId before it had registered; a worker
 * that registers afterwards finds it and marks itself dying (either the watcher sees the
 * entry or the worker sees the tombstone: each stores, then scans).
 */
const W_EXITED = 4;
const TAG_MAX = 0x3fffffff;

/** A structured-clonable ticket to join this allocator from another worker. */
export interface WorkerHandle {
  /** Marks the object as a handle. */
  tsmalloc: "worker-handle";
  /** Layout version of the shared root. */
  version: number;
  /** The backend kind of the allocator ("node", "deno", "bun" or "buffer"). */
  backend: string;
  /** The process the allocator lives in (handles do not cross processes). */
  pid: number;
  /** Address of the shared root block. */
  root: number;
  /** Identity of this allocator instance. */
  id: number;
  /** The allocator's secure level (0-4): a worker that attaches runs at it (its own, if set otherwise, must match). */
  secure: number;
  /** The allocator's debugFill, likewise. */
  debugFill: boolean;
  /** Buffer backend: the shared memory itself (SharedArrayBuffers). */
  memory?: unknown;
}

function securityWord(): number {
  return 1 + ctx.options.secure + (ctx.options.debugFill ? 8 : 0);
}

interface Root {
  base: number;
  m: Int32Array;
  f64: Float64Array;
  lock: RobustLock;
  testLock: RobustLock;
  /** Directory entries this worker has looked at. */
  seen: number;
  /** This worker's slot in the worker table. */
  slot: number;
}

let root: Root | null = null;

export function isShared(): boolean {
  return root !== null;
}

function viewRoot(base: number): Root {
  const v = regionView(os(), base, ROOT_SIZE);
  const m = new Int32Array(v.buffer, v.byteOffset, ROOT_SIZE / 4);
  const f64 = new Float64Array(v.buffer, v.byteOffset, ROOT_SIZE / 8);
  const b64 = new BigInt64Array(v.buffer, v.byteOffset, 16);
  const me = () => ({ pid: os().pid(), tag: ctx.tag });
  const o = os();
  const futexAt = (i64: number) =>
    o.futexWait !== undefined && o.futexWake !== undefined
      ? { addr: base + i64 * 8, wait: o.futexWait.bind(o), wake: o.futexWake.bind(o) }
      : undefined;
  const r: Root = {
    base, m, f64, seen: 0, slot: -1,
    lock: new RobustLock(b64, R_LOCK64, me, isGone, futexAt(R_LOCK64)),
    testLock: new RobustLock(b64, R_TEST_LOCK64, me, isGone, futexAt(R_TEST_LOCK64)),
  };
  return r;
}

/**
 * True when the worker with this tag detached or was released as dead. A tag that was handed
 * out but is in no entry is gone too: its slot was recycled after it had gone (a worker
 * registers right after taking its tag, before it can hold any lock).
 */
export function isGone(tag: number): boolean {
  const r = root;
  if (r === null || tag <= 0) return false;
  for (let i = 0; i < MAX_WORKERS; i++) {
    const w = R_WORKERS + i * WORKER_WORDS;
    const st = Atomics.load(r.m, w + 1);
    if (st === 0) break;
    if (Atomics.load(r.m, w) === tag) return st === W_GONE || st >= W_RELEASING;
  }
  return tag < Atomics.load(r.m, R_NEXT_TAG);
}

/**
 * Claims a worker-table slot (state -1, being written): a free one, or one whose worker has
 * gone (recycled: isGone answers for its old tag). Its index, or -1 when the table is full.
 */
function claimSlot(r: Root): number {
  for (let i = 0; i < MAX_WORKERS; i++) {
    const w = R_WORKERS + i * WORKER_WORDS;
    const st = Atomics.load(r.m, w + 1);
    if ((st === 0 || st === W_GONE) && Atomics.compareExchange(r.m, w + 1, st, -1) === st) return i;
  }
  return -1;
}

function register(r: Root, jsThreadId: number): void {
  const o = os();
  const i = claimSlot(r);
  if (i < 0) throw new Error(`tsmalloc: more than ${MAX_WORKERS} workers attached to one allocator at once`);
  const w = R_WORKERS + i * WORKER_WORDS;
  r.m[w] = ctx.tag;
  r.m[w + 2] = jsThreadId;
  r.m[w + 3] = o.pid();
  // an OS tid only where its liveness can be asked; 0: unknown, the runtime's "exit" means
  // the thread stopped; -1: unknown and "exit" does not mean that (Deno), never released
  r.m[w + 4] = o.threadAlive === undefined ? 0 : o.osThreadId !== undefined ? o.osThreadId() : o.threadId();
  const f = R_INFLIGHT + i * INFLIGHT_WORDS;
  r.m[f + 2] = 0; // (a recycled slot: its last worker's record was finished or is void)
  r.m[f + 3] = 0;
  ctx.inflight = r.m;
  ctx.inflightAt = f;
  Atomics.store(r.m, w + 1, W_ALIVE);
  r.slot = i;
  // our "exit" may already have been seen (Deno terminates early): then we are dying
  const t = entryAt(r, W_EXITED, jsThreadId, r.m[w + 3]);
  if (t >= 0) {
    Atomics.compareExchange(r.m, t + 1, W_EXITED, W_GONE); // the tombstone did its work: recyclable
    if (Atomics.compareExchange(r.m, w + 1, W_ALIVE, W_DYING) === W_ALIVE) Atomics.add(r.m, R_DYING, 1);
  }
}

function publish(a: Arena): void {
  const r = root!;
  // under the arena lock (reentrant: newArena holds it already), and the count moves last: a
  // worker stopped half way leaves slot k uncounted, for the next publisher to overwrite (when
  // the count moved first, a stopped publisher's slot stayed "being written" for good and
  // discover never looked past it: no later arena was ever found by another worker)
  r.lock.with(() => {
    const k = Atomics.load(r.m, R_DIR_COUNT);
    if (k >= MAX_ARENAS) throw new Error(`tsmalloc: more than ${MAX_ARENAS} arenas in a shared allocator`);
    const e = R_DIR + k * DIR_WORDS;
    r.m[e + 1] = a.id;
    r.m[e + 2] = a.segCount;
    r.m[e + 3] = a.metaBytes;
    r.m[e + 4] = a.exclusive ? 1 : 0;
    r.f64[(e + 6) >> 1] = a.region.base;
    Atomics.store(r.m, e, 1); // ready
    Atomics.store(r.m, R_DIR_COUNT, k + 1);
  });
}

/** Views arenas other workers published since we last looked; true when any was new. */
function discover(): boolean {
  const r = root;
  if (r === null) return false;
  const n = Math.min(Atomics.load(r.m, R_DIR_COUNT), MAX_ARENAS);
  let found = false;
  while (r.seen < n) {
    const e = R_DIR + r.seen * DIR_WORDS;
    if (Atomics.load(r.m, e) !== 1) break; // being written: look again next time
    const base = r.f64[(e + 6) >> 1];
    if (!ctx.arenas.some((a) => a.region.base === base)) {
      adoptArena(base, r.m[e + 2], r.m[e + 3], r.m[e + 1], r.m[e + 4] === 1);
      found = true;
    }
    r.seen++;
  }
  return found;
}

/** An address we do not know: new arenas, or a huge block another worker carved from an arena. */
function locateMiss(addr: number): boolean {
  if (discover()) return true;
  for (const a of ctx.arenas) {
    const rg = a.region;
    if (addr < rg.base || addr >= rg.base + rg.size) continue;
    // the run from the arena's segment map (never from segment headers: inside a run they are user data)
    const run = a.hugeRunAt(Math.floor((addr - rg.base) / SEGMENT_SIZE));
    if (run === null) {
      // our view of another worker's huge block that covered addr is stale: the block was
      // freed and its segments are free or hold pages now (views and locate must see those)
      const c = rg.children!.find((k) => addr >= k.base && addr < k.base + k.size);
      return c !== undefined && dropStaleForeignRun(c);
    }
    const base = rg.base + run.idx * SEGMENT_SIZE;
    if (rg.children!.some((c) => c.base === base && c.size === run.n * SEGMENT_SIZE)) return false;
    adoptForeignRun(a, run.idx, run.n); // drops our views it overlaps (stale runs of other lengths)
    return true;
  }
  return false;
}

function arenaOfRegion(r: Region): Arena {
  const parent = r.parent ?? r;
  const a = ctx.arenas.find((x) => x.region === parent);
  if (a === undefined) throw new Error("tsmalloc: huge block outside every known arena");
  return a;
}

/** free of a huge block this worker does not own. */
function freeForeignHuge(pr: PageRef): void {
  const m = pr.m;
  const p = pr.base + m[pr.pg + 7];
  // a detached worker leaves an abandoned block to the next reclaim (reapAbandonedHuge): its tag
  // is gone, so a release it began and did not finish would be no one's to finish. The hint
  // first: a stop after it leaves it high (a scan too many), never low.
  const detached = ctx.detached;
  if (detached) Atomics.add(root!.m, R_ABANDONED, 1);
  // A block's header keeps its cookie until the block is freed (clearHeader, or a purge of its
  // run, zeroes it; an abandoned block keeps it): no cookie, a double free, and no bit is set
  // there (a block being carved at that run could take it for its own free). Read before the
  // bit, not after: a header the owner reaped because of our bit and purged meanwhile looked
  // purged before, and this block's one free threw DoubleFreeError (review of session 27). Left
  // unreported: a second free racing this one that reaps and purges the block between the two.
  if (Atomics.load(m, S_COOKIE) !== segmentCookie(0)) return doubleFreeHuge(p, detached);
  if ((Atomics.or(m, pr.pg + P_THREAD_FREE, 1) & 1) !== 0) return doubleFreeHuge(p, detached);
  // the owner reaps it; an owner that is gone cannot: then whoever claims the run frees it
  if (r0(m) === 0 && !detached && Atomics.compareExchange(m, S_OWNER, 0, ctx.tag) === 0) {
    const a = arenaOfRegion(pr.r);
    if (releaseTaken(a, runIndex(a, pr.r))) return;
  } else if (detached && r0(m) !== 0) Atomics.sub(root!.m, R_ABANDONED, 1); // (a live owner reaps it)
  dropStaleForeignRun(pr.r); // our view of it: the block is gone for us (never an own run)
}
function doubleFreeHuge(p: number, detached: boolean): never {
  if (detached) Atomics.sub(root!.m, R_ABANDONED, 1);
  throw new DoubleFreeError(p);
}
function r0(m: Int32Array): number {
  return Atomics.load(m, S_OWNER);
}

/**
 * Releases the huge block at segment idx of arena a when it is abandoned (owner 0) and freed
 * (its thread-free bit: a detached worker's free, freeForeignHuge); true when it did. The
 * compare-exchange on the owner word makes this worker its releaser (a stop after it: this
 * worker's release finishes the run, recoverWorker). The reclaim hint the detached worker
 * counted stays: it cannot tell its block from one a worker stopped in its free left in the
 * same state, which counted nothing, and the hint may be high, never low.
 */
function reapAbandonedHuge(a: Arena, idx: number): boolean {
  const m = a.region.i32;
  const s = headerOf(idx << SEGMENT_SHIFT);
  if (m[s + S_OWNER] !== 0 || (m[s + S_PAGES + P_THREAD_FREE] & 1) === 0) return false; // (plain reads filter; the exchange decides)
  if (Atomics.compareExchange(m, s + S_OWNER, 0, ctx.tag) !== 0) return false;
  return releaseTaken(a, idx);
}

/**
 * After this worker won the exchange of the owner word of the huge block at segment idx of
 * arena a from 0 (abandoned) to its tag: releases the run when it is still an abandoned block
 * someone freed — its head in the segment map, the owner word ours, its thread-free bit set
 * (tookOver) — with the run's length from the segment map; else gives the word back (unless a
 * claimer's tag is there already) and returns false. What the exchange was decided on may be
 * stale: the block reaped meanwhile, its header purged (owner 0), or its run carved again by a
 * worker that has left since (review of session 27: that worker's live block was released, and
 * handed out again).
 */
function releaseTaken(a: Arena, idx: number): boolean {
  const m = a.region.i32;
  const s = headerOf(idx << SEGMENT_SHIFT);
  if (!tookOver(m, a.region.segMap + idx, s, SEGMAP_HUGE_HEAD) || (Atomics.load(m, s + S_PAGES + P_THREAD_FREE) & 1) === 0) {
    // given back; a free that saw our tag meanwhile left an abandoned block to us as its owner,
    // with no reclaim hint moved: reaped now (review of session 27), else it stayed for good
    if (Atomics.compareExchange(m, s + S_OWNER, ctx.tag, 0) === ctx.tag && Atomics.load(m, a.region.segMap + idx) === SEGMAP_HUGE_HEAD) {
      return reapAbandonedHuge(a, idx);
    }
    return false;
  }
  releaseForeignRun(runView(a, idx), a);
  return true;
}

/** Segment index of huge run hr in arena a. */
function runIndex(a: Arena, hr: Region): number {
  return (hr.base - a.region.base) / SEGMENT_SIZE;
}

/**
 * This worker's view of the huge block whose head is segment idx of arena a: ours only if it
 * has the run's length (the segment map's) — a view of an earlier, longer block at this segment
 * would stand for segments that are not this run's — else a new one (adoptForeignRun drops the
 * stale views it overlaps).
 */
function runView(a: Arena, idx: number): Region {
  const run = a.hugeRunAt(idx)!;
  return a.region.children!.find((c) => c.base === a.region.base + idx * SEGMENT_SIZE && c.size === run.n * SEGMENT_SIZE) ??
    adoptForeignRun(a, idx, run.n);
}

/** The hint's value when this worker's last scan found nothing to reclaim: no rescan until it moves. */
let emptyAt = 0;

/**
 * After a won compare-exchange of the owner word of the segment at word s from 0 (abandoned) to
 * this worker's tag: true when it is still what the scan took it for — its segment map entry
 * (word `map`) says `kind` (a segment of pages: any kind > 0) and the owner word is still ours.
 * The scan's plain reads of the map and the owner word may straddle the segment's release by
 * whoever had reclaimed it meanwhile, and a free segment's owner word reads 0 once the purge
 * has decommitted its header: a free segment, or one a claimer is setting up (it writes its
 * tag before the map), was taken as abandoned and adopted, and two workers allocated in one
 * segment (blocks handed out twice; a stress of terminated workers, session 27). A claimer
 * writes the owner word before the map, so a map that says live here comes with its tag.
 */
function tookOver(m: Int32Array, map: number, s: number, kind: number): boolean {
  const now = Atomics.load(m, map);
  return (kind > 0 ? now > 0 : now === kind) && Atomics.load(m, s + S_OWNER) === ctx.tag;
}

/**
 * Reclaims up to `max` abandoned segments into heap (slow path: a few; Infinity: collect(true),
 * always scans); true when it got any. The scan filters with plain reads, then takes a segment
 * with a compare-exchange.
 */
function reclaim(heap: Heap, max = 4): boolean {
  const r = root;
  if (r === null) return false;
  finishDying();
  const hint = Atomics.load(r.m, R_ABANDONED);
  // (a hint a stopped worker left high: one scan, then none until another abandon or reclaim moves it)
  if (hint <= 0 || (hint === emptyAt && max !== Infinity)) return false;
  discover();
  let got = 0;
  for (const a of ctx.arenas) {
    const m = a.region.i32;
    // huge blocks detached workers freed: any worker releases them, in any arena
    for (let idx = 0; idx < a.segCount; idx++) if (m[a.region.segMap + idx] === SEGMAP_HUGE_HEAD) reapAbandonedHuge(a, idx);
    if (!suitable(a, heap.arenaId)) continue; // a bound heap takes only its arena's; others never an exclusive arena's
    for (let idx = 0; idx < a.segCount && got < max; idx++) {
      if (m[a.region.segMap + idx] <= 0) continue; // not a live segment of pages (the segment map, not its header, says)
      const s = headerOf(idx << SEGMENT_SHIFT);
      if (m[s + S_OWNER] !== 0 || Atomics.compareExchange(m, s + S_OWNER, 0, ctx.tag) !== 0) continue;
      if (!tookOver(m, a.region.segMap + idx, s, 1)) {
        Atomics.compareExchange(m, s + S_OWNER, ctx.tag, 0);
        continue;
      }
      Atomics.sub(r.m, R_ABANDONED, 1);
      got++;
      const ref = adoptSegment(a, idx, heap.arenaId);
      if (ref === null) continue; // (no page: released, maybe claimed by another worker already)
      const count = pageSlotsOf(ref);
      const pages: PageRef[] = [];
      for (let i = 0; i < count; i++) {
        if (m[s + S_PAGES + i * PAGE_WORDS + P_BSIZE] > 0) pages.push(pageRefAt(a.region, idx << SEGMENT_SHIFT, i));
      }
      for (const pr of pages) {
        pr.m[pr.pg + P_HEAP] = heap.id;
        heap.reclaimPage(pr);
      }
    }
  }
  emptyAt = got === 0 ? hint : 0;
  return got > 0;
}

/**
 * collect(true) of a shared allocator: reclaims every abandoned segment into `heap` (their
 * empty pages and segments then go back and are purged by the heap's collect, the rest stay
 * live in `heap`), so nothing stays resident only because its worker left. Also finishes
 * releases of workers whose threads have stopped. True when it reclaimed any.
 */
export function reclaimAll(heap: Heap): boolean {
  return reclaim(heap, Infinity);
}

/**
 * Marks every page of the segment at word s abandoned, then the segment (owner 0). `stopped`:
 * its owner was stopped, maybe between two writes of a page's lists (secure.ts repairChecked).
 */
function abandonSegment(m: Int32Array, s: number, expectOwner: number, stopped = false): boolean {
  const count = Math.min(m[s + S_PAGE_COUNT], SEGMENT_SIZE >>> SMALL_PAGE_SHIFT); // (no more slots than small pages, whatever a write into the header says)
  let live = 0;
  for (let i = 0; i < count; i++) {
    const pg = s + S_PAGES + i * PAGE_WORDS;
    if (stopped && m[pg + P_BSIZE] > 0 && (m[pg + P_FLAGS] & PF_CHECKED) !== 0) {
      const bsize = m[pg + P_BSIZE];
      const fixed = repairChecked(m, pg); // (may give the slot back: a set-up that did not finish)
      if (fixed > 0) message(2, `repaired ${fixed} list entries or counts of a stopped worker's page of ${bsize}-byte blocks`);
    }
    if (m[pg + P_BSIZE] !== 0) live++;
    if (m[pg + P_BSIZE] <= 0) continue;
    Atomics.store(m, pg + P_OWNER, 0);
    setPageFlags(m, pg, m[pg + 9]); // fast-free key follows the owner: 0
  }
  // a worker terminated between counting a page slot and writing (or clearing) its
  // descriptor left the count off by one; its thread has stopped, so the descriptors are the truth
  Atomics.store(m, s + S_USED_PAGES, live);
  // the hint first: a worker stopped between leaves it high (one scan too many), never low (a
  // segment no reclaim looks for: review round 20, a releaser stopped here)
  Atomics.add(root!.m, R_ABANDONED, 1);
  if (Atomics.compareExchange(m, s + S_OWNER, expectOwner, 0) !== expectOwner) {
    Atomics.sub(root!.m, R_ABANDONED, 1);
    return false;
  }
  return true;
}

/** Abandons a huge run (owner 0); frees it at once when another worker already freed the block. */
function abandonHuge(hr: Region, expectOwner: number): void {
  const m = hr.i32;
  if (Atomics.compareExchange(m, S_OWNER, expectOwner, 0) !== expectOwner) return;
  disownRun(hr);
  Atomics.store(m, S_PAGES + P_OWNER, 0);
  if ((Atomics.load(m, S_PAGES + P_THREAD_FREE) & 1) !== 0 && Atomics.compareExchange(m, S_OWNER, 0, ctx.tag) === 0) {
    const a = arenaOfRegion(hr);
    releaseTaken(a, runIndex(a, hr));
  }
}

function install(r: Root): void {
  root = r;
  ctx.shared = true;
  ctx.setTag(ctx.tag); // (the checked free fast path no longer matches: secure-free.ts)
  setFreeMode(); // freeCheckedShared
  const v = regionView(os(), r.base, ROOT_SIZE);
  const b = new BigInt64Array(v.buffer, v.byteOffset, 16);
  const c = R_COUNTERS64;
  ctx.counters.shared = {
    b, committed: c, reserved: c + 1, peakCommitted: c + 2, peakReserved: c + 3, workers: attachedWorkers,
    i32: r.m, budgeted: R_BUDGETED,
  };
  noteBudget();
  arenaHooks.nextId = () => Atomics.add(r.m, R_NEXT_ARENA, 1);
  arenaHooks.publish = publish;
  arenaHooks.discover = discover;
  arenaHooks.locked = (f) => r.lock.with(f);
  arenaHooks.mapping = { m: r.m, f64: r.f64, base: R_MAP_BASE64, units: 2 * R_MAP_BASE64 + 2, reserved: 2 * R_MAP_BASE64 + 3, committed: 2 * R_MAP_BASE64 + 4 };
  sharedHooks.reclaim = reclaim;
  sharedHooks.locateMiss = locateMiss;
  sharedHooks.freeForeignHuge = freeForeignHuge;
}

/** Creates the root if needed (first call), and returns a handle other workers can attach with. */
export function makeHandle(jsThreadId: number): WorkerHandle {
  const o = os();
  noGuards();
  if (root === null) {
    // what was cached goes back: budgets now bind every worker, and another worker's refusal
    // could not take this worker's cache back
    releaseCached();
    const memory = o.shareState?.(); // buffer backend: from now on reservations come from the shared pool
    void memory;
    // between guards where the backend can protect (never unprotected): ROOT_SIZE PROT_NONE
    // before it and a page after, so no native overflow or underflow off a neighbouring mapping
    // (a huge block has no guard at level 0) reaches the worker table or the arena directory
    const span = o.canProtect ? 2 * ROOT_SIZE + o.pageSize : ROOT_SIZE;
    const at = o.reserveShared !== undefined ? o.reserveShared(span, ROOT_SIZE) : o.reserve(span, ROOT_SIZE);
    if (at === 0) throw new Error("tsmalloc: cannot reserve the shared root");
    const base = o.canProtect ? at + ROOT_SIZE : at;
    if (o.canProtect) {
      o.protect(at, ROOT_SIZE);
      o.protect(base + ROOT_SIZE, o.pageSize);
    }
    ctx.counters.reserve(span);
    ctx.counters.commit(ROOT_SIZE);
    const r = viewRoot(base);
    r.m[R_VERSION] = VERSION;
    r.m[R_PID] = o.pid();
    r.m[R_NEXT_TAG] = Math.min(ctx.tag, TAG_MAX - 1 << 0) + 1;
    r.m[R_NEXT_ARENA] = peekArenaId();
    const rnd = new Uint32Array(2);
    crypto.getRandomValues(rnd);
    r.m[R_ID] = rnd[0] | 1;
    r.m[R_ID_HI] = rnd[1] & 0xfffff;
    r.m[R_SECURITY] = securityWord();
    // the process-wide totals start from what this worker holds (the root included)
    const b = new BigInt64Array(r.m.buffer, r.m.byteOffset, 16);
    b[R_COUNTERS64] = b[R_COUNTERS64 + 2] = BigInt(ctx.counters.committed);
    b[R_COUNTERS64 + 1] = b[R_COUNTERS64 + 3] = BigInt(ctx.counters.reserved);
    install(r);
    register(r, jsThreadId);
    for (const a of ctx.arenas) publish(a);
    r.seen = Atomics.load(r.m, R_DIR_COUNT);
    Atomics.store(r.m, R_MAGIC, ROOT_MAGIC);
  }
  const r = root!;
  return {
    tsmalloc: "worker-handle",
    version: VERSION,
    backend: o.kind,
    pid: r.m[R_PID],
    root: r.base,
    id: rootId(r),
    secure: ctx.options.secure,
    debugFill: ctx.options.debugFill,
    memory: o.shareState?.(),
  };
}

/** The root's 52-bit random id. */
function rootId(r: Root): number {
  return (r.m[R_ID_HI] & 0xfffff) * 2 ** 32 + (r.m[R_ID] >>> 0);
}

/**
 * Views the root a handle names without trusting it: the address must be ROOT_SIZE-aligned
 * user space, and (FFI backends) every page of it mapped and readable per the kernel before
 * one word is read; the range must be the root's own shared mapping (Linux: /proc/self/maps;
 * buffer backend: the pool header); then its magic, layout version, pid and 52-bit random id
 * must match. The buffer backend only views addresses inside its own reservations.
 */
function verifiedRoot(h: WorkerHandle): Root {
  const o = os();
  const gone = (why: string) => new Error(`tsmalloc: attach: the handle does not name a live allocator (${why}); stale, foreign or forged handle`);
  const a = h.root;
  if (a % ROOT_SIZE !== 0 || a >= 2 ** 47) throw gone(`root address 0x${a.toString(16)} is not one tsmalloc maps`);
  if (o.kind !== "buffer") {
    const mapped = o.mapped !== undefined ? o.mapped(a, ROOT_SIZE) : o.resident(a, ROOT_SIZE) >= 0;
    if (!mapped) throw gone(`nothing readable is mapped at 0x${a.toString(16)}`);
  }
  // a copy of the root's bytes in any other memory (a block of the forger's own) is told apart
  // by the kernel (or the buffer pool's header), not by bytes the forger could have written
  if (o.isSharedMapping?.(a, ROOT_SIZE) === false) {
    throw gone(`0x${a.toString(16)} is not the allocator's own shared root mapping (a root's bytes copied elsewhere)`);
  }
  let r: Root;
  try {
    r = viewRoot(a);
  } catch (e) {
    throw gone(`no allocator at 0x${a.toString(16)}: ${(e as Error).message}`);
  }
  if (Atomics.load(r.m, R_MAGIC) !== ROOT_MAGIC || r.m[R_VERSION] !== VERSION || r.m[R_PID] !== h.pid || rootId(r) !== h.id) {
    throw gone("root header does not match");
  }
  return r;
}

/** Checks a handle's shape (clear errors for anything else). */
export function checkHandle(h: unknown): WorkerHandle {
  const bad = (why: string) => new TypeError(`tsmalloc: attach: not a worker handle (${why}); pass the value workerHandle() returned`);
  if (typeof h !== "object" || h === null) throw bad(`got ${h === null ? "null" : typeof h}`);
  const x = h as Record<string, unknown>;
  if (x.tsmalloc !== "worker-handle") throw bad("no tsmalloc marker");
  if (x.version !== VERSION) throw bad(`version ${String(x.version)}, expected ${VERSION}`);
  for (const k of ["pid", "root", "id"]) {
    if (typeof x[k] !== "number" || !Number.isSafeInteger(x[k]) || (x[k] as number) <= 0) throw bad(`bad ${k}`);
  }
  if (typeof x.backend !== "string") throw bad("bad backend");
  if (typeof x.secure !== "number" || !Number.isInteger(x.secure) || x.secure < 0 || x.secure > 4) throw bad("bad secure level");
  if (typeof x.debugFill !== "boolean") throw bad("bad debugFill");
  return x as unknown as WorkerHandle;
}

/** Joins the allocator of a handle (the backend is initialized and matches). */
export function joinHandle(h: WorkerHandle, jsThreadId: number): void {
  const o = os();
  noGuards();
  if (h.pid !== o.pid()) throw new Error(`tsmalloc: attach: the handle comes from another process (pid ${h.pid}, we are ${o.pid()}); memory is shared between workers of one process only`);
  if (root !== null) {
    if (root.base === h.root && rootId(root) === h.id) {
      // already part of it: the handle's other claims must still be true
      if (h.backend !== o.kind || h.secure !== ctx.options.secure || h.debugFill !== ctx.options.debugFill) {
        throw new Error(`tsmalloc: attach: the handle names this allocator, but its backend/secure/debugFill (${h.backend}/${h.secure}/${h.debugFill}) are not the allocator's (${o.kind}/${ctx.options.secure}/${ctx.options.debugFill})`);
      }
      return;
    }
    throw new Error("tsmalloc: attach: this worker already shares another allocator");
  }
  if (o.kind !== h.backend) throw new Error(`tsmalloc: attach: the handle is for the ${h.backend} backend, but this worker uses ${o.kind} (configure({ backend }) must match)`);
  if (h.pid !== o.pid()) throw new Error(`tsmalloc: attach: the handle comes from another process (pid ${h.pid}, we are ${o.pid()}); memory is shared between workers of one process only`);
  if (ctx.arenas.length > 0 || ctx.huge !== null) throw new Error("tsmalloc: attach must be called before this worker allocates");
  if (o.kind === "buffer") {
    if (h.memory === undefined || o.adopt === undefined) throw new TypeError("tsmalloc: attach: a buffer-backend handle must carry its SharedArrayBuffers (pass it by structured clone)");
    o.adopt(h.memory);
  }
  const r = verifiedRoot(h);
  // checked pages (side tables) and double-free checks only work when every worker keeps them
  const want = r.m[R_SECURITY], mine = securityWord();
  if (want !== mine) {
    const say = (w: number) => `secure level ${(w - 1) & 7}, debugFill ${(w - 1) >= 8}`;
    throw new Error(`tsmalloc: attach: the allocator runs at ${say(want)}, this worker at ${say(mine)}; every worker must run as the allocator does (attach before configuring, or configure the same)`);
  }
  const tag = Atomics.add(r.m, R_NEXT_TAG, 1);
  if (tag > TAG_MAX || tag <= 0) throw new Error("tsmalloc: attach: out of thread tags");
  ctx.setTag(tag);
  register(r, jsThreadId); // before anything could take a lock under the tag (see isGone)
  const own = ctx.counters;
  install(r);
  // bytes this worker counted before joining (none: it has not allocated) join the totals
  Atomics.add(own.shared!.b, own.shared!.committed, BigInt(own.committed));
  Atomics.add(own.shared!.b, own.shared!.reserved, BigInt(own.reserved));
  discover();
}

/** This worker leaves: empty pages go back, the rest is abandoned for others to reclaim. */
export function detachWorker(heaps: Heap[]): void {
  const r = root;
  if (r === null) throw new Error("tsmalloc: detach: this worker is not sharing an allocator (workerHandle/attach)");
  const tag = ctx.tag;
  const huge: PageRef[] = [];
  for (const h of heaps) for (const pr of h.abandon()) if (pr.m[pr.pg + P_BSIZE] === -1) huge.push(pr);
  // what waits for a purge goes now, while the segments are still ours: the deadlines live in
  // this worker, whose timer stops with it (review round 10: 64 MiB freed just before leaving
  // stayed committed and resident for good)
  releaseCached();
  ctx.detached = true; // (from here on no arena purge: Arena.purge)
  for (const ref of liveSegments()) {
    const m = ref.r.i32;
    forgetSegment(ref);
    abandonSegment(m, headerOf(ref.seg), tag);
  }
  for (const pr of huge) abandonHuge(pr.r, tag);
  ctx.counters.dropCredit();
  ctx.inflight = new Int32Array(4); // (the slot is recycled: a detached worker's frees record nowhere)
  ctx.inflightAt = 0;
  // (a worker its parent already saw "exit" — Deno — may still get here: it was dying)
  if (r.slot >= 0 && Atomics.exchange(r.m, R_WORKERS + r.slot * WORKER_WORDS + 1, W_GONE) === W_DYING) Atomics.sub(r.m, R_DYING, 1);
  r.slot = -1; // the slot may be recycled from now on
}

/** What {@link releaseDeadWorker} found. */
export type ReleaseResult = "released" | "none" | "running";

/**
 * A worker that cannot detach itself (terminated) is gone: marks it so (its locks become
 * free) and abandons its segments on its behalf — but only once its OS thread has stopped
 * (Linux FFI backends ask the kernel with tgkill(pid, tid, 0); Deno fires a Worker's "exit"
 * while its thread still runs). Until then the entry stays *dying* (and keeps its locks and
 * segments): "running" is returned and, with `markDying`, the entry becomes dying so that any
 * later {@link finishDying} — the watcher's retry timer, or any worker's slow path —
 * completes it. Throws for the main thread (JS threadId 0) and for the caller itself.
 */
export function releaseDeadWorker(jsThreadId: number, markDying: boolean, exitMayComeEarly = false): ReleaseResult {
  const r = root;
  if (jsThreadId === 0) throw new Error("tsmalloc: releaseWorker: threadId 0 is the main thread, which is never released (it can detach())");
  if (r === null) return "none";
  const me = r.slot >= 0 ? r.m[R_WORKERS + r.slot * WORKER_WORDS + 2] : -1;
  if (jsThreadId === me) throw new Error(`tsmalloc: releaseWorker: threadId ${jsThreadId} is the calling worker itself (use detach())`);
  const pid = os().pid();
  let w = entryAt(r, -1, jsThreadId, pid);
  if (w < 0 && markDying && exitMayComeEarly) {
    // not registered yet, but its thread may still get that far: leave a tombstone, then look again
    tombstone(r, jsThreadId, pid);
    w = entryAt(r, -1, jsThreadId, pid);
  }
  if (w < 0) return "none";
  if (threadRuns(r.m[w + 4])) {
    if (markDying && Atomics.compareExchange(r.m, w + 1, W_ALIVE, W_DYING) === W_ALIVE) Atomics.add(r.m, R_DYING, 1);
    return "running";
  }
  return releaseEntry(r, w) ? "released" : "none";
}

/** Word index of the worker entry in state `st` (-1: alive or dying) for this threadId and pid; -1 when none. */
function entryAt(r: Root, st: number, jsThreadId: number, pid: number): number {
  for (let i = 0; i < MAX_WORKERS; i++) {
    const w = R_WORKERS + i * WORKER_WORDS;
    const s = Atomics.load(r.m, w + 1);
    if (s === 0) break; // slots are taken in order: no entry after a free one
    const want = st === -1 ? s === W_ALIVE || s === W_DYING : s === st;
    if (want && r.m[w + 2] === jsThreadId && r.m[w + 3] === pid) return w;
  }
  return -1;
}

/** Tombstones no worker claimed within the watch window (it never attached) become recyclable slots. */
export function expireTombstones(): void {
  const r = root;
  if (r === null) return;
  for (let i = 0; i < MAX_WORKERS; i++) {
    const w = R_WORKERS + i * WORKER_WORDS;
    const st = Atomics.load(r.m, w + 1);
    if (st === 0) break;
    if (st === W_EXITED) Atomics.compareExchange(r.m, w + 1, W_EXITED, W_GONE);
  }
}

/** Records an "exit" seen before the worker registered (see W_EXITED); nothing when the table is full. */
function tombstone(r: Root, jsThreadId: number, pid: number): void {
  if (entryAt(r, W_EXITED, jsThreadId, pid) >= 0) return;
  const i = claimSlot(r);
  if (i < 0) return;
  const w = R_WORKERS + i * WORKER_WORDS;
  r.m[w] = 0;
  r.m[w + 2] = jsThreadId;
  r.m[w + 3] = pid;
  r.m[w + 4] = 0;
  Atomics.store(r.m, w + 1, W_EXITED);
}

/**
 * True when OS thread `tid` of this process may still run. 0 = unknown where the runtime's
 * Worker "exit" means the thread has stopped (the caller saw it exit); -1 = unknown where it
 * does not (Deno without access to /proc): it may always still run.
 */
function threadRuns(tid: number): boolean {
  if (tid < 0) return true;
  const o = os();
  return tid !== 0 && o.threadAlive !== undefined && o.threadAlive(tid);
}

/**
 * Releases the entry at word w (alive or dying, its thread stopped): releasing, then its
 * recovery (finishRelease), then gone; false when someone else took it. The entry stays
 * releasing until the end, so its slot — its tag and in-flight record — cannot be reused by a
 * new worker meanwhile (review round 20: an entry marked gone first was reused while its
 * releaser still worked, which then finished the new worker's free and abandoned its segments).
 */
function releaseEntry(r: Root, w: number): boolean {
  const st = Atomics.load(r.m, w + 1);
  if (st !== W_ALIVE && st !== W_DYING) return false;
  if (st === W_ALIVE) Atomics.add(r.m, R_DYING, 1); // (the hint finishDying reads: a release in progress)
  if (Atomics.compareExchange(r.m, w + 1, st, W_RELEASING + ctx.tag) !== st) {
    if (st === W_ALIVE) Atomics.sub(r.m, R_DYING, 1);
    return false;
  }
  finishRelease(r, w);
  return true;
}

/** The recovery of a releasing entry at word w, by its releaser; the entry is gone at the end. */
function finishRelease(r: Root, w: number): void {
  const tag = r.m[w];
  if (tag !== 0 && tag !== ctx.tag) recoverWorker(r, w, tag);
  Atomics.store(r.m, w + 1, W_GONE);
  Atomics.sub(r.m, R_DYING, 1);
}

/** What a stopped worker (entry at word w, tag) left: an arena mapping, a free in flight, half-done claims; then its segments are abandoned. Each step may run twice (a releaser stopped half way is replaced). */
function recoverWorker(r: Root, w: number, tag: number): void {
  discover();
  // first what it left half done (its thread has stopped: nothing of its moves now), before
  // any of its segments is abandoned and another worker could adopt and release it: an arena
  // it was mapping (under the lock, which a stopped holder leaves to us), segments it was claiming or releasing
  const rec = arenaHooks.mapping!;
  if (rec.f64[rec.base] !== 0) r.lock.with(() => recoverMapping(rec)); // (a live holder's: its own by the time we have the lock)
  finishInflight(r, (w - R_WORKERS) / WORKER_WORDS);
  for (const a of ctx.arenas) {
    const m = a.region.i32;
    a.recoverClaims(tag, (idx) => Atomics.load(m, headerOf(idx << SEGMENT_SHIFT) + S_OWNER) === OWNER_RELEASED);
  }
  for (const a of ctx.arenas) {
    const m = a.region.i32;
    for (let idx = 0; idx < a.segCount; idx++) {
      // (plain reads to find its segments: no live worker makes a segment the gone worker's)
      const kind = m[a.region.segMap + idx]; // (the segment map: a later segment of a huge block is user data)
      if (kind === SEGMAP_FREE || kind === SEGMAP_HUGE_REST || kind === SEGMAP_HEADER) continue;
      const s = headerOf(idx << SEGMENT_SHIFT);
      if (m[s + S_OWNER] !== tag) continue;
      if (kind === SEGMAP_HUGE_HEAD) {
        abandonHuge(runView(a, idx), tag);
      } else {
        abandonSegment(m, s, tag, true);
      }
    }
  }
}

/**
 * The cross-worker free a stopped worker (slot i) had in flight: claimed, maybe not listed
 * (secure.ts finishPush lists it unless it is listed or another live worker's record has it).
 */
function finishInflight(r: Root, i: number): void {
  const f = R_INFLIGHT + i * INFLIGHT_WORDS;
  const n = r.m[f + 2];
  if (n === 0 || r.m[f + 3] !== 1) return; // (not claimed: it stopped before its claim acted, and another worker may claim the block)
  const base = r.m[f] * SEGMENT_SIZE, pg = r.m[f + 1];
  const a = ctx.arenas.find((x) => x.region.base === base);
  if (a !== undefined && a.region.tbl.length > 0) {
    const othersHave = () => {
      for (let j = 0; j < MAX_WORKERS; j++) {
        const o = R_INFLIGHT + j * INFLIGHT_WORDS;
        if (j === i || r.m[o + 2] !== n || r.m[o + 1] !== pg || r.m[o] !== r.m[f]) continue;
        const st = Atomics.load(r.m, R_WORKERS + j * WORKER_WORDS + 1);
        if (st === W_ALIVE || st === W_DYING || st >= W_RELEASING) return true; // (a releasing one's own release finishes it)
      }
      return false;
    };
    if (finishPush(a.region.tbl, a.region.i32, pg, n, othersHave)) message(2, `finished a stopped worker's free of block ${n} of the page at word ${pg} of arena ${a.id}`);
  }
  r.m[f + 2] = 0;
}

/**
 * Completes releases waiting for an OS thread to stop (entries left *dying*); run from every
 * worker's slow path and from the releaser's retry timer, so a pending release is never lost.
 * Returns the number still waiting.
 */
export function finishDying(): number {
  const r = root;
  if (r === null || Atomics.load(r.m, R_DYING) <= 0) return 0;
  let left = 0;
  for (let i = 0; i < MAX_WORKERS; i++) {
    const w = R_WORKERS + i * WORKER_WORDS;
    const st = Atomics.load(r.m, w + 1);
    if (st === 0) break;
    if (st >= W_RELEASING) {
      // a releaser that stopped half way (gone itself): its job is taken over, once
      const by = st - W_RELEASING;
      if (by !== ctx.tag && isGone(by) && Atomics.compareExchange(r.m, w + 1, st, W_RELEASING + ctx.tag) === st) finishRelease(r, w);
      else left++;
      continue;
    }
    if (st !== W_DYING) continue;
    if (threadRuns(r.m[w + 4])) left++;
    else releaseEntry(r, w);
  }
  return left;
}

/** Attached workers (alive or dying) of the shared allocator; 1 when not shared. */
export function attachedWorkers(): number {
  const r = root;
  if (r === null) return 1;
  let n = 0;
  for (let i = 0; i < MAX_WORKERS; i++) {
    const st = Atomics.load(r.m, R_WORKERS + i * WORKER_WORDS + 1);
    if (st === 0) break;
    if (st === W_ALIVE || st === W_DYING || st >= W_RELEASING) n++;
  }
  return n;
}

/** Segments abandoned and not yet reclaimed (process-wide). */
export function abandonedSegments(): number {
  if (root === null) return 0;
  // counted, not the hint: segments of pages whose owner word is 0, in every arena
  discover();
  let n = 0;
  for (const a of ctx.arenas) {
    const m = a.region.i32;
    for (let idx = a.headerSlots; idx < a.segCount; idx++) {
      if (m[a.region.segMap + idx] > 0 && Atomics.load(m, headerOf(idx << SEGMENT_SHIFT) + S_OWNER) === 0) n++;
    }
  }
  return n;
}

/** Locks recovered from dead holders or another process by this worker. */
export function lockStats(): { recovered: number } {
  return { recovered: root === null ? 0 : root.lock.recovered + root.testLock.recovered };
}

/** Test hooks: the arena lock and a lock only tests use. */
export function testLocks(): { arena: RobustLock; test: RobustLock } | null {
  return root === null ? null : { arena: root.lock, test: root.testLock };
}

/** Guard pages (secure >= 1 on an FFI backend) are tracked per worker: not shareable yet. */
function noGuards(): void {
  if (ctx.options.secure >= 1 && os().canProtect) {
    throw new Error("tsmalloc: sharing the allocator between workers is not supported with secure-mode guard pages yet (secure >= 1 on an FFI backend)");
  }
  // guarded allocations too: another worker's free would leave the guard page protected
  if (guardedActive() || guardedBlocks.size > 0) {
    throw new Error("tsmalloc: sharing the allocator between workers is not supported with guarded allocations (set guardedSampleRate to 0 and free them first)");
  }
}
