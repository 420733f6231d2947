/**
 * The PostgreSQL backend: a pg connection pool behind kysely. Durability is the server's
 * (synchronous_commit, replication); snapshots read in one REPEATABLE READ, READ ONLY transaction on
 * a pooled connection while the other connections go on writing.
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Db } from './queries.js';
import { checkInt } from './records.js';
import { migrateToLatest, type StoreSchema } from './schema.js';
import { KyselyKeyNodeStore } from './store.js';
import type { KeyNodeStore } from './types.js';

const INT8_OID = 20;

/** BIGINT as a JS number: every BIGINT here (milliseconds, counts, epochs) stays below 2^53. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): unknown {
    if (oid === INT8_OID && format !== 'binary') return (v: string) => Number(v);
    return format === undefined ? pg.types.getTypeParser(oid) : pg.types.getTypeParser(oid, format);
  },
} as unknown as pg.CustomTypesConfig;

export interface PostgresStoreOptions {
  /** Most connections the pool opens (default 10). */
  maxConnections?: number;
}

/**
 * Connects to the PostgreSQL database at `url` (any form pg accepts: postgres://user:pass@host:port/db
 * ?sslmode=..., or a unix socket via ?host=/run/postgresql) and brings its schema up to date. Several
 * nodes may open one database at once: migrations take a lock. Throws LifeboatError `store_unavailable`
 * if the server cannot be reached, and the errors of migrateToLatest.
 */
export async function openPostgresStore(url: string, opts: PostgresStoreOptions = {}): Promise<KeyNodeStore> {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.maxConnections === undefined ? 10 : checkInt(opts.maxConnections, 'maxConnections', 1, 1000),
    connectionTimeoutMillis: 10_000,
    application_name: 'lifeboat-keynode',
    types,
  });
  // An idle client whose server went away emits 'error' on the pool; unhandled, that would end the
  // process. The next query gets a fresh connection or fails with store_unavailable instead.
  pool.on('error', () => undefined);
  const db: Db = new Kysely<StoreSchema>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrateToLatest(db, 'postgres');
  } catch (err) {
    await db.destroy().catch(() => undefined);
    throw err;
  }
  return new KyselyKeyNodeStore({
    kind: 'postgres',
    db,
    readConsistent: (fn) => db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(fn),
    close: () => db.destroy(),
  });
}
