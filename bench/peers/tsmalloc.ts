// tsmalloc itself, through its public API only (mod.ts, doc/API-CONTRACT.md).
// The backend is per process (configure() before first use), so the FFI row and the
// buffer row run in two processes; the driver passes --backend=ffi|buffer.
import type { Handle, Ops, Peer } from "./types.ts";
import { errorMessage, unavailablePeer } from "./types.ts";
import { numberMemset } from "./ffi.ts";

// deno-lint-ignore no-explicit-any
type Mod = any;

let modPromise: Promise<Mod> | undefined;

/** Imports ../../mod.ts once; the esbuild bundle replaces a missing mod.ts by a stub. */
export function importTsmalloc(): Promise<Mod> {
  modPromise ??= import("../../mod.ts");
  return modPromise;
}

/**
 * secure: a level for configure() (its own row, e.g. tsmalloc-ffi-secure0), or undefined for
 * the plain row. nodeFfi: Node's FFI for configure({ nodeFfi }) (rows tsmalloc-ffi-koffi,
 * tsmalloc-ffi-nodeffi), or undefined for the default choice.
 */
export async function tsmallocPeer(backend: "ffi" | "buffer", secure?: number, nodeFfi?: "koffi" | "node:ffi"): Promise<Peer> {
  const via = nodeFfi === undefined ? "" : nodeFfi === "koffi" ? "-koffi" : "-nodeffi";
  const id = `tsmalloc-${backend}${via}${secure !== undefined ? `-secure${secure}` : ""}`;
  const label = `tsmalloc (${[backend, ...(nodeFfi ? [nodeFfi] : []), ...(secure !== undefined ? [`secure ${secure}`] : [])].join(", ")})`;
  let m: Mod;
  try {
    m = await importTsmalloc();
  } catch (e) {
    return unavailablePeer(id, label, `core not built yet (import mod.ts: ${errorMessage(e)})`);
  }
  if (!m || m.__tsmallocMissing || typeof m.malloc !== "function") {
    return unavailablePeer(id, label, "core not built yet (mod.ts missing or has no malloc)");
  }
  let kind = "?";
  let reason = "";
  let ffi: string | null = null;
  try {
    const opts: Record<string, unknown> = { backend };
    if (secure !== undefined) opts.secure = secure;
    if (nodeFfi !== undefined) opts.nodeFfi = nodeFfi;
    m.configure(opts);
    const p = m.malloc(64);
    if (!p) throw new Error("malloc(64) returned 0");
    m.bytes(p, 64).fill(1);
    m.free(p);
    const b = m.backend();
    kind = b.kind;
    reason = b.reason;
    ffi = b.ffi ?? null;
  } catch (e) {
    return unavailablePeer(id, label, `core not working yet: ${errorMessage(e)}`);
  }
  if ((backend === "buffer") !== (kind === "buffer")) {
    return unavailablePeer(id, label, `asked for the ${backend} backend, got ${kind} (${reason})`);
  }
  const caps: Peer["caps"] = ["malloc"];
  if (typeof m.calloc === "function") caps.push("calloc");
  if (typeof m.realloc === "function") caps.push("realloc");
  if (typeof m.mallocAligned === "function") caps.push("aligned");
  const mod = m;
  // memory workloads: write FFI-backend blocks with libc memset (no view object per block,
  // exactly like the libc/mimalloc rows); the buffer backend has no real addresses
  const memset = kind === "buffer" ? null : await numberMemset();
  return {
    id,
    label,
    version: `mod.ts (this tree)${ffi ? `, FFI ${ffi}` : ""}`,
    caps,
    info: { backend: kind, ffi, reason, touch: memset ? "libc memset via FFI" : "bytes(p, n).fill()" },
    instance(): Ops {
      return {
        nil: 0,
        size: (n: number) => n,
        malloc: mod.malloc,
        free: mod.free,
        calloc: mod.calloc,
        realloc: mod.realloc,
        aligned: mod.mallocAligned,
        touch: memset
          ? (p: Handle, n: number) => memset(p, 0xab, n)
          : (p: Handle, n: number) => {
            mod.bytes(p, n).fill(0xab);
          },
        collect: () => (mod.collect(true), "collect(true)"),
        extra: () => {
          try {
            const s = mod.stats();
            return { stats: { reserved: s.reserved, committed: s.committed, resident: s.resident, inUse: s.inUse } };
          } catch (e) {
            return { statsError: errorMessage(e) };
          }
        },
      };
    },
  };
}
