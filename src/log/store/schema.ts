/**
 * The log store's tables and their migrations, one set for both dialects. Migrations are append-only:
 * a released one is never edited, a change is a new entry. Only the byte column type (BLOB on SQLite,
 * bytea on PostgreSQL), the name collation and the id column differ; timestamps are BIGINT ms.
 *
 * Every table name starts with `log_`, the migration and lock tables too (log_migration,
 * log_migration_lock), so one PostgreSQL database can host the log beside the key node's and the
 * backup service's stores.
 *
 * One table holds every entry, pending and sequenced, so the leaf hash is unique across both: an add
 * of an entry is idempotent by a unique constraint alone (INSERT ... ON CONFLICT DO NOTHING), with no
 * window in which an entry being sequenced is in neither of two tables. An entry is pending while
 * `idx` is null; sequencing sets `idx` once (unique: one index per entry, one entry per index);
 * publishing drops `bytes`.
 */
import { type Kysely, type Migration, sql } from 'kysely';
import { columnTypes, runMigrations } from '../../store/migrate.js';
import { mapError } from './queries.js';
import type { LogStoreKind } from './types.js';

/** Bytes as the drivers hand them back (Buffer) or take them (Buffer is a Uint8Array). */
type Bytes = Uint8Array;
/** BIGINT: pg's int8 parser is set to Number in ../../store/postgres.ts; SQLite returns a number. */
type Int = number;

export interface SubmittersTable {
  name: string;
  signing_key: Bytes;
  box_key: Bytes;
  enrolled_at: Int;
  revoked_at: Int | null;
}

export interface EntriesTable {
  /** The pending id: assigned on insert, ascending, never reused. */
  id: Int;
  hash: Bytes;
  /** The entry's bytes, null once the tiles covering it are written (markPublished). */
  bytes: Bytes | null;
  received_at: Int;
  /** The index in the tree, null while pending. */
  idx: Int | null;
}

export interface HeadTable {
  /** Always 1: the table has one row once the first checkpoint is committed. */
  one: Int;
  size: Int;
  root: Bytes;
  checkpoint: string;
  cosigned: string;
  published_size: Int;
  updated_at: Int;
}

export interface WitnessesTable {
  name: string;
  size: Int;
  updated_at: Int;
}

export interface LogSchema {
  log_submitters: SubmittersTable;
  log_entries: EntriesTable;
  log_head: HeadTable;
  log_witnesses: WitnessesTable;
}

export const MIGRATION_TABLE = 'log_migration';
const MIGRATION_LOCK_TABLE = 'log_migration_lock';

/** The migrations by name; names sort in the order they run. */
export function migrations(kind: LogStoreKind): Record<string, Migration> {
  // Names sort bytewise on both, whatever the database's locale: listSubmitters/listWitnessStates agree.
  const { bytes, id: name } = columnTypes(kind);
  return {
    '0001_initial': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('log_submitters')
          .addColumn('name', name, (c) => c.primaryKey())
          .addColumn('signing_key', bytes, (c) => c.notNull().unique())
          .addColumn('box_key', bytes, (c) => c.notNull())
          .addColumn('enrolled_at', 'bigint', (c) => c.notNull())
          .addColumn('revoked_at', 'bigint')
          .execute();
        // SQLite: the rowid itself (never reused here: no entry row is ever deleted). PostgreSQL: an
        // identity, BY DEFAULT because addPendingBatch draws a batch's ids before it inserts them.
        let entries = db.schema.createTable('log_entries');
        entries =
          kind === 'postgres'
            ? entries.addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
            : entries.addColumn('id', 'integer', (c) => c.primaryKey());
        await entries
          .addColumn('hash', bytes, (c) => c.notNull().unique())
          .addColumn('bytes', bytes)
          .addColumn('received_at', 'bigint', (c) => c.notNull())
          .addColumn('idx', 'bigint')
          // A pending entry always has its bytes; only a sequenced one may have dropped them.
          .addCheckConstraint('log_entries_state', sql`idx >= 0 or (idx is null and bytes is not null)`)
          .execute();
        // Two partial indexes split the rows: the sequenced ones by index (unique: one entry per index),
        // and the pending ones by id, which is the only index a pending-only query can use: listPending
        // reads the smallest pending ids in order, whatever the planner's statistics.
        await db.schema.createIndex('log_entries_idx').unique().on('log_entries').column('idx').where(sql.ref('idx'), 'is not', null).execute();
        await db.schema.createIndex('log_entries_pending').on('log_entries').column('id').where(sql.ref('idx'), 'is', null).execute();
        await db.schema
          .createTable('log_head')
          .addColumn('one', 'integer', (c) => c.primaryKey().check(sql`one = 1`))
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addColumn('root', bytes, (c) => c.notNull())
          .addColumn('checkpoint', 'text', (c) => c.notNull())
          .addColumn('cosigned', 'text', (c) => c.notNull())
          .addColumn('published_size', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addCheckConstraint('log_head_sizes', sql`size >= 0 and published_size >= 0 and published_size <= size`)
          .execute();
        await db.schema
          .createTable('log_witnesses')
          .addColumn('name', name, (c) => c.primaryKey())
          .addColumn('size', 'bigint', (c) => c.notNull().check(sql`size >= 0`))
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
  };
}

/**
 * Brings the schema to the latest migration. Safe with several processes opening one database at
 * once (the migrator takes a lock). Throws LifeboatError `store_schema_newer` if the database has a
 * migration this version does not know (written by a newer Lifeboat), `store_unavailable` if it
 * cannot be reached, `store_busy` if a SQLite file stays locked, `store_migration_failed` otherwise.
 */
export function migrateLogStore(db: Kysely<LogSchema>, kind: LogStoreKind): Promise<void> {
  return runMigrations(db, {
    migrations: migrations(kind),
    table: MIGRATION_TABLE,
    lockTable: MIGRATION_LOCK_TABLE,
    storeName: 'log store',
    mapError,
  });
}
