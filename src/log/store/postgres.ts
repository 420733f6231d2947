/**
 * The PostgreSQL backend: a pg connection pool behind kysely. Durability is the server's
 * (synchronous_commit, replication). Transactions run READ COMMITTED: commitBatch serializes on the
 * head row (its compare-and-swap UPDATE holds the row lock), and concurrent adds of one entry on the
 * unique leaf hash (INSERT ... ON CONFLICT DO NOTHING waits for the other insert's outcome).
 */
import { Kysely } from 'kysely';
import { migrateOrClose } from '../../store/migrate.js';
import { postgresDialect, type PostgresPoolOptions } from '../../store/postgres.js';
import type { Db } from './queries.js';
import { type LogSchema, migrateLogStore } from './schema.js';
import { KyselyLogStore } from './store.js';
import type { LogStore } from './types.js';

/** The pool's options (maxConnections): see ../../store/postgres.ts. */
export type PostgresLogStoreOptions = PostgresPoolOptions;

/**
 * Connects to the PostgreSQL database at `url` (any form pg accepts) and brings its schema up to
 * date; the database may host other Lifeboat stores too (every table here starts with `log_`).
 * Throws LifeboatError `store_unavailable` if the server cannot be reached, InvalidInputError for a bad
 * maxConnections, and the errors of migrateLogStore.
 */
export async function openPostgresLogStore(url: string, opts: PostgresLogStoreOptions = {}): Promise<LogStore> {
  const db: Db = new Kysely<LogSchema>({ dialect: postgresDialect(url, 'lifeboat-log', opts) });
  await migrateOrClose(db, (d) => migrateLogStore(d, 'postgres'));
  return new KyselyLogStore({ kind: 'postgres', db, close: () => db.destroy() });
}
