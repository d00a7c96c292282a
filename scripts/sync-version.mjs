#!/usr/bin/env node
// The version has one source: package.json. `npm version <x>` bumps it and then runs this
// (the "version" script) to copy it into deno.json (the JSR package) before npm commits.
// test/version.test.ts fails when the two disagree.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const { version } = JSON.parse(readFileSync(root + "package.json", "utf8"));
const denoPath = root + "deno.json";
const text = readFileSync(denoPath, "utf8");
const deno = JSON.parse(text);
if (deno.version === version) process.exit(0);
// only the version line changes: the rest of deno.json keeps its formatting
const out = text.replace(/("version"\s*:\s*)"[^"]*"/, `$1${JSON.stringify(version)}`);
if (JSON.parse(out).version !== version) throw new Error("deno.json: no \"version\" field to update");
writeFileSync(denoPath, out);
console.log(`deno.json: version ${deno.version} -> ${version}`);
