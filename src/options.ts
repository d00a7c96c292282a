/** Tunables. Validated where they are set (mod.ts); the core reads them as plain fields. */
export interface Options {
  /** ms a freed segment or huge block stays committed before it is purged (0 = at once, -1 = never). */
  purgeDelay: number;
  /** Bytes of the first arena reservation; later ones double up to arenaMax. */
  arenaReserve: number;
  /** Largest arena (offsets inside an arena must stay below 2^31). */
  arenaMax: number;
  /** Huge blocks kept mapped for reuse after free, in bytes (purged after purgeDelay). */
  hugeCacheMax: number;
}

export function defaultOptions(): Options {
  return {
    purgeDelay: 10,
    arenaReserve: 1024 * 1024 * 1024,
    arenaMax: 2 * 1024 * 1024 * 1024 - 4 * 1024 * 1024,
    hugeCacheMax: 256 * 1024 * 1024,
  };
}
