// The "auto" backend's fallback to buffer memory is never silent (issue 12, item 4): one
// line on stderr, once, naming the cause and the fix; TSMALLOC_WARN_FALLBACK=0 and
// configure({ warnFallback: false }) silence it. Plus the Node FFI choice (node:ffi or koffi,
// TSMALLOC_NODE_FFI / configure({ nodeFfi })) and koffi loading from a CommonJS bundle.
// Every scenario runs test/fixtures/fallback-child in a fresh process of this runtime.
import { spawnSync } from "node:child_process";
import { NODE_EXIT_DEADLOCK_FLAGS } from "./_child.ts";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { detectRuntime, type NodeFfiWant, selectOs } from "../ffi/select.ts";

const t = suite("fallback");
const runtime = detectRuntime();
const nodeMajor = runtime === "node" ? Number(process.versions.node.split(".")[0]) : 0;
const bundled = import.meta.url.endsWith(".js");
const fixture = fileURLToPath(new URL(`./fixtures/fallback-child${bundled ? ".js" : ".ts"}`, import.meta.url));
/** The fixture's TypeScript source (Node runs a bundle of it from .out/test-<pid>/). */
const fixtureSource = fileURLToPath(new URL(bundled ? "../../test/fixtures/fallback-child.ts" : "./fixtures/fallback-child.ts", import.meta.url));
const WARNING = /tsmalloc: warning: using the buffer backend/;

interface Child {
  status: number | null;
  stderr: string;
  result: { kind: string; ffi: string | null; reason: string } | null;
  /** fallback warning lines on stderr */
  warnings: string[];
}

/**
 * Runs the fixture. `flags` go to the runtime (Deno: instead of the default permissions),
 * `options` to configure(); TSMALLOC_BACKEND defaults to auto and the warning variables to unset.
 */
function child(o: { flags?: string[]; options?: object; env?: Record<string, string>; file?: string } = {}): Child {
  const exe = runtime === "deno" ? (globalThis as unknown as { Deno: { execPath(): string } }).Deno.execPath() : process.execPath;
  const file = o.file ?? fixture;
  const args = o.options === undefined ? [] : [JSON.stringify(o.options)];
  const argv = runtime === "deno"
    ? ["run", "--no-prompt", ...(o.flags ?? ["--allow-env", "--allow-read", "--allow-ffi"]), file, ...args]
    : runtime === "node" ? [...NODE_EXIT_DEADLOCK_FLAGS, ...(o.flags ?? []), file, ...args] : [...(o.flags ?? []), file, ...args];
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1", TSMALLOC_BACKEND: "auto", TSMALLOC_SECURE: "0", ...o.env };
  for (const k of ["TSMALLOC_WARN_FALLBACK", "TSMALLOC_NODE_FFI"]) if (o.env?.[k] === undefined) delete env[k];
  const r = spawnSync(exe, argv, { env, encoding: "utf8", timeout: 60_000 });
  if (r.error) throw r.error;
  const stdout = String(r.stdout ?? ""), stderr = String(r.stderr ?? "");
  const line = stdout.split("\n").find((l) => l.startsWith("RESULT "));
  return {
    status: r.status,
    stderr,
    result: line === undefined ? null : JSON.parse(line.slice(7)),
    warnings: stderr.split("\n").filter((l) => WARNING.test(l)),
  };
}
const show = (c: Child) => `exit ${c.status}\n  stderr: ${c.stderr.trim().split("\n").slice(-5).join("\n    ")}`;

/**
 * A child of this runtime that cannot use FFI, and the words its fix must contain. Deno: no
 * --allow-ffi. Node: only node:ffi allowed (TSMALLOC_NODE_FFI), and on Node >= 26 it is switched
 * off with --no-experimental-ffi. Bun: bun:ffi cannot be switched off (null).
 */
const noFfi: { flags?: string[]; env?: Record<string, string>; fix: string } | null = runtime === "deno"
  ? { flags: ["--allow-env", "--allow-read"], fix: "run deno with --allow-ffi" }
  : runtime === "node"
  ? { flags: nodeMajor >= 26 ? ["--no-experimental-ffi"] : [], env: { TSMALLOC_NODE_FFI: "node:ffi" }, fix: "use Node >= 26" }
  : null;

if (runtime === "deno") {
  t("deno: a scoped --allow-ffi=<path of libc> falls back, and the warning says the unscoped flag is needed (Deno's pointer views refuse scoped grants)", () => {
    const libc = ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib64/libc.so.6"].find((f) => existsSync(f));
    assert.ok(libc !== undefined, "libc.so.6 at a known path");
    const c = child({ flags: ["--allow-env", "--allow-read", `--allow-ffi=${libc}`] });
    assert.is(c.status, 0, show(c));
    assert.is(c.result?.kind, "buffer", show(c));
    assert.is(c.warnings.length, 1, show(c));
    assert.match(c.warnings[0], "a scoped --allow-ffi=<path> is not enough");
    assert.match(c.warnings[0], "Fix: run deno with --allow-ffi (unscoped)");
  });
}

