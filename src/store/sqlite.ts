/**
 * The SQLite connection both stores use: a file created 0600 (its -wal and -shm files take its mode),
 * opened in WAL mode with synchronous=FULL so a commit that returned is on disk (a kill or power loss
 * right after keeps it), foreign keys on, and a busy timeout for the moments another process (a
 * backup of the file) holds a lock. Write transactions begin IMMEDIATE (ImmediateSqliteDialect).
 *
 * The stores pass the words that differ: what the file is, the hint of store_not_a_database, and
 * their own driver error mapping (./driver.ts).
 */
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  SqliteAdapter,
  type SqliteDatabase,
  SqliteDialect,
  type SqliteDialectConfig,
  SqliteDriver,
} from 'kysely';
import { LifeboatError } from '../errors.js';
import { assertPrivateFile } from '../util/files.js';
import type { ErrorMapper } from './driver.js';

/** How long a statement waits for another connection's lock before failing with store_busy. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;

/**
 * Write transactions begin IMMEDIATE: they take the write lock up front (waiting up to the busy
 * timeout) instead of failing with SQLITE_BUSY when a read transaction later tries to write.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

/**
 * kysely's SQLite adapter says DDL is not transactional, so its migrator would run unlocked and two
 * processes opening a new file at once would both create the tables. SQLite's DDL is transactional:
 * run the migrations in one (IMMEDIATE, so exclusive-writer) transaction instead.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

/**
 * kysely's SqliteDialect with IMMEDIATE write transactions and transactional DDL (see above). The
 * constructor throws nothing; errors come from the queries.
 */
export class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

/** Statements kept prepared: kysely's driver prepares every query anew, costly for multi-row inserts. */
const STATEMENT_CACHE_SIZE = 100;

/**
 * The connection as kysely's driver sees it, with prepare() answered from a small LRU cache. Safe:
 * the driver runs one statement at a time to completion (all/run; nothing here streams). Never throws;
 * prepare() throws what better-sqlite3 throws.
 */
export function cachingDatabase(conn: Database.Database): SqliteDatabase {
  const cache = new Map<string, Database.Statement>();
  return {
    close: () => conn.close(),
    prepare(sql: string): Database.Statement {
      let stmt = cache.get(sql);
      if (stmt !== undefined) {
        cache.delete(sql);
      } else {
        stmt = conn.prepare(sql);
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
      }
      cache.set(sql, stmt);
      return stmt;
    },
  };
}

/** What differs between the stores when they open a file. */
export interface SqliteFileOptions {
  /** What the file holds, as insecure_permissions names it ('key node database'). */
  what: string;
  /** The hint of store_not_a_database. */
  notADatabaseHint: string;
  /** The store's driver error mapping, for any other failure to open (store_busy). */
  mapError: ErrorMapper;
}

/** An open SQLite database: its resolved path (or ':memory:') and its one writable connection. */
export interface SqliteFile {
  path: string;
  memory: boolean;
  conn: Database.Database;
}

/**
 * Creates the file 0600 (and a missing parent directory 0700), or refuses one readable by others.
 * Throws InvalidInputError `insecure_permissions` for the latter, and the fs errors of creating it.
 */
function prepareFile(path: string, what: string): void {
  if (existsSync(path)) {
    assertPrivateFile(path, what);
    return;
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/**
 * Opens a connection to the existing file at `path` (or ':memory:'); a writable one switches the
 * file to WAL mode with synchronous=FULL. Throws LifeboatError `store_not_a_database` if the file is
 * not a SQLite database or is damaged, and any other driver error as `opts.mapError` maps it.
 */
export function openSqliteConnection(path: string, readonly: boolean, opts: SqliteFileOptions): Database.Database {
  try {
    const db = new Database(path, { readonly, fileMustExist: path !== ':memory:', timeout: SQLITE_BUSY_TIMEOUT_MS });
    if (!readonly) {
      // The -wal and -shm files SQLite creates take the database file's mode (0600).
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
    }
    db.pragma('foreign_keys = ON');
    // Fail now on a file that is not a database, not at the first query.
    db.prepare('select count(*) from sqlite_master').get();
    return db;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
      throw new LifeboatError('store_not_a_database', `${path} is not a sqlite database, or it is damaged`, {
        hint: opts.notADatabaseHint,
        status: 500,
        cause: err,
      });
    }
    throw opts.mapError(err);
  }
}

/**
 * Opens (creating if needed) the SQLite file at `path`, or an in-memory database for ':memory:'
 * (tests only: nothing survives close), with one writable connection. Throws InvalidInputError
 * `insecure_permissions` if the file is readable by others, and the errors of openSqliteConnection.
 */
export function openSqliteFile(path: string, opts: SqliteFileOptions): SqliteFile {
  const memory = path === ':memory:';
  const file = memory ? path : resolve(path);
  if (!memory) prepareFile(file, opts.what);
  return { path: file, memory, conn: openSqliteConnection(file, false, opts) };
}
