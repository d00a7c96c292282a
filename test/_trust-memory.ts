// Scenarios shared by test/trust-secure.test.ts (in-process) and test/fixtures/secure-child.ts
// (the same at another secure level, in a child process). Not a test file itself.
import { bytes, collect, DoubleFreeError, Heap, stats, usableSize, validate } from "../mod.ts";
import { locate } from "../src/free.ts";
import { ctx } from "../src/context.ts";
import { detected } from "../src/secure.ts";
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
    // another size class fills whatever page slots are free: while the heap keeps the emptied
    // page for its class, then once collect() gave empty pages back (the lists are checked there)
    const others: number[] = [];
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 4000; i++) {
        const q = h.malloc(48);
        bytes(q, 48).fill(0xee);
        others.push(q);
      }
      collect();
    }
    const intact = checkPattern(B, 1000, 77) === -1;
    return { threw, intact, detected: validate().detectedCount - before };
  } finally {
    h.destroy();
  }
}


/**
 * Review round 6: `free(p); free(p)` makes p's link point to p (a cycle); malloc hands p out,
 * its new owner writes 4 bytes of its data (here: the offset of a live block of another class
 * in another page, relative to p's segment), and the list head became that value: malloc
 * returned the live block. Now every block malloc returns must be a block start of its size
 * class (usableSize agrees), never the live block, whose contents stay intact.
 */
export function doubleFreeCycleScenario(): { threw: boolean; intact: boolean; handedLive: number; bad: number; detected: number; negative: number } {
  const h = Heap.create();
  try {
    const victim = h.malloc(1000);
    fillPattern(victim, 1000, 91);
    const p = h.malloc(64);
    const base = p - (p % 2 ** 22);
    const before = validate().detectedCount;
    const other = h.malloc(64); // live in p's page: the used count must not go below it in stats
    h.free(p);
    let threw = false, negative = 0;
    try {
      h.free(p);
      h.free(p); // (review round 7: stats().inUse went negative)
    } catch (e) {
      if (!(e instanceof DoubleFreeError)) throw e;
      threw = true;
    }
    if (stats().inUse < 0) negative++;
    let handedLive = 0, bad = 0;
    const usable = (q: number) => {
      try {
        return usableSize(q);
      } catch {
        return -1;
      }
    };
    // the new owner writes the victim's offset, then (round 7) an offset 8 bytes into its own page
    for (const write of [victim - base, p - base + 8]) {
      for (let i = 0; i < 3000; i++) {
        const q = h.malloc(64);
        if (q === victim) handedLive++;
        else if (q % 16 !== 0 || usable(q) !== 64) bad++;
        if (q === p) new DataView(bytes(q, 4).buffer, bytes(q, 4).byteOffset, 4).setInt32(0, write, true);
        if (stats().inUse < 0) negative++;
      }
      if (!threw) {
        // again: the next round's double free
        h.free(p);
        try {
          h.free(p);
        } catch (e) {
          if (!(e instanceof DoubleFreeError)) throw e;
        }
      }
    }
    void other;
    return { threw, intact: checkPattern(victim, 1000, 91) === -1, handedLive, bad, detected: validate().detectedCount - before, negative };
  } finally {
    h.destroy();
  }
}

/**
 * A dangling pointer's replay: block B is freed after X (so B's link points to X) and its first
 * 16 bytes are saved; B and X are allocated again (both live), B is freed again, and the saved
 * bytes are written back into B. Then mallocs of the class: the first may return B (it is
 * free), none may return X (still live). With `second`, X's owner also writes X's own first 16
 * bytes from when X was free back into X (the "second replay": X then looks free by its bytes
 * alone; only an out-of-band record tells). Returns how many live blocks were handed out and
 * how many corruptions validate() counted. Bytes are read and written through views taken
 * while the blocks were live (dangling views, as a native dangling pointer: level 3+ refuses
 * a new view of a free block).
 */
