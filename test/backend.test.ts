// The allocator (mod.ts) runs on the backend the runner asked for. The runner sets
// TSMALLOC_BACKEND (auto|ffi|buffer), TSMALLOC_EXPECT_BACKEND (node|deno|bun|buffer) and
// TSMALLOC_EXPECT_FFI (node:ffi|koffi|deno|bun|null) per run; the Deno run without
// --allow-ffi uses "auto" and must land on "buffer", saying why.
import process from "node:process";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { backend, free, malloc, usableSize } from "../mod.ts";
import { detectRuntime } from "../ffi/select.ts";

const t = suite("backend");
const want = process.env.TSMALLOC_BACKEND ?? "auto";
const expected = process.env.TSMALLOC_EXPECT_BACKEND;
const expectedFfi = process.env.TSMALLOC_EXPECT_FFI;

t("backend() reports the expected kind and a reason", () => {
  const b = backend();
  assert.ok(["node", "deno", "bun", "buffer"].includes(b.kind), b.kind);
  if (expected) assert.is(b.kind, expected, `backend ${b.kind} (${b.reason})`);
  if (want === "buffer") assert.is(b.kind, "buffer");
  if (want === "ffi") assert.is(b.kind, detectRuntime());
  assert.type(b.reason, "string");
  assert.ok(b.reason.length > 0, "empty reason");
  if (want === "auto" && b.kind === "buffer" && detectRuntime() === "deno") assert.match(b.reason, "--allow-ffi");
});

t("backend().ffi names the live FFI, consistent with kind", () => {
  const b = backend();
  if (expectedFfi) assert.is(String(b.ffi), expectedFfi, `ffi ${b.ffi} (${b.reason})`);
  if (b.kind === "buffer") assert.is(b.ffi, null);
  else if (b.kind === "node") assert.ok(b.ffi === "node:ffi" || b.ffi === "koffi", String(b.ffi));
  else assert.is(b.ffi, b.kind);
  if (b.ffi === "node:ffi" || b.ffi === "koffi") assert.match(b.reason, `(${b.ffi}`);
});

t("the chosen backend allocates", () => {
  const p = malloc(100);
  assert.ok(p > 0);
  assert.ok(usableSize(p) >= 100);
  free(p);
});

t.run();
