/**
 * The backup outbox's queries (docs/backup.md, "The agent in the key node"; the contracts are in
 * ./types.ts). Each function runs on the handle it is given, the store's connection or a transaction;
 * StoreOps (./queries.ts) maps driver errors around them.
 *
 * A row is a change until the agent seals it: then it holds the entry and its seq, and its change is
 * emptied (the entry carries it, encrypted). Acknowledged entries are deleted.
 */
import { type NodeChange, encodeChange } from '../../backup/changes.js';
import { ConflictError, NotFoundError } from '../../errors.js';
import type { Db } from './queries.js';
import { checkInt, checkLimit, checkMillis, checkOutboxBytes, own } from './records.js';
import { BACKUP_JOURNAL_META, type OutboxChange, type OutboxEntry } from './types.js';

const EMPTY = Buffer.alloc(0);

function affected(n: bigint | undefined): number {
  return Number(n ?? 0n);
}

/** SQLite and PostgreSQL (SQLSTATE 23505) unique violations. */
function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505';
}

/**
 * Appends `change` to the outbox if `backup_journal` is on. Call it in the change's transaction, after
 * the statement that made the change: that statement has locked the key's or API key's row by then,
 * so a later change to the same record gets a higher id (on PostgreSQL ids are handed out as rows are
 * added, not as transactions commit).
 */
export async function journal(db: Db, change: NodeChange): Promise<void> {
  const flag = await db.selectFrom('meta').select('value').where('key', '=', BACKUP_JOURNAL_META).executeTakeFirst();
  if (flag?.value !== 'on') return;
  const bytes = encodeChange(change);
  await db
    .insertInto('backup_outbox')
    .values({ change: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), seq: null, entry: null, created_at: Date.now() })
    .execute();
}

export async function appendOutbox(db: Db, change: Uint8Array, now: number): Promise<number> {
  const bytes = checkOutboxBytes(change, 'change');
  checkMillis(now, 'now');
  const r = await db.insertInto('backup_outbox').values({ change: bytes, seq: null, entry: null, created_at: now }).returning('id').executeTakeFirstOrThrow();
  return Number(r.id);
}

export async function listUnsealedOutbox(db: Db, limit: number): Promise<OutboxChange[]> {
  checkLimit(limit);
  const rows = await db.selectFrom('backup_outbox').select(['id', 'change', 'created_at']).where('seq', 'is', null).orderBy('id').limit(limit).execute();
  return rows.map((r) => ({ id: Number(r.id), change: own(r.change), createdAt: Number(r.created_at) }));
}

export async function sealOutbox(db: Db, id: number, seq: number, entry: Uint8Array): Promise<void> {
  checkInt(id, 'id', 1, Number.MAX_SAFE_INTEGER);
  checkInt(seq, 'seq', 1, Number.MAX_SAFE_INTEGER);
  const bytes = checkOutboxBytes(entry, 'entry');
  const seqExists = () => new ConflictError(`outbox seq ${seq} is taken`, 'outbox_seq_exists');
  let r;
  try {
    // The NOT EXISTS keeps a taken seq from failing the statement, which on PostgreSQL would abort
    // the caller's transaction; the unique index still decides between concurrent sealers.
    r = await db
      .updateTable('backup_outbox')
      .set({ seq, entry: bytes, change: EMPTY })
      .where('id', '=', id)
      .where('seq', 'is', null)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('backup_outbox as taken').select('taken.id').where('taken.seq', '=', seq))))
      .executeTakeFirst();
  } catch (err) {
    if (isUniqueViolation(err)) throw seqExists();
    throw err;
  }
  if (affected(r.numUpdatedRows) > 0) return;
  const unsealed = await db.selectFrom('backup_outbox').select('id').where('id', '=', id).where('seq', 'is', null).executeTakeFirst();
  if (unsealed === undefined) throw new NotFoundError(`outbox row ${id} does not exist or is sealed already`, 'outbox_row_not_found');
  throw seqExists();
}

export async function listSealedOutbox(db: Db, afterSeq: number, limit: number): Promise<OutboxEntry[]> {
  checkInt(afterSeq, 'afterSeq', 0, Number.MAX_SAFE_INTEGER);
  checkLimit(limit);
  const rows = await db.selectFrom('backup_outbox').select(['seq', 'entry']).where('seq', '>', afterSeq).orderBy('seq').limit(limit).execute();
  // seq > afterSeq holds only for sealed rows, which have both.
  return rows.map((r) => ({ seq: Number(r.seq), entry: own(r.entry ?? EMPTY) }));
}

export async function deleteSealedOutboxThrough(db: Db, seq: number): Promise<number> {
  checkInt(seq, 'seq', 0, Number.MAX_SAFE_INTEGER);
  const r = await db.deleteFrom('backup_outbox').where('seq', '<=', seq).executeTakeFirst();
  return affected(r.numDeletedRows);
}

export async function countOutbox(db: Db): Promise<{ unsealed: number; sealed: number }> {
  const r = await db
    .selectFrom('backup_outbox')
    .select((eb) => [eb.fn.countAll().as('total'), eb.fn.count('seq').as('sealed')])
    .executeTakeFirstOrThrow();
  const total = Number(r.total);
  const sealed = Number(r.sealed);
  return { unsealed: total - sealed, sealed };
}