if (noFfi !== null) {
  t(`${runtime}: auto without FFI warns once on stderr, naming the cause and the fix`, () => {
    const c = child(noFfi);
    assert.is(c.status, 0, show(c));
    assert.is(c.result?.kind, "buffer", show(c));
    assert.is(c.result?.ffi, null);
    assert.is(c.warnings.length, 1, show(c));
    const w = c.warnings[0];
    assert.match(w, runtime === "deno" ? "Deno without --allow-ffi" : "node:ffi is not available");
    assert.match(w, `Fix: ${noFfi.fix}`);
    assert.match(w, "TSMALLOC_WARN_FALLBACK=0");
    assert.match(c.result!.reason, `fix: ${noFfi.fix}`);
  });

  t(`${runtime}: TSMALLOC_WARN_FALLBACK=0 and configure({ warnFallback: false }) silence the warning, not the fallback`, () => {
    for (const c of [
      child({ ...noFfi, env: { ...noFfi.env, TSMALLOC_WARN_FALLBACK: "0" } }),
      child({ ...noFfi, env: { ...noFfi.env, TSMALLOC_WARN_FALLBACK: "false" } }),
      child({ ...noFfi, options: { warnFallback: false } }),
      // the option wins over the variable
      child({ ...noFfi, options: { warnFallback: false }, env: { ...noFfi.env, TSMALLOC_WARN_FALLBACK: "1" } }),
    ]) {
      assert.is(c.status, 0, show(c));
      assert.is(c.result?.kind, "buffer");
      assert.is(c.warnings.length, 0, show(c));
      assert.not.match(c.stderr, "tsmalloc:");
    }
    const on = child({ ...noFfi, options: { warnFallback: true }, env: { ...noFfi.env, TSMALLOC_WARN_FALLBACK: "0" } });
    assert.is(on.warnings.length, 1, show(on));
  });

  t(`${runtime}: backend "ffi" without FFI fails loudly at configure(), naming the fix`, () => {
    const c = child({ ...noFfi, options: { backend: "ffi" } });
    assert.is(c.status, 1, show(c));
    assert.is(c.result, null);
    assert.match(c.stderr, "ffi backend requested, but FFI is unavailable");
    assert.match(c.stderr, `fix: ${noFfi.fix}`);
    assert.is(c.warnings.length, 0);
  });
} else {
  t("bun: bun:ffi cannot be switched off, so the fallback itself cannot be provoked; auto is bun:ffi and silent", () => {
    const c = child();
    assert.is(c.status, 0, show(c));
    assert.is(c.result?.ffi, "bun");
    assert.is(c.warnings.length, 0, show(c));
  });
}

t(`${runtime}: no warning when FFI is live or the buffer backend was asked for`, () => {
  const live = child();
  assert.is(live.status, 0, show(live));
  assert.ok(live.result?.kind !== "buffer", show(live));
  assert.is(live.warnings.length, 0, show(live));
  for (const c of [child({ env: { TSMALLOC_BACKEND: "buffer" } }), child({ options: { backend: "buffer" } })]) {
    assert.is(c.status, 0, show(c));
    assert.is(c.result?.kind, "buffer");
    assert.is(c.warnings.length, 0, show(c));
  }
});

t(`${runtime}: a bad TSMALLOC_WARN_FALLBACK, TSMALLOC_NODE_FFI or option is a specific error`, () => {
  const env = child({ env: { TSMALLOC_WARN_FALLBACK: "maybe" } });
  assert.is(env.status, 1, show(env));
  assert.match(env.stderr, /TSMALLOC_WARN_FALLBACK must be 0, 1, true or false, got "maybe"/);
  const opt = child({ options: { warnFallback: "no" } });
  assert.is(opt.status, 1, show(opt));
  assert.match(opt.stderr, /warnFallback must be a boolean/);
  const nf = child({ options: { nodeFfi: "ffi" } });
  assert.is(nf.status, 1, show(nf));
  assert.match(nf.stderr, /nodeFfi must be "auto", "node:ffi" or "koffi", got "ffi"/);
  const nfEnv = child({ env: { TSMALLOC_NODE_FFI: "libffi" } });
  assert.is(nfEnv.status, 1, show(nfEnv));
  assert.match(nfEnv.stderr, /TSMALLOC_NODE_FFI must be "auto", "node:ffi" or "koffi", got "libffi"/);
  assert.throws(() => selectOs("auto", "koffi " as NodeFfiWant), /nodeFfi must be/);
});

