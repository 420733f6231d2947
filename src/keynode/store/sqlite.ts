/**
 * The SQLite backend (the default): one file, created 0600, in WAL mode with synchronous=FULL, so a
 * commit that returned is on disk before the caller acknowledges anything (a kill or power loss right
 * after keeps it), and a busy timeout for the moments another process (a backup) holds a lock.
 *
 * One exception: a round-one nonce is inserted with synchronous=NORMAL (no fsync of its own; the next
 * FULL commit, at the latest its consumption in round two, syncs it with everything before it). A
 * nonce lost to a crash is only a round two that answers `nonce_not_found`, and `node serve` deletes
 * every unused nonce at start anyway; the consumption, which must be on disk before a signature share
 * leaves, stays FULL. This saves one fsync per signature per node.
 *
 * One process owns a database file: better-sqlite3 is synchronous, so two stores on one file in one
 * process could wait on each other's locks with the event loop blocked. Snapshots use a second,
 * read-only connection: in WAL mode it reads one consistent state while the node goes on writing.
 */
import { Kysely, SqliteDialect } from 'kysely';
import { migrateOrClose } from '../../store/migrate.js';
import { cachingDatabase, ImmediateSqliteDialect, openSqliteConnection, openSqliteFile, type SqliteFileOptions } from '../../store/sqlite.js';
import { type Db, insertNonceRow, mapDriverError } from './queries.js';
import { migrateToLatest, type StoreSchema } from './schema.js';
import { KyselyKeyNodeStore } from './store.js';
import type { KeyNodeStore } from './types.js';

/** How long a statement waits for another connection's lock before failing with store_busy. */
export { SQLITE_BUSY_TIMEOUT_MS } from '../../store/sqlite.js';

/** How this store's file errors read: the not-a-database hint points at restoring the node. */
const FILE_OPTIONS: SqliteFileOptions = {
  what: 'key node database',
  notADatabaseHint: 'check the store url; restore the node from a backup if the file is damaged',
  mapError: mapDriverError,
};

/**
 * Opens (creating if needed) the SQLite store at `path`, or an in-memory one for ':memory:' (tests
 * only: nothing survives close), and brings its schema up to date. Throws InvalidInputError
 * `insecure_permissions` if the file is readable by others, LifeboatError `store_not_a_database` if
 * it is not a SQLite database, `store_busy` if another process keeps it locked, and the errors of
 * migrateToLatest.
 */
export async function openSqliteStore(path: string): Promise<KeyNodeStore> {
  const { path: file, memory, conn } = openSqliteFile(path, FILE_OPTIONS);
  // Prepared statements are kept (cachingDatabase): every signing round runs the same few queries.
  const db: Db = new Kysely<StoreSchema>({ dialect: new ImmediateSqliteDialect({ database: cachingDatabase(conn) }) });
  await migrateOrClose(db, (d) => migrateToLatest(d, 'sqlite'));
  return new KyselyKeyNodeStore({
    kind: 'sqlite',
    db,
    sqlite: conn,
    async readConsistent(fn) {
      // In memory there is no second connection; the read then holds the store's one connection.
      if (memory) return db.transaction().execute(fn);
      const reader = new Kysely<StoreSchema>({ dialect: new SqliteDialect({ database: openSqliteConnection(file, true, FILE_OPTIONS) }) });
      try {
        return await reader.transaction().execute(fn);
      } finally {
        await reader.destroy();
      }
    },
    // On the one connection, held (kysely's mutex) from the pragma to its reset: no other write runs
    // in between with synchronous=NORMAL.
    insertNonce: (nonce) =>
      db.connection().execute(async (c) => {
        conn.pragma('synchronous = NORMAL');
        try {
          await insertNonceRow(c, nonce);
        } finally {
          conn.pragma('synchronous = FULL');
        }
      }),
    close: () => db.destroy(),
  });
}
