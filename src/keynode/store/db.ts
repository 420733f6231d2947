/**
 * The key node store's database handle and its driver errors, which every query module here runs on
 * (./queries.ts re-exports them for the modules that name that path).
 */
import type { Kysely } from 'kysely';
import { guardWith, isForeignKeyViolation, mapDriverError as mapWithBusyHint } from '../../store/driver.js';
import type { StoreSchema } from './schema.js';

export type Db = Kysely<StoreSchema>;

/** SQLite and PostgreSQL foreign-key violations (../../store/driver.ts); never throws. */
export { isForeignKeyViolation };

/** The store_busy hint of the key node's store: a locked SQLite file means a second process on it. */
const BUSY_HINT = 'another process holds a write lock on the database file; run one key node per sqlite file';

/**
 * Turns a driver error the caller can act on into a LifeboatError: `store_unavailable` for an
 * unreachable or restarting PostgreSQL, `store_busy` for a SQLite file locked past the busy timeout.
 * Anything else is a bug or corruption and passes as is. Returns the error to throw; never throws.
 */
export function mapDriverError(err: unknown): unknown {
  return mapWithBusyHint(err, BUSY_HINT);
}

/** Runs a query, mapping driver errors (see mapDriverError): throws what it throws, mapped. */
export const guarded = guardWith(mapDriverError);
