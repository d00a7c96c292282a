/**
 * The only door to the operating system. Each runtime shim in `ffi/` implements it;
 * the core never imports a runtime. Addresses are JS numbers (exact up to 2^53).
 *
 * Memory model: `reserve` returns read/write memory that reads as zero and costs no RAM
 * until touched (Linux: `MAP_NORESERVE`). "Commit" is bookkeeping in the core; the OS
 * calls that change memory are `purge` (give pages back, contents become zero),
 * `protect`/`unprotect` (guard pages) and `release`.
 */
export interface Os {
  /** "node" | "deno" | "bun" | "buffer". */
  readonly kind: OsKind;
  /** The FFI that reaches libc: "node:ffi" or "koffi" on Node, "deno", "bun"; null on the buffer backend. */
  readonly ffi: FfiKind | null;
  /** Why this backend was chosen (shown by `backend()`). */
  readonly reason: string;
  /** OS page size in bytes (4096 on x86-64 Linux). */
  readonly pageSize: number;
  /** True when `protect` really makes pages inaccessible (false on the buffer backend). */
  readonly canProtect: boolean;
  /** Largest `view` this runtime can create over native memory, in bytes. */
  readonly maxView: number;
  /**
   * Largest single `reserve` in bytes when the backend itself limits it (the buffer backend:
   * one ArrayBuffer, 4 GiB); undefined when only the OS does.
   */
  readonly maxReserve?: number;
  /** True when `purge` really returns pages to the OS (RSS drops). */
  readonly canPurge: boolean;

  /**
   * Reserve `size` bytes aligned to `align` (both multiples of pageSize; align a power of two).
   * The memory is readable/writable and reads as zero. Returns the base address, or 0 when
   * the OS refuses (never throws for lack of memory).
   */
  reserve(size: number, align: number): number;
  /**
   * Optional: `reserve` for memory that will be told apart from every other reservation by
   * `isSharedMapping` (FFI: a MAP_SHARED mapping, the kernel keeps it a mapping of its own;
   * buffer backend: recorded in the shared pool's header). Used for the shared root only.
   */
  reserveShared?(size: number, align: number): number;
  /**
   * Optional: whether [addr, addr+size) is exactly one range `reserveShared` returned, as the
   * kernel (Linux: /proc/self/maps) or the backend's own records say, never from bytes user
   * code can write; undefined when it cannot be told (no /proc).
   */
  isSharedMapping?(addr: number, size: number): boolean | undefined;
  /** Unmap a range previously returned by `reserve` (or a page-aligned part of it). */
  release(addr: number, size: number): void;
  /** Discard the contents of a page-aligned range; it stays mapped and reads as zero after. */
  purge(addr: number, size: number): void;
  /**
   * Tell the OS a page-aligned range is unused without waiting for it (Linux `MADV_FREE`):
   * the kernel reclaims the pages lazily (RSS may not drop until memory is short) and the
   * contents are undefined afterwards (old data or zeroes). The range stays usable.
   */
  reset(addr: number, size: number): void;
  /** Make a page-aligned range inaccessible (PROT_NONE). Throws if `canProtect` is false. */
  protect(addr: number, size: number): void;
  /** Make a page-aligned range readable/writable again. */
  unprotect(addr: number, size: number): void;
  /**
   * An ArrayBuffer whose byte 0 is `addr` and whose length is `size` (<= maxView).
   * For FFI backends any mapped range works; for the buffer backend `addr` must lie
   * inside one reservation.
   */
  view(addr: number, size: number): ArrayBuffer;
  /**
   * Optional: the buffer and byte offset at which [addr, addr+size) starts, for backends whose
   * reservations may share one buffer (the buffer backend's shared pool). Without it,
   * `{ buffer: view(addr, size), byteOffset: 0 }`.
   */
  region?(addr: number, size: number): { buffer: ArrayBuffer; byteOffset: number };
  /** Optional (buffer backend): what another worker needs to see this memory (structured-clonable). */
  shareState?(): unknown;
  /** Optional (buffer backend): sees the memory described by another worker's shareState(). */
  adopt?(state: unknown): void;
  /** The runtime's FFI pointer for an address (bigint on Node/koffi, Deno.PointerObject, number on Bun). */
  pointer(addr: number): unknown;
  /** Bytes of [addr, addr+size) the kernel says are resident in RAM (mincore); -1 if unknown. */
  resident(addr: number, size: number): number;
  /**
   * Linux FFI backends: block while the int32 at `addr` equals `expected`, at most
   * `timeoutMs` (futex FUTEX_WAIT_PRIVATE). Absent where there is no futex.
   */
  futexWait?(addr: number, expected: number, timeoutMs: number): void;
  /** Wakes up to `count` threads blocked in futexWait on `addr`. */
  futexWake?(addr: number, count: number): void;
  /**
   * Optional (FFI backends): true when every page of [addr, addr+size) is mapped and, where it
   * can be probed without faulting (Linux), readable. Never touches the memory itself, so a
   * bogus address is answered, not a SIGSEGV.
   */
  mapped?(addr: number, size: number): boolean;
  /**
   * Optional (Linux): true while the OS thread `tid` (as `osThreadId` or, without it,
   * `threadId` gives it) of this process exists.
   */
  threadAlive?(tid: number): boolean;
  /** Optional: the calling thread's OS id where `threadId` is something else (buffer backend); 0 when unknown. */
  osThreadId?(): number;
  /** Process id. */
  pid(): number;
  /** OS thread id (gettid) on FFI backends; a worker id on the buffer backend. */
  threadId(): number;
  /**
   * Optional (FFI backends): a native function pointer that calls `fn` (the runtime's own
   * callback mechanism, so C code entered through this FFI may call it). `fn` receives each
   * argument as the runtime hands it (number or bigint; see {@link CType}) and returns a
   * number (addresses as numbers, 0 for NULL; ignored for "void"). `fn` must never throw:
   * an exception inside a callback aborts or panics some runtimes (Deno). The callback runs
   * only on the JS thread that made it (see doc/C-ALLOCATOR.md for what each runtime does
   * with a call from another OS thread). Absent on the buffer backend.
   */
  callback?(result: CType, args: readonly CType[], fn: (...args: (number | bigint)[]) => number): NativeCallback;
}

/**
 * C types of callback arguments and results: "ptr" (an address, declared as a pointer-sized
 * integer so it crosses as number or bigint, never a pointer object), "size" (size_t), "i32"
 * (int), "u32" (unsigned int), "void" (results only).
 */
export type CType = "ptr" | "size" | "i32" | "u32" | "void";

/** A native function pointer made by {@link Os.callback}. */
export interface NativeCallback {
  /** The function's address as a number (what C stores in a struct). */
  readonly address: number;
  /** The same function in the form this runtime's FFI accepts as a function-pointer argument. */
  readonly pointer: unknown;
  /** Frees the native trampoline; the address must not be called afterwards. */
  close(): void;
}

export type OsKind = "node" | "deno" | "bun" | "buffer";

/** Which FFI an FFI backend calls libc through (Node has two: built-in `node:ffi` and the koffi addon). */
export type FfiKind = "node:ffi" | "koffi" | "deno" | "bun";

/** The buffer and offset of [addr, addr+size) (see Os.region). */
export function regionView(o: Os, addr: number, size: number): { buffer: ArrayBuffer; byteOffset: number } {
  return o.region !== undefined ? o.region(addr, size) : { buffer: o.view(addr, size), byteOffset: 0 };
}
