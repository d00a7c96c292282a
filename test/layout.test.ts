// The fast paths spell layout constants as literals (see HOT_PATH_LITERALS in src/layout.ts);
// this fails when a constant changes and the literal copies were not updated with it.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as L from "../src/layout.ts";
import { BIN_COUNT, BIN_SIZE } from "../src/bins.ts";
import { segmentStart, tableBytes } from "../src/secure.ts";

const t = suite("layout");

t("hot-path literals match the layout constants", () => {
  const actual: Record<string, number> = {
    SEGMENT_MASK_INVERTED: ~L.SEGMENT_MASK, SEGMENT_SHIFT: L.SEGMENT_SHIFT, S_PAGES: L.S_PAGES,
    S_PAGE_SHIFT: L.S_PAGE_SHIFT, PAGE_WORDS: L.PAGE_WORDS, P_FREE: L.P_FREE, P_LOCAL_FREE: L.P_LOCAL_FREE,
    P_USED: L.P_USED, P_START: L.P_START, P_KEY: L.P_KEY, P_FLAGS: L.P_FLAGS, P_END: L.P_END,
    P_DIV_LIMIT: L.P_DIV_LIMIT, P_DIV_SHIFT: L.P_DIV_SHIFT, P_DIV_INV: L.P_DIV_INV, P_WAKE_SHIFT: L.P_WAKE_SHIFT,
    DIRECT_SIZE_MAX: L.DIRECT_SIZE_MAX, LARGE_OBJ_MAX: L.LARGE_OBJ_MAX,
    PAGES_PER_SEGMENT_SHIFT: L.SEGMENT_SHIFT - L.SMALL_PAGE_SHIFT, SEGMENT_MASK: L.SEGMENT_MASK, SEGMENT_WORD_SHIFT: L.SEGMENT_SHIFT - 2,
    PF_HAS_ALIGNED: L.PF_HAS_ALIGNED, CHECKED_KEY: L.CHECKED_KEY, S_SEC: L.S_SEC,
    SEC_WORDS_SHIFT: Math.log2(L.SEC_WORDS), SEC_LOCAL: L.SEC_LOCAL, P_CAPACITY: L.P_CAPACITY,
    ENTRY_LIVE: L.ENTRY_LIVE,
  };
  assert.equal(actual, { ...L.HOT_PATH_LITERALS });
});

t("page descriptors fit the segment header", () => {
  const pages = 1 << (L.SEGMENT_SHIFT - L.SMALL_PAGE_SHIFT);
  assert.ok((L.S_PAGES + pages * L.PAGE_WORDS) * 4 <= L.SEGMENT_HEADER_SIZE);
  assert.is(L.PAGE_WORDS, 16, "free.ts shifts by 4 for PAGE_WORDS");
});

t("segment geometry per secure level: the head guard lies between the header and page 0, which stays 8 KiB aligned", () => {
  for (const level of [0, 1, 2, 3, 4]) {
    const [head, page0] = segmentStart(level, 4096);
    const meta = L.SEGMENT_HEADER_SIZE;
    assert.ok(page0 % 8192 === 0, `level ${level}: page 0 is 8 KiB aligned (${page0})`);
    if (level === 0) assert.ok(head === 0 && page0 >= meta, `level ${level}: no head guard, page 0 after the header (${page0})`);
    else assert.ok(head >= meta && page0 >= head + 4096, `level ${level}: the head guard [${head}, +4096) lies between the header (${meta}) and page 0 (${page0})`);
  }
  assert.equal(segmentStart(2, 4096), [8192, 16384], "levels 1-4: a 4 KiB head guard after the 8 KiB header, page 0 at 16 KiB");
});

t("checked pages' side tables: every class in every page slot size fits its entries before its first block, keeps its blocks aligned, and loses at most the table's bytes", () => {
  assert.ok(L.ENTRY_LIVE > L.ENTRY_PENDING && L.ENTRY_PENDING > 4096, "the marks are above any block count (a small page holds at most 4,096)");
  // page 0 (after the header and head guard), the others, and (level 4) each ending at a guard, per page kind
  const spansOf = (shift: number) => [(1 << shift) - 16384, 1 << shift, (1 << shift) - 4096, (1 << shift) - 16384 - 4096];
  for (let bin = 1; bin < BIN_COUNT; bin++) {
    const bsize = BIN_SIZE[bin];
    const shift = bsize <= L.SMALL_OBJ_MAX ? L.SMALL_PAGE_SHIFT : bsize <= L.MEDIUM_OBJ_MAX ? L.MEDIUM_PAGE_SHIFT : L.LARGE_PAGE_SHIFT;
    for (const span of spansOf(shift)) {
      if (bsize > span) continue;
      const t = tableBytes(span, bsize);
      const n = Math.floor((span - t) / bsize);
      const what = `${bsize}-byte blocks in ${span} bytes`;
      assert.ok(2 * n <= t, `${what}: ${n} entries fit in ${t} bytes`);
      assert.ok(n < L.ENTRY_PENDING, `${what}: entries below the marks`);
      assert.is(t % Math.min(bsize & -bsize, 8192), 0, `${what}: blocks keep bsize's power-of-two alignment`);
      const plain = Math.floor(span / bsize);
      assert.ok(plain - n <= Math.ceil(t / bsize), `${what}: ${plain - n} blocks lost for a ${t}-byte table`);
      assert.ok(t < 2 * n + Math.min(bsize & -bsize, 8192) + bsize, `${what}: the table is no larger than its entries rounded up, and one block`);
    }
  }
  assert.is(tableBytes(65536, 16), 7296, "16-byte blocks: 3,640 entries, 11% of the page (the design's cost)");
  assert.is(tableBytes(65536, 64), 2048, "64-byte blocks: 992 blocks instead of 1,024 (3%)");
});

t.run();
