/**
 * The SQLite backend (the default): one file, created 0600, in WAL mode with synchronous=FULL, so a
 * commit that returned is on disk before the caller acknowledges anything (a kill or power loss right
 * after keeps it), and a busy timeout for the moments another process (a backup) holds a lock.
 *
 * One process owns a database file: better-sqlite3 is synchronous, so two stores on one file in one
 * process could wait on each other's locks with the event loop blocked. Snapshots use a second,
 * read-only connection: in WAL mode it reads one consistent state while the node goes on writing.
 */
import { existsSync, mkdirSync, openSync, closeSync } from 'node:fs';
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
  type SqliteDialectConfig,
  SqliteDriver,
} from 'kysely';
import { LifeboatError } from '../../errors.js';
import { assertPrivateFile } from '../../util/files.js';
import { mapDriverError, type Db } from './queries.js';
import { migrateToLatest, type StoreSchema } from './schema.js';
import { KyselyKeyNodeStore } from './store.js';
import type { KeyNodeStore } from './types.js';

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

/** Creates the file 0600 (and a missing parent directory 0700), or refuses one readable by others. */
function prepareFile(path: string): void {
  if (existsSync(path)) {
    assertPrivateFile(path, 'key node database');
    return;
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

function openConnection(path: string, readonly: boolean): Database.Database {
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
        hint: 'check the store url; restore the node from a backup if the file is damaged',
        status: 500,
        cause: err,
      });
    }
    throw mapDriverError(err);
  }
}

/**
 * Opens (creating if needed) the SQLite store at `path`, or an in-memory one for ':memory:' (tests
 * only: nothing survives close), and brings its schema up to date. Throws InvalidInputError
 * `insecure_permissions` if the file is readable by others, LifeboatError `store_not_a_database` if
 * it is not a SQLite database, and the errors of migrateToLatest.
 */
export async function openSqliteStore(path: string): Promise<KeyNodeStore> {
  const memory = path === ':memory:';
  const file = memory ? path : resolve(path);
  if (!memory) prepareFile(file);
  const conn = openConnection(file, false);
  const db: Db = new Kysely<StoreSchema>({ dialect: new ImmediateSqliteDialect({ database: conn }) });
  try {
    await migrateToLatest(db, 'sqlite');
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return new KyselyKeyNodeStore({
    kind: 'sqlite',
    db,
    async readConsistent(fn) {
      // In memory there is no second connection; the read then holds the store's one connection.
      if (memory) return db.transaction().execute(fn);
      const reader = new Kysely<StoreSchema>({ dialect: new SqliteDialect({ database: openConnection(file, true) }) });
      try {
        return await reader.transaction().execute(fn);
      } finally {
        await reader.destroy();
      }
    },
    close: () => db.destroy(),
  });
}
