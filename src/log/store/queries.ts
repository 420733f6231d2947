/**
 * The log store's queries for submitters, witnesses and entries as they arrive, written once over
 * kysely for both dialects. The sequencing (the head, commitBatch, publishing) is in ./store.ts; the
 * error contracts are in ./types.ts.
 *
 * A method that answers with a contract error does so before it writes anything, and never by way of a
 * failed statement: inserts use ON CONFLICT DO NOTHING and count what they wrote.
 */
import { CompiledQuery, type Kysely, sql } from 'kysely';
import { ConflictError, InvalidInputError, NotFoundError } from '../../errors.js';
import { affected, guardWith, mapDriverError } from '../../store/driver.js';
import {
  checkEntryBytes,
  checkHash,
  checkKey,
  checkLimit,
  checkMillis,
  checkName,
  checkSize,
  MAX_BATCH,
  requireObject,
  rowToPending,
  rowToStatus,
  rowToSubmitter,
  rowToWitness,
  submitterToRow,
} from './records.js';
import type { LogSchema } from './schema.js';
import type { EntryStatus, LogStoreKind, PendingRecord, SubmitterRecord, WitnessStateRecord } from './types.js';

export type Db = Kysely<LogSchema>;

/**
 * Turns a driver error the caller can act on into a LifeboatError (../../store/driver.ts):
 * `store_unavailable` for an unreachable PostgreSQL, `store_busy` with a hint that names the log
 * server for a locked SQLite file. Anything else passes as is. Returns the error to throw; never throws.
 */
export function mapError(err: unknown): unknown {
  return mapDriverError(err, 'another process holds a write lock on the database file; run one log server per sqlite file');
}

/** Runs a query, mapping driver errors (see mapError): throws what it throws, mapped. */
export const guarded = guardWith(mapError);

export { affected };

/** Rows per INSERT at most: on SQLite a power of two (512, 256, ... 1: a few texts, each prepared once), on PostgreSQL what its bind limit allows. */
const ENTRY_COLUMNS = 3;
const MAX_INSERT_ROWS: Record<LogStoreKind, number> = { sqlite: 512, postgres: Math.floor(65_535 / ENTRY_COLUMNS) };
/** Entries are up to 64 KiB: keep one statement's payload well below PostgreSQL's 1 GiB message limit. */
const MAX_STATEMENT_BYTES = 32 << 20;
/** Hashes looked up per statement: within SQLite's 32,766 bind parameters. */
const LOOKUP_CHUNK = 10_000;

/** SQLite's insert texts by row count (powers of two only, so at most ten). */
const sqliteInsertSql = new Map<number, string>();

/**
 * `insert into log_entries ... on conflict do nothing returning id, hash` for `rows` rows, in the
 * dialect's placeholders, with the ids given (`withId`) or assigned by the database.
 */
function entryInsertSql(kind: LogStoreKind, rows: number, withId: boolean): string {
  let text = kind === 'sqlite' && !withId ? sqliteInsertSql.get(rows) : undefined;
  if (text !== undefined) return text;
  const cols = withId ? ENTRY_COLUMNS + 1 : ENTRY_COLUMNS;
  const tuples = new Array<string>(rows);
  for (let r = 0, n = 1; r < rows; r++, n += cols) {
    tuples[r] = kind === 'sqlite' ? `(?, ?, ?${withId ? ', ?' : ''})` : `($${n}, $${n + 1}, $${n + 2}${withId ? `, $${n + 3}` : ''})`;
  }
  const names = `"hash", "bytes", "received_at"${withId ? ', "id"' : ''}`;
  text = `insert into "log_entries" (${names}) values ${tuples.join(', ')} on conflict ("hash") do nothing returning "id", "hash"`;
  if (kind === 'sqlite' && !withId) sqliteInsertSql.set(rows, text);
  return text;
}

/** One entry of a batch as checked, keyed by its hash in hex; `id` when drawn before the insert. */
interface CheckedAdd {
  key: string;
  hash: Buffer;
  bytes: Buffer;
  id?: number;
}

