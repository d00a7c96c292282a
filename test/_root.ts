// The repository root for tests that read the sources (the Node bundle runs from .out/test).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The nearest directory above `url` with package.json and deno.json. */
export function repoRoot(url: string): string {
  let dir = dirname(fileURLToPath(url));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "deno.json"))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error("no directory with package.json and deno.json above " + url);
    dir = up;
  }
}
