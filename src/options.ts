/**
 * Tunables: one table of option specs, validated where they are set (setOption, the
 * TSMALLOC_<NAME> environment variables). The core reads them as plain fields of
 * `ctx.options`. No runtime imports here: mod.ts supplies the environment.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/**
 * Largest arena: 510 segments of 4 MiB. Offsets inside an arena are int32 and the end of its
 * last page must be one too: with the header slot before the segments (session 14) 511 put
 * that end at 2^31, and the last page's blocks could not be freed (review round 16).
 */
export const ARENA_MAX = 2 * GiB - 8 * MiB;

export interface Options {
  /** ms a freed page stays committed before it is purged (0 = at once, -1 = never); times an adaptive factor of 1-16 (src/purge-delay.ts). */
  purgeDelay: number;
  /** Free segments and cached huge blocks wait purgeDelay * arenaPurgeMult ms. */
  arenaPurgeMult: number;
  /** true: purge = MADV_DONTNEED, memory leaves `committed` and RSS at once; false: MADV_FREE (reset), stays committed. */
  purgeDecommits: boolean;
  /** Count a whole 4 MiB segment as committed when it is claimed (else 64 KiB slices as pages are claimed). */
  eagerCommit: boolean;
  /** Bytes of the first arena reservation; later ones double (up to ARENA_MAX). */
  arenaReserve: number;
  /** Largest arena (not an option: offsets inside an arena must stay below 2^31). */
  arenaMax: number;
  /** Budget of reserved (virtual) bytes; 0 = unlimited. */
  maxReserved: number;
  /** Budget of committed bytes; 0 = unlimited. */
  maxCommitted: number;
  /** Freed huge mappings kept for reuse, in bytes (purged after the arena delay). */
  hugeCacheMax: number;
  /** 0 quiet, 1 messages (arenas, budget refusals), 2 also every purge; to stderr. */
  verbose: number;
  /** Print the stats table to stderr when the process exits. */
  showStats: boolean;
  /** Secure level 0-4 (src/secure.ts); fixed at first use. */
  secure: number;
  /** Fill fresh blocks with 0xD0 and freed ones with 0xDF (beyond their first 8 bytes); fixed at first use. */
  debugFill: boolean;
  /** Guarded allocations: sizes in [guardedMin, guardedMax] are sampled (guardedMax below guardedMin counts as guardedMin). */
  guardedMin: number;
  guardedMax: number;
  /** One in this many allocations in the guarded range is guarded (1 = all, 0 = none). */
  guardedSampleRate: number;
  /** Record the heap tag and (sampled) allocation site of every block for leaks() (src/track.ts). */
  track: boolean;
  /** With track: record the site of one in this many allocations (1 = all, 0 = none). */
  trackSampleRate: number;
  /** At process exit, print the live blocks (leaks()) and set a non-zero exit code when any are left. */
  leakCheck: boolean;
}

export type OptionName = Exclude<keyof Options, "arenaMax">;

type Spec =
  | { kind: "bool"; def: boolean; doc: string }
  | { kind: "int"; def: number; min: number; max: number; doc: string }
  | { kind: "size"; def: number; min: number; max: number; doc: string };

