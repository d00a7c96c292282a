// The one test entry point for Node (bundled to .out/test/run.js), Deno and Bun (run as .ts).
// It imports every sibling *.test.ts (or *.test.js in the bundle) into one uvu queue and
// runs them in order, so all files share one instance of mod.ts. A file that fails to
// load becomes a failing test, so it is counted instead of silently missing.
//
//   node scripts/test-all.mjs                 all runtimes x backends (npm test)
//   deno run -A test/run.ts [filter...]       one runtime; filters match file names
//   bun test/run.ts os                        (`bun test` would use bun:test instead)
import { readdirSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";

type Q = { UVU_DEFER?: number; UVU_INDEX?: number; UVU_QUEUE?: unknown[][] };
const g = globalThis as Q;
g.UVU_DEFER = 1; // must be set before uvu is first loaded
const uvu = await import("uvu");

const ext = import.meta.url.endsWith(".js") ? ".js" : ".ts";
const dir = fileURLToPath(new URL(".", import.meta.url));
const filters = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".test" + ext))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();

if (files.length === 0) {
  console.error(`no test files matched in ${dir}`);
  process.exit(1);
}

// Wall time per file: a runner that starts the clock goes first in the file's group and one
// that stops it goes last (a runner returns [errors, ran, skipped, total], as uvu's suites do).
// Printed after uvu's summary as "file times (s): name=12.3 ..." so CI time can be attributed.
const times: [string, number][] = [];
function timeFile(i: number, file: string): void {
  const group = g.UVU_QUEUE![i];
  let t0 = 0;
  group.splice(1, 0, () => ((t0 = performance.now()), ["", 0, 0, 0]));
  group.push(() => (times.push([file, (performance.now() - t0) / 1000]), ["", 0, 0, 0]));
}

for (const [i, file] of files.entries()) {
  g.UVU_INDEX = i;
  g.UVU_QUEUE!.push([file]);
  let error: unknown = null;
  try {
    await import(new URL("./" + file, import.meta.url).href);
    // A suite that was defined but never .run() would silently contribute nothing.
    if (g.UVU_QUEUE![i].length < 2) error = new Error(`${file} registered no tests (missing suite.run()?)`);
  } catch (e) {
    error = e;
  }
  timeFile(i, file);
  if (error !== null) {
    // Report it as a failed test of that file, so the run's totals count it.
    const t = uvu.suite(file);
    t("loads and registers its tests", () => {
      throw error;
    });
    t.run();
  }
}

await uvu.exec();
times.sort((a, b) => b[1] - a[1]);
console.log("file times (s): " + times.map(([f, s]) => `${f.replace(/\.test\.[jt]s$/, "")}=${s.toFixed(1)}`).join(" "));
// Leftover handles (a worker a test forgot) must not hang the run: exit explicitly.
const code = Number(process.exitCode ?? 0);
setTimeout(() => process.exit(code), 20);
