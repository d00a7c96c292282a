#!/usr/bin/env node
// `npm run build` (also `prepack`): the npm package's contents under dist/.
//
//   dist/mod.js      mod.ts bundled by esbuild: ESM, node20 target, koffi external (loaded
//                    lazily with createRequire, never at import). One file for every runtime:
//                    Node imports it, and require()s it (require(esm), Node >= 20.19 / 22.12),
//                    Deno loads it from node_modules (Deno refuses .ts there), Bun as well.
//   dist/**/*.d.ts   declarations emitted by tsc from the same sources (mod.d.ts and the
//                    src/ and ffi/ files it imports types from), with relative ".ts" import
//                    paths rewritten to ".js" so that a consumer's tsc never sees a .ts path.
//
// Invariant: dist/ holds only what this script wrote (it is emptied first).
import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });

await build({
  entryPoints: [join(root, "mod.ts")],
  outfile: join(dist, "mod.js"),
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "external",
  sourcemap: true,
  logLevel: "warning",
});

// Declarations: emitted without a type check (noCheck; `deno check` and the consumer tests
// check types), since the sources use Deno and Bun globals that tsc does not know. The
// tsconfig lives in a temporary directory so the repository has no tsconfig.json for
// editors or Deno to pick up.
const tmp = mkdtempSync(join(tmpdir(), "tsmalloc-build-"));
try {
  const config = {
    compilerOptions: {
      // esnext: Symbol.dispose must be known, or tsc drops `[Symbol.dispose]()` from Heap
      target: "esnext",
      lib: ["esnext"],
      module: "nodenext",
      moduleResolution: "nodenext",
      declaration: true,
      emitDeclarationOnly: true,
      noCheck: true,
      allowImportingTsExtensions: true,
      stripInternal: true,
      types: [],
      rootDir: root,
      outDir: dist,
    },
    files: [join(root, "mod.ts")],
  };
  writeFileSync(join(tmp, "tsconfig.json"), JSON.stringify(config, null, 2));
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", join(tmp, "tsconfig.json")], { encoding: "utf8" });
  if (r.status !== 0) {
    console.error(r.stdout, r.stderr);
    throw new Error(`tsc failed to emit declarations (exit ${r.status ?? r.signal})`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

// "./x.ts" -> "./x.js" in every relative import/export specifier of the declarations.
let declarations = 0;
for (const file of walk(dist)) {
  if (!file.endsWith(".d.ts")) continue;
  const text = readFileSync(file, "utf8");
  const out = text.replace(/(\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)(["'])(\.{1,2}\/[^"']*?)\.ts\2/g, "$1$2$3.js$2");
  if (/(["'])\.{1,2}\/[^"']*\.ts\1/.test(out)) throw new Error(`${file}: a relative .ts path is left in the declarations`);
  writeFileSync(file, out);
  declarations++;
}
// `using heap = Heap.create()` needs Symbol.dispose in the consumer's lib (TS >= 5.2 has it
// in esnext.disposable); the reference pulls it in whatever their target is.
const modDts = join(dist, "mod.d.ts");
const modText = readFileSync(modDts, "utf8");
if (!modText.includes("[Symbol.dispose]()")) throw new Error("dist/mod.d.ts: Heap lost its [Symbol.dispose]() method");
writeFileSync(modDts, `/// <reference lib="esnext.disposable" />\n${modText}`);
console.log(`dist/mod.js and ${declarations} declaration files built`);

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* walk(p);
    else yield p;
  }
}
