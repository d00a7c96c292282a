// Options (issue 5): getOption/setOption and TSMALLOC_<NAME> environment variables.
//   - every option has a default (or its environment value), round-trips through setOption
//   - unknown names are RangeError, wrong types TypeError, out-of-range values RangeError
//   - sizes accept "64MiB"-style strings; environment values are parsed strictly
//     (booleans 1/0/true/false/yes/no/on/off, integers, sizes) and a bad one names the variable
//   - the environment is read without ever throwing or prompting (Deno without --allow-env)
//   - knobs without a test elsewhere have a visible effect here: eagerCommit, arenaReserve,
//     verbose, showStats (memory.test.ts covers purgeDelay, arenaPurgeMult, purgeDecommits,
//     hugeCacheMax; budget.test.ts maxCommitted and maxReserved)
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { configure, free, getOption, Heap, type OptionName, reserveOsMemory, setOption, stats } from "../mod.ts";
import { readEnv } from "../ffi/env.ts";
import { newArena } from "../src/arena.ts";
import { ctx } from "../src/context.ts";
import {
  envName, OPTION_NAMES, OPTION_SPECS, optionsFromEnv, parseOptionText, parseSize,
} from "../src/options.ts";
import { env } from "./_util.ts";
import { dropHugeCache, MiB } from "./_mem.ts";

const t = suite("options");

const DEFAULTS: Record<OptionName, number | boolean> = {
  purgeDelay: 10,
  arenaPurgeMult: 10,
  purgeDecommits: true,
  eagerCommit: false,
  arenaReserve: 1024 * MiB,
  maxReserved: 0,
  maxCommitted: 0,
  hugeCacheMax: 256 * MiB,
  verbose: 0,
  showStats: false,
  secure: 0,
  debugFill: false,
  guardedMin: 0,
  guardedMax: 1024 * MiB,
  guardedSampleRate: 0,
  track: false,
  trackSampleRate: 1,
  leakCheck: false,
};

/** Runs f with every option saved and restored afterwards. */
function keeping(f: () => void): void {
  const saved = OPTION_NAMES.map((n) => [n, getOption(n)] as const);
  try {
    f();
  } finally {
    for (const [n, v] of saved) setOption(n, v as never);
  }
}

t("configure() throws TypeError for a key it does not have (a typo, or one of setOption's), before anything else, and for a non-object (session 30 review: configure({ securee: 4, guardedSampleRate: 1 }) was accepted and did nothing)", () => {
  const conf = configure as (o: unknown) => void;
  for (const o of [{ securee: 4 }, { secure: 1, guardedSampleRate: 1 }, { Backend: "ffi" }]) {
    assert.throws(() => conf(o), (e: Error) => e instanceof TypeError && /configure\(\) has no option "(securee|guardedSampleRate|Backend)"/.test(e.message), JSON.stringify(o));
  }
  for (const o of [null, 3, "secure"]) assert.throws(() => conf(o), (e: Error) => e instanceof TypeError, String(o));
  assert.is(getOption("guardedSampleRate"), 0, "nothing applied");
});

t("every option has its default, or the value of its TSMALLOC_<NAME> variable", () => {
  assert.equal([...OPTION_NAMES].sort(), Object.keys(DEFAULTS).sort(), "the option list");
  for (const n of OPTION_NAMES) {
    const text = env(envName(n));
    let want = text !== undefined ? parseOptionText(n, text) : DEFAULTS[n];
    // the buffer backend starts with 256 MiB arenas unless arenaReserve is set
    if (n === "arenaReserve" && text === undefined && stats().backend === "buffer") want = 256 * MiB;
    assert.is(getOption(n), want, n);
  }
});

