// Pure-JS peers: the floor stubs, typed arrays / ArrayBuffer / Buffer (GC-managed, so
// "free" is dropping the reference), and @thi.ng/malloc's MemPool.
import { MemPool } from "@thi.ng/malloc";
import { fullGc } from "../common.ts";
import type { Handle, InstanceHint, Ops, Peer } from "./types.ts";
import { unavailablePeer, errorMessage } from "./types.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const id = (n: number) => n;

/**
 * The JS floor.
 * - pairs: a bare Int32Array free list (pop on malloc, push on free), size ignored.
 * - everything else: a segregated-fit stub: size classes (16-byte steps up to 4 KiB, then
 *   powers of two), 64 KiB "pages" of one class carved on demand, per-class Int32Array
 *   stacks, class of a block found from its page. Handles are 16-byte units (int32).
 * It touches no memory (no copy in realloc, no zeroing), so it is a bookkeeping floor.
 */
export function stubPeer(): Peer {
  return {
    id: "stub",
    label: "JS floor stub",
    version: "bench/peers/js.ts",
    caps: ["malloc", "realloc", "aligned"],
    na: { calloc: "stub has no memory to zero" },
    instance(hint: InstanceHint): Ops {
      return hint.workload === "pairs" ? bareStub() : segFitStub();
    },
  };
}

function bareStub(): Ops {
  const stack = new Int32Array(1024);
  let sp = 0;
  for (let i = 1024; i >= 1; i--) stack[sp++] = i * 64;
  return {
    nil: 0,
    size: id,
    malloc(_n: unknown) {
      return stack[--sp];
    },
    free(p: number) {
      stack[sp++] = p;
    },
  };
}

const PAGE_UNITS = 4096; // 64 KiB in 16-byte units
const NCLS = 256 + 24;

function segFitStub(): Ops {
  const stacks: Int32Array[] = [];
  const sps = new Int32Array(NCLS);
  for (let c = 0; c < NCLS; c++) stacks.push(new Int32Array(16));
  const pageCls = new Uint16Array(1 << 19); // 2^31 units / 4096
  let bump = PAGE_UNITS; // page 0 unused: handle 0 is null

  function cls(n: number): number {
    return n <= 4096 ? (n + 15) >>> 4 || 1 : 256 + (32 - Math.clz32(n - 1)) - 12;
  }
  function blockUnits(c: number): number {
    return c <= 256 ? c : 1 << (c - 256 + 8); // class 257 = 8 KiB = 512 units
  }
  function push(c: number, u: number): void {
    let st = stacks[c];
    const sp = sps[c];
    if (sp === st.length) {
      const bigger = new Int32Array(st.length * 2);
      bigger.set(st);
      stacks[c] = st = bigger;
    }
    st[sp] = u;
    sps[c] = sp + 1;
  }
  function refill(c: number): number {
    const bu = blockUnits(c);
    const span = bu > PAGE_UNITS ? bu : PAGE_UNITS;
    const base = bump;
    if (base + span > 0x7fffffff) return 0;
    bump += span;
    pageCls[base >>> 12] = c;
    for (let u = base + span - bu; u > base; u -= bu) push(c, u);
    return base;
  }
  function malloc(n: number): number {
    const c = cls(n);
    const sp = sps[c];
    if (sp > 0) {
      sps[c] = sp - 1;
      return stacks[c][sp - 1];
    }
    return refill(c);
  }
  function free(u: number): void {
    push(pageCls[u >>> 12], u);
  }
  return {
    nil: 0,
    size: id,
    malloc,
    free,
    realloc(u: number, n: number): number {
      if (pageCls[u >>> 12] === cls(n)) return u;
      free(u);
      return malloc(n);
    },
    aligned(n: number, a: number): number {
      // a block size that is a multiple of `a` inside an aligned page is aligned
      return malloc(Math.ceil(Math.max(n, a) / a) * a);
    },
  };
}

export function uint8ArrayPeer(): Peer {
  return {
    id: "u8",
    label: "new Uint8Array(n)",
    caps: ["malloc", "calloc", "realloc"],
    na: { aligned: "no aligned allocation in JS" },
    instance(): Ops {
      return {
        nil: null,
        size: id,
        malloc: (n: number) => new Uint8Array(n),
        free: (_h: Uint8Array) => {},
        calloc: (c: number, n: number) => new Uint8Array(c * n),
        realloc: (h: Uint8Array, n: number) => {
          const u = new Uint8Array(n);
          u.set(h.length <= n ? h : h.subarray(0, n));
          return u;
        },
        touch: (h: Uint8Array, n: number) => h.fill(0xab, 0, n),
        collect: () => (fullGc() ? "gc()" : "none (no gc exposed)"),
      };
    },
  };
}

