/**
 * Owned blocks: a JS object that owns one native block of the default heap, for code that
 * cannot free deterministically. A FinalizationRegistry reports a block whose owner was
 * collected while the block was still allocated (once per tag and allocation site) and, with
 * `freeOnCollect`, frees it.
 *
 * Invariants: the registry's held value (`Held`) never references the Block, so registering
 * does not keep the owner alive; `held.live` goes false exactly once, before the one free
 * (explicit or by the registry), so a block is never freed twice by this module; an explicit
 * free unregisters the owner first.
 */
import { siteOf, withTrackTag } from "./track.ts";
import { defaultHeap } from "./heap.ts";
import { freeFn } from "./secure-free.ts";
import { bytesAt } from "./views.ts";
import { MAX_ALLOC_SIZE } from "./layout.ts";

/**
 * Options of {@link Block.alloc}.
 *
 * @example
 * ```ts
 * import { Block, type BlockOptions } from "@tsmalloc/tsmalloc";
 *
 * const options: BlockOptions = { tag: "image", freeOnCollect: true };
 * const b = Block.alloc(4096, options);
 * b.free();
 * ```
 */
export interface BlockOptions {
  /** A name for reports (warnings, leaks()); default "". */
  tag?: string;
  /** When the owner is collected while the block is allocated, free it (after the warning). Default false: it stays allocated (a leak, reported). */
  freeOnCollect?: boolean;
}

/**
 * `stats().ownedBlocks`: this worker's {@link Block} counters (bytes unless a count).
 *
 * @example
 * ```ts
 * import { type OwnedBlockStats, stats } from "@tsmalloc/tsmalloc";
 *
 * const s: OwnedBlockStats = stats().ownedBlocks;
 * if (s.collected > 0) console.error(`${s.collected} owned blocks were collected while allocated`);
 * ```
 */
export interface OwnedBlockStats {
  /** Blocks allocated and not freed. */
  live: number;
  /** Their requested bytes. */
  bytes: number;
  /** Owners collected while their block was still allocated. */
  collected: number;
  /** Of those, blocks freed by the registry (freeOnCollect). */
  freedOnCollect: number;
}

interface Held {
  address: number;
  size: number;
  tag: string;
  /** The allocation's stack, formatted only for a warning. */
  where: Error;
  live: boolean;
  freeOnCollect: boolean;
}

const counts: OwnedBlockStats = { live: 0, bytes: 0, collected: 0, freedOnCollect: 0 };
const warned = new Set<string>();

/** stats().ownedBlocks. */
export function ownedBlockStats(): OwnedBlockStats {
  return { ...counts };
}


let warn: (text: string) => void = (t) => console.error(t);
/** Tests: where warnings go (default console.error). Returns the previous writer. */
export function setBlockWarning(f: (text: string) => void): (text: string) => void {
  const old = warn;
  warn = f;
  return old;
}

function collected(h: Held): void {
  if (!h.live) return;
  counts.collected++;
  const site = siteOf(h.where.stack ?? "");
  const key = h.tag + "\u0000" + site;
  if (!warned.has(key)) {
    warned.add(key);
    warn(
      `tsmalloc: warning: a Block (tag ${JSON.stringify(h.tag)}, ${h.size} bytes) was garbage-collected while its native block was still allocated; ` +
        `allocated at ${site || "(unknown site)"}. ` +
        (h.freeOnCollect ? "Freed it (freeOnCollect). " : "Its memory stays allocated: call block.free() or hold it with `using`. ") +
        "(Reported once per tag and site.)",
    );
  }
  if (h.freeOnCollect) {
    h.live = false;
    counts.live--;
    counts.bytes -= h.size;
    counts.freedOnCollect++;
    freeFn(h.address);
  }
}

const registry: FinalizationRegistry<Held> | null = typeof FinalizationRegistry === "function" ? new FinalizationRegistry<Held>(collected) : null;

const BLOCK_KEY = Symbol("Block");

