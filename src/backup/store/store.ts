/**
 * The BackupStore both backends share: the queries of ./queries.ts, ./entries.ts and ./totp.ts, the
 * compaction lifecycle (begin, chunks, complete and prune), transactions and close. A backend supplies
 * its kysely instance.
 */
import { ConflictError, InvalidInputError, NotFoundError } from '../../errors.js';
import { isForeignKeyViolation } from '../../store/driver.js';
import { affected, type Db, guarded, mapError } from './queries.js';
import { TotpOps } from './totp.js';
import { checkChunk, checkHash, checkId, checkInt, checkMillis, checkName, compactionToRow, MAX_CHUNKS, MAX_COMPACTION_SIZE, rowToCompaction } from './records.js';
import type { BackupStore, BackupStoreKind, BackupStoreOps, BackupStoreTx, CompactionRecord } from './types.js';

export interface Backend {
  kind: BackupStoreKind;
  db: Db;
  close(): Promise<void>;
}

function compactionNotFound(id: string): NotFoundError {
  return new NotFoundError(`compaction ${id} does not exist`, 'compaction_not_found');
}

export class BackupOps extends TotpOps implements BackupStoreOps {
  async beginCompaction(rec: Omit<CompactionRecord, 'state' | 'completedAt'>): Promise<void> {
    const row = compactionToRow(rec);
    const streamNotFound = () => new NotFoundError(`stream ${row.stream} has no entries`, 'stream_not_found');
    const stream = await guarded(() =>
      this.db.selectFrom('streams').select('head_seq').where('account', '=', row.account).where('stream', '=', row.stream).executeTakeFirst(),
    );
    if (stream === undefined) throw streamNotFound();
    let r;
    try {
      r = await this.db.insertInto('compactions').values(row).onConflict((oc) => oc.column('id').doNothing()).executeTakeFirst();
    } catch (err) {
      // The stream was deleted (with its account) since the check above.
      if (isForeignKeyViolation(err)) throw streamNotFound();
      throw mapError(err);
    }
    if (affected(r.numInsertedOrUpdatedRows) === 0) throw new ConflictError(`compaction ${row.id} already exists`, 'compaction_exists');
  }

  async putCompactionChunk(account: string, stream: string, id: string, n: number, bytes: Uint8Array): Promise<void> {
    checkName(account, 'account');
    checkName(stream, 'stream');
    checkId(id, 'compaction id');
    checkInt(n, 'chunk n', 0, MAX_CHUNKS - 1);
    const chunk = checkChunk(bytes);
    await this.atomic(async (db) => {
      // FOR SHARE: completeCompaction (FOR UPDATE) cannot complete it while a chunk is being stored.
      let q = db.selectFrom('compactions').select(['state', 'chunk_count']).where('id', '=', id).where('account', '=', account).where('stream', '=', stream);
      if (this.kind === 'postgres') q = q.forShare();
      const c = await q.executeTakeFirst();
      if (c === undefined) throw compactionNotFound(id);
      if (c.state !== 'uploading') throw new ConflictError(`compaction ${id} is complete`, 'compaction_complete');
      if (n >= Number(c.chunk_count)) throw new InvalidInputError(`chunk ${n} is past the compaction's ${c.chunk_count} chunks`);
      await db
        .insertInto('compaction_chunks')
        .values({ compaction_id: id, n, bytes: chunk })
        .onConflict((oc) => oc.columns(['compaction_id', 'n']).doUpdateSet((eb) => ({ bytes: eb.ref('excluded.bytes') })))
        .execute();
    });
  }

  async getCompactionChunk(account: string, stream: string, id: string, n: number): Promise<Uint8Array | undefined> {
    checkName(account, 'account');
    checkName(stream, 'stream');
    checkId(id, 'compaction id');
    checkInt(n, 'chunk n', 0, MAX_CHUNKS - 1);
    const row = await guarded(() =>
      this.db
        .selectFrom('compaction_chunks')
        .innerJoin('compactions', 'compactions.id', 'compaction_chunks.compaction_id')
        .select('compaction_chunks.bytes')
        .where('compaction_chunks.compaction_id', '=', id)
        .where('compaction_chunks.n', '=', n)
        .where('compactions.account', '=', account)
        .where('compactions.stream', '=', stream)
        .executeTakeFirst(),
    );
    return row === undefined ? undefined : new Uint8Array(row.bytes);
  }

