/**
 * The migration runner both stores use: kysely's Migrator over a store's own migration and lock
 * tables (one PostgreSQL database can host several stores), with its outcome turned into the stores'
 * errors. Safe with several processes opening one database at once: the migrator takes a lock. Also
 * the column types their migrations share, which are all that differs between the dialects.
 */
import { type ColumnDataType, type Expression, type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import { LifeboatError } from '../errors.js';
import { type ErrorMapper, guardWith } from './driver.js';

/**
 * The column types that differ by dialect: bytes (BLOB on SQLite, bytea on PostgreSQL) and ids, which
 * sort bytewise on both whatever the database's locale (keyset paging and listings must agree).
 * Never throws.
 */
export function columnTypes(kind: 'sqlite' | 'postgres'): { bytes: ColumnDataType; id: ColumnDataType | Expression<unknown> } {
  return kind === 'postgres' ? { bytes: 'bytea', id: sql`text collate "C"` } : { bytes: 'blob', id: 'text' };
}

/** One store's migrations and how its errors read. */
export interface MigrationSet {
  /** The migrations by name; names sort in the order they run. */
  migrations: Record<string, Migration>;
  /** The table that records applied migrations, and the migrator's lock table. */
  table: string;
  lockTable: string;
  /** How messages name the store ('store', 'backup store'). */
  storeName: string;
  /** The store's driver error mapping (store_unavailable, store_busy). */
  mapError: ErrorMapper;
}

/**
 * Brings the schema of `db` to the set's latest migration. Throws what `set.mapError` maps a driver
 * error to (store_unavailable, store_busy), LifeboatError `store_schema_newer` if the database has a
 * migration the set does not know (written by a newer Lifeboat), `store_migration_failed` otherwise.
 */
export async function runMigrations<DB>(db: Kysely<DB>, set: MigrationSet): Promise<void> {
  const known = set.migrations;
  const provider: MigrationProvider = { getMigrations: () => Promise.resolve(known) };
  const migrator = new Migrator({ db, provider, migrationTableName: set.table, migrationLockTableName: set.lockTable });
  const { error } = await guardWith(set.mapError)(() => migrator.migrateToLatest());
  if (error === undefined) return;
  // migrateToLatest reports rather than throws; a connection failure is still store_unavailable.
  const mapped = set.mapError(error);
  if (mapped instanceof LifeboatError) throw mapped;
  const applied = await sql<{ name: string }>`select name from ${sql.table(set.table)}`.execute(db).then(
    (r) => r.rows.map((row) => row.name),
    () => [],
  );
  const unknownNames = applied.filter((n) => !(n in known));
  if (unknownNames.length > 0) {
    throw new LifeboatError('store_schema_newer', `the ${set.storeName} has migrations this lifeboat does not know: ${unknownNames.join(', ')}`, {
      hint: 'upgrade lifeboat to the version that wrote this database',
      status: 500,
      cause: error,
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  throw new LifeboatError('store_migration_failed', `migrating the ${set.storeName} failed: ${message}`, { status: 500, cause: error });
}

/**
 * Brings a newly opened database up to date with `migrate`, or closes it: on failure destroys `db`
 * (a failure to destroy is ignored) and throws what `migrate` threw.
 */
export async function migrateOrClose<DB>(db: Kysely<DB>, migrate: (db: Kysely<DB>) => Promise<void>): Promise<void> {
  try {
    await migrate(db);
  } catch (err) {
    await db.destroy().catch(() => undefined);
    throw err;
  }
}
