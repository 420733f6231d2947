/**
 * The LogStore both backends share: the queries of ./queries.ts plus the sequencing (the tree head,
 * commitBatch, publishing and co-signatures) and close. A backend supplies its kysely instance.
 *
 * The head is one row (log_head, `one` = 1). commitBatch moves it with a compare-and-swap on its size
 * (UPDATE ... WHERE size = oldSize) before it touches an entry: on PostgreSQL the UPDATE holds the
 * row lock until commit, so of two sequencers racing one updates the head and the other, once the
 * first commits, finds the size moved and writes nothing; SQLite runs one write transaction at a time
 * (BEGIN IMMEDIATE, ../../store/sqlite.ts).
 */
import { createHash } from 'node:crypto';
import { type RawBuilder, sql } from 'kysely';
import { ConflictError, InvalidInputError } from '../../errors.js';
import { affected, type Db, guarded, QueryOps } from './queries.js';
import { checkHash, checkIds, checkLimit, checkMillis, checkNote, checkSize, requireObject, rowToHead, rowToSequenced } from './records.js';
import type { LogStore, LogStoreKind, LogStoreOps, SequencedRecord, TreeHeadRecord } from './types.js';

export interface Backend {
  kind: LogStoreKind;
  db: Db;
  close(): Promise<void>;
}

function sequenceConflict(message: string): ConflictError {
  return new ConflictError(message, 'sequence_conflict', 'another sequencer moved the log: read the head again and sequence from there');
}

/**
 * Gives the pending entries `ids` the indexes from, from + 1, ... in the order given, in one statement
 * whatever the batch size: the ids travel as one JSON array (SQLite's json_each) or one bigint[]
 * (PostgreSQL's unnest WITH ORDINALITY). Only pending rows are touched; the caller counts them. On
 * SQLite the unary + keeps the planner from driving the join from the pending index (one scan of the
 * JSON array per pending row); the ids are looked up by rowid instead.
 */
function sequenceSql(kind: LogStoreKind, from: number, ids: number[]): RawBuilder<unknown> {
  if (kind === 'sqlite') {
    return sql`update log_entries set idx = ${from} + j.key from json_each(${JSON.stringify(ids)}) as j
      where log_entries.id = j.value and +log_entries.idx is null`;
  }
  return sql`update log_entries as e set idx = ${from}::bigint + v.ord - 1 from unnest(${ids}::bigint[]) with ordinality as v(id, ord)
    where e.id = v.id and e.idx is null`;
}

export class LogOps extends QueryOps implements LogStoreOps {
  async getHead(): Promise<TreeHeadRecord | undefined> {
    const row = await guarded(() => this.db.selectFrom('log_head').selectAll().where('one', '=', 1).executeTakeFirst());
    return row === undefined ? undefined : rowToHead(row);
  }

  async commitBatch(batch: { oldSize: number; ids: number[]; root: Uint8Array; checkpoint: string; now: number }): Promise<TreeHeadRecord> {
    requireObject(batch, 'batch');
    const oldSize = checkSize(batch.oldSize, 'oldSize');
    const ids = checkIds(batch.ids);
    const root = checkHash(batch.root, 'root');
    const checkpoint = checkNote(batch.checkpoint, 'checkpoint');
    const now = checkMillis(batch.now);
    const size = oldSize + ids.length;
    if (!Number.isSafeInteger(size)) throw new InvalidInputError('the new tree size is past 2^53 - 1');
    if (new Set(ids).size !== ids.length) throw sequenceConflict('the batch names a pending id twice');
    const head = { size, root, checkpoint, cosigned: checkpoint, updated_at: now };
    return this.atomic(async (db) => {
      if (ids.length === 0) {
        // Only the first head may be empty: a second checkpoint of one size could carry another root.
        if (oldSize !== 0 || !(await this.insertFirstHead(db, head))) throw sequenceConflict('an empty batch only commits the first checkpoint, of size 0');
        return rowToHead({ one: 1, ...head, published_size: 0 });
      }
      const moved = await db.updateTable('log_head').set(head).where('one', '=', 1).where('size', '=', oldSize).returning('published_size').executeTakeFirst();
      let publishedSize = moved?.published_size;
      if (publishedSize === undefined) {
        if (oldSize !== 0 || !(await this.insertFirstHead(db, head))) throw sequenceConflict(`the log's head is no longer of size ${oldSize}`);
        publishedSize = 0;
      }
      const r = await sequenceSql(this.kind, oldSize, ids).execute(db);
      const done = affected(r.numAffectedRows);
      // Throwing rolls the head back too: nothing of the batch is written.
      if (done !== ids.length) throw sequenceConflict(`${ids.length - done} of the batch's ${ids.length} ids are not pending`);
      return rowToHead({ one: 1, ...head, published_size: Number(publishedSize) });
    });
  }

