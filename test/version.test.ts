// One source of the version: package.json (npm) and deno.json (JSR) must agree, and the
// CHANGELOG must have a section for it. `npm version <x>` keeps them in step through
// scripts/sync-version.mjs (package.json's "version" script).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { repoRoot } from "./_root.ts";

const root = repoRoot(import.meta.url);
const readJson = (name: string): Record<string, unknown> => JSON.parse(readFileSync(join(root, name), "utf8"));
const npm = readJson("package.json");
const jsr = readJson("deno.json");

const t = suite("version");

t("package.json and deno.json carry the same version", () => {
  assert.type(npm.version, "string");
  assert.is(jsr.version, npm.version, `deno.json ${String(jsr.version)} != package.json ${String(npm.version)}: run node scripts/sync-version.mjs`);
});

t("the version is semver", () => {
  assert.ok(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(String(npm.version)), String(npm.version));
});

t("CHANGELOG.md has a section for the version", () => {
  const log = readFileSync(join(root, "CHANGELOG.md"), "utf8");
  const v = String(npm.version).replace(/\./g, "\\.");
  assert.ok(new RegExp(`^## \\[?${v}\\]?`, "m").test(log), `no "## ${String(npm.version)}" heading in CHANGELOG.md`);
});

t("the files both packages publish exist", () => {
  const npmFiles = npm.files as string[];
  const jsrFiles = (jsr.publish as { include: string[] }).include;
  for (const f of [...npmFiles.filter((f) => f !== "dist/"), ...jsrFiles]) assert.ok(existsSync(join(root, f)), `${f} is listed for publishing but missing`);
});

t("package.json names the repository (https://github.com/tsmalloc/tsmalloc)", () => {
  assert.is((npm.repository as { url: string }).url, "git+https://github.com/tsmalloc/tsmalloc.git");
  assert.ok(Array.isArray(npm.keywords) && (npm.keywords as string[]).includes("mimalloc"));
});

t.run();
