// SQLite allocating from a tsmalloc heap: sqlite3_config(SQLITE_CONFIG_MALLOC) with a
// sqlite3_mem_methods whose xSize and xRoundup are tsmalloc's usableSize and goodSize.
// SQLite's allocator is process-wide and fixed before sqlite3_initialize: run this in a
// process of its own.
//   deno run --allow-ffi --allow-env --allow-read examples/sqlite.ts     bun examples/sqlite.ts
import process from "node:process";
import { backend, bytes, cAllocator, type CAllocator, dataView, free, Heap, malloc } from "../mod.ts";
import { type Fn, openLib } from "./_ffi.ts";

const SQLITE_OK = 0, SQLITE_NOMEM = 7, SQLITE_ROW = 100, SQLITE_DONE = 101, SQLITE_CONFIG_MALLOC = 4;

/** libsqlite3 through the live FFI. */
export function openSqlite(): Record<string, Fn> {
  return openLib(backend().ffi ?? "none", "libsqlite3.so.0", {
    sqlite3_config: ["i32", ["i32", "ptr"]], // variadic in C; one pointer argument here
    sqlite3_initialize: ["i32", []],
    sqlite3_shutdown: ["i32", []],
    sqlite3_open: ["i32", ["ptr", "ptr"]],
    sqlite3_close: ["i32", ["ptr"]],
    sqlite3_exec: ["i32", ["ptr", "ptr", "ptr", "ptr", "ptr"]],
    sqlite3_prepare_v2: ["i32", ["ptr", "ptr", "i32", "ptr", "ptr"]],
    sqlite3_bind_int64: ["i32", ["ptr", "i32", "i64"]],
    sqlite3_step: ["i32", ["ptr"]],
    sqlite3_reset: ["i32", ["ptr"]],
    sqlite3_finalize: ["i32", ["ptr"]],
    sqlite3_column_int64: ["i64", ["ptr", "i32"]],
    sqlite3_memory_used: ["i64", []],
    sqlite3_errmsg: ["ptr", ["ptr"]],
  });
}

/** A NUL-terminated copy of `s` in tsmalloc memory (free it). */
export function cString(s: string): number {
  const b = new TextEncoder().encode(s);
  const p = malloc(b.length + 1);
  bytes(p, b.length + 1).set(b);
  bytes(p + b.length, 1)[0] = 0;
  return p;
}

/** Points SQLite's allocator at `c` (before sqlite3_initialize). Returns the methods struct (keep it alive). */
export function configureSqlite(sq: Record<string, Fn>, c: CAllocator): number {
  const methods = malloc(64); // sqlite3_mem_methods: 7 function pointers + pAppData
  const v = dataView(methods, 64);
  const order = ["sqliteMalloc", "sqliteFree", "sqliteRealloc", "sqliteSize", "sqliteRoundup", "sqliteInit", "sqliteShutdown"] as const;
  order.forEach((name, i) => v.setBigUint64(i * 8, BigInt(c.address[name]), true));
  v.setBigUint64(56, 0n, true);
  const rc = sq.sqlite3_config(SQLITE_CONFIG_MALLOC, methods);
  if (rc !== SQLITE_OK) throw new Error(`sqlite3_config(SQLITE_CONFIG_MALLOC) = ${rc}`);
  if (sq.sqlite3_initialize() !== SQLITE_OK) throw new Error("sqlite3_initialize failed");
  return methods;
}

