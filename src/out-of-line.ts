/**
 * The fast paths' exits to their slow paths: calls V8 never inlines into the fast path.
 *
 * TurboFan charges a callee against a caller's inlining budget (920 bytes of bytecode) with
 * the bytecode the callee's own optimized code has inlined (js-inlining-heuristic.cc: a
 * candidate's total_size adds `GetInlinedBytecodeSize()` of its existing optimized code).
 * free's fast path, optimized on its own (called from code that did not inline it), inlined
 * its slow path when that path was hot — a page emptied by every free, huge blocks — and
 * then weighed 963 bytes: no caller's loop could inline it any more, and every address passed
 * to it was boxed into a HeapNumber (16 bytes of JS heap and 4–12 ns per operation, in a
 * third of the bench's processes on Deno; session 25). A call to a function read from an
 * array element, from a call site that has called several functions (megamorphic: warmed up
 * below), is one TurboFan cannot inline, so the fast paths stay their own size wherever they
 * were optimized. Their slow paths pay one generic call.
 *
 * A leaf module (no imports): the modules that register exits import it.
 */

// deno-lint-ignore no-explicit-any
type Exit = (a: any, b: number, c: number) => number;

const exits: Exit[] = [(_a, b) => b, (_a, b) => b + 1, (_a, b) => b + 2];
const WARM = exits.length;

/** Registers a slow path; the index its fast path passes to outOfLine1/2/3. */
export function registerExit(f: Exit): number {
  exits.push(f);
  return exits.length - 1;
}

/** exits[k](a): one argument. */
// deno-lint-ignore no-explicit-any
export function outOfLine1(k: number, a: any): number {
  return exits[k](a, 0, 0);
}

/** exits[k](a, b): two arguments. */
// deno-lint-ignore no-explicit-any
export function outOfLine2(k: number, a: any, b: number): number {
  return exits[k](a, b, 0);
}

/** exits[k](a, b, c): three arguments. */
// deno-lint-ignore no-explicit-any
export function outOfLine3(k: number, a: any, b: number, c: number): number {
  return exits[k](a, b, c);
}

// Each call site above sees every warm-up function, enough times for V8 to allocate its
// feedback (lazily, after a few calls) and record the site as megamorphic.
for (let i = 0; i < 64 * WARM; i++) {
  outOfLine1(i % WARM, null);
  outOfLine2(i % WARM, null, i);
  outOfLine3(i % WARM, null, i, 0);
}
