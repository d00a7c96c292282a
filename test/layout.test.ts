// The fast paths spell layout constants as literals (see HOT_PATH_LITERALS in src/layout.ts);
// this fails when a constant changes and the literal copies were not updated with it.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as L from "../src/layout.ts";
import { segmentStart } from "../src/secure.ts";

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
    SEC_WORDS_SHIFT: Math.log2(L.SEC_WORDS), SEC_LOCAL: L.SEC_LOCAL, SEC_K0: L.SEC_K0, SEC_K1: L.SEC_K1,
    S_BITMAP: L.S_BITMAP, BITMAP_WORD_SHIFT: Math.log2(16 * 32), BITMAP_WORD_MASK: (L.SEGMENT_SIZE >> 9) - 1,
  };
  assert.equal(actual, { ...L.HOT_PATH_LITERALS });
});

t("page descriptors fit the segment header", () => {
  const pages = 1 << (L.SEGMENT_SHIFT - L.SMALL_PAGE_SHIFT);
  assert.ok((L.S_PAGES + pages * L.PAGE_WORDS) * 4 <= L.SEGMENT_HEADER_SIZE);
  assert.is(L.PAGE_WORDS, 16, "free.ts shifts by 4 for PAGE_WORDS");
});

t("the free bitmap (secure level 3+) has a bit per 16-byte granule and lies after the secure table, outside the header's records", () => {
  assert.is(L.BITMAP_BYTES * 8 * 16, L.SEGMENT_SIZE, "one bit per 16 bytes of the segment");
  assert.ok(L.S_BITMAP * 4 >= (L.S_SEC + 64 * L.SEC_WORDS) * 4, "after the secure records");
  assert.is(L.S_BITMAP * 4, L.SEGMENT_HEADER_SIZE, "right after the header: the head guard follows it");
  assert.is(L.S_BITMAP + L.BITMAP_BYTES / 4, L.S_BITMAP + (L.SEGMENT_SIZE >> 9), "a word per 512 bytes");
  for (const [level, fill] of [[0, false], [1, false], [2, false], [3, false], [4, false], [0, true], [2, true]] as const) {
    const [head, page0] = segmentStart(level, fill, 4096);
    const meta = L.SEGMENT_HEADER_SIZE + (level >= 3 || fill ? L.BITMAP_BYTES : 0);
    assert.ok(page0 % 8192 === 0, `level ${level}${fill ? " + debugFill" : ""}: page 0 is 8 KiB aligned (${page0})`);
    if (level === 0) assert.ok(head === 0 && page0 >= meta, `level ${level}: no head guard, page 0 after the metadata (${page0})`);
    else assert.ok(head >= meta && page0 >= head + 4096, `level ${level}: the head guard [${head}, +4096) lies between the metadata (${meta}) and page 0 (${page0})`);
  }
  assert.equal(segmentStart(2, false, 4096), [8192, 16384], "levels 1-2 keep their geometry");
  assert.equal(segmentStart(3, false, 4096), [40960, 49152], "level 3: the bitmap fills [8, 40) KiB, the head guard [40, 44) KiB");
});

t.run();
