// Debug fill (option debugFill, issue 6): the debug-fill cases of mimalloc's
// test/test-api-fill.c that api-fill.test.ts cannot run in-process (debugFill is fixed at
// first use): uninit-{malloc,malloc_small,realloc,malloc_aligned,realloc_aligned}-{small,large}
// (every byte 0xD0, after a grow too) and fill-freed-{small,large} (every byte 0xDF after
// free: mimalloc keeps its link in word 0, our checked pages keep theirs out of band). Small = 512, large = 2048, aligned = 32, grow = x3.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { describeChild, pinnedChildren, runChild } from "./_child.ts";

const t = suite("fill");
/** For tests whose child fixes its own backend and levels: registered once per runtime. */
const tc = pinnedChildren(t);

for (const [backend, level] of [["ffi", "0"], ["ffi", "4"], ["buffer", "0"]] as const) {
  tc(`test-api-fill debug fill: 0xD0 fresh, 0xDF freed (${backend} backend, secure ${level})`, () => {
    const c = runChild("secure-child", ["fill"], { TSMALLOC_BACKEND: backend, TSMALLOC_SECURE: level, TSMALLOC_DEBUG_FILL: "1" });
    assert.ok(c.status === 0 && c.result !== null, describeChild(c));
    const r = c.result!;
    assert.is(r.secure, Number(level));
    assert.equal(r.fails, [], "every case holds its fill");
    assert.ok(r.cleanBefore, "validate() clean before the scribble");
    assert.ok(r.uafFound, "validate() finds a byte written into a freed block");
  });
}

t.run();
