/**
 * Opening the key node's store from a URL. docs/storage.md explains the choice between the backends.
 *
 *   sqlite:PATH               a file (relative to the working directory, or absolute); the default
 *   sqlite:///abs/path.db     the same, written URL-style
 *   sqlite::memory:           in memory, for tests: nothing survives close
 *   postgres://... or postgresql://...   any connection string pg accepts
 */
import { InvalidInputError } from '../../errors.js';
import { openPostgresStore, type PostgresStoreOptions } from './postgres.js';
import { openSqliteStore } from './sqlite.js';
import type { KeyNodeStore } from './types.js';

export type * from './types.js';
export { API_KEY_ROLES, BACKUP_JOURNAL_META, CURVES, DURABLE_CHANNEL_NAMES, KEY_ORIGINS, KEY_STATUSES, KEYSHARE_JOURNAL_META, keyEpoch, NONCE_EPOCH_META } from './types.js';
export { SQLITE_BUSY_TIMEOUT_MS } from './sqlite.js';

const HINT = 'use sqlite:PATH (the default, one file) or postgres://USER:PASSWORD@HOST:5432/DB';

export type ParsedStoreUrl = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/** Splits a store URL into its backend and target. Throws InvalidInputError `invalid_store_url`. */
export function parseStoreUrl(url: string): ParsedStoreUrl {
  if (typeof url !== 'string' || url.length === 0) {
    throw new InvalidInputError('the store url is empty', { code: 'invalid_store_url', hint: HINT });
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'sqlite') {
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2); // sqlite:///abs -> /abs
    if (path.length === 0) throw new InvalidInputError('the sqlite store url has no path', { code: 'invalid_store_url', hint: HINT });
    return { kind: 'sqlite', path };
  }
  if (scheme === 'postgres' || scheme === 'postgresql') {
    if (!/^postgres(?:ql)?:\/\//i.test(url)) {
      throw new InvalidInputError('a postgresql store url starts with postgres://', { code: 'invalid_store_url', hint: HINT });
    }
    return { kind: 'postgres', url };
  }
  // Name the scheme only: the rest may hold a password.
  throw new InvalidInputError(scheme === undefined ? 'the store url has no scheme' : `unknown store url scheme ${scheme}:`, { code: 'invalid_store_url', hint: HINT });
}

/** The URL with any password replaced by ***, for logs and status output. */
export function redactStoreUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/?#@]*):[^@/?#]*@/i, '$1:***@').replace(/([?&]password=)[^&#]*/gi, '$1***');
}

/**
 * The store URL without its password (userinfo's and a `password=` parameter), as node.json keeps it:
 * the password reaches `node serve` through $LIFEBOAT_NODE_STORE or PGPASSWORD instead.
 */
export function storeUrlWithoutPassword(url: string): string {
  if (!/^postgres(?:ql)?:\/\//i.test(url)) return url;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url; // openKeyNodeStore names what is wrong with it
  }
  if (u.password === '' && !u.searchParams.has('password')) return url;
  u.password = '';
  u.searchParams.delete('password');
  return u.toString();
}

/** Options that apply to one backend only; the others ignore them. */
export type OpenStoreOptions = PostgresStoreOptions;

/**
 * Opens the key node store named by `url` (see the top of this file), creating and migrating it as
 * needed. Throws InvalidInputError `invalid_store_url` for an unknown scheme, and whatever the
 * backend throws: openSqliteStore (./sqlite.ts) or openPostgresStore (./postgres.ts).
 */
export async function openKeyNodeStore(url: string, opts: OpenStoreOptions = {}): Promise<KeyNodeStore> {
  const parsed = parseStoreUrl(url);
  return parsed.kind === 'sqlite' ? openSqliteStore(parsed.path) : openPostgresStore(parsed.url, opts);
}
