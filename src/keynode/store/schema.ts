/**
 * The key node's tables and their migrations, one set for both dialects. Migrations are append-only:
 * a released one is never edited, a change is a new entry. Only the byte column type (BLOB on SQLite,
 * bytea on PostgreSQL) and the outbox's generated id differ; timestamps are BIGINT milliseconds on both.
 */
import { type Generated, type Kysely, type Migration, sql } from 'kysely';
import { columnTypes, runMigrations } from '../../store/migrate.js';
import { mapDriverError } from './queries.js';
import type { StoreKind } from './types.js';

/** Bytes as the drivers hand them back (Buffer) or take them (Buffer is a Uint8Array). */
type Bytes = Uint8Array;
/** BIGINT: pg's int8 parser is set to Number in ../../store/postgres.ts; SQLite returns a number. */
type Millis = number;

export interface KeysTable {
  key_id: string;
  curve: string;
  threshold: number;
  max_signers: number;
  identifier: string;
  group_public_key: Bytes;
  public_package: Bytes;
  encrypted_share: Bytes;
  status: string;
  origin: string;
  created_at: Millis;
  /** 0003: the key's owner. */
  tenant: string;
  /** 0004: the key's emergency recovery policy (off, allow, require); null: the node's settings decide. */
  ers_policy: string | null;
  /** 0005: the share epoch, from 1 (docs/keyshare.md). */
  epoch: number;
}

export interface NoncesTable {
  nonce_id: string;
  key_id: string;
  encrypted_nonces: Bytes;
  commitments: Bytes;
  created_at: Millis;
  epoch: number;
}

export interface DkgSessionsTable {
  session_id: string;
  key_id: string;
  state: Bytes;
  step: number;
  expires_at: Millis;
  /** 0003: the tenant of the API key that started the session. */
  tenant: string;
  /** 0004: the ERS policy the key will have; null for none. */
  ers_policy: string | null;
}

export interface ApiKeysTable {
  id: string;
  secret_hash: Bytes;
  role: string;
  label: string;
  created_at: Millis;
  revoked_at: Millis | null;
  /** 0003: a client key's tenant; null for an operator key. */
  tenant: string | null;
}

export interface MetaTable {
  key: string;
  value: string;
}

/** The backup outbox (0002): changes waiting to be sealed into entries, then entries waiting for their ack. */
export interface BackupOutboxTable {
  /** Generated: absent on insert. */
  id: Generated<number>;
  /** The encoded change; empty once sealed. */
  change: Bytes;
  /** The entry's seq, null until sealed. */
  seq: number | null;
  /** The sealed entry, null until sealed. */
  entry: Bytes | null;
  created_at: Millis;
}

/** 0005: key-share backups to publish to the public log(s), one row per key and epoch (docs/keyshare.md). */
export interface KeyshareOutboxTable {
  key_id: string;
  epoch: number;
  /** The signed LBLE entry holding the sealed record, stored before the first send; null until sealed. */
  entry: Bytes | null;
  created_at: Millis;
}

/** 0005: what a log answered for a key's record: its index and the inclusion proof document. */
export interface KeysharePublicationsTable {
  key_id: string;
  epoch: number;
  /** The log's URL as configured. */
  log: string;
  leaf_index: number;
  checkpoint_size: number;
  /** The inclusion proof document (docs/log-format.md), JSON. */
  proof: string;
  published_at: Millis;
}

/** 0005: which durable channel holds which key at which epoch (docs/keynode.md, "Durable channels"). */
export interface KeyChannelsTable {
  key_id: string;
  /** backup, log or ers. */
  channel: string;
  epoch: number;
  /** What the channel says of it (JSON): e.g. the log index and checkpoint size. */
  detail: string;
  recorded_at: Millis;
}

export interface StoreSchema {
  keys: KeysTable;
  nonces: NoncesTable;
  dkg_sessions: DkgSessionsTable;
  api_keys: ApiKeysTable;
  meta: MetaTable;
  backup_outbox: BackupOutboxTable;
  keyshare_outbox: KeyshareOutboxTable;
  keyshare_publications: KeysharePublicationsTable;
  key_channels: KeyChannelsTable;
}

