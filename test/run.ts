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
// Leftover handles (a worker a test forgot) must not hang the run: exit explicitly.
const code = Number(process.exitCode ?? 0);
setTimeout(() => process.exit(code), 20);
