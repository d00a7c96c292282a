// Assembles the rows of one benchmark process.
import { arrayBufferPeer, bufferPeer, stubPeer, thingPeer, uint8ArrayPeer } from "./js.ts";
import { nativePeer } from "./ffi.ts";
import { tsmallocPeer } from "./tsmalloc.ts";
import type { Peer } from "./types.ts";

export type { Peer } from "./types.ts";

/** Every row id a process can run. tsmalloc-* depend on the process's backend. */
export const ALL_JS_ROWS = ["tsmalloc-ffi", "stub", "u8", "ab", "buffer", "libc", "mimalloc", "thing"];

export interface LoadOptions {
  rows: string[]; // ids, e.g. ["tsmalloc-ffi","stub",...] or ["tsmalloc-buffer","stub"]
  thingVersion: string;
}

export async function loadPeers(opts: LoadOptions): Promise<Peer[]> {
  const out: Peer[] = [];
  for (const row of opts.rows) {
    // tsmalloc-ffi-koffi / tsmalloc-ffi-nodeffi: the Node backend on that FFI only (configure({ nodeFfi }))
    const m = /^tsmalloc-(ffi|buffer)(?:-(koffi|nodeffi))?(?:-secure(\d))?$/.exec(row);
    if (m) {
      const nodeFfi = m[2] === "koffi" ? "koffi" : m[2] === "nodeffi" ? "node:ffi" : undefined;
      out.push(await tsmallocPeer(m[1] as "ffi" | "buffer", m[3] ? Number(m[3]) : undefined, nodeFfi));
    }
    else if (row === "stub") out.push(stubPeer());
    else if (row === "u8") out.push(uint8ArrayPeer());
    else if (row === "ab") out.push(arrayBufferPeer());
    else if (row === "buffer") out.push(bufferPeer());
    else if (row === "libc") out.push(await nativePeer("libc"));
    else if (row === "mimalloc") out.push(await nativePeer("mimalloc"));
    else if (row === "thing") out.push(thingPeer(opts.thingVersion));
    else throw new Error(`unknown row ${row}`);
  }
  return out;
}