  async getCompaction(account: string, stream: string, id: string): Promise<CompactionRecord | undefined> {
    checkName(account, 'account');
    checkName(stream, 'stream');
    checkId(id, 'compaction id');
    const row = await guarded(() =>
      this.db.selectFrom('compactions').selectAll().where('id', '=', id).where('account', '=', account).where('stream', '=', stream).executeTakeFirst(),
    );
    return row === undefined ? undefined : rowToCompaction(row);
  }

  async currentCompaction(account: string, stream: string): Promise<CompactionRecord | undefined> {
    checkName(account, 'account');
    checkName(stream, 'stream');
    const row = await guarded(() => this.current(this.db, account, stream));
    return row === undefined ? undefined : rowToCompaction(row);
  }

  async listCompactions(account: string, stream: string): Promise<CompactionRecord[]> {
    checkName(account, 'account');
    checkName(stream, 'stream');
    const rows = await guarded(() =>
      this.db.selectFrom('compactions').selectAll().where('account', '=', account).where('stream', '=', stream).where('state', '=', 'complete').orderBy('seq', 'asc').execute(),
    );
    return rows.map(rowToCompaction);
  }

  private current(db: Db, account: string, stream: string) {
    return db
      .selectFrom('compactions')
      .selectAll()
      .where('account', '=', account)
      .where('stream', '=', stream)
      .where('state', '=', 'complete')
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
  }

  async completeCompaction(account: string, stream: string, id: string, now: number, declared?: { hash: Uint8Array; size: number; chunkCount: number }): Promise<void> {
    checkName(account, 'account');
    checkName(stream, 'stream');
    checkId(id, 'compaction id');
    checkMillis(now, 'now');
    await this.atomic(async (db) => {
      // The stream row first, as appendEntries takes it: completions and appends of a stream serialize.
      const head = await this.lockStream(db, account, stream);
      if (head === undefined) throw compactionNotFound(id);
      let q = db.selectFrom('compactions').selectAll().where('id', '=', id).where('account', '=', account).where('stream', '=', stream);
      if (this.kind === 'postgres') q = q.forUpdate();
      const c = await q.executeTakeFirst();
      if (c === undefined) throw compactionNotFound(id);
      if (c.state === 'complete') return;
      const previous = await this.current(db, account, stream);
      if (previous !== undefined && Number(previous.seq) >= Number(c.seq)) {
        throw new ConflictError(`compaction ${id} covers seq ${c.seq}, and complete compaction ${previous.id} covers ${previous.seq}`, 'compaction_stale');
      }
      const decl = declared ? { hash: checkHash(declared.hash, 'compaction hash'), size: checkInt(declared.size, 'compaction size', 1, MAX_COMPACTION_SIZE), chunk_count: checkInt(declared.chunkCount, 'chunkCount', 1, MAX_CHUNKS) } : {};
      await db.updateTable('compactions').set({ state: 'complete', completed_at: now, ...decl }).where('id', '=', id).execute();
      if (previous === undefined) return;
      // Keep the previous compaction and every entry after it: a restore that began from it goes on.
      const keepFrom = Number(previous.seq);
      await db.deleteFrom('compactions').where('account', '=', account).where('stream', '=', stream).where('state', '=', 'complete').where('seq', '<', keepFrom).execute();
      await db.deleteFrom('entries').where('account', '=', account).where('stream', '=', stream).where('seq', '<=', keepFrom).execute();
      // Held entries run from first_seq to the head without a hole, so the lowest one left is known.
      const firstSeq = Math.min(Math.max(Number(head.first_seq), keepFrom + 1), Number(head.head_seq) + 1);
      if (firstSeq !== Number(head.first_seq)) {
        await db.updateTable('streams').set({ first_seq: firstSeq, updated_at: now }).where('account', '=', account).where('stream', '=', stream).execute();
      }
    });
  }
}

export class KyselyBackupStore extends BackupOps implements BackupStore {
  #backend: Backend;
  #closed: Promise<void> | undefined;

  constructor(backend: Backend) {
    super(backend.db, backend.kind);
    this.#backend = backend;
  }

  transaction<T>(fn: (tx: BackupStoreTx) => Promise<T>): Promise<T> {
    return guarded(() => this.db.transaction().execute((trx) => fn(new BackupOps(trx, this.kind))));
  }

  close(): Promise<void> {
    this.#closed ??= this.#backend.close();
    return this.#closed;
  }
}
