/**
 * The backup service's tables and their migrations, one set for both dialects. Migrations are
 * append-only: a released one is never edited, a change is a new entry. Only the byte column type
 * (BLOB on SQLite, bytea on PostgreSQL) and the id collation differ; timestamps are BIGINT ms.
 *
 * The migration table is lifeboat_backup_migration, not the key node's lifeboat_migration, and no
 * table name is shared with the key node's store (src/keynode/store/schema.ts): one PostgreSQL
 * database can host both.
 *
 * Foreign keys cascade from accounts to tokens and streams, from streams to compactions and from
 * compactions to their chunks. Entries carry none: a foreign key check per inserted row would tax the
 * ingest hot path, so deleteAccount deletes them itself (./queries.ts).
 */
import { type Kysely, type Migration, sql } from 'kysely';
import { columnTypes, runMigrations } from '../../store/migrate.js';
import { mapError } from './queries.js';
import type { BackupStoreKind } from './types.js';

/** Bytes as the drivers hand them back (Buffer) or take them (Buffer is a Uint8Array). */
type Bytes = Uint8Array;
/** BIGINT: pg's int8 parser is set to Number in ../../store/postgres.ts; SQLite returns a number. */
type Millis = number;

export interface AccountsTable {
  name: string;
  invite_hash: Bytes | null;
  record: Bytes | null;
  wrapped_key: Bytes | null;
  auth_public_key: Bytes | null;
  /** SHA-256 of the account's restore token (0002), or null. */
  restore_token_hash: Bytes | null;
  created_at: Millis;
  updated_at: Millis;
}

export interface EphemeralsTable {
  kind: string;
  id: string;
  account: string;
  value: Bytes;
  expires_at: Millis;
}

/** An account's second factor (0003): see TotpRecord in ./types.ts. */
export interface TotpTable {
  account: string;
  sealed_secret: Bytes;
  last_step: number;
  recovery_slots: Bytes;
  created_at: Millis;
  updated_at: Millis;
}

export interface TokensTable {
  hash: Bytes;
  account: string;
  kind: string;
  expires_at: Millis;
}

export interface StreamsTable {
  account: string;
  stream: string;
  head_seq: number;
  head_hash: Bytes;
  first_seq: number;
  created_at: Millis;
  updated_at: Millis;
}

export interface EntriesTable {
  account: string;
  stream: string;
  seq: number;
  prev_hash: Bytes;
  hash: Bytes;
  bytes: Bytes;
}

export interface CompactionsTable {
  id: string;
  account: string;
  stream: string;
  seq: number;
  hash: Bytes;
  size: number;
  chunk_count: number;
  state: string;
  created_at: Millis;
  completed_at: Millis | null;
}

export interface CompactionChunksTable {
  compaction_id: string;
  n: number;
  bytes: Bytes;
}

export interface BackupSchema {
  accounts: AccountsTable;
  ephemerals: EphemeralsTable;
  tokens: TokensTable;
  totp: TotpTable;
  streams: StreamsTable;
  entries: EntriesTable;
  compactions: CompactionsTable;
  compaction_chunks: CompactionChunksTable;
}

export const MIGRATION_TABLE = 'lifeboat_backup_migration';
const MIGRATION_LOCK_TABLE = 'lifeboat_backup_migration_lock';

