// The fast paths spell layout constants as literals (see HOT_PATH_LITERALS in src/layout.ts);
// this fails when a constant changes and the literal copies were not updated with it.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as L from "../src/layout.ts";
import { BIN_COUNT, BIN_SIZE } from "../src/bins.ts";
import { entryAt, segmentStart } from "../src/secure.ts";
import { tableBase } from "../src/region.ts";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./_root.ts";

const t = suite("layout");

t("hot-path literals match the layout constants", () => {
  const actual: Record<string, number> = {
    SEGMENT_MASK_INVERTED: ~L.SEGMENT_MASK, SEGMENT_SHIFT: L.SEGMENT_SHIFT, S_PAGES: L.S_PAGES,
    S_PAGE_SHIFT: L.S_PAGE_SHIFT, PAGE_WORDS: L.PAGE_WORDS, P_FREE: L.P_FREE, P_LOCAL_FREE: L.P_LOCAL_FREE,
    P_USED: L.P_USED, P_START: L.P_START, P_KEY: L.P_KEY, P_FLAGS: L.P_FLAGS, P_END: L.P_END,
    P_DIV_LIMIT: L.P_DIV_LIMIT, P_DIV_SHIFT: L.P_DIV_SHIFT, P_DIV_INV: L.P_DIV_INV, P_WAKE_SHIFT: L.P_WAKE_SHIFT,
    DIRECT_SIZE_MAX: L.DIRECT_SIZE_MAX, LARGE_OBJ_MAX: L.LARGE_OBJ_MAX,
    PAGES_PER_SEGMENT_SHIFT: L.SEGMENT_SHIFT - L.SMALL_PAGE_SHIFT, SEGMENT_MASK: L.SEGMENT_MASK, HEADER_WORD_SHIFT: L.HEADER_WORD_SHIFT,
    PF_HAS_ALIGNED: L.PF_HAS_ALIGNED, CHECKED_KEY: L.CHECKED_KEY, S_SEC: L.S_SEC,
    SEC_WORDS_SHIFT: Math.log2(L.SEC_WORDS), SEC_LOCAL: L.SEC_LOCAL, P_CAPACITY: L.P_CAPACITY,
    ENTRY_LIVE: L.ENTRY_LIVE, TABLE_SEGMENT_SHIFT: Math.log2(L.TABLE_SEGMENT_ENTRIES), TABLE_COLUMN_SHIFT: Math.log2(L.TABLE_COLUMN_ENTRIES),
  };
  assert.equal(actual, { ...L.HOT_PATH_LITERALS });
});

