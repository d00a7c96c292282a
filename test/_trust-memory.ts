// Scenarios shared by test/trust-secure.test.ts (in-process) and test/fixtures/secure-child.ts
// (the same at another secure level, in a child process). Not a test file itself.
import { bytes, DoubleFreeError, Heap, validate } from "../mod.ts";
import { locate } from "../src/free.ts";
import { checkPattern, fillPattern } from "./_util.ts";

/**
 * A page of 1 KiB blocks, full; every block freed but one (B), and one of them (A) freed
 * twice: the used count says 0 while B is live. Then many blocks of another size class.
 * Returns whether the second free threw DoubleFreeError, whether B kept its contents and
 * whether B's page was given back (its slot reused).
 */
export function doubleFreeScenario(): { threw: boolean; intact: boolean; detected: number } {
  const h = Heap.create();
  try {
    const ps: number[] = [];
    for (let i = 0; i < 200; i++) ps.push(h.malloc(1000));
    // the blocks of ps[0]'s page (white box: its page handle), which must be full
    const pr = locate(ps[0], "test");
    const page = ps.filter((p) => locate(p, "test") === pr);
    const n = page.length;
    if (n < 8 || ps.at(-1)! === page.at(-1)) throw new Error(`the scenario needs a full page of more than 8 blocks (got ${n})`);
    const B = page[n >> 1], A = page[1];
    fillPattern(B, 1000, 77);
    const before = validate().detectedCount;
    for (const p of page) if (p !== B) h.free(p);
    let threw = false;
    try {
      h.free(A); // the double free
    } catch (e) {
      if (!(e instanceof DoubleFreeError)) throw e;
      threw = true;
    }
    // another size class fills whatever page slots are free
    const others: number[] = [];
    for (let i = 0; i < 4000; i++) {
      const q = h.malloc(48);
      bytes(q, 48).fill(0xee);
      others.push(q);
    }
    const intact = checkPattern(B, 1000, 77) === -1;
    return { threw, intact, detected: validate().detectedCount - before };
  } finally {
    h.destroy();
  }
}


/**
 * A dangling pointer's replay: block B is freed after X (so B's link points to X) and its first
 * 16 bytes are saved; B and X are allocated again (both live), B is freed again, and the saved
 * bytes are written back into B. Then two mallocs of the class: the first may return B (it is
 * free), the second must not return X (still live). Returns whether a live block was handed
 * out and how many corruptions validate() counted.
 */
export function replayScenario(): { handedLive: number; detected: number; ok: boolean } {
  const h = Heap.create();
  try {
    const ps: number[] = [];
    for (let i = 0; i < 3000; i++) ps.push(h.malloc(1024));
    const pr = locate(ps[0], "test");
    const page = ps.filter((p) => locate(p, "test") === pr);
    if (ps.at(-1)! === page.at(-1) || page.length < 30) throw new Error("the scenario needs a full page");
    const X = page[3], B = page[7];
    const live = new Set(ps);
    const before = validate().detectedCount;
    // enough frees to bring the page back into its queue, X and B last: B's link points to X
    for (const p of page.slice(10, 26)) (h.free(p), live.delete(p));
    h.free(X);
    h.free(B);
    live.delete(X);
    live.delete(B);
    const saved = bytes(B, 16).slice();
    let handedLive = 0;
    const take = () => {
      const q = h.malloc(1024);
      if (live.has(q)) handedLive++;
      live.add(q);
      return q;
    };
    for (let i = 0; i < 5000 && !(live.has(B) && live.has(X)); i++) take();
    if (!live.has(B) || !live.has(X)) throw new Error("B and X were not allocated again");
    bytes(X, 1024).fill(0x11); // X is live: its owner writes to it
    h.free(B);
    live.delete(B);
    bytes(B, 16).set(saved); // the replay: B's link points to X again
    for (let i = 0; i < 200; i++) take();
    const intact = bytes(X, 1024).every((v) => v === 0x11);
    return { handedLive: handedLive + (intact ? 0 : 1), detected: validate().detectedCount - before, ok: true };
  } finally {
    h.destroy();
  }
}
