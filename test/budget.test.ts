// Budgets (issue 5): options maxCommitted and maxReserved (0 = unlimited).
//   - past a budget malloc returns 0 and alloc throws AllocationError carrying a stats
//     snapshot and the reason; every live block stays intact; freeing makes room again
//   - before refusing, cached memory (free segments, free page slots, cached huge
//     mappings) is purged or unmapped, so a budget full of cache does not refuse
//   - only claims of OS memory are checked: reusing free blocks of live pages always works
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { AllocationError, alloc, bytes, collect, free, getOption, malloc, realloc, reallocAligned, setOption, stats } from "../mod.ts";
import { checkPattern, fillPattern } from "./_util.ts";
import { dropHugeCache, mib, MiB, settle } from "./_mem.ts";

const t = suite("budget");

interface B {
  p: number;
  size: number;
  id: number;
}

function restore(): void {
  setOption("maxCommitted", 0);
  setOption("maxReserved", 0);
}

function checkAll(bs: B[], what: string): void {
  for (const b of bs) {
    const off = checkPattern(b.p, b.size, b.id);
    if (off !== -1) assert.unreachable(`${what}: block ${b.id} (${b.size} B at 0x${b.p.toString(16)}) corrupted at offset ${off}`);
  }
}

const SIZES = [48, 700, 3000, 20000, 60000, 200000, 900000, 3 * MiB];

t("maxCommitted: malloc returns 0 past the budget, alloc throws AllocationError with stats; live blocks intact; freeing makes room", () => {
  const live: B[] = [];
  try {
    const base = settle();
    const max = base.committed + 48 * MiB;
    setOption("maxCommitted", max);
    let id = 1;
    let refused = 0;
    let refusedSize = 0;
    for (let i = 0; i < 20000 && refused === 0; i++) {
      const size = SIZES[i % SIZES.length] + (i % 13);
      const p = malloc(size);
      if (p === 0) {
        refused++;
        refusedSize = size;
        break;
      }
      fillPattern(p, size, id);
      live.push({ p, size, id: id++ });
    }
    assert.is(refused, 1, "the budget eventually refuses");
    const s = stats();
    assert.ok(s.committed <= max, `committed ${mib(s.committed)} within the budget ${mib(max)}`);
    const liveBytes = live.reduce((a, b) => a + b.size, 0);
    assert.ok(liveBytes >= 30 * MiB, `only ${mib(liveBytes)} fit in a 48 MiB budget`);
    assert.ok(s.budgetRefusals > 0, "the refusal is counted");
    checkAll(live, "after the refusal");
    // each refused call counts once (review round 10: twice, one per attempt around the relief)
    const r0 = stats().budgetRefusals;
    for (let i = 0; i < 5; i++) assert.is(malloc(refusedSize), 0);
    assert.is(stats().budgetRefusals - r0, 5, "five refused mallocs, five refusals");
    assert.is(malloc(8 * MiB), 0);
    assert.is(stats().budgetRefusals - r0, 6, "a refused huge block counts once too");

    let err: unknown;
    try {
      alloc(refusedSize);
    } catch (e) {
      err = e;
    }
    assert.is(stats().budgetRefusals - r0, 7, "a refused alloc() counts once");
    // a refused realloc to a huge size counts once (review round 11: twice, one for the
    // attempt with room to grow in place and one without), the block left as it was
    const small = live[0], big = live.find((b) => b.size > 2 * MiB)!;
    assert.is(realloc(small.p, 64 * MiB), 0);
    assert.is(stats().budgetRefusals - r0, 8, "a refused realloc counts once");
    assert.is(reallocAligned(small.p, 64 * MiB, 4096), 0);
    assert.is(stats().budgetRefusals - r0, 9, "a refused reallocAligned counts once");
    assert.is(realloc(big.p, 64 * MiB), 0);
    assert.is(stats().budgetRefusals - r0, 10, "a refused realloc of a huge block counts once");
    assert.ok(err instanceof AllocationError, `alloc past the budget threw ${String(err)}`);
    const ae = err as AllocationError;
    assert.is(ae.size, refusedSize);
    assert.match(ae.message, "maxCommitted");
    assert.ok(ae.stats !== null && ae.stats.committed <= max && ae.stats.inUse >= liveBytes, "AllocationError carries a stats snapshot");
    assert.is(malloc(8 * MiB), 0, "a huge block is refused too");
    checkAll(live, "after alloc threw");

    // free every other block: the same sizes fit again (free blocks of live pages need no commit)
    const kept: B[] = [];
    const freedSizes: number[] = [];
    live.forEach((b, i) => {
      if (i % 2 === 0) kept.push(b);
      else {
        free(b.p);
        freedSizes.push(b.size);
      }
    });
    live.length = 0;
    live.push(...kept);
    for (const size of freedSizes.slice(0, 200)) {
      if (size > 1 * MiB) continue;
      const p = malloc(size);
      assert.ok(p !== 0, `malloc(${size}) after freeing half`);
      fillPattern(p, size, id);
      live.push({ p, size, id: id++ });
    }
    checkAll(live, "after reusing freed room");
    for (const b of live) free(b.p);
    live.length = 0;
    collect(true);
    const p = malloc(8 * MiB);
    assert.ok(p !== 0, "after freeing everything a huge block fits again");
    free(p);
  } finally {
    restore();
    for (const b of live) free(b.p);
  }
});