/** Every option: kind, default, accepted range. The order is the order getOptions() lists them. */
export const OPTION_SPECS: Readonly<Record<OptionName, Spec>> = {
  purgeDelay: { kind: "int", def: 10, min: -1, max: 2 ** 31 - 1, doc: "ms before freed memory is purged (0 = at once, -1 = never); stretched up to 16x while purged memory is faulted back in" },
  arenaPurgeMult: { kind: "int", def: 10, min: 1, max: 1000, doc: "free segments and cached huge blocks wait purgeDelay times this" },
  purgeDecommits: { kind: "bool", def: true, doc: "purge with MADV_DONTNEED and uncount it from committed (false: MADV_FREE, stays committed)" },
  eagerCommit: { kind: "bool", def: false, doc: "count whole segments as committed when claimed" },
  arenaReserve: { kind: "size", def: 1 * GiB, min: 4 * MiB, max: ARENA_MAX, doc: "size of the first arena reservation (later ones double)" },
  maxReserved: { kind: "size", def: 0, min: 0, max: 2 ** 53 - 1, doc: "budget of reserved (virtual) bytes, 0 = unlimited" },
  maxCommitted: { kind: "size", def: 0, min: 0, max: 2 ** 53 - 1, doc: "budget of committed bytes, 0 = unlimited" },
  hugeCacheMax: { kind: "size", def: 256 * MiB, min: 0, max: 2 ** 53 - 1, doc: "freed huge mappings kept for reuse, bytes" },
  verbose: { kind: "int", def: 0, min: 0, max: 2, doc: "messages on stderr: 1 arenas and budget refusals, 2 also purges" },
  showStats: { kind: "bool", def: false, doc: "print stats to stderr at exit" },
  secure: { kind: "int", def: 0, min: 0, max: 4, doc: "secure level: 1 guard pages, 2 PROT_NONE freed huge mappings, 3 random order, 4 a guard after every page (before first use)" },
  debugFill: { kind: "bool", def: false, doc: "fill fresh blocks with 0xD0 and freed blocks with 0xDF, detect double frees (before first use)" },
  guardedMin: { kind: "size", def: 0, min: 0, max: 2 ** 46, doc: "smallest size of a guarded allocation" },
  guardedMax: { kind: "size", def: 1 * GiB, min: 0, max: 2 ** 46, doc: "largest size of a guarded allocation" },
  guardedSampleRate: { kind: "int", def: 0, min: 0, max: 2 ** 31 - 1, doc: "guard one in N allocations in [guardedMin, guardedMax] (0 = off, 1 = all)" },
  track: { kind: "bool", def: false, doc: "record heap tag and allocation site of every block for leaks()" },
  trackSampleRate: { kind: "int", def: 1, min: 0, max: 2 ** 31 - 1, doc: "with track: record the site of one in N allocations (0 = none)" },
  leakCheck: { kind: "bool", def: false, doc: "at exit: print live blocks and exit non-zero when any are left" },
};

/** Options that only take effect before the first allocation (setOption throws after it). */
export const INIT_ONLY_OPTIONS: ReadonlySet<OptionName> = new Set<OptionName>(["secure", "debugFill"]);

export const OPTION_NAMES: readonly OptionName[] = Object.keys(OPTION_SPECS) as OptionName[];

export function defaultOptions(): Options {
  const o = { arenaMax: ARENA_MAX } as Options;
  for (const n of OPTION_NAMES) (o as unknown as Record<string, unknown>)[n] = OPTION_SPECS[n].def;
  return o;
}

/** True for a known option name (own property, not a prototype key). */
export function isOptionName(name: unknown): name is OptionName {
  return typeof name === "string" && Object.prototype.hasOwnProperty.call(OPTION_SPECS, name);
}

function unknownName(name: unknown): never {
  if (typeof name !== "string") throw new TypeError(`tsmalloc: option name must be a string, got ${typeof name}`);
  throw new RangeError(`tsmalloc: unknown option "${name}" (known: ${OPTION_NAMES.join(", ")})`);
}

export function optionSpec(name: unknown): Spec {
  if (!isOptionName(name)) unknownName(name);
  return OPTION_SPECS[name];
}

/** TSMALLOC_PURGE_DELAY for purgeDelay. */
export function envName(name: OptionName): string {
  return "TSMALLOC_" + name.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase();
}

const UNITS: Record<string, number> = { "": 1, K: KiB, M: MiB, G: GiB, T: 1024 * GiB };

/**
 * Parses a byte size: a bare integer (bytes) or a number with a unit K, M, G or T,
 * optionally followed by "iB" or "B" (all binary, as mimalloc): "64MiB", "64M", "1.5 GiB".
 * Returns NaN for anything else.
 */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (m === null) return NaN;
  if (m[2] === "" && m[3] !== undefined && m[3].toLowerCase() === "ib") return NaN; // "64iB"
  const n = Number(m[1]) * UNITS[m[2].toUpperCase()];
  return Number.isFinite(n) ? Math.ceil(n) : NaN;
}

/** A byte count for humans: "64 MiB", "1.5 GiB", "123 B". */
export function formatSize(n: number): string {
  if (n < 0) return "-" + formatSize(-n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return `${n} B`;
  const s = v >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1);
  return `${s} ${units[i]}`;
}

