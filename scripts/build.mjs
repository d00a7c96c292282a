#!/usr/bin/env node
// `npm run build`: the npm package's JavaScript. Node 20 cannot import .ts, so mod.ts is
// bundled to dist/mod.js (ESM, node20 target: `using`/Symbol.dispose-safe); koffi stays an
// external dependency. Deno and Bun import the .ts sources directly (package "exports").
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
await build({
  entryPoints: [root + "mod.ts"],
  outfile: root + "dist/mod.js",
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "external",
  sourcemap: true,
  logLevel: "warning",
});
console.log("dist/mod.js built");