/**
 * A native block owned by a JS object, for code that cannot free deterministically. Free it
 * with `free()` or `using`; if its owner is garbage-collected while the block is still
 * allocated, a `FinalizationRegistry` callback warns on stderr once per tag and allocation
 * site, and with `freeOnCollect` frees it (never twice: an explicit free unregisters it).
 * Finalization is up to the engine: it may come late or, at exit, never; it is a safety
 * net, not a way to manage memory. Free it only through the Block (passing `address` to
 * `free()` is a double free later). The block comes from this worker's default heap and its
 * bytes count in `stats().inUse`; no runtime lets JS code tell the garbage collector about
 * native bytes (V8's `AdjustAmountOfExternalAllocatedMemory` and JSC's extra-memory report
 * are C++ API only), so the collector does not see them. After the FinalizationRegistry
 * warnings DESIGN.md asks for; the `sql.js` leak seed shows why.
 *
 * @example
 * ```ts
 * import { Block } from "@tsmalloc/tsmalloc";
 *
 * {
 *   using b = Block.alloc(1024, { tag: "frame" }); // freed at scope end
 *   b.bytes().fill(0xff);
 *   console.log(b.address, b.size, b.tag);
 * }
 * ```
 */
export class Block {
  readonly #h: Held;

  /** @internal Made by Block.alloc only. */
  constructor(h: unknown, key: symbol) {
    if (key !== BLOCK_KEY) throw new TypeError("tsmalloc: blocks are made by Block.alloc");
    this.#h = h as Held;
  }

  /**
   * Allocates `size` bytes (16-byte aligned) from this worker's default heap, owned by the
   * returned object.
   *
   * @throws {TypeError} when size is not a number or options not an object / of the wrong types.
   * @throws {RangeError} for a negative, fractional or too large size, or an unknown option.
   * @throws {AllocationError} when memory cannot be had.
   */
  static alloc(size: number, options: BlockOptions = {}): Block {
    if (typeof size !== "number") throw new TypeError(`tsmalloc: Block.alloc: size must be a number, got ${typeof size}`);
    if (!Number.isInteger(size) || size < 0 || size > MAX_ALLOC_SIZE) throw new RangeError(`tsmalloc: Block.alloc: size must be an integer in [0, MAX_ALLOC_SIZE], got ${size}`);
    if (typeof options !== "object" || options === null) throw new TypeError("tsmalloc: Block.alloc: options must be an object");
    for (const k of Object.keys(options)) if (k !== "tag" && k !== "freeOnCollect") throw new RangeError(`tsmalloc: Block.alloc: unknown option "${k}" (known: tag, freeOnCollect)`);
    const tag = options.tag ?? "";
    if (typeof tag !== "string") throw new TypeError(`tsmalloc: Block.alloc: tag must be a string, got ${typeof tag}`);
    const freeOnCollect = options.freeOnCollect ?? false;
    if (typeof freeOnCollect !== "boolean") throw new TypeError(`tsmalloc: Block.alloc: freeOnCollect must be a boolean, got ${typeof freeOnCollect}`);
    const heap = defaultHeap();
    const address = withTrackTag(tag, () => heap.alloc(size));
    const h: Held = { address, size, tag, where: new Error(), live: true, freeOnCollect };
    const b = new Block(h, BLOCK_KEY);
    counts.live++;
    counts.bytes += size;
    registry?.register(b, h, b);
    return b;
  }

  /** The block's address (a number, as malloc returns). */
  get address(): number {
    return this.#h.address;
  }
  /** Bytes requested (the block may be larger: usableSize). */
  get size(): number {
    return this.#h.size;
  }
  /** The tag given to alloc. */
  get tag(): string {
    return this.#h.tag;
  }
  /** False once freed. */
  get isLive(): boolean {
    return this.#h.live;
  }

  /**
   * A Uint8Array over the block's `size` bytes (a new view each call; do not use it after free).
   *
   * @throws {Error} after free.
   */
  bytes(): Uint8Array {
    if (!this.#h.live) throw new Error(`tsmalloc: Block.bytes: the block (tag ${JSON.stringify(this.#h.tag)}) was freed`);
    return bytesAt(this.#h.address, this.#h.size);
  }

  /**
   * Frees the block now; the owner's registration ends, so the garbage collector never frees it.
   *
   * @throws {Error} when it was already freed (dispose after free does nothing).
   */
  free(): void {
    const h = this.#h;
    if (!h.live) throw new Error(`tsmalloc: Block.free: the block (tag ${JSON.stringify(h.tag)}) was already freed`);
    h.live = false;
    registry?.unregister(this);
    counts.live--;
    counts.bytes -= h.size;
    freeFn(h.address);
  }

  /** `using b = Block.alloc(n)` frees it at scope end (nothing when already freed). */
  [Symbol.dispose](): void {
    if (this.#h.live) this.free();
  }
}
