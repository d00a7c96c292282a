/**
 * Wraps the backend so every call the core makes to the OS is counted by kind
 * (stats().osCalls). Installed once, when the backend is picked.
 */
import type { Os } from "./os.ts";
import type { OsCounters } from "./stats.ts";

export function countingOs(o: Os, c: OsCounters): Os {
  // every member of Os named (a new optional one is a type error here, not silently dropped)
  const counted: { [K in keyof Required<Os>]: Os[K] } = {
    kind: o.kind,
    ffi: o.ffi,
    reason: o.reason,
    pageSize: o.pageSize,
    canProtect: o.canProtect,
    maxView: o.maxView,
    maxReserve: o.maxReserve,
    canPurge: o.canPurge,
    reserve(size, align) {
      c.osCall("reserve");
      return o.reserve(size, align);
    },
    reserveShared: o.reserveShared === undefined ? undefined : (size, align) => {
      c.osCall("reserve");
      return o.reserveShared!(size, align);
    },
    isSharedMapping: o.isSharedMapping === undefined ? undefined : (addr, size) => o.isSharedMapping!(addr, size),
    release(addr, size) {
      c.osCall("release");
      o.release(addr, size);
    },
    purge(addr, size) {
      c.osCall("purge");
      o.purge(addr, size);
    },
    reset(addr, size) {
      c.osCall("reset");
      o.reset(addr, size);
    },
    protect(addr, size) {
      c.osCall("protect");
      o.protect(addr, size);
    },
    unprotect(addr, size) {
      c.osCall("unprotect");
      o.unprotect(addr, size);
    },
    view(addr, size) {
      c.osCall("view");
      return o.view(addr, size);
    },
    pointer: (addr) => o.pointer(addr),
    region: o.region === undefined ? undefined : (addr, size) => {
      c.osCall("view");
      return o.region!(addr, size);
    },
    futexWait: o.futexWait === undefined ? undefined : (addr, expected, ms) => {
      c.osCall("futexWait");
      o.futexWait!(addr, expected, ms);
    },
    futexWake: o.futexWake === undefined ? undefined : (addr, count) => {
      c.osCall("futexWake");
      o.futexWake!(addr, count);
    },
    shareState: o.shareState === undefined ? undefined : () => o.shareState!(),
    adopt: o.adopt === undefined ? undefined : (state) => o.adopt!(state),
    resident(addr, size) {
      c.osCall("resident");
      return o.resident(addr, size);
    },
    mapped: o.mapped === undefined ? undefined : (addr, size) => o.mapped!(addr, size),
    threadAlive: o.threadAlive === undefined ? undefined : (tid) => o.threadAlive!(tid),
    osThreadId: o.osThreadId === undefined ? undefined : () => o.osThreadId!(),
    pid: () => o.pid(),
    threadId: () => o.threadId(),
    callback: o.callback === undefined ? undefined : (result, args, fn) => o.callback!(result, args, fn),
  };
  return counted;
}