t("setOption round-trips valid values for every option", () => {
  keeping(() => {
    const values: Record<OptionName, (number | boolean | string)[]> = {
      purgeDelay: [-1, 0, 250, 10],
      arenaPurgeMult: [1, 1000, 10],
      purgeDecommits: [false, true],
      eagerCommit: [true, false],
      arenaReserve: [4 * MiB, "64MiB", "1GiB", 2040 * MiB],
      maxReserved: [0, "16 TiB", 12345],
      maxCommitted: [0, "512M", 1],
      hugeCacheMax: [0, "1.5GiB", 256 * MiB],
      verbose: [0, 1, 2, 0],
      showStats: [true, false],
      // fixed at first use: only the current value round-trips (secure.test.ts covers the rest)
      secure: [getOption("secure")],
      debugFill: [getOption("debugFill")],
      guardedMin: [16, "4KiB", 0],
      guardedMax: [4096, "1GiB"],
      guardedSampleRate: [1000, 0],
      track: [true, false],
      trackSampleRate: [0, 100, 1],
      leakCheck: [true, false],
    };
    for (const n of OPTION_NAMES) {
      for (const v of values[n]) {
        setOption(n, v as never);
        assert.is(getOption(n), typeof v === "string" ? parseSize(v) : v, `${n} = ${String(v)}`);
      }
    }
  });
});

t("a bigint or an object as a value is named as such in the TypeError (review round 10: \"got 10\" for 10n)", () => {
  assert.throws(() => setOption("maxCommitted", 10n as unknown as number), (e: Error) => e instanceof TypeError && /got 10n \(a bigint\)/.test(e.message));
  assert.throws(() => setOption("purgeDelay", new Number(5) as unknown as number), (e: Error) => e instanceof TypeError && /got an object/.test(e.message));
});

t("unknown option names are RangeError; non-string names TypeError", () => {
  for (const bad of ["purge_delay", "PurgeDelay", "purgedelay", "guarded_min", "", "toString", "__proto__", "arenaMax"]) {
    assert.throws(() => getOption(bad as OptionName), RangeError, `getOption(${JSON.stringify(bad)})`);
    assert.throws(() => setOption(bad as OptionName, 1 as never), RangeError, `setOption(${JSON.stringify(bad)})`);
  }
  assert.throws(() => getOption(1 as unknown as OptionName), TypeError);
  assert.throws(() => setOption(undefined as unknown as OptionName, 1 as never), TypeError);
  try {
    getOption("purgeDelya" as OptionName);
  } catch (e) {
    assert.match((e as Error).message, "purgeDelay", "the message lists the known names");
  }
});

t("bad values: wrong types are TypeError, out of range RangeError, and nothing changes", () => {
  const cases: [OptionName, unknown, ErrorConstructor][] = [
    ["purgeDelay", "10", TypeError],
    ["purgeDelay", true, TypeError],
    ["purgeDelay", -2, RangeError],
    ["purgeDelay", 1.5, RangeError],
    ["purgeDelay", NaN, RangeError],
    ["purgeDelay", Infinity, RangeError],
    ["purgeDelay", 2 ** 31, RangeError],
    ["arenaPurgeMult", 0, RangeError],
    ["purgeDecommits", 1, TypeError],
    ["purgeDecommits", "true", TypeError],
    ["eagerCommit", null, TypeError],
    ["arenaReserve", 1 * MiB, RangeError],
    ["arenaReserve", 4 * 1024 * MiB, RangeError],
    ["arenaReserve", "lots", RangeError],
    ["maxCommitted", -1, RangeError],
    ["maxCommitted", 0.5, RangeError],
    ["maxCommitted", "64 MiBs", RangeError],
    ["maxCommitted", "-64MiB", RangeError],
    ["maxCommitted", {}, TypeError],
    ["maxReserved", 2 ** 53, RangeError],
    ["hugeCacheMax", undefined, TypeError],
    ["verbose", 3, RangeError],
    ["verbose", true, TypeError],
    ["showStats", "yes", TypeError],
  ];
  for (const [n, v, E] of cases) {
    const before = getOption(n);
    assert.throws(() => setOption(n, v as never), (e: unknown) => e instanceof E, `setOption(${n}, ${String(v)}) should throw ${E.name}`);
    assert.is(getOption(n), before, `${n} unchanged after a bad value`);
  }
});