  /** Writes the head row if there is none; false if there is one (another sequencer's, maybe just now). */
  private async insertFirstHead(db: Db, head: { size: number; root: Buffer; checkpoint: string; cosigned: string; updated_at: number }): Promise<boolean> {
    const r = await db
      .insertInto('log_head')
      .values({ one: 1, ...head, published_size: 0 })
      .onConflict((oc) => oc.column('one').doNothing())
      .executeTakeFirst();
    return affected(r.numInsertedOrUpdatedRows) > 0;
  }

  async listUnpublished(fromIndex: number, limit: number): Promise<SequencedRecord[]> {
    checkSize(fromIndex, 'fromIndex');
    checkLimit(limit);
    return guarded(async () => {
      // Bytes are held exactly for the indexes from publishedSize on: start the range scan there.
      const head = await this.db.selectFrom('log_head').select('published_size').where('one', '=', 1).executeTakeFirst();
      if (head === undefined) return [];
      const from = Math.max(fromIndex, Number(head.published_size));
      const rows = await this.db
        .selectFrom('log_entries')
        .select(['idx', 'hash', 'bytes'])
        .where('idx', '>=', from)
        .where('bytes', 'is not', null)
        .orderBy('idx')
        .limit(limit)
        .execute();
      return rows.map(rowToSequenced);
    });
  }

  async markPublished(size: number, now: number): Promise<void> {
    checkSize(size, 'size');
    checkMillis(now);
    await this.atomic(async (db) => {
      let q = db.selectFrom('log_head').select(['size', 'published_size']).where('one', '=', 1);
      if (this.kind === 'postgres') q = q.forUpdate();
      const head = await q.executeTakeFirst();
      const headSize = head === undefined ? -1 : Number(head.size);
      if (size > headSize) {
        throw new InvalidInputError(head === undefined ? 'the log has no checkpoint to publish yet' : `size ${size} is past the head's size ${headSize}`);
      }
      const published = Number(head!.published_size);
      if (size <= published) return;
      // Indexes below publishedSize have no bytes left: only the range since is touched.
      await db.updateTable('log_entries').set({ bytes: null }).where('idx', '>=', published).where('idx', '<', size).execute();
      await db.updateTable('log_head').set({ published_size: size, updated_at: now }).where('one', '=', 1).execute();
    });
  }

  async setCosigned(size: number, cosigned: string, now: number): Promise<boolean> {
    checkSize(size, 'size');
    checkNote(cosigned, 'cosigned');
    checkMillis(now);
    const r = await guarded(() => this.db.updateTable('log_head').set({ cosigned, updated_at: now }).where('one', '=', 1).where('size', '=', size).executeTakeFirst());
    return affected(r.numUpdatedRows) > 0;
  }
}

export class KyselyLogStore extends LogOps implements LogStore {
  #backend: Backend;
  #closed: Promise<void> | undefined;
  /** The sequencer locks held, released by close. */
  #locks = new Set<() => Promise<void>>();

  constructor(backend: Backend) {
    super(backend.db, backend.kind);
    this.#backend = backend;
  }

  async holdSequencerLock(origin: string): Promise<() => Promise<void>> {
    if (typeof origin !== 'string' || origin.length === 0 || origin.length > 255) throw new InvalidInputError('origin must be 1 to 255 characters');
    if (this.kind === 'sqlite') return async () => {};
    const key = createHash('sha256').update(origin, 'utf8').digest().readBigInt64BE(0).toString();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let settle!: (got: boolean | Error) => void;
    const acquired = new Promise<boolean | Error>((r) => (settle = r));
    // One pooled connection held for the life of the lock: an advisory lock belongs to its session.
    const held = this.db
      .connection()
      .execute(async (conn) => {
        const r = await sql<{ ok: boolean }>`select pg_try_advisory_lock(${key}::bigint) as ok`.execute(conn);
        const ok = r.rows[0]?.ok === true;
        settle(ok);
        if (!ok) return;
        await released;
        await sql`select pg_advisory_unlock(${key}::bigint)`.execute(conn);
      })
      .catch((err: unknown) => settle(err instanceof Error ? err : new Error(String(err))));
    const got = await acquired;
    if (got instanceof Error) return guarded(() => Promise.reject(got));
    if (!got) throw new ConflictError(`another \`lifeboat log serve\` sequences ${origin} on this store`, 'log_running', 'one sequencer per log: stop the other (it may run from another data directory or host)');
    const unlock = async (): Promise<void> => {
      this.#locks.delete(unlock);
      release();
      await held;
    };
    this.#locks.add(unlock);
    return unlock;
  }

  close(): Promise<void> {
    this.#closed ??= Promise.all([...this.#locks].map((u) => u())).then(() => this.#backend.close());
    return this.#closed;
  }
}
