/**
 * The SQLite backend (the default): one file, created 0600, in WAL mode with synchronous=FULL, so an
 * upload acknowledged to a node is on disk (a kill or power loss right after keeps it), and a busy
 * timeout for the moments another process (a backup of the file) holds a lock: ../../store/sqlite.ts.
 *
 * One process owns a database file. Write transactions begin IMMEDIATE and kysely's driver runs one
 * at a time on the one connection: that is what serializes appends to a stream here (PostgreSQL locks
 * the stream row instead).
 */
import { Kysely } from 'kysely';
import { migrateOrClose } from '../../store/migrate.js';
import { cachingDatabase, ImmediateSqliteDialect, openSqliteFile, type SqliteFileOptions } from '../../store/sqlite.js';
import { type Db, mapError } from './queries.js';
import { type BackupSchema, migrateBackupStore } from './schema.js';
import { KyselyBackupStore } from './store.js';
import type { BackupStore } from './types.js';

/** How this store's file errors read. */
const FILE_OPTIONS: SqliteFileOptions = { what: 'backup database', notADatabaseHint: 'check the store url', mapError };

/**
 * Opens (creating if needed) the SQLite backup store at `path`, or an in-memory one for ':memory:'
 * (tests only: nothing survives close), and brings its schema up to date. Throws InvalidInputError
 * `insecure_permissions` if the file is readable by others, LifeboatError `store_not_a_database` if it
 * is not a SQLite database, `store_busy` if another process keeps it locked, and the errors of
 * migrateBackupStore.
 */
export async function openSqliteBackupStore(path: string): Promise<BackupStore> {
  const { conn } = openSqliteFile(path, FILE_OPTIONS);
  const db: Db = new Kysely<BackupSchema>({ dialect: new ImmediateSqliteDialect({ database: cachingDatabase(conn) }) });
  await migrateOrClose(db, (d) => migrateBackupStore(d, 'sqlite'));
  return new KyselyBackupStore({ kind: 'sqlite', db, close: () => db.destroy() });
}
