/**
 * The SQLite backend (the default): one file, created 0600, in WAL mode with synchronous=FULL, so a
 * commit that returned is on disk before the caller acknowledges anything (a kill or power loss right
 * after keeps it), and a busy timeout for the moments another process (a backup) holds a lock.
 *
 * One exception: a round-one nonce is inserted with synchronous=NORMAL (no fsync of its own; the next
 * FULL commit, at the latest its consumption in round two, syncs it with everything before it). A
 * nonce lost to a crash is only a round two that answers `nonce_not_found`, and `node serve` deletes
 * every unused nonce at start anyway. This saves one fsync per signature per node. The consumption,
 * which must be on disk before a signature share leaves, commits without an fsync too, and the WAL is
 * then fdatasynced apart (claimNonce's `synced`) while the service computes the share it sends only
 * after: the same durability, with the sync overlapping the signing work.
 *
 * One process owns a database file: better-sqlite3 is synchronous, so two stores on one file in one
 * process could wait on each other's locks with the event loop blocked. Snapshots use a second,
 * read-only connection: in WAL mode it reads one consistent state while the node goes on writing.
 */
import { Kysely, SqliteDialect } from 'kysely';
import { migrateOrClose } from '../../store/migrate.js';
import { cachingDatabase, ImmediateSqliteDialect, openSqliteConnection, openSqliteFile, type SqliteFileOptions } from '../../store/sqlite.js';
import { closeSync, fdatasync, fstatSync, openSync, statSync } from 'node:fs';
import { LifeboatError } from '../../errors.js';
import { consumeNonceRow, insertNonceRow } from './nonces.js';
import { type Db, mapDriverError } from './queries.js';
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
  const wal = new WalSync(`${file}-wal`);
  const [normal, full] = [conn.prepare('PRAGMA synchronous = NORMAL'), conn.prepare('PRAGMA synchronous = FULL')];
  /** Runs one write with synchronous=NORMAL on the store's one connection, held until FULL is back. */
  const unsynced = <T>(write: (c: Db) => Promise<T>): Promise<T> =>
    db.connection().execute(async (c) => {
      normal.run();
      try {
        return await write(c);
      } finally {
        full.run();
      }
    });
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
    insertNonce: (nonce) => unsynced((c) => insertNonceRow(c, nonce)),
    // The DELETE commits without an fsync of its own; the WAL is fdatasynced apart while the caller
    // computes the signature share, which it sends only once that sync is done (types.ts, claimNonce).
    claimNonce: async (keyId, nonceId) => {
      const nonce = await unsynced((c) => consumeNonceRow(c, keyId, nonceId));
      return nonce && { nonce, synced: memory ? Promise.resolve() : wal.sync() };
    },
    close: async () => {
      wal.close();
      await db.destroy();
    },
  });
}

/**
 * fdatasyncs a store's WAL file, which holds every commit made so far (a checkpoint since has synced
 * the WAL first, then the database file). The file stays open between syncs; it is looked up by name
 * before each one (a stat on this thread) and opened anew if it is not the same file any more, so the
 * WAL synced is always the one SQLite writes. One trip to libuv's thread pool per sync: the fdatasync.
 */
export class WalSync {
  #open: { fd: number; dev: number; ino: number } | undefined;

  constructor(private readonly walPath: string) {}

  /** Resolves once the WAL is on disk; rejects with LifeboatError `store_sync_failed` if it cannot be synced. */
  sync(): Promise<void> {
    let fd: number;
    try {
      fd = this.current();
    } catch (err) {
      return Promise.reject(syncFailed(err));
    }
    return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(syncFailed(err)) : resolve())));
  }

  /** Closes the file it holds open; never throws. */
  close(): void {
    if (this.#open) closeQuietly(this.#open.fd);
    this.#open = undefined;
  }

  private current(): number {
    const now = statSync(this.walPath);
    if (this.#open && this.#open.dev === now.dev && this.#open.ino === now.ino) return this.#open.fd;
    this.close();
    const fd = openSync(this.walPath, 'r+'); // never written here; writable because some systems sync only such files
    const st = fstatSync(fd);
    this.#open = { fd, dev: st.dev, ino: st.ino };
    return fd;
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

function syncFailed(err: unknown): LifeboatError {
  return new LifeboatError('store_sync_failed', `the key node database's write-ahead log could not be synced to disk (${(err as NodeJS.ErrnoException).code ?? 'error'})`, {
    status: 503,
    hint: 'check the disk of the data directory; the signing round was not answered',
  });
}