t("parseSize: bytes, K/M/G/T with optional iB/B (binary), decimals; anything else NaN", () => {
  const ok: [string, number][] = [
    ["0", 0], ["4096", 4096], ["1k", 1024], ["1K", 1024], ["1KB", 1024], ["1KiB", 1024], ["64MiB", 64 * MiB],
    ["64 MiB", 64 * MiB], ["64M", 64 * MiB], ["64mb", 64 * MiB], ["1G", 1024 * MiB], ["1.5GiB", 1536 * MiB],
    ["2T", 2 * 1024 * 1024 * MiB], [" 8 KiB ", 8192], ["10B", 10], ["0.5K", 512],
  ];
  for (const [s, n] of ok) assert.is(parseSize(s), n, s);
  for (const s of ["", "MiB", "-1", "1 2", "1e6", "0x10", "64iB", "64 mebibytes", "1P", "1,5G", "NaN", "Infinity"]) {
    assert.ok(Number.isNaN(parseSize(s)), `parseSize(${JSON.stringify(s)}) should be NaN`);
  }
});

t("environment names and values: TSMALLOC_<NAME>, parsed strictly, errors name the variable", () => {
  assert.is(envName("purgeDelay"), "TSMALLOC_PURGE_DELAY");
  assert.is(envName("maxCommitted"), "TSMALLOC_MAX_COMMITTED");
  assert.is(envName("showStats"), "TSMALLOC_SHOW_STATS");
  assert.is(envName("arenaPurgeMult"), "TSMALLOC_ARENA_PURGE_MULT");
  const vars: Record<string, string> = {
    TSMALLOC_PURGE_DELAY: "25",
    TSMALLOC_MAX_COMMITTED: "64MiB",
    TSMALLOC_PURGE_DECOMMITS: "off",
    TSMALLOC_EAGER_COMMIT: "YES",
    TSMALLOC_SHOW_STATS: "",
    TSMALLOC_VERBOSE: "true",
    TSMALLOC_ARENA_RESERVE: "256M",
    TSMALLOC_SEED: "42", // not an option: tooling shares the prefix
  };
  assert.equal(optionsFromEnv((k) => vars[k]), {
    purgeDelay: 25,
    purgeDecommits: false,
    eagerCommit: true,
    arenaReserve: 256 * MiB,
    maxCommitted: 64 * MiB,
    verbose: 1,
    showStats: true,
  });
  assert.equal(optionsFromEnv(() => undefined), {}, "nothing set: nothing changes");
  const bad: [string, string][] = [
    ["TSMALLOC_PURGE_DELAY", "10ms"],
    ["TSMALLOC_PURGE_DELAY", "-5"],
    ["TSMALLOC_PURGE_DELAY", ""],
    ["TSMALLOC_PURGE_DECOMMITS", "maybe"],
    ["TSMALLOC_MAX_COMMITTED", "lots"],
    ["TSMALLOC_MAX_RESERVED", "-1G"],
    ["TSMALLOC_ARENA_RESERVE", "1k"],
    ["TSMALLOC_VERBOSE", "7"],
    ["TSMALLOC_HUGE_CACHE_MAX", "1 GB of cache"],
  ];
  for (const [k, v] of bad) {
    let err: unknown;
    try {
      optionsFromEnv((name) => (name === k ? v : undefined));
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof RangeError, `${k}=${JSON.stringify(v)} should be a RangeError, got ${String(err)}`);
    assert.match((err as Error).message, k, "the message names the variable");
  }
  for (const n of OPTION_NAMES) assert.ok(OPTION_SPECS[n].doc.length > 0, `${n} is documented`);
});