function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint") return `${v}n (a bigint)`;
  return typeof v === "object" && v !== null ? `an object (${Object.prototype.toString.call(v)})` : String(v);
}

function checkRange(name: string, spec: Spec & { min: number; max: number }, n: number, shown: unknown): number {
  if (!Number.isInteger(n)) throw new RangeError(`tsmalloc: option ${name} must be an integer, got ${describe(shown)}`);
  if (n < spec.min || n > spec.max) {
    const fmt = spec.kind === "size" ? formatSize : String;
    throw new RangeError(`tsmalloc: option ${name} must be between ${fmt(spec.min)} and ${fmt(spec.max)}, got ${describe(shown)}`);
  }
  return n;
}

/**
 * Validates a value given to setOption: booleans for bool options, integers for int
 * options, and byte counts (integers or size strings like "64MiB") for size options.
 * Throws TypeError for a wrong type and RangeError for an out-of-range value.
 */
export function validateOption(name: unknown, value: unknown): number | boolean {
  const spec = optionSpec(name);
  const n = name as string;
  switch (spec.kind) {
    case "bool":
      if (typeof value !== "boolean") throw new TypeError(`tsmalloc: option ${n} must be a boolean, got ${describe(value)}`);
      return value;
    case "int":
      if (typeof value !== "number") throw new TypeError(`tsmalloc: option ${n} must be a number, got ${describe(value)}`);
      return checkRange(n, spec, value, value);
    case "size": {
      if (typeof value === "string") {
        const v = parseSize(value);
        if (Number.isNaN(v)) throw new RangeError(`tsmalloc: option ${n} must be a byte count like 4096, "64MiB" or "1G", got ${describe(value)}`);
        return checkRange(n, spec, v, value);
      }
      if (typeof value !== "number") throw new TypeError(`tsmalloc: option ${n} must be a byte count (number or string like "64MiB"), got ${describe(value)}`);
      return checkRange(n, spec, value, value);
    }
  }
}

/**
 * Parses an environment variable's text for an option. Booleans: 1/0, true/false, yes/no,
 * on/off (and empty = true), case-insensitive; integers: decimal (verbose also takes the
 * boolean words); sizes: see parseSize. Throws RangeError naming the variable.
 */
export function parseOptionText(name: OptionName, text: string): number | boolean {
  const spec = OPTION_SPECS[name];
  const t = text.trim().toLowerCase();
  const bad = (what: string): never => {
    throw new RangeError(`tsmalloc: ${envName(name)}=${JSON.stringify(text)} is not ${what}`);
  };
  const bool = t === "" || t === "1" || t === "true" || t === "yes" || t === "on" ? true
    : t === "0" || t === "false" || t === "no" || t === "off" ? false : null;
  try {
    switch (spec.kind) {
      case "bool":
        return bool ?? bad("a boolean (1/0, true/false, yes/no, on/off)");
      case "int": {
        if (name === "verbose" && bool !== null && t !== "") return bool ? 1 : 0;
        if (!/^[+-]?\d+$/.test(t)) bad("an integer");
        return validateOption(name, Number(t));
      }
      case "size": {
        const v = parseSize(t);
        if (Number.isNaN(v)) bad('a byte count like 4096, "64MiB" or "1G"');
        return validateOption(name, v);
      }
    }
  } catch (e) {
    if (e instanceof RangeError && !e.message.includes(envName(name))) {
      throw new RangeError(`tsmalloc: ${envName(name)}=${JSON.stringify(text)}: ${e.message.replace(/^tsmalloc: /, "")}`);
    }
    throw e;
  }
}

/**
 * Options set through the environment: for each option whose TSMALLOC_<NAME> variable is
 * set (getenv returns a string), the parsed value. Throws on the first bad value.
 */
export function optionsFromEnv(getenv: (name: string) => string | undefined): Partial<Record<OptionName, number | boolean>> {
  const out: Partial<Record<OptionName, number | boolean>> = {};
  for (const n of OPTION_NAMES) {
    const text = getenv(envName(n));
    if (text !== undefined) out[n] = parseOptionText(n, text);
  }
  return out;
}