if (runtime === "node") {
  t(`node ${nodeMajor}: nodeFfi picks the shim; auto is ${nodeMajor >= 26 ? "node:ffi" : "koffi (no node:ffi before Node 26)"}`, () => {
    const auto = child();
    assert.is(auto.result?.ffi, nodeMajor >= 26 ? "node:ffi" : "koffi", show(auto));
    const koffi = child({ options: { nodeFfi: "koffi" } });
    assert.is(koffi.result?.ffi, "koffi", show(koffi));
    const viaEnv = child({ env: { TSMALLOC_NODE_FFI: "koffi" } });
    assert.is(viaEnv.result?.ffi, "koffi", show(viaEnv));
    const nodeFfi = child({ options: { nodeFfi: "node:ffi" } });
    if (nodeMajor >= 26) assert.is(nodeFfi.result?.ffi, "node:ffi", show(nodeFfi));
    else {
      assert.is(nodeFfi.result?.kind, "buffer", show(nodeFfi));
      assert.is(nodeFfi.warnings.length, 1, show(nodeFfi));
    }
    for (const c of [auto, koffi, viaEnv]) assert.is(c.warnings.length, 0, show(c));
  });

  t(`node ${nodeMajor}: the permission model without ${nodeMajor >= 26 ? "--allow-ffi" : "--allow-addons"} falls back and the warning names the flags`, () => {
    const perm = nodeMajor >= 22 ? "--permission" : "--experimental-permission";
    const c = child({ flags: [perm, "--allow-fs-read=*"] });
    assert.is(c.status, 0, show(c));
    assert.is(c.result?.kind, "buffer", show(c));
    assert.is(c.warnings.length, 1, show(c));
    assert.match(c.warnings[0], "the permission model is on: allow FFI with --allow-ffi");
    assert.match(c.warnings[0], "--allow-addons (koffi)");
    if (nodeMajor >= 26) {
      const allowed = child({ flags: [perm, "--allow-fs-read=*", "--allow-ffi"] });
      assert.is(allowed.result?.ffi, "node:ffi", show(allowed));
      assert.is(allowed.warnings.length, 0, show(allowed));
    }
  });

  t(`node ${nodeMajor}: koffi loads from an esbuild CommonJS bundle (import.meta is empty there), never a silent fallback`, async () => {
    const esbuild = await import("esbuild");
    const dir = `${process.cwd()}/.out/cjs-${process.pid}/`; // under the repository: koffi resolves from its node_modules
    mkdirSync(dir, { recursive: true });
    const out = dir + "fallback-child.cjs";
    try {
      await esbuild.build({
        entryPoints: [fixtureSource], outfile: out, bundle: true, format: "cjs", platform: "node", target: "node20",
        external: ["koffi"], logLevel: "silent",
      });
      const c = child({ file: out, options: { backend: "ffi", nodeFfi: "koffi" } });
      assert.is(c.status, 0, show(c));
      assert.is(c.result?.kind, "node", show(c));
      assert.is(c.result?.ffi, "koffi", show(c));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  t(`node ${nodeMajor}: without koffi installed (a bundle outside any node_modules) ${nodeMajor >= 26 ? "node:ffi serves, silently" : "auto falls back and names both fixes"}`, async () => {
    const esbuild = await import("esbuild");
    const dir = mkdtempSync(`${tmpdir()}/tsmalloc-nokoffi-`);
    try {
      for (const format of ["esm", "cjs"] as const) {
        const out = `${dir}/child.${format === "esm" ? "mjs" : "cjs"}`;
        await esbuild.build({
          entryPoints: [fixtureSource], outfile: out, bundle: true, format, platform: "node", target: "node20",
          external: ["koffi"], logLevel: "silent",
        });
        const auto = child({ file: out });
        assert.is(auto.status, 0, show(auto));
        if (nodeMajor >= 26) {
          assert.is(auto.result?.ffi, "node:ffi", show(auto));
          assert.is(auto.warnings.length, 0, show(auto));
        } else {
          assert.is(auto.result?.kind, "buffer", show(auto));
          assert.is(auto.warnings.length, 1, show(auto));
          assert.match(auto.warnings[0], "koffi could not be loaded");
          assert.match(auto.warnings[0], "Fix: use Node >= 26 (built-in node:ffi) or install koffi");
        }
        const koffi = child({ file: out, options: { nodeFfi: "koffi" } });
        assert.is(koffi.result?.kind, "buffer", show(koffi));
        assert.is(koffi.warnings.length, 1, show(koffi));
        assert.match(koffi.warnings[0], "Fix: install koffi (npm install koffi)");
        const loud = child({ file: out, options: { nodeFfi: "koffi", backend: "ffi" } });
        assert.is(loud.status, 1, show(loud));
        assert.match(loud.stderr, "ffi backend requested, but FFI is unavailable on Node: koffi: koffi could not be loaded");
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

t.run();