export function replayScenario(second = false): { handedLive: number; detected: number; ok: boolean } {
  const h = Heap.create();
  try {
    const ps: number[] = [];
    for (let i = 0; i < 3000; i++) ps.push(h.malloc(1024));
    const pr = locate(ps[1500], "test"); // (a segment's first page is smaller: at level 3+ it holds only 16 blocks)
    const page = ps.filter((p) => locate(p, "test") === pr);
    if (ps.at(-1)! === page.at(-1) || page.length < 30) throw new Error("the scenario needs a full page");
    const X = page[3], B = page[7];
    const vB = bytes(B, 16), vX = bytes(X, 1024);
    const live = new Set(ps);
    const before = validate().detectedCount;
    // enough frees to bring the page back into its queue, X and B last: B's link points to X
    for (const p of page.slice(10, 26)) (h.free(p), live.delete(p));
    h.free(X);
    const savedX = vX.slice(0, 16); // X's own words while it is free
    h.free(B);
    live.delete(X);
    live.delete(B);
    const saved = vB.slice();
    let handedLive = 0;
    const take = () => {
      const q = h.malloc(1024);
      if (live.has(q)) handedLive++;
      live.add(q);
      return q;
    };
    for (let i = 0; i < 5000 && !(live.has(B) && live.has(X)); i++) take();
    if (!live.has(B) || !live.has(X)) throw new Error("B and X were not allocated again");
    vX.fill(0x11); // X is live: its owner writes to it
    h.free(B);
    live.delete(B);
    vB.set(saved); // the replay: B's link points to X again
    if (second) vX.set(savedX); // the second replay: X's words are those of a free X
    for (let i = 0; i < 200; i++) take();
    // X untouched by the allocator (a malloc that handed it out would have cleared its first word)
    const head = second ? savedX : new Uint8Array(16).fill(0x11);
    const intact = vX.subarray(16).every((v) => v === 0x11) && vX.subarray(0, 16).every((v, i) => v === head[i]);
    return { handedLive: handedLive + (intact ? 0 : 1), detected: validate().detectedCount - before, ok: true };
  } finally {
    h.destroy();
  }
}

/**
 * Issue 11 item 9 over a running program (review round 11): random mallocs (16 B-1 KiB) and
 * frees in one heap, and replays — a block's 16 bytes captured right after one of its frees,
 * written back into it while it is free again (never into a live block). Every block handed
 * out is stamped by its owner (its address in its first 8 bytes). Counts the mallocs that
 * returned a block still live, and those that did so before any corruption was reported.
 * Writes go straight to the region's view (a dangling native pointer needs no view).
 */
export function replayStormScenario(ops: number, seed: number): { handedLive: number; unreported: number; detected: number; replays: number } {
  const h = Heap.create();
  const raw = (p: number): Uint8Array => {
    const r = ctx.regions.find(p)!;
    return r.u8.subarray(p - r.base, p - r.base + 16);
  };
  let s = seed >>> 0;
  const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const sizes = [16, 32, 64, 128, 1024];
  const live = new Set<number>();
  const snaps: [number, Uint8Array][] = [];
  const before = detected.count;
  let handedLive = 0, unreported = 0, replays = 0;
  try {
    for (let it = 0; it < ops; it++) {
      const r = rnd();
      if (r < 0.45 || live.size < 10) {
        const p = h.malloc(sizes[Math.floor(rnd() * sizes.length)]);
        if (p === 0) continue;
        if (live.has(p)) {
          handedLive++;
          if (detected.count === before) unreported++;
          continue;
        }
        live.add(p);
        const v = raw(p);
        v.fill(0);
        new DataView(v.buffer, v.byteOffset, 8).setFloat64(0, p, true);
      } else if (r < 0.85) {
        const all = [...live];
        const p = all[Math.floor(rnd() * all.length)];
        h.free(p);
        live.delete(p);
        snaps.push([p, raw(p).slice()]);
        if (snaps.length > 200) snaps.shift();
      } else {
        const cand = snaps.filter(([a]) => !live.has(a));
        if (cand.length === 0) continue;
        const [a, b] = cand[Math.floor(rnd() * cand.length)];
        raw(a).set(b);
        replays++;
      }
    }
    return { handedLive, unreported, detected: detected.count - before, replays };
  } finally {
    // blocks the storm's lists lost stay lost (the heap was corrupted on purpose): destroy
    // frees what is live and drops the heap's pages
    h.destroy();
  }
}
