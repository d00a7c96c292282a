// Guard pages (secure level 1+, issue 6) and guarded allocations (mimalloc MI_GUARDED, any
// level): native writes made with libc memset through this runtime's FFI, in child processes
// (test/fixtures/secure-child.ts). A write into a guard page must kill the child with SIGSEGV;
// the same write inside the block must succeed. The buffer backend cannot protect memory:
// there the guards are a documented no-op that backend() reports.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { goodSize } from "../mod.ts";
import { describeChild, pinnedChildren, runChild } from "./_child.ts";

const t = suite("guarded");
/** For tests whose child fixes its own backend and levels: registered once per runtime. */
const tc = pinnedChildren(t);
const FFI = { TSMALLOC_BACKEND: "ffi" };

function expectSegv(args: string[], env: Record<string, string>, what: string): void {
  const c = runChild("secure-child", args, { ...FFI, ...env });
  assert.is(c.signal, "SIGSEGV", `${what}: expected SIGSEGV, got ${describeChild(c)}`);
  assert.ok(/writing/.test(c.stdout), `${what}: the child got as far as the write\n${describeChild(c)}`);
}

function expectOk(args: string[], env: Record<string, string>, what: string): Record<string, unknown> {
  const c = runChild("secure-child", args, { ...FFI, ...env });
  assert.ok(c.status === 0 && c.result !== null, `${what}: ${describeChild(c)}`);
  return c.result!;
}

for (const [size, level, kind] of [[100, "0", "small page"], [20000, "2", "medium page, secure 2"], [3 * 1024 * 1024, "0", "huge"]] as const) {
  tc(`guarded allocation of ${size} bytes (${kind}): memset of its usable size succeeds, one byte more is SIGSEGV`, () => {
    const r = expectOk(["guarded", String(size), "inside"], { TSMALLOC_SECURE: level }, "inside");
    assert.is(r.secure, Number(level));
    assert.is(r.usable, goodSize(size), "usableSize is goodSize (what an unsampled malloc gives), and all of it fits before the guard");
    assert.ok((r.protects as number) >= 1, `a guard page was protected (osCalls.protect ${r.protects})`);
    assert.ok(r.ok, "validate() after free and reuse");
    expectSegv(["guarded", String(size), "past"], { TSMALLOC_SECURE: level }, "past");
  });
}

for (const level of ["0", "2", "3"]) {
  tc(`a guarded allocation or a huge block freed twice, secure ${level}: the second free throws DoubleFreeError; a neighbour is intact (issue 11 review, low)`, () => {
    const r = expectOk(["guardedTwice"], { TSMALLOC_SECURE: level }, `guardedTwice ${level}`);
    const errors = r.errors as Record<string, string>;
    // (the block behind a guarded allocation is on a page: its side-table entry says free, every level)
    for (const size of ["64", "5000", "100000"]) assert.match(errors[size], /^DoubleFreeError: /, `guarded ${size}: ${errors[size]}`);
    // a huge block's header (before the block, never user data) says it was freed, at every level
    assert.match(errors[String(8 * 1024 * 1024)], /^DoubleFreeError: /, `huge: ${errors[8 * 1024 * 1024]}`);
    assert.ok(r.intact, "the live neighbour kept its contents");
    assert.ok(r.ok, "validate()");
  });
}

for (const level of ["0", "2"]) {
  tc(`arena guard pages, secure ${level}: one byte past an arena's last segment (its segment map follows), before its first (the segment headers' end) after its side tables, or in its second page (below segment 1's header) is SIGSEGV (session 30 review: at level 0 a 256-byte overflow of the last block rewrote the segment map, and malloc handed out live blocks)`, () => {
    expectSegv(["arenaEdge", "after"], { TSMALLOC_SECURE: level }, "past the last segment");
    expectSegv(["arenaEdge", "before"], { TSMALLOC_SECURE: level }, "before the first segment");
    expectSegv(["arenaEdge", "tables"], { TSMALLOC_SECURE: level }, "the reservation's last byte, after the side tables");
    expectSegv(["arenaEdge", "low"], { TSMALLOC_SECURE: level }, "the arena's second page, before segment 1's header (session 30, second review: a glibc chunk mapped right below an arena on Bun overflowed into it)");
    assert.is(expectOk(["arenaEdge", "header0"], { TSMALLOC_SECURE: level }, "the arena's unused first page").ok, true);
    if (level === "0") assert.is(expectOk(["arenaEdge", "inside"], { TSMALLOC_SECURE: level }, "the last segment's last byte").ok, true);
  });
}

