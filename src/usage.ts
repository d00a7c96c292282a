/**
 * Sampled in-use bytes for stats().peakInUse, without touching the fast paths: each page
 * handle remembers its used-block count as of its last slow-path visit, and this running
 * total is their sum (plus huge blocks). Pages sync when the allocation slow path looks at
 * them and when they go back to their segment.
 */
import { P_BSIZE, P_USED } from "./layout.ts";
import type { PageRef } from "./region.ts";

export const usage = { synced: 0, peak: 0 };

/** Brings a page's contribution up to date (slow path only). */
export function syncPage(pr: PageRef): void {
  const used = pr.m[pr.pg + P_USED];
  const d = used - pr.syncedUsed;
  if (d === 0) return;
  usage.synced += d * pr.m[pr.pg + P_BSIZE];
  pr.syncedUsed = used;
  if (usage.synced > usage.peak) usage.peak = usage.synced;
}

/** A page leaves its heap (its descriptor is about to be cleared). */
export function dropPage(pr: PageRef): void {
  if (pr.syncedUsed !== 0) {
    usage.synced -= pr.syncedUsed * pr.m[pr.pg + P_BSIZE];
    pr.syncedUsed = 0;
  }
}

/** Huge blocks count in full while they live. */
export function addHuge(bytes: number): void {
  usage.synced += bytes;
  if (usage.synced > usage.peak) usage.peak = usage.synced;
}

/** Raises the peak to an exact value seen by stats(). */
export function notePeak(inUse: number): void {
  if (inUse > usage.peak) usage.peak = inUse;
}
