/**
 * The SQLite backend (the default): one file, `log.sqlite` in the log's data directory, created 0600,
 * in WAL mode with synchronous=FULL, so an entry taken or a batch committed is on disk once the call
 * returns (a kill or power loss right after keeps it), and a busy timeout for the moments another
 * process (a backup of the file) holds a lock: ../../store/sqlite.ts.
 *
 * Write transactions begin IMMEDIATE and kysely's driver runs one at a time on the one connection:
 * that is what serializes commitBatch here (PostgreSQL locks the head row instead). Two processes on
 * one file serialize on SQLite's write lock the same way, waiting up to the busy timeout.
 */
import { Kysely } from 'kysely';
import { migrateOrClose } from '../../store/migrate.js';
import { cachingDatabase, ImmediateSqliteDialect, openSqliteFile, type SqliteFileOptions } from '../../store/sqlite.js';
import { type Db, mapError } from './queries.js';
import { type LogSchema, migrateLogStore } from './schema.js';
import { KyselyLogStore } from './store.js';
import type { LogStore } from './types.js';

/** How this store's file errors read. */
const FILE_OPTIONS: SqliteFileOptions = { what: 'log database', notADatabaseHint: 'check the store url in log.json', mapError };

/**
 * Opens (creating if needed) the SQLite log store at `path`, or an in-memory one for ':memory:'
 * (tests only: nothing survives close), and brings its schema up to date. Throws InvalidInputError
 * `insecure_permissions` if the file is readable by others, LifeboatError `store_not_a_database` if it
 * is not a SQLite database, `store_busy` if another process keeps it locked, and the errors of
 * migrateLogStore.
 */
export async function openSqliteLogStore(path: string): Promise<LogStore> {
  const { conn } = openSqliteFile(path, FILE_OPTIONS);
  const db: Db = new Kysely<LogSchema>({ dialect: new ImmediateSqliteDialect({ database: cachingDatabase(conn) }) });
  await migrateOrClose(db, (d) => migrateLogStore(d, 'sqlite'));
  return new KyselyLogStore({ kind: 'sqlite', db, close: () => db.destroy() });
}
