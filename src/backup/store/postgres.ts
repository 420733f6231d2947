/**
 * The PostgreSQL backend: a pg connection pool behind kysely. Durability is the server's
 * (synchronous_commit, replication). Transactions run READ COMMITTED; appends and compaction
 * completions of one stream serialize on its row (SELECT ... FOR UPDATE, ./queries.ts).
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Db } from './queries.js';
import { checkInt } from './records.js';
import { type BackupSchema, migrateBackupStore } from './schema.js';
import { KyselyBackupStore } from './store.js';
import type { BackupStore } from './types.js';

const INT8_OID = 20;

/**
 * BIGINT as a JS number, for this pool only (pg's global parsers stay as they are): every BIGINT here
 * (milliseconds, seqs, sizes up to 2^40) stays below 2^53. The key node's pool does the same.
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): unknown {
    if (oid === INT8_OID && format !== 'binary') return (v: string) => Number(v);
    return format === undefined ? pg.types.getTypeParser(oid) : pg.types.getTypeParser(oid, format);
  },
} as unknown as pg.CustomTypesConfig;

export interface PostgresBackupStoreOptions {
  /** Most connections the pool opens (default 10). */
  maxConnections?: number;
}

/**
 * Connects to the PostgreSQL database at `url` (any form pg accepts) and brings its schema up to
 * date. Several services may open one database at once: migrations take a lock. Throws LifeboatError
 * `store_unavailable` if the server cannot be reached, InvalidInputError for a bad maxConnections, and
 * the errors of migrateBackupStore.
 */
export async function openPostgresBackupStore(url: string, opts: PostgresBackupStoreOptions = {}): Promise<BackupStore> {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.maxConnections === undefined ? 10 : checkInt(opts.maxConnections, 'maxConnections', 1, 1000),
    connectionTimeoutMillis: 10_000,
    application_name: 'lifeboat-backup',
    types,
  });
  // An idle client whose server went away emits 'error' on the pool; unhandled, that would end the
  // process. The next query gets a fresh connection or fails with store_unavailable instead.
  pool.on('error', () => undefined);
  const db: Db = new Kysely<BackupSchema>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrateBackupStore(db, 'postgres');
  } catch (err) {
    await db.destroy().catch(() => undefined);
    throw err;
  }
  return new KyselyBackupStore({ kind: 'postgres', db, close: () => db.destroy() });
}
