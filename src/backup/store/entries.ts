/**
 * The backup store's streams and entries: reading them, and appending a batch under the rules of
 * appendEntries in ./types.ts (a held seq repeats only with its hash, the rest chain from the head with
 * no gap), over the same kysely handle as ./queries.ts. ./totp.ts and ./store.ts build on this class.
 */
import { CompiledQuery } from 'kysely';
import { ConflictError } from '../../errors.js';
import { isForeignKeyViolation } from '../../store/driver.js';
import { accountNotFound, type Db, type EntryMethods, guarded, QueryOps } from './queries.js';
import { type CheckedEntry, checkEntries, checkLimit, checkMillis, checkName, checkSeq, rowToEntry, rowToStream } from './records.js';
import type { StreamsTable } from './schema.js';
import type { BackupStoreKind, BackupStoreOps, EntryRecord, StreamRecord } from './types.js';

/** QueryOps with the streams and entries; ./totp.ts adds the second factors, ./store.ts the compactions. */
export class EntryOps extends QueryOps implements Pick<BackupStoreOps, EntryMethods> {
  async getStream(account: string, stream: string): Promise<StreamRecord | undefined> {
    checkName(account, 'account');
    checkName(stream, 'stream');
    const row = await guarded(() => this.db.selectFrom('streams').selectAll().where('account', '=', account).where('stream', '=', stream).executeTakeFirst());
    return row === undefined ? undefined : rowToStream(row);
  }

  async listStreams(account: string): Promise<StreamRecord[]> {
    checkName(account, 'account');
    const rows = await guarded(() => this.db.selectFrom('streams').selectAll().where('account', '=', account).orderBy('stream').execute());
    return rows.map(rowToStream);
  }

  async appendEntries(account: string, stream: string, entries: EntryRecord[], now: number): Promise<StreamRecord> {
    checkName(account, 'account');
    checkName(stream, 'stream');
    const batch = checkEntries(entries);
    checkMillis(now, 'now');
    return this.atomic(async (db) => {
      let head = await this.lockStream(db, account, stream);
      if (head === undefined) {
        // A new stream: the batch is checked against the empty head before the stream row is written,
        // so a refused batch leaves nothing behind even in a caller's transaction.
        planAppend(stream, batch, 0, ZERO_HASH, new Map());
        if (!(await this.accountExists(db, account))) throw accountNotFound(account);
        const row = { account, stream, head_seq: 0, head_hash: ZERO_HASH, first_seq: 1, created_at: now, updated_at: now };
        try {
          await db.insertInto('streams').values(row).onConflict((oc) => oc.columns(['account', 'stream']).doNothing()).execute();
        } catch (err) {
          if (isForeignKeyViolation(err)) throw accountNotFound(account);
          throw err;
        }
        // Read it back locked: a concurrent first append may have created it (and written entries)
        // first. Gone again means a deleteAccount took it since.
        head = await this.lockStream(db, account, stream);
        if (head === undefined) throw accountNotFound(account);
      }
      const held = await this.heldHashes(db, account, stream, batch, Number(head.head_seq));
      const from = planAppend(stream, batch, Number(head.head_seq), head.head_hash, held);
      if (from === batch.length) return rowToStream(head);
      await this.insertEntries(db, account, stream, batch, from);
      const last = batch[batch.length - 1]!;
      await db
        .updateTable('streams')
        .set({ head_seq: last.seq, head_hash: last.hash, updated_at: now })
        .where('account', '=', account)
        .where('stream', '=', stream)
        .execute();
      return rowToStream({ ...head, head_seq: last.seq, head_hash: last.hash, updated_at: now });
    });
  }

  /**
   * The stream row, locked against other appends and compactions until the transaction ends: FOR
   * UPDATE on PostgreSQL; SQLite runs one write transaction at a time (BEGIN IMMEDIATE, ./sqlite.ts).
   */
  protected lockStream(db: Db, account: string, stream: string): Promise<StreamsTable | undefined> {
    let q = db.selectFrom('streams').selectAll().where('account', '=', account).where('stream', '=', stream);
    if (this.kind === 'postgres') q = q.forUpdate();
    return q.executeTakeFirst();
  }

  /** The held hashes of the batch's seqs at or below the head (the only ones a batch may repeat). */
  protected async heldHashes(db: Db, account: string, stream: string, batch: CheckedEntry[], headSeq: number): Promise<Map<number, Uint8Array>> {
    const first = batch[0]!.seq;
    const held = new Map<number, Uint8Array>();
    if (first > headSeq) return held;
    const last = Math.min(batch[batch.length - 1]!.seq, headSeq);
    const rows = await db
      .selectFrom('entries')
      .select(['seq', 'hash'])
      .where('account', '=', account)
      .where('stream', '=', stream)
      .where('seq', '>=', first)
      .where('seq', '<=', last)
      .execute();
    for (const r of rows) held.set(Number(r.seq), r.hash);
    return held;
  }

