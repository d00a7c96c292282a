/**
 * The `Os` implementation shared by the three FFI shims: aligned reservation, purge,
 * guard pages and residency on top of a handful of libc calls. Each shim (`node-ffi.ts`,
 * `node.ts`, `deno.ts`, `bun.ts`) only binds these calls with its runtime's FFI and supplies the
 * view and pointer conversions.
 *
 * @module
 */
import type { FfiKind, Os, OsKind } from "../src/os.ts";

/** Platform constants (Linux x86-64/arm64 and macOS). */
export interface Platform {
  readonly os: "linux" | "darwin";
  /** The C library to `dlopen`. */
  readonly libc: string;
  /** mmap flags for a private, anonymous, lazily committed mapping. */
  readonly mapFlags: number;
  /** MAP_FIXED, used by the macOS purge. */
  readonly mapFixed: number;
  /** Linux: SYS_gettid for `syscall`; 0 on macOS (uses pthread_mach_thread_np). */
  readonly sysGettid: number;
  /** Linux: SYS_futex; 0 where there is none. */
  readonly sysFutex: number;
  /** Linux: SYS_tgkill (signal 0 asks whether a thread exists); 0 where there is none. */
  readonly sysTgkill?: number;
  /** Linux: SYS_openat, SYS_read, SYS_close (to read /proc/self/maps); absent elsewhere. */
  readonly sysFile?: { readonly openat: number; readonly read: number; readonly close: number };
  /** madvise advice for a lazy reset: MADV_FREE (Linux 8, macOS 5). */
  readonly madvFree: number;
}

export const PROT_NONE = 0;
export const PROT_RW = 3; // PROT_READ | PROT_WRITE
const MADV_DONTNEED = 4; // Linux: pages read as zero afterwards and leave RSS at once
const EINVAL = 22;
const EFAULT = 14;
const ESRCH = 3;
const EAGAIN = 11; // Linux; macOS has 35, but its MADV_FREE does not fail that way

/**
 * Constants for `os`/`arch` as reported by the runtime (`process.platform`/`process.arch`
 * or `Deno.build.os`/`Deno.build.arch`). Throws for platforms the FFI backends do not know.
 */
export function platformFor(os: string, arch: string): Platform {
  const a = arch === "x86_64" ? "x64" : arch === "aarch64" ? "arm64" : arch;
  if (os === "linux") {
    const sysGettid = a === "x64" ? 186 : a === "arm64" ? 178 : 0;
    if (sysGettid === 0) throw new Error(`unsupported architecture for the FFI backend: linux/${arch}`);
    // MAP_PRIVATE 0x02 | MAP_ANONYMOUS 0x20 | MAP_NORESERVE 0x4000
    const sysFutex = a === "x64" ? 202 : 98;
    const sysTgkill = a === "x64" ? 234 : 131;
    const sysFile = a === "x64" ? { openat: 257, read: 0, close: 3 } : { openat: 56, read: 63, close: 57 };
    return { os: "linux", libc: "libc.so.6", mapFlags: 0x02 | 0x20 | 0x4000, mapFixed: 0x10, sysGettid, sysFutex, sysTgkill, sysFile, madvFree: 8 };
  }
  if (os === "darwin") {
    // MAP_PRIVATE 0x02 | MAP_ANON 0x1000 (no MAP_NORESERVE on macOS)
    return { os: "darwin", libc: "libSystem.B.dylib", mapFlags: 0x02 | 0x1000, mapFixed: 0x10, sysGettid: 0, sysFutex: 0, madvFree: 5 };
  }
  throw new Error(`unsupported platform for the FFI backend: ${os}/${arch}`);
}

/** libc, bound by a runtime shim. All addresses and sizes are JS numbers. */
export interface Libc {
  /** mmap(addr, len, prot, flags, -1, 0); returns -1 (MAP_FAILED) on failure. */
  mmap(addr: number, len: number, prot: number, flags: number): number;
  munmap(addr: number, len: number): number;
  madvise(addr: number, len: number, advice: number): number;
  mprotect(addr: number, len: number, prot: number): number;
  /** mincore into `vec` (one byte per page, bit 0 = resident). */
  mincore(addr: number, len: number, vec: Uint8Array): number;
  getpid(): number;
  /** The OS thread id (gettid on Linux, the mach thread port on macOS). */
  threadId(): number;
  /**
   * Linux: syscall(nr, a, b, c, d) with non-negative integer arguments, each passed
   * pointer-wide (addresses, and ints the kernel truncates to 32 bits); absent elsewhere.
   */
  syscall4?(nr: number, a: number, b: number, c: number, d: number): number;
  /** errno of the last failed call on this thread. */
  errno(): number;
  getpagesize(): number;
}

