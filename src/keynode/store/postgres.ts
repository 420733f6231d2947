/**
 * The PostgreSQL backend: a pg connection pool behind kysely. Durability is the server's
 * (synchronous_commit, replication); snapshots read in one REPEATABLE READ, READ ONLY transaction on
 * a pooled connection while the other connections go on writing.
 */
import { Kysely } from 'kysely';
import { postgresDialect, type PostgresPoolOptions } from '../../store/postgres.js';
import { migrateOrClose } from '../../store/migrate.js';
import type { Db } from './queries.js';
import { migrateToLatest, type StoreSchema } from './schema.js';
import { KyselyKeyNodeStore } from './store.js';
import type { KeyNodeStore } from './types.js';

/** The pool's options (maxConnections): see ../../store/postgres.ts. */
export type PostgresStoreOptions = PostgresPoolOptions;

/**
 * Connects to the PostgreSQL database at `url` (any form pg accepts: postgres://user:pass@host:port/db
 * ?sslmode=..., or a unix socket via ?host=/run/postgresql) and brings its schema up to date. Several
 * nodes may open one database at once: migrations take a lock. Throws LifeboatError `store_unavailable`
 * if the server cannot be reached, InvalidInputError for a bad maxConnections, and the errors of
 * migrateToLatest.
 */
export async function openPostgresStore(url: string, opts: PostgresStoreOptions = {}): Promise<KeyNodeStore> {
  const db: Db = new Kysely<StoreSchema>({ dialect: postgresDialect(url, 'lifeboat-keynode', opts) });
  await migrateOrClose(db, (d) => migrateToLatest(d, 'postgres'));
  return new KyselyKeyNodeStore({
    kind: 'postgres',
    db,
    readConsistent: (fn) => db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(fn),
    close: () => db.destroy(),
  });
}
