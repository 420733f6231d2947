/**
 * The SQLite backend (the default): one file, created 0600, in WAL mode with synchronous=FULL, so an
 * upload acknowledged to a node is on disk (a kill or power loss right after keeps it), and the key
 * node store's busy timeout for the moments another process (a backup of the file) holds a lock.
 *
 * One process owns a database file. Write transactions begin IMMEDIATE and kysely's driver runs one
 * at a time on the one connection: that is what serializes appends to a stream here (PostgreSQL locks
 * the stream row instead).
 */
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  Kysely,
  SqliteAdapter,
  SqliteDialect,
  type SqliteDatabase,
  type SqliteDialectConfig,
  SqliteDriver,
} from 'kysely';
import { LifeboatError } from '../../errors.js';
import { SQLITE_BUSY_TIMEOUT_MS } from '../../keynode/store/sqlite.js';
import { assertPrivateFile } from '../../util/files.js';
import { type Db, mapError } from './queries.js';
import { type BackupSchema, migrateBackupStore } from './schema.js';
import { KyselyBackupStore } from './store.js';
import type { BackupStore } from './types.js';

// The key node's ImmediateSqliteDialect is private to src/keynode/store/sqlite.ts; this is the same
// few lines. Write transactions take the write lock up front (waiting up to the busy timeout) rather
// than failing with SQLITE_BUSY when a read transaction later tries to write.
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

/** SQLite's DDL is transactional, whatever kysely's adapter says: the migrator then runs in one transaction. */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
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
 * the driver runs one statement at a time to completion (all/run; nothing here streams).
 */
function cachingDatabase(conn: Database.Database): SqliteDatabase {
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

/** Creates the file 0600 (and a missing parent directory 0700), or refuses one readable by others. */
function prepareFile(path: string): void {
  if (existsSync(path)) {
    assertPrivateFile(path, 'backup database');
    return;
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

function openConnection(path: string): Database.Database {
  try {
    const db = new Database(path, { fileMustExist: path !== ':memory:', timeout: SQLITE_BUSY_TIMEOUT_MS });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    // Fail now on a file that is not a database, not at the first query.
    db.prepare('select count(*) from sqlite_master').get();
    return db;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
      throw new LifeboatError('store_not_a_database', `${path} is not a sqlite database, or it is damaged`, {
        hint: 'check the store url',
        status: 500,
        cause: err,
      });
    }
    throw mapError(err);
  }
}

/**
 * Opens (creating if needed) the SQLite backup store at `path`, or an in-memory one for ':memory:'
 * (tests only: nothing survives close), and brings its schema up to date. Throws InvalidInputError
 * `insecure_permissions` if the file is readable by others, LifeboatError `store_not_a_database` if it
 * is not a SQLite database, `store_busy` if another process keeps it locked, and the errors of
 * migrateBackupStore.
 */
export async function openSqliteBackupStore(path: string): Promise<BackupStore> {
  const memory = path === ':memory:';
  const file = memory ? path : resolve(path);
  if (!memory) prepareFile(file);
  const conn = openConnection(file);
  const db: Db = new Kysely<BackupSchema>({ dialect: new ImmediateSqliteDialect({ database: cachingDatabase(conn) }) });
  try {
    await migrateBackupStore(db, 'sqlite');
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return new KyselyBackupStore({ kind: 'sqlite', db, close: () => db.destroy() });
}