/** What a runtime shim adds to `Libc`. */
export interface PosixParts {
  readonly kind: OsKind;
  readonly ffi: FfiKind;
  readonly reason: string;
  readonly maxView: number;
  readonly libc: Libc;
  readonly platform: Platform;
  view(addr: number, size: number): ArrayBuffer;
  pointer(addr: number): unknown;
  /** See Os.callback. */
  callback?: Os["callback"];
}

/** True for 1, 2, 4, ... (also beyond 2^31, where bit tricks fail). */
export function isPowerOfTwo(n: number): boolean {
  return n >= 1 && Number.isInteger(n) && 2 ** Math.round(Math.log2(n)) === n;
}

const MINCORE_CHUNK_PAGES = 65536; // one mincore call covers 256 MiB of 4 KiB pages

/** Build an `Os` over libc. */
export function posixOs(parts: PosixParts): Os {
  const { libc, platform } = parts;
  const pageSize = libc.getpagesize();
  const flags = platform.mapFlags;
  let vec: Uint8Array | undefined;
  let freeAdvice = platform.madvFree;
  let futexTimeout: number | undefined;
  /** A page holding a zero struct timespec (a futex wait that never blocks). */
  function zeroTimespec(): number {
    const p = libc.mmap(0, pageSize, PROT_RW, flags);
    if (p === -1 || p === 0) throw new Error("mapped: cannot map a page for the futex timeout");
    return p;
  }

  function fail(call: string, addr: number, size: number): never {
    const e = libc.errno();
    throw new Error(`${call}(0x${addr.toString(16)}, ${size}) failed (errno ${e})`);
  }
  function checkRange(call: string, addr: number, size: number): void {
    if (!(addr > 0 && size >= 0 && addr % pageSize === 0 && addr + size <= Number.MAX_SAFE_INTEGER)) {
      throw new RangeError(`${call}: bad range 0x${addr.toString(16)} + ${size} (page size ${pageSize})`);
    }
  }

  function reserveWith(size: number, align: number, mapFlags: number): number {
    if (!(size > 0 && size % pageSize === 0)) throw new RangeError(`reserve: size ${size} is not a positive multiple of ${pageSize}`);
    if (!isPowerOfTwo(align)) {
      throw new RangeError(`reserve: alignment ${align} is not a power of two`);
    }
    const extra = align > pageSize ? align : 0;
    const total = size + extra;
    if (total > Number.MAX_SAFE_INTEGER) return 0;
    const p = libc.mmap(0, total, PROT_RW, mapFlags);
    if (p === -1 || p === 0) return 0;
    if (extra === 0) return p;
    // Trim the unaligned head and the unused tail (Math arithmetic: addresses exceed 32 bits).
    const base = Math.ceil(p / align) * align;
    const head = base - p;
    const tail = total - head - size;
    if (head > 0) libc.munmap(p, head);
    if (tail > 0) libc.munmap(base + size, tail);
    return base;
  }

  /**
   * Linux: true when /proc/self/maps lists [addr, addr+size) as exactly one shared anonymous
   * mapping (rw-s, "/dev/zero (deleted)"), false when it does not, undefined when the file
   * cannot be read. Read with raw syscalls into a scratch mapping: no runtime file API (Deno
   * would ask for --allow-read), and the answer comes from the kernel, not from memory any
   * user code can write.
   */
  function isSharedMapping(addr: number, size: number): boolean | undefined {
    const sys = libc.syscall4!, nr = platform.sysFile!;
    const SCRATCH = 65536, BUF = 4096; // path at 0, file chunks from BUF
    const scratch = libc.mmap(0, SCRATCH, PROT_RW, flags);
    if (scratch === -1 || scratch === 0) return undefined;
    try {
      const bytes = new Uint8Array(parts.view(scratch, SCRATCH));
      const path = "/proc/self/maps";
      for (let i = 0; i < path.length; i++) bytes[i] = path.charCodeAt(i);
      bytes[path.length] = 0;
      // openat's dirfd is ignored for an absolute path; O_RDONLY | O_CLOEXEC
      const fd = sys(nr.openat, 0, scratch, 0x80000, 0);
      if (fd < 0) return undefined;
      try {
        let line = "";
        for (;;) {
          const n = sys(nr.read, fd, scratch + BUF, SCRATCH - BUF, 0);
          if (n < 0) return undefined;
          if (n === 0) return line.length > 0 ? mapsLineIs(line, addr, size) : false;
          for (let i = BUF; i < BUF + n; i++) {
            if (bytes[i] !== 10) {
              line += String.fromCharCode(bytes[i]);
              continue;
            }
            const hit = mapsLineIs(line, addr, size);
            if (hit !== undefined) return hit;
            line = "";
          }
        }
      } finally {
        sys(nr.close, fd, 0, 0, 0);
      }
    } finally {
      libc.munmap(scratch, SCRATCH);
    }
  }

  function purge(addr: number, size: number): void {
    checkRange("purge", addr, size);
    if (size === 0) return;
    if (platform.os === "linux") {
      if (libc.madvise(addr, size, MADV_DONTNEED) !== 0) fail("madvise", addr, size);
    } else {
      // macOS: MADV_FREE_REUSABLE does not guarantee zeroes; map fresh zero pages over the range.
      if (libc.mmap(addr, size, PROT_RW, flags | platform.mapFixed) !== addr) fail("mmap(MAP_FIXED)", addr, size);
    }
  }

  return {
    kind: parts.kind,
    ffi: parts.ffi,
    reason: parts.reason,
    pageSize,
    canProtect: true,
    canPurge: true,
    maxView: parts.maxView,

    reserve: (size: number, align: number): number => reserveWith(size, align, flags),

    // MAP_SHARED (1 on Linux and macOS) instead of MAP_PRIVATE: the kernel keeps such a
    // mapping apart from every other one (its own /dev/zero object), so isSharedMapping can
    // tell it from any memory tsmalloc hands out, which is all private.
    reserveShared: (size: number, align: number): number => reserveWith(size, align, (flags & ~0x02) | 0x01),

    ...(platform.sysFile !== undefined && libc.syscall4 !== undefined ? { isSharedMapping: (addr: number, size: number) => isSharedMapping(addr, size) } : {}),

    release(addr: number, size: number): void {
      checkRange("release", addr, size);
      if (libc.munmap(addr, size) !== 0) fail("munmap", addr, size);
    },

    purge,

    reset(addr: number, size: number): void {
      checkRange("reset", addr, size);
      if (size === 0) return;
      for (let tries = 0; freeAdvice !== MADV_DONTNEED; tries++) {
        if (libc.madvise(addr, size, freeAdvice) === 0) return;
        const e = libc.errno();
        if (e === EAGAIN && tries < 3) continue;
        if (e !== EINVAL) fail("madvise", addr, size);
        freeAdvice = MADV_DONTNEED; // a kernel without MADV_FREE (Linux < 4.5): purge from now on
      }
      purge(addr, size);
    },

    protect(addr: number, size: number): void {
      checkRange("protect", addr, size);
      if (libc.mprotect(addr, size, PROT_NONE) !== 0) fail("mprotect", addr, size);
    },

    unprotect(addr: number, size: number): void {
      checkRange("unprotect", addr, size);
      if (libc.mprotect(addr, size, PROT_RW) !== 0) fail("mprotect", addr, size);
    },

    view: parts.view,
    pointer: parts.pointer,
    callback: parts.callback,

    resident(addr: number, size: number): number {
      if (!(addr > 0 && size >= 0)) return -1;
      if (size === 0) return 0;
      const end = addr + size;
      const first = Math.floor(addr / pageSize) * pageSize;
      vec ??= new Uint8Array(MINCORE_CHUNK_PAGES);
      let bytes = 0;
      for (let at = first; at < end; at += MINCORE_CHUNK_PAGES * pageSize) {
        const len = Math.min(MINCORE_CHUNK_PAGES * pageSize, end - at);
        if (libc.mincore(at, len, vec) !== 0) return -1;
        const pages = Math.ceil(len / pageSize);
        for (let i = 0; i < pages; i++) {
          if ((vec[i] & 1) === 0) continue;
          const lo = at + i * pageSize;
          bytes += Math.min(lo + pageSize, end) - Math.max(lo, addr);
        }
      }
      return bytes;
    },

    mapped(addr: number, size: number): boolean {
      if (!(addr > 0 && size > 0 && addr % pageSize === 0 && addr + size <= 2 ** 47)) return false;
      vec ??= new Uint8Array(MINCORE_CHUNK_PAGES);
      if (size > MINCORE_CHUNK_PAGES * pageSize || libc.mincore(addr, size, vec) !== 0) return false; // ENOMEM: a hole
      const sys = libc.syscall4;
      if (sys === undefined || platform.sysFutex === 0) return true; // macOS: mapped, readability not probed
      // readable: FUTEX_WAIT reads the word (EAGAIN or, when equal, ETIMEDOUT at once); an
      // unreadable page (PROT_NONE) gives EFAULT instead of a fault
      futexTimeout ??= zeroTimespec();
      for (let at = addr; at < addr + size; at += pageSize) {
        if (sys(platform.sysFutex, at, FUTEX_WAIT_PRIVATE, 0x5a5a5a5a, futexTimeout) !== 0 && libc.errno() === EFAULT) return false;
      }
      return true;
    },

    ...(libc.syscall4 !== undefined && (platform.sysTgkill ?? 0) !== 0
      ? {
        threadAlive(tid: number): boolean {
          // tgkill(pid, tid, 0): 0 while the thread exists, ESRCH once it has exited
          if (libc.syscall4!(platform.sysTgkill!, libc.getpid(), tid, 0, 0) === 0) return true;
          return libc.errno() !== ESRCH;
        },
      }
      : {}),
    pid: () => libc.getpid(),
    threadId: () => libc.threadId(),
    ...(libc.syscall4 !== undefined && platform.sysFutex !== 0
      ? futexOf(libc.syscall4, platform.sysFutex, parts.view, () => libc.mmap(0, pageSize, PROT_RW, flags))
      : {}),
  };
}