t("a maxCommitted refusal first purges cached memory: a budget full of freed-but-unpurged memory does not refuse", () => {
  const delay0 = getOption("purgeDelay");
  const ps: number[] = [];
  try {
    setOption("purgeDelay", -1); // nothing is purged by itself
    dropHugeCache(); // the huge blocks below get fresh, exactly sized mappings
    const base = settle();
    for (let i = 0; i < 48; i++) {
      const p = malloc(1 * MiB + 4096);
      bytes(p, 1 * MiB).fill(5);
      ps.push(p);
    }
    for (const p of ps) free(p);
    ps.length = 0;
    const cached = stats();
    assert.ok(cached.pendingPurge >= 40 * MiB, `${mib(cached.pendingPurge)} freed and still committed`);
    setOption("maxCommitted", base.committed + 24 * MiB);
    // needs fresh commits (huge mappings): only possible if the cache is purged first
    for (let i = 0; i < 5; i++) {
      const p = malloc(3 * MiB);
      assert.ok(p !== 0, `huge block ${i} refused although ${mib(cached.pendingPurge)} of cached memory could be purged`);
      bytes(p, 3 * MiB).fill(1);
      ps.push(p);
    }
    const s = stats();
    assert.ok(s.pendingPurge < cached.pendingPurge - 30 * MiB, `the cache was purged: ${mib(cached.pendingPurge)} -> ${mib(s.pendingPurge)}`);
    assert.ok(s.committed <= base.committed + 24 * MiB);
  } finally {
    restore();
    setOption("purgeDelay", delay0);
    for (const p of ps) free(p);
    collect(true);
  }
});

t("maxReserved: huge blocks past the virtual budget return 0 (cached mappings are unmapped first); small blocks reuse existing arenas", () => {
  const live: B[] = [];
  const cache0 = getOption("hugeCacheMax");
  try {
    setOption("hugeCacheMax", 256 * MiB);
    dropHugeCache(); // the baseline holds no cached mapping
    const base = settle();
    // a cached mapping that counts as reserved
    free(malloc(20 * MiB));
    assert.ok(stats().reserved >= base.reserved + 20 * MiB, "the freed 20 MiB mapping is cached (still reserved)");
    const max = base.reserved + 24 * MiB;
    setOption("maxReserved", max);
    let id = 1;
    let got = 0;
    for (let i = 0; i < 10; i++) {
      const p = malloc(5 * MiB);
      if (p === 0) break;
      fillPattern(p, 5 * MiB, id);
      live.push({ p, size: 5 * MiB, id: id++ });
      got++;
    }
    assert.ok(got >= 3 && got <= 4, `${got} blocks of 5 MiB in a 24 MiB virtual budget (after unmapping the cached 20 MiB)`);
    assert.ok(stats().reserved <= max, `reserved ${mib(stats().reserved)} <= ${mib(max)}`);
    let err: unknown;
    try {
      alloc(5 * MiB);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof AllocationError && /maxReserved/.test(err.message), `alloc: ${String(err)}`);
    // small blocks come from arenas that are already reserved
    for (let i = 0; i < 100; i++) {
      const p = malloc(1000);
      assert.ok(p !== 0, "small blocks are not refused by maxReserved while the arenas have room");
      fillPattern(p, 1000, id);
      live.push({ p, size: 1000, id: id++ });
    }
    checkAll(live, "maxReserved");
    // freeing makes room
    const big = live.find((b) => b.size === 5 * MiB)!;
    free(big.p);
    live.splice(live.indexOf(big), 1);
    const p = malloc(5 * MiB);
    assert.ok(p !== 0, "after freeing one 5 MiB block another fits");
    fillPattern(p, 5 * MiB, id);
    live.push({ p, size: 5 * MiB, id: id++ });
    checkAll(live, "after freeing");
  } finally {
    restore();
    setOption("hugeCacheMax", cache0);
    for (const b of live) free(b.p);
    collect(true);
  }
});

t("budgetRefusals counts allocations that failed, not one served after a step refused: a purged cached huge mapping too large for the budget, then a fresh smaller one that fits (review round 17)", () => {
  const delay0 = getOption("purgeDelay");
  let live = 0;
  try {
    dropHugeCache();
    const base = settle();
    live = malloc(28 * MiB);
    assert.ok(live !== 0);
    const big = malloc(48 * MiB);
    assert.ok(big !== 0);
    setOption("purgeDelay", 0); // freed: cached, purged (decommitted) at once
    free(big);
    setOption("maxCommitted", base.committed + 72 * MiB); // 28 + 48 does not fit, 28 + 33 does (mappings rounded up to 4 MiB)
    const r0 = stats().budgetRefusals;
    const p = malloc(33 * MiB); // the cache offers the 48 MiB mapping first (the budget refuses it), then a fresh mapping
    assert.ok(p !== 0, "served");
    assert.is(stats().budgetRefusals - r0, 0, "a served allocation is no refusal");
    free(p);
    const q = malloc(80 * MiB);
    assert.is(q, 0);
    assert.is(stats().budgetRefusals - r0, 1, "a refused one counts once");
  } finally {
    if (live !== 0) free(live);
    setOption("purgeDelay", delay0);
    restore();
    dropHugeCache();
  }
});

t("budgets accept size strings and 0 = unlimited", () => {
  try {
    setOption("maxCommitted", "1GiB");
    assert.is(getOption("maxCommitted"), 1024 * MiB);
    setOption("maxReserved", "64 TiB");
    assert.is(getOption("maxReserved"), 64 * 1024 * 1024 * MiB);
    const p = malloc(100);
    assert.ok(p !== 0);
    free(p);
  } finally {
    restore();
  }
  assert.is(getOption("maxCommitted"), 0);
  assert.is(getOption("maxReserved"), 0);
});

t.run();