/** The migrations by name; names sort in the order they run. */
export function migrations(kind: BackupStoreKind): Record<string, Migration> {
  // Names sort bytewise on both, whatever the database's locale: listAccounts/listStreams agree.
  const { bytes, id } = columnTypes(kind);
  return {
    '0001_initial': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('accounts')
          .addColumn('name', id, (c) => c.primaryKey())
          .addColumn('invite_hash', bytes)
          .addColumn('record', bytes)
          .addColumn('wrapped_key', bytes)
          .addColumn('auth_public_key', bytes)
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          // Invited (invite, no registration) or registered (all three, no invite): nothing between.
          .addCheckConstraint(
            'accounts_state',
            sql`(invite_hash is not null and record is null and wrapped_key is null and auth_public_key is null)
              or (invite_hash is null and record is not null and wrapped_key is not null and auth_public_key is not null)`,
          )
          .execute();
        // No foreign key: an unknown account gets a login state too (docs/backup.md, "Log in").
        await db.schema
          .createTable('ephemerals')
          .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('login', 'challenge')`))
          .addColumn('id', id, (c) => c.notNull())
          .addColumn('account', id, (c) => c.notNull())
          .addColumn('value', bytes, (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('ephemerals_pk', ['kind', 'id'])
          .execute();
        await db.schema.createIndex('ephemerals_expires_at').on('ephemerals').column('expires_at').execute();
        await db.schema.createIndex('ephemerals_account').on('ephemerals').column('account').execute();
        await db.schema
          .createTable('tokens')
          .addColumn('hash', bytes, (c) => c.primaryKey())
          .addColumn('account', id, (c) => c.notNull().references('accounts.name').onDelete('cascade'))
          .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('login', 'backup')`))
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('tokens_account_kind').on('tokens').columns(['account', 'kind']).execute();
        await db.schema.createIndex('tokens_expires_at').on('tokens').column('expires_at').execute();
        await db.schema
          .createTable('streams')
          .addColumn('account', id, (c) => c.notNull().references('accounts.name').onDelete('cascade'))
          .addColumn('stream', id, (c) => c.notNull())
          .addColumn('head_seq', 'bigint', (c) => c.notNull())
          .addColumn('head_hash', bytes, (c) => c.notNull())
          .addColumn('first_seq', 'bigint', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('streams_pk', ['account', 'stream'])
          .addCheckConstraint('streams_seqs', sql`head_seq >= 0 and first_seq >= 1 and first_seq <= head_seq + 1`)
          .execute();
        await db.schema
          .createTable('entries')
          .addColumn('account', id, (c) => c.notNull())
          .addColumn('stream', id, (c) => c.notNull())
          .addColumn('seq', 'bigint', (c) => c.notNull())
          .addColumn('prev_hash', bytes, (c) => c.notNull())
          .addColumn('hash', bytes, (c) => c.notNull())
          .addColumn('bytes', bytes, (c) => c.notNull())
          .addPrimaryKeyConstraint('entries_pk', ['account', 'stream', 'seq'])
          .execute();
        await db.schema
          .createTable('compactions')
          .addColumn('id', id, (c) => c.primaryKey())
          .addColumn('account', id, (c) => c.notNull())
          .addColumn('stream', id, (c) => c.notNull())
          .addColumn('seq', 'bigint', (c) => c.notNull())
          .addColumn('hash', bytes, (c) => c.notNull())
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addColumn('chunk_count', 'integer', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('uploading', 'complete')`))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('completed_at', 'bigint')
          .addForeignKeyConstraint('compactions_stream', ['account', 'stream'], 'streams', ['account', 'stream'], (c) => c.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('compactions_stream_seq').on('compactions').columns(['account', 'stream', 'seq']).execute();
        await db.schema.createIndex('compactions_state_created_at').on('compactions').columns(['state', 'created_at']).execute();
        await db.schema
          .createTable('compaction_chunks')
          .addColumn('compaction_id', id, (c) => c.notNull().references('compactions.id').onDelete('cascade'))
          .addColumn('n', 'integer', (c) => c.notNull())
          .addColumn('bytes', bytes, (c) => c.notNull())
          .addPrimaryKeyConstraint('compaction_chunks_pk', ['compaction_id', 'n'])
          .execute();
      },
    },
    // A restore token lets its holder's logins past a flood of anonymous login starts (docs/backup.md).
    '0002_restore_token': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema.alterTable('accounts').addColumn('restore_token_hash', bytes).execute();
      },
    },
    // Wallet logins (docs/backup.md, "Wallet accounts") add the `siwe` nonce as an ephemeral kind: the
    // table holds only states of a minute or so, so it is made again (a login in flight starts over)
    // rather than altered, which SQLite cannot do to a check constraint. Second factors get a table.
    '0003_wallet_totp': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema.dropTable('ephemerals').execute();
        await db.schema
          .createTable('ephemerals')
          .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('login', 'challenge', 'siwe')`))
          .addColumn('id', id, (c) => c.notNull())
          .addColumn('account', id, (c) => c.notNull())
          .addColumn('value', bytes, (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('ephemerals_pk', ['kind', 'id'])
          .execute();
        await db.schema.createIndex('ephemerals_expires_at').on('ephemerals').column('expires_at').execute();
        await db.schema.createIndex('ephemerals_account').on('ephemerals').column('account').execute();
        await db.schema
          .createTable('totp')
          .addColumn('account', id, (c) => c.primaryKey().references('accounts.name').onDelete('cascade'))
          .addColumn('sealed_secret', bytes, (c) => c.notNull())
          .addColumn('last_step', 'bigint', (c) => c.notNull())
          .addColumn('recovery_slots', bytes, (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
  };
}

/**
 * Brings the schema to the latest migration. Safe with several services opening one PostgreSQL
 * database at once (the migrator takes a lock). Throws LifeboatError `store_schema_newer` if the
 * database has a migration this version does not know (written by a newer Lifeboat),
 * `store_unavailable` if it cannot be reached, `store_migration_failed` otherwise.
 */
export function migrateBackupStore(db: Kysely<BackupSchema>, kind: BackupStoreKind): Promise<void> {
  return runMigrations(db, {
    migrations: migrations(kind),
    table: MIGRATION_TABLE,
    lockTable: MIGRATION_LOCK_TABLE,
    storeName: 'backup store',
    mapError,
  });
}