t("malloc's size tests spell DIRECT_SIZE_MAX and LARGE_OBJ_MAX as the literals the table above lists (read from src/heap.ts)", () => {
  const text = readFileSync(join(repoRoot(import.meta.url), "src", "heap.ts"), "utf8");
  const direct = /if \(size <= (\d+)\) pr = this\.direct\[\(size \+ 15\) >>> 4\]; \/\/\s+DIRECT_SIZE_MAX/.exec(text);
  const large = /else if \(size <= (\d+)\) \{ \/\/\s+LARGE_OBJ_MAX/.exec(text);
  assert.ok(direct !== null && large !== null, "malloc's two size tests are where this test looks");
  assert.is(Number(direct![1]), L.DIRECT_SIZE_MAX, "the direct table's end");
  assert.is(Number(large![1]), L.LARGE_OBJ_MAX, "the size classes' end");
});

t("popFront (mallocAligned's pop) is malloc's inline pop, the same text (a near-copy kept for V8's inliner: src/heap.ts popFront)", () => {
  const text = readFileSync(join(repoRoot(import.meta.url), "src", "heap.ts"), "utf8");
  const pop = (head: string, end: string): string => {
    const start = text.indexOf(head);
    assert.ok(start >= 0, `${head} is in src/heap.ts`);
    const from = text.indexOf("const m = pr.m;\n", start);
    const to = text.indexOf(end, start);
    assert.ok(from > start && to > from, `${head}: the pop is where this test looks`);
    // the same lines, indentation and the room before comments aside
    return text.slice(from, to).split("\n").map((l) => l.trim().replace(/\s+\/\/\s+/, " // ")).join("\n");
  };
  const inMalloc = pop("\n  malloc(size: number): number {", "return +outOfLine2(EXIT_MALLOC, this, size);");
  const inPopFront = pop("\nfunction popFront(pr: PageRef): number {", "return 0;\n}");
  assert.ok(inMalloc.includes("t[x] = 0xffff; // ENTRY_LIVE") && inMalloc.split("\n").length > 15, "the whole pop");
  assert.is(inPopFront, inMalloc);
});

t("page descriptors fit the segment header", () => {
  const pages = 1 << (L.SEGMENT_SHIFT - L.SMALL_PAGE_SHIFT);
  assert.ok((L.S_PAGES + pages * L.PAGE_WORDS) * 4 <= L.S_SEC * 4, "descriptors end before the secure records");
  assert.ok((L.S_SEC + pages * L.SEC_WORDS) * 4 <= L.SEGMENT_HEADER_SIZE, "the secure records fit the header");
  assert.is(1 << L.HEADER_WORD_SHIFT, L.SEGMENT_HEADER_SIZE / 4, "a header's words");
  for (const x of [1, 2, 511, 700]) {
    const seg = x * L.SEGMENT_SIZE;
    assert.is(L.headerOf(seg), x * (L.SEGMENT_HEADER_SIZE / 4), "header of segment x at byte x * 8 KiB (slot 0 of its arena)");
    assert.is(L.headerOf(seg + L.SEGMENT_MASK), L.headerOf(seg), "any offset in a segment");
    assert.is(L.segmentOfHeader(L.headerOf(seg) + L.S_PAGES + 7), seg, "and back, from any word of the header");
  }
  assert.is(L.PAGE_WORDS, 16, "free.ts shifts by 4 for PAGE_WORDS");
});

t("segment geometry per secure level: level 0 starts page 0 at the segment's first byte (headers are out of band; session 16), levels 1+ put a head guard before page 0, which stays 8 KiB aligned", () => {
  for (const level of [0, 1, 2, 3, 4]) {
    const [head, page0] = segmentStart(level, 4096);
    const meta = L.SEGMENT_HEADER_SIZE;
    assert.ok(page0 % 8192 === 0, `level ${level}: page 0 is 8 KiB aligned (${page0})`);
    if (level === 0) assert.ok(head === 0 && page0 === 0, `level ${level}: no head guard, page 0 at the segment's start (${page0})`);
    else assert.ok(head >= meta && page0 >= head + 4096, `level ${level}: the head guard [${head}, +4096) lies between the header (${meta}) and page 0 (${page0})`);
  }
  assert.equal(segmentStart(2, 4096), [8192, 16384], "levels 1-4: a 4 KiB head guard after the 8 KiB header, page 0 at 16 KiB");
});

t("checked pages' side tables: every class's page fits its column, and every block of a segment has an entry of its own, its page's column contiguous", () => {
  assert.ok(L.ENTRY_LIVE > L.ENTRY_PENDING && L.ENTRY_PENDING > L.TABLE_COLUMN_ENTRIES, "the marks are above any block count");
  assert.ok(L.ENTRY_PUSHING > L.TABLE_COLUMN_ENTRIES && L.ENTRY_PUSHING + L.TABLE_COLUMN_ENTRIES < L.ENTRY_PENDING, "a pushing entry (ENTRY_PUSHING + a link) is neither a link nor another mark");
  assert.ok(L.ENTRY_PENDING - L.ENTRY_PUSHING > L.TABLE_COLUMN_ENTRIES, "ENTRY_PENDING and ENTRY_LIVE decode to no link");
  assert.is(L.TABLE_SEGMENT_ENTRIES, 64 * L.TABLE_COLUMN_ENTRIES, "a column per page descriptor");
  assert.is((2 * L.TABLE_COLUMN_ENTRIES) % L.TABLE_UNIT, 0, "columns start on a commit unit");
  for (let bin = 1; bin < BIN_COUNT; bin++) {
    const bsize = BIN_SIZE[bin];
    const shift = bsize <= L.SMALL_OBJ_MAX ? L.SMALL_PAGE_SHIFT : bsize <= L.MEDIUM_OBJ_MAX ? L.MEDIUM_PAGE_SHIFT : L.LARGE_PAGE_SHIFT;
    assert.ok(Math.floor((1 << shift) / bsize) <= L.TABLE_COLUMN_ENTRIES, `${bsize}-byte blocks: a page's blocks fit a column`);
  }
  const seen = new Uint8Array(2 * L.TABLE_SEGMENT_ENTRIES);
  for (const seg of [0, 5]) {
    const s = L.headerOf(seg * L.SEGMENT_SIZE);
    for (let i = 0; i < 64; i++) {
      const tb = tableBase(s + L.S_PAGES + i * L.PAGE_WORDS);
      for (let n = 1; n <= L.TABLE_COLUMN_ENTRIES; n++) {
        const x = entryAt(tb, n) - seg * L.TABLE_SEGMENT_ENTRIES;
        if (x !== i * L.TABLE_COLUMN_ENTRIES + n - 1) assert.unreachable(`segment ${seg} page ${i} block ${n - 1}: entry ${x}`);
        const k = (seg === 0 ? 0 : L.TABLE_SEGMENT_ENTRIES) + x;
        if (seen[k] !== 0) assert.unreachable(`segment ${seg} page ${i} block ${n - 1}: entry ${x} taken twice`);
        seen[k] = 1;
      }
    }
  }
});

t.run();
