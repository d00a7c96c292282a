// The shape of src/ (issue 15, STYLE.md): no import cycles between its modules, and no
// runtime imports (node:, Deno, bun:) — those belong to ffi/. Read from the sources, so the
// check runs the same on every runtime.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { repoRoot } from "./_root.ts";

const t = suite("architecture");
const src = join(repoRoot(import.meta.url), "src");

interface Import {
  from: string;
  /** Erased by TypeScript (`import type`, or every named binding marked `type`): no edge at run time. */
  typeOnly: boolean;
}

/** The static imports and re-exports of one module. */
export function importsOf(text: string): Import[] {
  const out: Import[] = [];
  const re = /^(?:import|export)\s+(type\s+)?([^;]*?)\s+from\s+"([^"]+)"/gm;
  for (const m of text.matchAll(re)) {
    const names = m[2].trim();
    const list = /^\{([\s\S]*)\}$/.exec(names)?.[1].split(",").map((x) => x.trim()).filter(Boolean);
    out.push({ from: m[3], typeOnly: m[1] !== undefined || (list !== undefined && list.every((x) => x.startsWith("type "))) });
  }
  for (const m of text.matchAll(/^import\s+"([^"]+)"/gm)) out.push({ from: m[1], typeOnly: false });
  return out;
}

/** Strongly connected components with more than one module (or a self-import): the import cycles. */
export function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], on = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(c.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

function srcGraph(): { graph: Map<string, string[]>; foreign: string[] } {
  const graph = new Map<string, string[]>();
  const foreign: string[] = [];
  for (const f of readdirSync(src).filter((x) => x.endsWith(".ts")).sort()) {
    const edges: string[] = [];
    for (const imp of importsOf(readFileSync(join(src, f), "utf8"))) {
      if (!imp.from.startsWith("./")) {
        if (!imp.typeOnly) foreign.push(`${f} imports ${imp.from}`);
        continue;
      }
      if (!imp.typeOnly) edges.push(imp.from.slice(2));
    }
    graph.set(f, edges);
  }
  return { graph, foreign };
}

t("the cycle finder finds a cycle (so the next test could fail)", () => {
  assert.equal(cycles(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]])), [["a", "b", "c"]]);
  assert.equal(cycles(new Map([["a", ["b"]], ["b", []]])), []);
  const imps = importsOf(`import { x } from "./a.ts";\nimport type { Y } from "./b.ts";\nimport { type Z } from "./c.ts";\nexport { w } from "./d.ts";`);
  assert.equal(imps.map((i) => [i.from, i.typeOnly]), [["./a.ts", false], ["./b.ts", true], ["./c.ts", true], ["./d.ts", false]]);
});

t("src/ has no import cycles (type-only imports are erased and do not count)", () => {
  const { graph } = srcGraph();
  assert.ok(graph.size >= 20, `read src/ (${graph.size} modules)`);
  assert.equal(cycles(graph), [], "import cycles in src/");
});

t("src/ imports no runtime module (node:, npm:, jsr:, bun:): the runtimes are ffi/'s business", () => {
  assert.equal(srcGraph().foreign, []);
});

t.run();