  /**
   * Writes batch[from..] with multi-row INSERTs, each within the dialect's bind parameter limit
   * (SQLite 32,766, PostgreSQL 65,535) and a payload of MAX_STATEMENT_BYTES (entries are up to 1 MiB).
   * The statement text is built here, not compiled by kysely for every batch (that cost as much as
   * SQLite's insert itself). PostgreSQL takes as many rows per statement as fit: a round trip costs
   * more than parsing. SQLite takes 512, 256, ... rows: a handful of texts, each prepared once
   * (./sqlite.ts caches statements).
   */
  protected async insertEntries(db: Db, account: string, stream: string, batch: CheckedEntry[], from: number): Promise<void> {
    const ends = new Array<number>(batch.length + 1);
    ends[0] = 0;
    for (let i = 0; i < batch.length; i++) ends[i + 1] = ends[i]! + batch[i]!.bytes.length;
    const maxRows = MAX_INSERT_ROWS[this.kind];
    for (let i = from; i < batch.length; ) {
      let rows = 1;
      while (i + rows < batch.length && rows < maxRows && ends[i + rows + 1]! - ends[i]! <= MAX_STATEMENT_BYTES) rows++;
      if (this.kind === 'sqlite') rows = 2 ** Math.floor(Math.log2(rows));
      const params: unknown[] = new Array<unknown>(rows * ENTRY_COLUMNS);
      for (let r = 0, p = 0; r < rows; r++) {
        const e = batch[i + r]!;
        params[p++] = account;
        params[p++] = stream;
        params[p++] = e.seq;
        params[p++] = e.prevHash;
        params[p++] = e.hash;
        params[p++] = e.bytes;
      }
      await db.executeQuery(CompiledQuery.raw(entryInsertSql(this.kind, rows), params));
      i += rows;
    }
  }

  async listEntries(account: string, stream: string, afterSeq: number, limit: number): Promise<EntryRecord[]> {
    checkName(account, 'account');
    checkName(stream, 'stream');
    checkSeq(afterSeq, 'afterSeq', 0);
    checkLimit(limit);
    const rows = await guarded(() =>
      this.db
        .selectFrom('entries')
        .select(['seq', 'prev_hash', 'hash', 'bytes'])
        .where('account', '=', account)
        .where('stream', '=', stream)
        .where('seq', '>', afterSeq)
        .orderBy('seq')
        .limit(limit)
        .execute(),
    );
    return rows.map(rowToEntry);
  }

  async getEntry(account: string, stream: string, seq: number): Promise<EntryRecord | undefined> {
    checkName(account, 'account');
    checkName(stream, 'stream');
    checkSeq(seq, 'seq');
    const row = await guarded(() =>
      this.db
        .selectFrom('entries')
        .select(['seq', 'prev_hash', 'hash', 'bytes'])
        .where('account', '=', account)
        .where('stream', '=', stream)
        .where('seq', '=', seq)
        .executeTakeFirst(),
    );
    return row === undefined ? undefined : rowToEntry(row);
  }
}

const ENTRY_COLUMNS = 6;
/** Rows per INSERT at most: on SQLite a power of two (512, 256, ... 1 rows), on PostgreSQL what its bind limit allows. */
const MAX_INSERT_ROWS: Record<BackupStoreKind, number> = { sqlite: 512, postgres: Math.floor(65_535 / ENTRY_COLUMNS) };
/** Entries are up to 1 MiB: keep one statement's payload well below PostgreSQL's 1 GiB message limit. */
const MAX_STATEMENT_BYTES = 32 << 20;
const ZERO_HASH = Buffer.alloc(32);

/** SQLite's insert texts by row count (powers of two only, so at most ten). */
const sqliteInsertSql = new Map<number, string>();

/** `insert into entries (...) values (...), ...` for `rows` rows, in the dialect's placeholders. */
function entryInsertSql(kind: BackupStoreKind, rows: number): string {
  let text = kind === 'sqlite' ? sqliteInsertSql.get(rows) : undefined;
  if (text !== undefined) return text;
  const tuples = new Array<string>(rows);
  for (let r = 0, n = 1; r < rows; r++, n += ENTRY_COLUMNS) {
    tuples[r] = kind === 'postgres' ? `($${n}, $${n + 1}, $${n + 2}, $${n + 3}, $${n + 4}, $${n + 5})` : '(?, ?, ?, ?, ?, ?)';
  }
  text = `insert into "entries" ("account", "stream", "seq", "prev_hash", "hash", "bytes") values ${tuples.join(', ')}`;
  if (kind === 'sqlite') sqliteInsertSql.set(rows, text);
  return text;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

/**
 * Checks a batch against the stream's head and the hashes held for its seqs at or below the head
 * (the rules of appendEntries in ./types.ts), in order, so the first faulty entry names the error.
 * Returns the index of the first entry to write (batch.length when all are already held).
 */
function planAppend(stream: string, batch: CheckedEntry[], headSeq: number, headHash: Uint8Array, held: Map<number, Uint8Array>): number {
  let seq = headSeq;
  let hash = headHash;
  let from = batch.length;
  for (let i = 0; i < batch.length; i++) {
    const e = batch[i]!;
    if (e.seq <= headSeq) {
      const h = held.get(e.seq);
      if (h === undefined) {
        throw new ConflictError(`entry ${e.seq} of stream ${stream} was pruned by a compaction`, 'entry_pruned', 'upload a compaction, then the entries after it');
      }
      if (!sameBytes(h, e.hash)) throw new ConflictError(`entry ${e.seq} of stream ${stream} differs from the one held`, 'entry_conflict');
      continue;
    }
    if (e.seq !== seq + 1) throw new ConflictError(`entry ${e.seq} of stream ${stream} leaves a gap after its head ${seq}`, 'sequence_gap');
    if (!sameBytes(e.prevHash, hash)) throw new ConflictError(`entry ${e.seq} of stream ${stream} does not chain to entry ${seq}`, 'chain_mismatch');
    if (from === batch.length) from = i;
    seq = e.seq;
    hash = e.hash;
  }
  return from;
}