t("reading the environment never throws or prompts (Deno without --allow-env counts as unset)", () => {
  let asked = false;
  const denied = {
    Deno: {
      permissions: { querySync: () => ({ state: "prompt" }) },
      env: {
        get: () => {
          asked = true;
          throw new Error("NotCapable: Requires env access");
        },
      },
    },
  };
  assert.is(readEnv("TSMALLOC_PURGE_DELAY", denied), undefined);
  assert.is(asked, false, "a denied variable is not even asked for (no prompt)");
  const throwing = { Deno: { env: { get: () => { throw new Error("PermissionDenied"); } } } };
  assert.is(readEnv("TSMALLOC_PURGE_DELAY", throwing), undefined);
  const granted = { Deno: { permissions: { querySync: () => ({ state: "granted" }) }, env: { get: (k: string) => k === "X" ? "1" : undefined } } };
  assert.is(readEnv("X", granted), "1");
  assert.is(readEnv("X", { process: { env: { X: "2" } } }), "2");
  assert.is(readEnv("X", {}), undefined);
});

t("eagerCommit: a fresh segment counts 4 MiB committed at once instead of its header slice", () => {
  keeping(() => {
    const committedAfterOneBlock = (eager: boolean): number => {
      setOption("eagerCommit", eager);
      const id = reserveOsMemory(8 * MiB, { exclusive: true });
      const h = Heap.create({ arena: id });
      const before = stats().arenaList.find((a) => a.id === id)!.committed; // the metadata page
      free(h.malloc(16));
      const after = stats().arenaList.find((a) => a.id === id)!.committed;
      h.destroy();
      return after - before;
    };
    // page 0's side-table column too, 3,072-3,584 entries in two 4 KiB units
    const table = 8192;
    assert.is(committedAfterOneBlock(false), 64 * 1024 + table, "lazy: the header slice (which holds small page 0)");
    assert.is(committedAfterOneBlock(true), 4 * MiB + table, "eager: the whole segment");
  });
});

t("arenaReserve sets the size of the next shared arena (doubling per arena, as mimalloc)", () => {
  keeping(() => {
    setOption("arenaReserve", "8MiB");
    const shared = ctx.arenas.filter((a) => !a.exclusive).length;
    const a = newArena();
    assert.ok(a !== null);
    const want = Math.min(2 * 2 ** Math.min(shared, 8), Math.floor(ctx.options.arenaMax / (4 * MiB)));
    assert.is(a!.segments, want, `arena ${shared + 1} of 8 MiB x 2^${Math.min(shared, 8)}`);
  });
});

t("verbose 1 reports arenas and budget refusals on stderr; verbose 0 is quiet", () => {
  const orig = console.error;
  const lines: string[] = [];
  console.error = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    keeping(() => {
      setOption("verbose", 0);
      reserveOsMemory(4 * MiB, { exclusive: true });
      assert.equal(lines, [], "verbose 0 prints nothing");
      setOption("verbose", 1);
      reserveOsMemory(4 * MiB, { exclusive: true });
      assert.ok(lines.some((l) => /tsmalloc: reserved exclusive arena \d+: 4 MiB/.test(l)), lines.join("\n"));
      dropHugeCache(); // (nothing cached or retired that the budget's relief could unmap)
      setOption("maxReserved", stats().reserved + 1);
      try {
        reserveOsMemory(4 * MiB);
      } catch { /* refused */ }
      assert.ok(lines.some((l) => /maxReserved budget/.test(l)), lines.join("\n"));
    });
  } finally {
    console.error = orig;
  }
});

t("showStats installs an exit hook that prints the stats table to stderr (hook called here directly)", () => {
  const orig = console.error;
  const out: string[] = [];
  keeping(() => {
    setOption("showStats", true);
    const p = (globalThis as { process?: { listeners?(e: string): ((...a: unknown[]) => void)[] } }).process;
    const hook = p?.listeners?.("exit").find((f) => f.name === "tsmallocShowStats");
    assert.ok(hook !== undefined, "a process 'exit' listener is installed");
    console.error = (...a: unknown[]) => void out.push(a.join(" "));
    try {
      hook!();
      assert.ok(out.join("\n").includes("tsmalloc stats"), `printed: ${out.join("\n")}`);
      out.length = 0;
      setOption("showStats", false);
      hook!();
      assert.equal(out, [], "showStats false: the hook prints nothing");
    } finally {
      console.error = orig;
    }
  });
});

t.run();
