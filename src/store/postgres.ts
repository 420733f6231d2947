/**
 * The PostgreSQL connection pool both stores use: pg behind kysely, BIGINT parsed as a JS number
 * for this pool only (pg's global parsers stay as they are), and a pool that survives a server going
 * away under an idle client. Durability is the server's (synchronous_commit, replication).
 */
import { PostgresDialect } from 'kysely';
import pg from 'pg';
import { InvalidInputError } from '../errors.js';

const INT8_OID = 20;
const DEFAULT_MAX_CONNECTIONS = 10;
const MAX_CONNECTIONS = 1000;

/** BIGINT as a JS number: every BIGINT the stores hold (milliseconds, counts, seqs, sizes up to 2^40) stays below 2^53. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): unknown {
    if (oid === INT8_OID && format !== 'binary') return (v: string) => Number(v);
    return format === undefined ? pg.types.getTypeParser(oid) : pg.types.getTypeParser(oid, format);
  },
} as unknown as pg.CustomTypesConfig;

function checkMaxConnections(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > MAX_CONNECTIONS) {
    throw new InvalidInputError(`maxConnections must be an integer from 1 to ${MAX_CONNECTIONS}`);
  }
  return value;
}

export interface PostgresPoolOptions {
  /** Most connections the pool opens (default 10). */
  maxConnections?: number;
}

/**
 * A kysely dialect over a new pool for `url` (any form pg accepts: postgres://user:pass@host:port/db
 * ?sslmode=..., or a unix socket via ?host=/run/postgresql), its connections named `applicationName`.
 * Connects lazily: an unreachable server shows at the first query. Throws InvalidInputError if
 * maxConnections is not an integer from 1 to 1000.
 */
export function postgresDialect(url: string, applicationName: string, opts: PostgresPoolOptions = {}): PostgresDialect {
  const max = opts.maxConnections === undefined ? DEFAULT_MAX_CONNECTIONS : checkMaxConnections(opts.maxConnections);
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 10_000, application_name: applicationName, types });
  // An idle client whose server went away emits 'error' on the pool; unhandled, that would end the
  // process. The next query gets a fresh connection or fails with store_unavailable instead.
  pool.on('error', () => undefined);
  return new PostgresDialect({ pool });
}
