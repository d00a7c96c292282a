/**
 * Wiring: the OS backend and the environment are supplied once (by mod.ts, which knows
 * the runtimes); the core initializes on the first allocation that needs memory.
 * Options: TSMALLOC_<NAME> environment variables are read once, at the first use of the
 * allocator or of getOption/setOption; setOption overrides them.
 */
import { ctx } from "./context.ts";
import { applyModes, setInitHook, setStatsHook } from "./heap.ts";
import { message } from "./log.ts";
import { INIT_ONLY_OPTIONS, OPTION_NAMES, type OptionName, type Options, optionsFromEnv, optionSpec, validateOption } from "./options.ts";
import type { Os } from "./os.ts";
import { countingOs } from "./oscount.ts";
import { collectStats } from "./report.ts";
import { resetPurgeFactor } from "./purge-delay.ts";
import { replanPurge } from "./segment.ts";
import { configureSecure } from "./secure.ts";
import { setFreeMode } from "./secure-free.ts";

let provider: (() => Os) | null = null;
let getenv: (name: string) => string | undefined = () => undefined;
let envLoaded = false;
/** Options set by the environment or setOption (not left at their defaults). */
const explicit = new Set<OptionName>();

/** Registers how to obtain the backend; called at first use. */
export function setOsProvider(f: () => Os): void {
  provider = f;
}

/** Registers how to read an environment variable (undefined when unset or not permitted). */
export function setEnvReader(f: (name: string) => string | undefined): void {
  getenv = f;
}

/** Options this worker set in code (setOption, configure), not through the environment it shares with the process. */
const chosen = new Set<OptionName>();

/** True when this worker set the option in code (setOption, configure), even to its default value. */
export function isOptionChosen(name: OptionName): boolean {
  return chosen.has(name);
}

export function isInitialized(): boolean {
  return ctx.os !== null;
}

/** Reads TSMALLOC_<NAME> once; a bad value throws (every time, until it is fixed). */
export function loadEnvOptions(): void {
  if (envLoaded) return;
  const got = optionsFromEnv(getenv);
  envLoaded = true;
  for (const [name, value] of Object.entries(got) as [OptionName, number | boolean][]) {
    if (!explicit.has(name)) apply(name, value);
  }
}

function apply(name: OptionName, value: number | boolean): void {
  (ctx.options as unknown as Record<string, number | boolean>)[name] = value;
  explicit.add(name);
  if (ctx.os === null) return;
  if (name === "purgeDelay" || name === "arenaPurgeMult") {
    resetPurgeFactor();
    replanPurge();
  }
  if (name === "hugeCacheMax") ctx.huge?.trim();
  if (name === "guardedSampleRate" || name === "guardedMin" || name === "guardedMax") applyModes();
  if (name === "track") {
    applyModes(); // malloc and free with or without track's recording wrappers (src/track.ts)
    setFreeMode();
  }
}

/** getOption: the current value (the environment is read first if it has not been). */
export function getOptionValue(name: OptionName): number | boolean {
  optionSpec(name);
  loadEnvOptions();
  return ctx.options[name];
}

/** setOption: validates (TypeError/RangeError) and applies at once. */
export function setOptionValue(name: OptionName, value: unknown): void {
  const v = validateOption(name, value);
  loadEnvOptions();
  if (ctx.os !== null && INIT_ONLY_OPTIONS.has(name) && v !== ctx.options[name]) {
    throw new Error(`tsmalloc: option ${name} can only be set before the first allocation (it is ${ctx.options[name]})`);
  }
  if (ctx.shared && name === "guardedSampleRate" && v !== 0) {
    throw new Error("tsmalloc: guarded allocations are not supported while the allocator is shared between workers");
  }
  apply(name, v);
  chosen.add(name);
}

/** Picks the backend now (idempotent). */
export function initialize(): Os {
  if (ctx.os !== null) return ctx.os;
  if (provider === null) throw new Error("tsmalloc: no OS backend provider");
  loadEnvOptions();
  const o = provider();
  ctx.os = countingOs(o, ctx.counters);
  message(1, `backend ${o.kind} (${o.reason}); options ${OPTION_NAMES.map((n) => `${n}=${ctx.options[n]}`).join(" ")}`);
  ctx.setTag((o.threadId() & 0x3fffffff) || 1);
  // secure mode and debug fill are fixed now, before the first segment exists
  configureSecure(ctx.options.secure, ctx.options.debugFill, o.pageSize, o.canProtect);
  applyModes();
  setFreeMode();
  // SharedArrayBuffer arenas: start smaller unless asked otherwise
  if (o.kind === "buffer" && !explicit.has("arenaReserve")) ctx.options.arenaReserve = Math.min(ctx.options.arenaReserve, 256 * 1024 * 1024);
  return ctx.os;
}

setInitHook(() => {
  if (ctx.os === null) initialize();
});
setStatsHook(collectStats);

export type { Options };