tc("the shared root workerHandle() maps lies between guard pages at level 0 (session 30: a huge block, unguarded at level 0, mapped next to it could overflow into the worker table and the arena directory)", () => {
  expectSegv(["rootEdge", "before"], { TSMALLOC_SECURE: "0" }, "the byte before the root");
  expectSegv(["rootEdge", "after"], { TSMALLOC_SECURE: "0" }, "the byte after the root");
  assert.is(expectOk(["rootEdge", "inside"], { TSMALLOC_SECURE: "0" }, "the root's last byte").survived, true);
});

tc("guard pages, secure 1: a write into a segment's head guard or its tail guard is SIGSEGV", () => {
  expectSegv(["guard", "head"], { TSMALLOC_SECURE: "1" }, "head guard");
  expectSegv(["guard", "tail"], { TSMALLOC_SECURE: "1" }, "tail guard");
});

tc("guard pages, secure 4: the end of every page is a guard too (secure 1 leaves it writable)", () => {
  expectSegv(["guard", "page"], { TSMALLOC_SECURE: "4" }, "page 0's end guard at level 4");
  const r = expectOk(["guard", "page"], { TSMALLOC_SECURE: "1" }, "the same byte at level 1");
  assert.is(r.survived, true);
});

tc("guard budget (vm.max_map_count): past 3/4 of it guarded allocations become ordinary blocks, nothing fails", () => {
  const c = runChild("secure-child", ["budget"], FFI);
  assert.ok(c.status === 0 && c.result !== null, describeChild(c));
  const r = c.result!;
  // counted by where they end (at a page boundary), which 1 in 128 of the ~700 ordinary blocks share
  assert.ok((r.guarded as number) >= 12288 && (r.guarded as number) <= 12288 + 6, `guarded allocations up to 3/4 of the 16384-guard budget: ${r.guarded}`);
  assert.is(r.live, 12288, "validate().guardPages.live");
  assert.ok((r.skipped as number) > 0, "the rest are counted as skipped");
  assert.match(c.stderr, /guard pages are being skipped/, "and said once on stderr");
  assert.is(r.after, 0, "freeing them removed every guard");
  assert.ok(r.ok);
});

tc("workers: the allocator is not shared while guarded allocations are on or live, and they cannot be turned on once it is", () => {
  const c = runChild("secure-child", ["share"], FFI);
  assert.ok(c.status === 0 && c.result !== null, describeChild(c));
  const [whileOn, whileLive, afterShare] = c.result!.errors as string[];
  assert.match(whileOn, /not supported with guarded allocations/);
  assert.match(whileLive, /not supported with guarded allocations/);
  assert.match(afterShare, /not supported while the allocator is shared/);
  assert.is(c.result!.rate, 0);
});

tc("buffer backend: guards unavailable — a documented no-op reported by backend(), other secure features work", () => {
  const r = expectOk(["buffer"], { TSMALLOC_BACKEND: "buffer", TSMALLOC_SECURE: "4" }, "buffer, secure 4");
  assert.is(r.kind, "buffer");
  assert.is(r.secure, 4);
  assert.is(r.guardPages, false, "backend().guardPages");
  assert.match(r.reason as string, /guard pages unavailable/, "backend().reason says so");
  assert.is(r.usable, 160, "no guarded allocation: malloc(130) is an ordinary 160-byte block");
  assert.is(r.protects, 0, "nothing was protected");
  assert.is(r.doubleFree, "DoubleFreeError", "encoded lists and double-free checks still work");
  assert.ok(r.ok, "validate()");
});

t.run();