/** A small wrapper over one in-memory database. */
export class Db {
  readonly db: number;
  private readonly out = malloc(8);
  constructor(private readonly sq: Record<string, Fn>) {
    const name = cString(":memory:");
    const rc = sq.sqlite3_open(name, this.out);
    free(name);
    this.db = Number(dataView(this.out, 8).getBigUint64(0, true));
    if (rc !== SQLITE_OK) throw new Error(`sqlite3_open = ${rc}`);
  }
  /** sqlite3_exec's result code. */
  exec(sql: string): number {
    const s = cString(sql);
    try {
      return this.sq.sqlite3_exec(this.db, s, 0, 0, 0);
    } finally {
      free(s);
    }
  }
  /** A prepared statement's address. */
  prepare(sql: string): number {
    const s = cString(sql);
    try {
      const rc = this.sq.sqlite3_prepare_v2(this.db, s, -1, this.out, 0);
      if (rc !== SQLITE_OK) throw new Error(`prepare ${sql}: ${rc}`);
      return Number(dataView(this.out, 8).getBigUint64(0, true));
    } finally {
      free(s);
    }
  }
  /** Inserts rows first..last in one statement (a recursive CTE); sqlite3_exec's result code. */
  insert(first: number, last: number): number {
    return this.exec(
      `WITH RECURSIVE c(x) AS (SELECT ${first} UNION ALL SELECT x + 1 FROM c WHERE x < ${last}) ` +
        `INSERT INTO t SELECT x, 'row ' || x || hex(randomblob(12)) FROM c`,
    );
  }
  /** Inserts rows first..last one by one (a prepared statement); returns the first failing result code, or SQLITE_DONE. */
  insertEach(first: number, last: number): number {
    const st = this.prepare("INSERT INTO t VALUES (?1, 'row ' || ?1 || hex(randomblob(12)))");
    try {
      for (let i = first; i <= last; i++) {
        this.sq.sqlite3_bind_int64(st, 1, i);
        const rc = this.sq.sqlite3_step(st);
        this.sq.sqlite3_reset(st);
        if (rc !== SQLITE_DONE) return rc;
      }
      return SQLITE_DONE;
    } finally {
      this.sq.sqlite3_finalize(st);
    }
  }
  /** The first row of a query's integer columns. */
  query(sql: string, columns: number): number[] {
    const st = this.prepare(sql);
    try {
      if (this.sq.sqlite3_step(st) !== SQLITE_ROW) throw new Error(`no row for ${sql}`);
      return Array.from({ length: columns }, (_, i) => this.sq.sqlite3_column_int64(st, i));
    } finally {
      this.sq.sqlite3_finalize(st);
    }
  }
  close(): number {
    free(this.out);
    return this.sq.sqlite3_close(this.db);
  }
}

/** What the example saw; bytes are usable bytes in the bridge. */
export interface SqliteResult {
  rows: number;
  sum: number;
  /** Bridge live bytes with the table full, and SQLite's own count of its memory then. */
  liveWithTable: number;
  sqliteMemoryUsed: number;
  afterClose: number;
  afterShutdown: number;
  closed: boolean;
}

/** 100,000 rows through SQLite with its memory in a heap of its own. */
export function sqliteExample(rows = 100_000): SqliteResult {
  const sq = openSqlite();
  const heap = Heap.create();
  const c = cAllocator({ heap, tag: "sqlite" });
  const methods = configureSqlite(sq, c);
  const db = new Db(sq);
  if (db.exec("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)") !== SQLITE_OK) throw new Error("create failed");
  db.exec("BEGIN");
  const rc = db.insert(1, rows);
  if (rc !== SQLITE_OK) throw new Error(`insert: ${rc}`);
  db.exec("COMMIT");
  const [count, sum] = db.query("SELECT count(*), sum(a) FROM t", 2);
  const liveWithTable = c.stats().liveBytes;
  const sqliteMemoryUsed = sq.sqlite3_memory_used();
  db.close();
  const afterClose = c.stats().liveBytes;
  sq.sqlite3_shutdown();
  const afterShutdown = c.stats().liveBytes;
  c.close(); // throws if SQLite still held a block
  free(methods);
  heap.destroy();
  return { rows: count, sum, liveWithTable, sqliteMemoryUsed, afterClose, afterShutdown, closed: !c.isOpen };
}

export { SQLITE_DONE, SQLITE_NOMEM, SQLITE_OK };

// run as a script (not when imported, bundled or not)
if (process.argv[1]?.replace(/\\/g, "/").endsWith("examples/sqlite.ts")) console.log(sqliteExample());
