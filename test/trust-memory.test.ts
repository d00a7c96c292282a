// Issue 11, "an allocator never lies" about memory: realloc growth is amortized (item 16),
// large zeroing and fills work past the runtime's largest view and never orphan a block on an
// error path (item 6), and a heap that would refuse an allocation collects and retries first
// (item 14). Secure-mode items (8, 9, 10) are in test/trust-secure.test.ts.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { bytes, calloc, collect, free, goodSize, Heap, malloc, realloc, stats, usableSize, validate } from "../mod.ts";

const t = suite("trust-memory");
const KiB = 1024;
const MiB = 1024 * KiB;

t("realloc growth is amortized (issue 11 item 16): 4 KiB -> 32 MiB by 4 KiB steps moves a few dozen times and copies < 4x the final size", () => {
  let p = malloc(4096);
  bytes(p, 1)[0] = 1;
  let moves = 0, copied = 0;
  const FINAL = 32 * MiB;
  for (let n = 8192; n <= FINAL; n += 4096) {
    const u = usableSize(p);
    const q = realloc(p, n);
    assert.ok(q !== 0, `realloc to ${n} gave 0`);
    if (q !== p) {
      moves++;
      copied += Math.min(u, n);
    }
    p = q;
    bytes(p + n - 1, 1)[0] = (n >>> 12) & 255; // the last byte of each step: kept by every later move
  }
  assert.ok(usableSize(p) >= FINAL);
  // every mark written along the way is still there
  assert.is(bytes(p, 1)[0], 1);
  for (let n = 8192; n <= FINAL; n += 4096) {
    if (bytes(p + n - 1, 1)[0] !== ((n >>> 12) & 255)) assert.unreachable(`byte ${n - 1} lost`);
  }
  assert.ok(moves <= 60, `moves ${moves}`);
  assert.ok(copied <= 4 * FINAL, `copied ${copied} bytes (${(copied / FINAL).toFixed(2)}x the final size)`);
  free(p);
  assert.ok(validate().ok);
});

t("huge sizes round up in steps of at most 12.5% (as mimalloc), and goodSize equals usableSize(malloc(n))", () => {
  const sizes = [2 * MiB + 1, 2 * MiB + 300 * KiB, 5 * MiB + 1, 8 * MiB - 1, 8 * MiB + 1, 20 * MiB + 3, 32 * MiB + 1, 100 * MiB + 7];
  for (const n of sizes) {
    const p = malloc(n);
    assert.ok(p !== 0, `malloc(${n})`);
    const u = usableSize(p);
    assert.ok(u >= n && u - n <= n / 8, `usableSize(malloc(${n})) = ${u}: a step of at most 12.5%`);
    assert.is(goodSize(n), u, `goodSize(${n})`);
    free(p);
  }
});

t("realloc of a huge block shrinks and grows in place while its mapping allows, contents kept", () => {
  const p = malloc(3 * MiB);
  const a = bytes(p, 64);
  for (let i = 0; i < 64; i++) a[i] = i;
  const q = realloc(p, 24 * MiB); // moves: a mapping with room to grow
  assert.ok(q !== 0);
  const r = realloc(q, 30 * MiB); // inside the room: in place
  assert.is(r, q, "grown in place");
  const s = realloc(r, 34 * MiB); // room was 1.5 * 24 MiB = 36 MiB
  assert.is(s, q, "grown in place again");
  assert.ok(usableSize(s) >= 34 * MiB);
  const b = bytes(s, 64);
  for (let i = 0; i < 64; i++) assert.is(b[i], i);
  bytes(s + 34 * MiB - 1, 1)[0] = 7; // the grown part is ours
  free(s);
  assert.ok(validate().ok);
});

t.run();
