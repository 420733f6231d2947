/**
 * What the database drivers (better-sqlite3, pg) report, in the stores' terms: the driver errors a
 * caller can act on become LifeboatErrors, foreign-key violations are recognised on both, and affected
 * row counts become numbers. Shared by the key node's store and the backup service's store; each
 * passes the words that differ (the store_busy hint).
 */
import { LifeboatError } from '../errors.js';

/** Turns a driver error into what a store throws; anything it does not know passes as is. */
export type ErrorMapper = (err: unknown) => unknown;

const NET_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'EPIPE']);

function errCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** SQLite (better-sqlite3) and PostgreSQL (SQLSTATE 23503) foreign-key violations. Never throws. */
export function isForeignKeyViolation(err: unknown): boolean {
  const code = errCode(err);
  return code === 'SQLITE_CONSTRAINT_FOREIGNKEY' || code === '23503';
}

/**
 * Turns a driver error the caller can act on into a LifeboatError: an unreachable or restarting
 * PostgreSQL (network errors, SQLSTATE classes 08 and 57P) is `store_unavailable`, a SQLite file
 * locked past the busy timeout is `store_busy` with `busyHint`. A LifeboatError, or anything else (a
 * bug or corruption), is returned as is. Returns the error to throw; never throws itself.
 */
export function mapDriverError(err: unknown, busyHint: string): unknown {
  if (err instanceof LifeboatError) return err;
  const code = errCode(err);
  const message = err instanceof Error ? err.message : String(err);
  if (NET_ERRORS.has(code) || code.startsWith('08') || code.startsWith('57P') || /^Connection terminated/.test(message)) {
    return new LifeboatError('store_unavailable', `the database is unreachable (${code || message})`, {
      hint: 'check that the database server is up and the store url is right',
      status: 503,
      cause: err,
    });
  }
  if (code.startsWith('SQLITE_BUSY')) {
    return new LifeboatError('store_busy', 'the sqlite store stayed locked past the busy timeout', { hint: busyHint, status: 503, cause: err });
  }
  return err;
}

/**
 * A query runner that maps driver errors with `map`: the returned function runs `fn` and throws
 * whatever `fn` throws, mapped.
 */
export function guardWith(map: ErrorMapper): <T>(fn: () => Promise<T>) => Promise<T> {
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw map(err);
    }
  };
}

/** A kysely row count (numInsertedOrUpdatedRows, numDeletedRows, ...) as a number; absent is 0. Never throws. */
export function affected(n: bigint | undefined): number {
  return Number(n ?? 0n);
}