function checkAdds(entries: unknown): CheckedAdd[] {
  if (!Array.isArray(entries) || entries.length < 1 || entries.length > MAX_BATCH) {
    throw new InvalidInputError(`entries must be an array of 1 to ${MAX_BATCH}`);
  }
  return entries.map((e: unknown) => {
    requireObject(e, 'entry');
    const { hash, bytes } = e as { hash: unknown; bytes: unknown };
    const h = checkHash(hash);
    return { key: h.toString('hex'), hash: h, bytes: checkEntryBytes(bytes) };
  });
}

/**
 * Submitters, witnesses and entries as they arrive: LogStoreOps but for the sequencing, which
 * ./store.ts adds.
 */
export class QueryOps {
  constructor(
    protected readonly db: Db,
    readonly kind: LogStoreKind,
  ) {}

  /** Runs `fn` in a transaction. */
  protected atomic<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    return guarded(() => this.db.transaction().execute(fn));
  }

  async enrolSubmitter(rec: Omit<SubmitterRecord, 'revokedAt'>): Promise<void> {
    const row = submitterToRow(rec);
    // No conflict target: a taken name and a taken signing key are both refused.
    const r = await guarded(() => this.db.insertInto('log_submitters').values(row).onConflict((oc) => oc.doNothing()).executeTakeFirst());
    if (affected(r.numInsertedOrUpdatedRows) === 0) {
      throw new ConflictError(`a submitter named ${row.name} or with this signing key is already enrolled`, 'submitter_exists', 'a name or key is never reused, revoked ones included');
    }
  }

  async getSubmitter(signingKey: Uint8Array): Promise<SubmitterRecord | undefined> {
    const key = checkKey(signingKey, 'signingKey');
    const row = await guarded(() => this.db.selectFrom('log_submitters').selectAll().where('signing_key', '=', key).executeTakeFirst());
    return row === undefined ? undefined : rowToSubmitter(row);
  }

  async listSubmitters(): Promise<SubmitterRecord[]> {
    const rows = await guarded(() => this.db.selectFrom('log_submitters').selectAll().orderBy('name').execute());
    return rows.map(rowToSubmitter);
  }

  async revokeSubmitter(name: string, now: number): Promise<void> {
    checkName(name, 'submitter');
    checkMillis(now);
    // The first revocation's time stays: a second one changes nothing.
    const r = await guarded(() => this.db.updateTable('log_submitters').set({ revoked_at: now }).where('name', '=', name).where('revoked_at', 'is', null).executeTakeFirst());
    if (affected(r.numUpdatedRows) > 0) return;
    const known = await guarded(() => this.db.selectFrom('log_submitters').select('name').where('name', '=', name).executeTakeFirst());
    if (known === undefined) throw new NotFoundError(`no submitter named ${name} is enrolled`, 'submitter_not_found', 'lifeboat log submitters lists them');
  }

  async addPending(hash: Uint8Array, bytes: Uint8Array, now: number): Promise<EntryStatus> {
    const [status] = await this.addPendingBatch([{ hash, bytes }], now);
    return status!;
  }

  async addPendingBatch(entries: { hash: Uint8Array; bytes: Uint8Array }[], now: number): Promise<EntryStatus[]> {
    const adds = checkAdds(entries);
    checkMillis(now);
    // One row per distinct hash, its id following the order given.
    const distinct = new Map<string, CheckedAdd>();
    for (const a of adds) if (!distinct.has(a.key)) distinct.set(a.key, a);
    let rows: CheckedAdd[] = [...distinct.values()];
    const status = await this.atomic(async (db) => {
      if (this.kind === 'postgres' && rows.length > 1) {
        // PostgreSQL inserts in hash order: two batches sharing entries then wait on each other's
        // rows in one order, never in a cycle (a deadlock). The ids are drawn first, in the order
        // given (an id drawn for an entry that turns out to be known is skipped: ids only ascend).
        const drawn = await sql<{ id: number }>`select nextval(pg_get_serial_sequence('log_entries', 'id')) as id from generate_series(1, ${rows.length})`.execute(db);
        const ids = drawn.rows.map((r) => Number(r.id)).sort((a, b) => a - b);
        rows = rows.map((r, i) => ({ ...r, id: ids[i] })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      }
      const found = new Map<string, EntryStatus>();
      await this.insertEntries(db, rows, now, found);
      // The rest were known already (or were added meanwhile by another writer, now committed).
      const known = rows.filter((r) => !found.has(r.key));
      for (let i = 0; i < known.length; i += LOOKUP_CHUNK) {
        const chunk = known.slice(i, i + LOOKUP_CHUNK).map((r) => r.hash);
        const got = await db.selectFrom('log_entries').select(['id', 'hash', 'idx']).where('hash', 'in', chunk).execute();
        for (const g of got) found.set(Buffer.from(g.hash).toString('hex'), rowToStatus(g));
      }
      return found;
    });
    return adds.map((a) => {
      const s = status.get(a.key);
      // Entry rows are never deleted: a hash the insert skipped is there to be read.
      if (s === undefined) throw new Error(`log store: entry ${a.key} neither inserted nor found`);
      return { ...s };
    });
  }

  /**
   * Inserts `rows` with multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING, each statement within
   * the dialect's bind parameter limit and MAX_STATEMENT_BYTES, and records each inserted row's pending
   * id in `found`. The statement text is built here, not compiled by kysely for every batch.
   */
  private async insertEntries(db: Db, rows: CheckedAdd[], now: number, found: Map<string, EntryStatus>): Promise<void> {
    const withId = rows[0]!.id !== undefined;
    const cols = withId ? ENTRY_COLUMNS + 1 : ENTRY_COLUMNS;
    const maxRows = Math.min(MAX_INSERT_ROWS[this.kind], Math.floor(65_535 / cols));
    for (let i = 0; i < rows.length; ) {
      let n = 1;
      let bytes = rows[i]!.bytes.length;
      while (i + n < rows.length && n < maxRows && bytes + rows[i + n]!.bytes.length <= MAX_STATEMENT_BYTES) bytes += rows[i + n++]!.bytes.length;
      if (this.kind === 'sqlite') n = 2 ** Math.floor(Math.log2(n));
      const params = new Array<unknown>(n * cols);
      for (let r = 0, p = 0; r < n; r++) {
        const e = rows[i + r]!;
        params[p++] = e.hash;
        params[p++] = e.bytes;
        params[p++] = now;
        if (withId) params[p++] = e.id;
      }
      const result = await db.executeQuery<{ id: number; hash: Uint8Array }>(CompiledQuery.raw(entryInsertSql(this.kind, n, withId), params));
      for (const r of result.rows) found.set(Buffer.from(r.hash).toString('hex'), { state: 'pending', id: Number(r.id) });
      i += n;
    }
  }

  async entryStatus(hash: Uint8Array): Promise<EntryStatus | undefined> {
    const h = checkHash(hash);
    const row = await guarded(() => this.db.selectFrom('log_entries').select(['id', 'idx']).where('hash', '=', h).executeTakeFirst());
    return row === undefined ? undefined : rowToStatus(row);
  }

  async listPending(limit: number): Promise<PendingRecord[]> {
    checkLimit(limit);
    const rows = await guarded(() =>
      this.db.selectFrom('log_entries').select(['id', 'hash', 'bytes', 'received_at']).where('idx', 'is', null).orderBy('id').limit(limit).execute(),
    );
    return rows.map(rowToPending);
  }

  async indexOf(hash: Uint8Array): Promise<number | undefined> {
    const h = checkHash(hash);
    const row = await guarded(() => this.db.selectFrom('log_entries').select('idx').where('hash', '=', h).where('idx', 'is not', null).executeTakeFirst());
    return row === undefined ? undefined : Number(row.idx);
  }

  async listWitnessStates(): Promise<WitnessStateRecord[]> {
    const rows = await guarded(() => this.db.selectFrom('log_witnesses').selectAll().orderBy('name').execute());
    return rows.map(rowToWitness);
  }

  async setWitnessSize(name: string, size: number, now: number): Promise<void> {
    const row = { name: checkName(name, 'witness'), size: checkSize(size, 'size'), updated_at: checkMillis(now) };
    // One statement: of two concurrent updates the larger size stays, whichever lands last.
    await guarded(() =>
      this.db
        .insertInto('log_witnesses')
        .values(row)
        .onConflict((oc) =>
          oc
            .column('name')
            .doUpdateSet((eb) => ({ size: eb.ref('excluded.size'), updated_at: eb.ref('excluded.updated_at') }))
            .where('log_witnesses.size', '<=', (eb) => eb.ref('excluded.size')),
        )
        .execute(),
    );
  }
}
