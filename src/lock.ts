/**
 * Robust process-wide locks: one 64-bit word in shared native memory holding the holder's
 * identity, `pid << 32 | thread tag` (0 = free), taken with Atomics.compareExchange.
 *
 * - Recovery: a word whose tag belongs to a worker known to be dead (its parent called
 *   releaseWorker, or it detached) is free for the taking; the structure a lock guards is
 *   kept consistent at every step (publish-last writes), so taking over is safe.
 * - Fork: a word holding another pid was taken by the process we were forked from (memory
 *   inherited through fork()); none of its threads exist here, so it is free for us. The
 *   takeover is one compareExchange of the exact stale value, so two contenders cannot both
 *   win.
 * - Waiting: spins briefly, then blocks — with Atomics.wait on the word itself when the
 *   memory is a SharedArrayBuffer (buffer backend; release notifies), with a futex on the
 *   word's low half (the holder's tag) through FFI on Linux (release wakes), else on a
 *   private SharedArrayBuffer. Waits time out (growing to 1 ms) so that every wake re-checks
 *   the holder's liveness: a dead holder never releases.
 */

const SPINS = 100;
const MAX_SLEEP_MS = 1;
let sleeper: Int32Array | null = null;

function sleep(ms: number): void {
  sleeper ??= new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(sleeper, 0, 0, ms);
}

/** Identity word of (pid, tag). */
export function lockIdentity(pid: number, tag: number): bigint {
  return (BigInt(pid >>> 0) << 32n) | BigInt(tag >>> 0);
}

export class RobustLock {
  private declare readonly w: BigInt64Array;
  private declare readonly i: number;
  private declare readonly shared: boolean;
  private depth = 0;
  /** Locks taken over from a dead holder or another process (for stats and tests). */
  recovered = 0;

  /**
   * `w[i]` is the lock word; `me()` this worker's identity (pid and tag); `isDead(tag)`
   * true when the worker with that tag is known dead.
   */
  /** Futex waits done (FFI backends), for stats and tests. */
  futexWaits = 0;

  /**
   * `futex`, when given, blocks on the word's native address (its low 32 bits, the holder's
   * tag on little-endian machines) instead of sleeping.
   */
  constructor(
    w: BigInt64Array,
    i: number,
    private readonly me: () => { pid: number; tag: number },
    private readonly isDead: (tag: number) => boolean,
    private readonly futex?: { addr: number; wait(addr: number, expected: number, ms: number): void; wake(addr: number, n: number): void },
  ) {
    this.w = w;
    this.i = i;
    this.shared = typeof SharedArrayBuffer === "function" && w.buffer instanceof SharedArrayBuffer;
  }

  /** True when the word's holder cannot be running: another process's, or a dead worker's. */
  static stale(word: bigint, pid: number, isDead: (tag: number) => boolean): boolean {
    if (word === 0n) return false;
    const holderPid = Number(word >> 32n);
    const holderTag = Number(word & 0xffffffffn);
    return holderPid !== (pid >>> 0) || isDead(holderTag);
  }

  acquire(): void {
    if (this.depth > 0) {
      this.depth++; // re-entered by the holder
      return;
    }
    const { pid, tag } = this.me();
    const id = lockIdentity(pid, tag);
    let sleepMs = 0.05;
    for (let spins = 0; ; spins++) {
      const cur = Atomics.compareExchange(this.w, this.i, 0n, id);
      if (cur === 0n) break;
      if (cur === id) throw new Error("tsmalloc: lock word already holds this worker's identity (state inherited from a dead worker with our tag?)");
      if (RobustLock.stale(cur, pid, this.isDead)) {
        if (Atomics.compareExchange(this.w, this.i, cur, id) === cur) {
          this.recovered++;
          break;
        }
        continue;
      }
      if (spins < SPINS) continue;
      if (this.shared) Atomics.wait(this.w, this.i, cur, Math.max(1, sleepMs));
      else if (this.futex !== undefined) {
        this.futexWaits++;
        this.futex.wait(this.futex.addr, Number(cur & 0xffffffffn) | 0, sleepMs);
      } else sleep(sleepMs);
      sleepMs = Math.min(MAX_SLEEP_MS, sleepMs * 2);
    }
    this.depth = 1;
  }

  release(): void {
    if (this.depth === 0) throw new Error("tsmalloc: releasing a lock that is not held");
    if (--this.depth > 0) return;
    Atomics.store(this.w, this.i, 0n);
    if (this.shared) Atomics.notify(this.w, this.i);
    else if (this.futex !== undefined) this.futex.wake(this.futex.addr, 0x7fffffff);
  }

  /** Runs f holding the lock. */
  with<T>(f: () => T): T {
    this.acquire();
    try {
      return f();
    } finally {
      this.release();
    }
  }

  /** The raw word (0n = free). */
  get word(): bigint {
    return Atomics.load(this.w, this.i);
  }

  /** Test hook: takes the lock and never gives it back (a worker terminated while holding it). */
  holdForever(): void {
    this.acquire();
    this.depth = 1_000_000;
  }
}
