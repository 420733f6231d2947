/**
 * Opening the backup service's store from a URL; the same forms as the key node's store
 * (src/keynode/store/index.ts):
 *
 *   sqlite:PATH               a file (relative to the working directory, or absolute); the default
 *   sqlite:///abs/path.db     the same, written URL-style
 *   sqlite::memory:           in memory, for tests: nothing survives close
 *   postgres://... or postgresql://...   any connection string pg accepts
 */
import { parseStoreUrl, type ParsedStoreUrl } from '../../keynode/store/index.js';
import { openPostgresBackupStore, type PostgresBackupStoreOptions } from './postgres.js';
import { openSqliteBackupStore } from './sqlite.js';
import type { BackupStore } from './types.js';

export type * from './types.js';
export { COMPACTION_STATES, EPHEMERAL_KINDS, TOKEN_KINDS } from './types.js';
export { redactStoreUrl } from '../../keynode/store/index.js';

export type ParsedBackupStoreUrl = ParsedStoreUrl;

/** Splits a store URL into its backend and target. Throws InvalidInputError `invalid_store_url`. */
export function parseBackupStoreUrl(url: string): ParsedBackupStoreUrl {
  return parseStoreUrl(url);
}

/** Options that apply to one backend only; the others ignore them. */
export type OpenBackupStoreOptions = PostgresBackupStoreOptions;

/**
 * Opens the backup store named by `url` (see the top of this file), creating and migrating it as
 * needed. Throws InvalidInputError `invalid_store_url` for an unknown scheme, and whatever the backend
 * throws: openSqliteBackupStore (./sqlite.ts) or openPostgresBackupStore (./postgres.ts).
 */
export async function openBackupStore(url: string, opts: OpenBackupStoreOptions = {}): Promise<BackupStore> {
  const parsed = parseBackupStoreUrl(url);
  return parsed.kind === 'sqlite' ? openSqliteBackupStore(parsed.path) : openPostgresBackupStore(parsed.url, opts);
}
