/**
 * The PostgreSQL backend: a pg connection pool behind kysely. Durability is the server's
 * (synchronous_commit, replication). Transactions run READ COMMITTED; appends and compaction
 * completions of one stream serialize on its row (SELECT ... FOR UPDATE, ./queries.ts).
 */
import { Kysely } from 'kysely';
import { postgresDialect, type PostgresPoolOptions } from '../../store/postgres.js';
import { migrateOrClose } from '../../store/migrate.js';
import type { Db } from './queries.js';
import { type BackupSchema, migrateBackupStore } from './schema.js';
import { KyselyBackupStore } from './store.js';
import type { BackupStore } from './types.js';

/** The pool's options (maxConnections): see ../../store/postgres.ts. */
export type PostgresBackupStoreOptions = PostgresPoolOptions;

/**
 * Connects to the PostgreSQL database at `url` (any form pg accepts) and brings its schema up to
 * date. Several services may open one database at once: migrations take a lock. Throws LifeboatError
 * `store_unavailable` if the server cannot be reached, InvalidInputError for a bad maxConnections, and
 * the errors of migrateBackupStore.
 */
export async function openPostgresBackupStore(url: string, opts: PostgresBackupStoreOptions = {}): Promise<BackupStore> {
  const db: Db = new Kysely<BackupSchema>({ dialect: postgresDialect(url, 'lifeboat-backup', opts) });
  await migrateOrClose(db, (d) => migrateBackupStore(d, 'postgres'));
  return new KyselyBackupStore({ kind: 'postgres', db, close: () => db.destroy() });
}
