/**
 * Opening the log's sequencing store from a URL; the same forms as the key node's and the backup
 * service's stores (src/keynode/store/index.ts):
 *
 *   sqlite:PATH               a file (relative to the working directory, or absolute); the default
 *   sqlite:///abs/path.db     the same, written URL-style
 *   sqlite::memory:           in memory, for tests: nothing survives close
 *   postgres://... or postgresql://...   any connection string pg accepts
 */
import { parseStoreUrl, type ParsedStoreUrl } from '../../keynode/store/index.js';
import { openPostgresLogStore, type PostgresLogStoreOptions } from './postgres.js';
import { openSqliteLogStore } from './sqlite.js';
import type { LogStore } from './types.js';

export type * from './types.js';
export { redactStoreUrl } from '../../keynode/store/index.js';

/** Splits a store URL into its backend and target. Throws InvalidInputError `invalid_store_url`. */
export function parseLogStoreUrl(url: string): ParsedStoreUrl {
  return parseStoreUrl(url);
}

/** Options that apply to one backend only; the others ignore them. */
export type OpenLogStoreOptions = PostgresLogStoreOptions;

/**
 * Opens the log store named by `url` (see the top of this file), creating and migrating it as needed.
 * Throws InvalidInputError `invalid_store_url` for an unknown scheme, and whatever the backend throws:
 * openSqliteLogStore (./sqlite.ts) or openPostgresLogStore (./postgres.ts).
 */
export async function openLogStore(url: string, opts: OpenLogStoreOptions = {}): Promise<LogStore> {
  const parsed = parseLogStoreUrl(url);
  return parsed.kind === 'sqlite' ? openSqliteLogStore(parsed.path) : openPostgresLogStore(parsed.url, opts);
}