/** Every table; a store with a row in any of them is not empty (importSnapshot). */
export const TABLES = ['keys', 'nonces', 'dkg_sessions', 'api_keys', 'meta', 'backup_outbox', 'keyshare_outbox', 'keyshare_publications', 'key_channels'] as const;

export const MIGRATION_TABLE = 'lifeboat_migration';
export const MIGRATION_LOCK_TABLE = 'lifeboat_migration_lock';

/** The migrations by name; names sort in the order they run. */
export function migrations(kind: StoreKind): Record<string, Migration> {
  // Ids sort bytewise on both, whatever the database's locale: keyset paging must agree with SQLite.
  const { bytes, id } = columnTypes(kind);
  return {
    '0001_initial': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('keys')
          .addColumn('key_id', id, (c) => c.primaryKey())
          .addColumn('curve', 'text', (c) => c.notNull().check(sql`curve in ('ed25519', 'secp256k1', 'bip340')`))
          .addColumn('threshold', 'integer', (c) => c.notNull())
          .addColumn('max_signers', 'integer', (c) => c.notNull())
          .addColumn('identifier', 'text', (c) => c.notNull())
          .addColumn('group_public_key', bytes, (c) => c.notNull())
          .addColumn('public_package', bytes, (c) => c.notNull())
          .addColumn('encrypted_share', bytes, (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('active', 'pending_backup')`))
          .addColumn('origin', 'text', (c) => c.notNull().check(sql`origin in ('dkg', 'import', 'failover')`))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addCheckConstraint('keys_threshold_range', sql`threshold >= 1 and threshold <= max_signers and max_signers <= 255`)
          .execute();
        // Nonces go with their key (ON DELETE CASCADE) and are never part of a snapshot.
        await db.schema
          .createTable('nonces')
          .addColumn('nonce_id', id, (c) => c.primaryKey())
          .addColumn('key_id', id, (c) => c.notNull().references('keys.key_id').onDelete('cascade'))
          .addColumn('encrypted_nonces', bytes, (c) => c.notNull())
          .addColumn('commitments', bytes, (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('epoch', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('nonces_key_id').on('nonces').column('key_id').execute();
        await db.schema
          .createTable('dkg_sessions')
          .addColumn('session_id', id, (c) => c.primaryKey())
          .addColumn('key_id', id, (c) => c.notNull())
          .addColumn('state', bytes, (c) => c.notNull())
          .addColumn('step', 'integer', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('dkg_sessions_expires_at').on('dkg_sessions').column('expires_at').execute();
        await db.schema
          .createTable('api_keys')
          .addColumn('id', id, (c) => c.primaryKey())
          .addColumn('secret_hash', bytes, (c) => c.notNull())
          .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('client', 'operator')`))
          .addColumn('label', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('revoked_at', 'bigint')
          .execute();
        await db.schema
          .createTable('meta')
          .addColumn('key', id, (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0002_backup_outbox': {
      async up(db: Kysely<unknown>): Promise<void> {
        // AUTOINCREMENT on SQLite and an identity on PostgreSQL: an id is never handed out twice,
        // even after the newest row was deleted, so ids only ever increase.
        await db.schema
          .createTable('backup_outbox')
          .addColumn('id', kind === 'postgres' ? 'bigint' : 'integer', (c) =>
            kind === 'postgres' ? c.primaryKey().generatedAlwaysAsIdentity() : c.primaryKey().autoIncrement(),
          )
          .addColumn('change', bytes, (c) => c.notNull())
          .addColumn('seq', 'bigint', (c) => c.unique())
          .addColumn('entry', bytes)
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addCheckConstraint('backup_outbox_sealed', sql`(seq is null) = (entry is null)`)
          .execute();
      },
    },
    '0003_tenants': {
      async up(db: Kysely<unknown>): Promise<void> {
        // Keys scoped to their owners (docs/keynode.md, "Tenants"). What the store held before belonged
        // to one application: its keys and client API keys go to tenant `default`; operators have none.
        await db.schema.alterTable('keys').addColumn('tenant', 'text', (c) => c.notNull().defaultTo('default')).execute();
        await db.schema.alterTable('dkg_sessions').addColumn('tenant', 'text', (c) => c.notNull().defaultTo('default')).execute();
        await db.schema.alterTable('api_keys').addColumn('tenant', 'text').execute();
        await sql`update api_keys set tenant = 'default' where role = 'client'`.execute(db);
        // A tenant's listing pages by key_id within the tenant.
        await db.schema.createIndex('keys_tenant_key_id').on('keys').columns(['tenant', 'key_id']).execute();
      },
    },
    '0004_ers_policy': {
      async up(db: Kysely<unknown>): Promise<void> {
        // A key's own emergency recovery policy (docs/ers.md, "Policy"). Keys made before have none
        // (null): they go on following the node's ers settings, as they did.
        await db.schema.alterTable('keys').addColumn('ers_policy', 'text', (c) => c.check(sql`ers_policy is null or ers_policy in ('off', 'allow', 'require')`)).execute();
        await db.schema.alterTable('dkg_sessions').addColumn('ers_policy', 'text', (c) => c.check(sql`ers_policy is null or ers_policy in ('off', 'allow', 'require')`)).execute();
      },
    },
    '0005_keyshare': {
      async up(db: Kysely<unknown>): Promise<void> {
        // Share epochs (docs/keyshare.md): every key held before was its node's first share of the key id.
        await db.schema.alterTable('keys').addColumn('epoch', 'bigint', (c) => c.notNull().defaultTo(1).check(sql`epoch >= 1`)).execute();
        // Rows go with their key: a deleted key is neither published nor reported.
        await db.schema
          .createTable('keyshare_outbox')
          .addColumn('key_id', id, (c) => c.notNull().references('keys.key_id').onDelete('cascade'))
          .addColumn('epoch', 'bigint', (c) => c.notNull())
          .addColumn('entry', bytes)
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('keyshare_outbox_pk', ['key_id', 'epoch'])
          .execute();
        await db.schema
          .createTable('keyshare_publications')
          .addColumn('key_id', id, (c) => c.notNull().references('keys.key_id').onDelete('cascade'))
          .addColumn('epoch', 'bigint', (c) => c.notNull())
          .addColumn('log', id, (c) => c.notNull())
          .addColumn('leaf_index', 'bigint', (c) => c.notNull())
          .addColumn('checkpoint_size', 'bigint', (c) => c.notNull())
          .addColumn('proof', 'text', (c) => c.notNull())
          .addColumn('published_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('keyshare_publications_pk', ['key_id', 'epoch', 'log'])
          .execute();
        await db.schema
          .createTable('key_channels')
          .addColumn('key_id', id, (c) => c.notNull().references('keys.key_id').onDelete('cascade'))
          .addColumn('channel', 'text', (c) => c.notNull().check(sql`channel in ('backup', 'log', 'ers')`))
          .addColumn('epoch', 'bigint', (c) => c.notNull())
          .addColumn('detail', 'text', (c) => c.notNull())
          .addColumn('recorded_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('key_channels_pk', ['key_id', 'channel'])
          .execute();
      },
    },
  };
}

/**
 * Brings the schema to the latest migration. Safe with several nodes opening one PostgreSQL database
 * at once (the migrator takes a lock). Throws LifeboatError `store_unavailable` if the database cannot
 * be reached, `store_schema_newer` if it has a migration this version does not know (written by a
 * newer Lifeboat), `store_migration_failed` otherwise.
 */
export function migrateToLatest(db: Kysely<StoreSchema>, kind: StoreKind): Promise<void> {
  return runMigrations(db, {
    migrations: migrations(kind),
    table: MIGRATION_TABLE,
    lockTable: MIGRATION_LOCK_TABLE,
    storeName: 'store',
    mapError: mapDriverError,
  });
}
