// Deno Web Workers (not node:worker_threads) share the allocator too: the handle travels by
// postMessage. Registered on Deno only — Node and Bun have no module Web Workers with Deno's
// permission model; their worker_threads path is test/workers.test.ts.
import process from "node:process";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { backend, bytes, free, malloc, usableSize, workerHandle } from "../mod.ts";

const t = suite("web-worker");
const deno = (globalThis as { Deno?: unknown }).Deno !== undefined;
const secure = process.env.TSMALLOC_SECURE;
const refused = secure !== undefined && secure !== "0" && backend().kind !== "buffer";

if (refused) {
  t("at secure >= 1 on FFI, workerHandle() refuses sharing with a clear error", () => {
    assert.throws(() => workerHandle(), /not supported with secure-mode guard pages/);
  });
} else if (deno) {
  t("Deno Web Worker: attach from a postMessage'd handle, free the parent's block, hand one back", async () => {
    const size = 3000;
    const p = malloc(size);
    const v = bytes(p, size);
    for (let i = 0; i < size; i++) v[i] = (i * 7 + 3) % 251;
    const W = (globalThis as unknown as { Worker: new (u: string, o: { type: "module" }) => {
      postMessage(m: unknown): void;
      onmessage: ((e: { data: { bad?: number; mine?: number; error?: string } }) => void) | null;
      terminate(): void;
    } }).Worker;
    const w = new W(new URL("./fixtures/web-worker.ts", import.meta.url).href, { type: "module" });
    const reply = await new Promise<{ bad?: number; mine?: number; error?: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no answer from the Web Worker within 10 s")), 10000);
      w.onmessage = (e) => {
        clearTimeout(timer);
        resolve(e.data);
      };
      w.postMessage({ handle: workerHandle(), ptr: p, size });
    });
    w.terminate();
    assert.is(reply.error, undefined, reply.error);
    assert.is(reply.bad, 0, "the worker saw the parent's bytes");
    const mine = reply.mine!;
    assert.ok(usableSize(mine) >= size);
    const m = bytes(mine, size);
    let bad = 0;
    for (let i = 0; i < size; i++) if (m[i] !== (i * 11 + 5) % 253) bad++;
    assert.is(bad, 0, "the parent sees the worker's bytes");
    free(mine); // a block of a detached worker, freed here
    const q = malloc(size); // and the allocator keeps working
    assert.ok(q !== 0);
    free(q);
  });
} else {
  t("a worker handle survives structured cloning (what postMessage does to it)", () => {
    const h = workerHandle();
    const c = structuredClone(h);
    assert.equal(Object.keys(c).sort(), Object.keys(h).sort());
    assert.is(JSON.stringify(c, (_k, v) => (typeof v === "bigint" ? String(v) : v instanceof SharedArrayBuffer ? v.byteLength : v)),
      JSON.stringify(h, (_k, v) => (typeof v === "bigint" ? String(v) : v instanceof SharedArrayBuffer ? v.byteLength : v)));
  });
}

t.run();
