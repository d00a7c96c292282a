// Hook for the multi-worker workloads (mimalloc-bench larson with successor threads,
// xmalloc-test with allocator/releaser pairs, mstress with P workers).
//
// They need tsmalloc's workerHandle()/attach() (a process-wide allocator that several
// workers share, cross-worker free). Until that API lands (the "workers" issue) they are
// reported as pending rows so RESULTS.md shows the gap instead of hiding it.
//
// To implement: for each row that supports workers, spawn `workers` Workers running
// bench/worker-entry.ts (not written yet) with { handle: workerHandle(), seed, slice },
// use an Atomics stop flag in a SharedArrayBuffer, and report ops/s. The worker count is
// the --workers option of bench/main.ts and scripts/bench-all.mjs (default 2).

export interface PendingWorkload {
  id: string;
  title: string;
  reason: string;
}

export function pendingWorkerWorkloads(workers: number): PendingWorkload[] {
  const reason = "pending: needs workerHandle()/attach() (workers issue)";
  return [
    { id: "larson-workers", title: `larson, ${workers} workers, successor workers free the predecessor's blocks`, reason },
    { id: "xmalloc", title: `xmalloc-test, ${workers} allocator + ${workers} releaser workers, 64 B, 100% cross-worker frees`, reason },
    { id: "mstress-workers", title: `mstress, ${workers} workers re-created every round, transfer slots`, reason },
  ];
}