export function arrayBufferPeer(): Peer {
  const hasTransfer = typeof (ArrayBuffer.prototype as Handle).transfer === "function";
  return {
    id: "ab",
    label: "new ArrayBuffer(n)",
    caps: ["malloc", "calloc", "realloc"],
    na: { aligned: "no aligned allocation in JS" },
    info: { realloc: hasTransfer ? "ArrayBuffer.prototype.transfer(n)" : "new ArrayBuffer(n) + copy (no transfer() here)" },
    instance(): Ops {
      return {
        nil: null,
        size: id,
        malloc: (n: number) => new ArrayBuffer(n),
        free: (_h: ArrayBuffer) => {},
        calloc: (c: number, n: number) => new ArrayBuffer(c * n),
        realloc: hasTransfer
          ? (h: Handle, n: number) => h.transfer(n)
          : (h: ArrayBuffer, n: number) => {
            const b = new ArrayBuffer(n);
            new Uint8Array(b).set(new Uint8Array(h, 0, Math.min(n, h.byteLength)));
            return b;
          },
        touch: (h: ArrayBuffer, n: number) => new Uint8Array(h, 0, n).fill(0xab),
        collect: () => (fullGc() ? "gc()" : "none (no gc exposed)"),
      };
    },
  };
}

export function bufferPeer(): Peer {
  const B = g.Buffer;
  if (typeof B?.allocUnsafe !== "function") {
    return unavailablePeer("buffer", "Buffer.allocUnsafe(n)", "no global Buffer in this runtime");
  }
  return {
    id: "buffer",
    label: "Buffer.allocUnsafe(n)",
    caps: ["malloc", "calloc", "realloc"],
    na: { aligned: "no aligned allocation in JS" },
    info: { calloc: "Buffer.alloc(n) (zeroed)", poolSize: B.poolSize },
    instance(): Ops {
      return {
        nil: null,
        size: id,
        malloc: (n: number) => B.allocUnsafe(n),
        free: (_h: Handle) => {},
        calloc: (c: number, n: number) => B.alloc(c * n),
        realloc: (h: Handle, n: number) => {
          const b = B.allocUnsafe(n);
          h.copy(b, 0, 0, Math.min(n, h.length));
          return b;
        },
        touch: (h: Handle, n: number) => h.fill(0xab, 0, n),
        collect: () => (fullGc() ? "gc()" : "none (no gc exposed)"),
      };
    },
  };
}

const MAX_POOL = 2 ** 32 - 65536; // u32 addresses

/** @thi.ng/malloc MemPool: first-fit over an address-sorted free list, one fixed buffer. */
export function thingPeer(version: string): Peer {
  try {
    if (typeof MemPool !== "function") throw new Error("MemPool not exported");
  } catch (e) {
    return unavailablePeer("thing", "@thi.ng/malloc MemPool", errorMessage(e));
  }
  return {
    id: "thing",
    label: "@thi.ng/malloc MemPool",
    version,
    caps: ["malloc", "calloc", "realloc"],
    na: {
      aligned: "alignment is pool-wide only (no per-call aligned malloc)",
      // measured on bun: the ramp up to 100,000 blocks took 0.5 s, the first 20,000 frees > 149 s
      "grow-shrink": "free walks an address-sorted free list: of one ramp down from 100,000 blocks (random order), the first 20,000 frees took over 149 s",
    },
    instance(hint: InstanceHint): Ops {
      // headers are 8 bytes, blocks 8-aligned; leave room for first-fit fragmentation
      const want = Math.ceil((hint.liveBytes + hint.liveBlocks * 16) * 1.5) + (8 << 20);
      const size = Math.min(MAX_POOL, Math.max(16 << 20, want));
      const pool = new MemPool({ size });
      // deno-lint-ignore no-explicit-any
      const u8 = (pool as any).u8 as Uint8Array;
      return {
        nil: 0,
        size: id,
        malloc: (n: number) => pool.malloc(n),
        free: (p: number) => {
          pool.free(p);
        },
        calloc: (c: number, n: number) => pool.calloc(c * n),
        realloc: (p: number, n: number) => pool.realloc(p, n),
        bulkRelease: true,
        release: () => {
          pool.release();
        },
        freeAll: () => pool.freeAll(),
        touch: (p: number, n: number) => u8.fill(0xab, p, p + n),
        collect: () => "none (one fixed ArrayBuffer; MemPool never shrinks)",
        extra: () => ({ poolBytes: size }),
      };
    },
  };
}
