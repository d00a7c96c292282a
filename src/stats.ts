/** Counters kept at OS-call granularity (never on the fast paths). */
export class OsCounters {
  reserved = 0;
  committed = 0;
  peakReserved = 0;
  peakCommitted = 0;
  purged = 0;
  purges = 0;
  calls: Record<string, number> = { reserve: 0, release: 0, purge: 0, protect: 0, unprotect: 0, view: 0 };

  osCall(kind: string): void {
    this.calls[kind] = (this.calls[kind] ?? 0) + 1;
  }
  reserve(bytes: number): void {
    this.reserved += bytes;
    if (this.reserved > this.peakReserved) this.peakReserved = this.reserved;
  }
  unreserve(bytes: number): void {
    this.reserved -= bytes;
    this.osCall("release");
  }
  commit(bytes: number): void {
    this.committed += bytes;
    if (this.committed > this.peakCommitted) this.peakCommitted = this.committed;
  }
  decommit(bytes: number): void {
    this.committed -= bytes;
  }
  purge(bytes: number): void {
    this.purges++;
    this.purged += bytes;
    this.osCall("purge");
  }
}

/** What `stats()` returns: plain numbers (bytes unless named a count). */
export interface Stats {
  backend: string;
  /** Virtual bytes reserved from the OS. */
  reserved: number;
  /** Bytes the allocator treats as committed (in use or awaiting purge). */
  committed: number;
  /** Bytes of our ranges resident in RAM per the kernel (mincore); -1 when unknown. */
  resident: number;
  /** Usable bytes of live blocks. */
  inUse: number;
  /** Live blocks. */
  blocks: number;
  peakReserved: number;
  peakCommitted: number;
  /** Purge operations and bytes purged. */
  purges: number;
  purged: number;
  /** OS calls by kind. */
  osCalls: Record<string, number>;
  arenas: number;
  segments: number;
  pages: number;
  hugeBlocks: number;
  /** Per size class (block size in bytes): live blocks and pages. */
  bins: { size: number; blocks: number; pages: number }[];
}