const FUTEX_WAIT_PRIVATE = 128;
const FUTEX_WAKE_PRIVATE = 129;

/** futex wait/wake over `syscall`; the timeout's struct timespec lives in a page of our own. */
function futexOf(
  syscall4: (nr: number, a: number, b: number, c: number, d: number) => number,
  nr: number,
  view: (addr: number, size: number) => ArrayBuffer,
  mapPage: () => number,
): Pick<Os, "futexWait" | "futexWake"> {
  let ts = 0;
  let tsView: Int32Array | null = null;
  return {
    futexWait(addr: number, expected: number, timeoutMs: number): void {
      if (tsView === null) {
        const p = mapPage();
        if (p === -1 || p === 0) throw new Error("futexWait: cannot map a page for the timeout");
        ts = p;
        tsView = new Int32Array(view(ts, 16));
      }
      const ms = Math.max(0, timeoutMs);
      tsView[0] = Math.floor(ms / 1000); // tv_sec (int64, little-endian)
      tsView[1] = 0;
      tsView[2] = Math.round((ms % 1000) * 1e6); // tv_nsec
      tsView[3] = 0;
      syscall4(nr, addr, FUTEX_WAIT_PRIVATE, expected >>> 0, ts);
    },
    futexWake(addr: number, count: number): void {
      syscall4(nr, addr, FUTEX_WAKE_PRIVATE, count >>> 0, 0);
    },
  };
}

/**
 * One /proc/self/maps line ("start-end perms offset dev inode path"): undefined when the line
 * ends before `addr` (read on), else whether it is exactly [addr, addr+size) as a shared
 * anonymous mapping (lines are sorted by address, so the first one reaching `addr` decides).
 */
export function mapsLineIs(line: string, addr: number, size: number): boolean | undefined {
  const dash = line.indexOf("-"), sp = line.indexOf(" ");
  if (dash < 0 || sp < dash) return undefined;
  const start = parseInt(line.slice(0, dash), 16), end = parseInt(line.slice(dash + 1, sp), 16);
  if (!(end > addr)) return undefined;
  const fields = line.split(/\s+/);
  return start === addr && end === addr + size && fields[1]?.[3] === "s" && fields.slice(5).join(" ").startsWith("/dev/zero");
}
