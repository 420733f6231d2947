/**
 * The key-share publication outbox and the durable channels' queries (docs/keyshare.md, "Publishing";
 * docs/keynode.md, "Durable channels"; the contracts are in ./types.ts). Each function runs on the
 * handle it is given, the store's connection or a transaction; StoreOps (./queries.ts) maps driver
 * errors around them.
 *
 * While the meta entry `keyshare_journal` is `on` (the node has an operator mnemonic), every key insert
 * queues its (key id, epoch) here in the same transaction, as the backup journal does for the stream.
 * The agent (src/keyshare/publisher.ts) seals the row's entry and stores it before the first send, so a
 * retry sends the same bytes and the log answers the same index.
 */
import { SqliteAdapter, sql } from 'kysely';
import { affected } from '../../store/driver.js';
import type { Db } from './queries.js';
import { checkId, checkInt, checkLimit, checkMillis, checkOutboxBytes, own } from './records.js';
import { type CoverageKeyRow, DURABLE_CHANNEL_NAMES, type DurableChannel, KEYSHARE_JOURNAL_META, type KeyChannelRecord, type KeyshareOutboxRow, type KeysharePublication } from './types.js';
import { InvalidInputError } from '../../errors.js';

/** A channel's detail or a proof document: JSON text of at most 64 KiB. */
const MAX_JSON = 64 * 1024;

function checkEpoch(epoch: unknown): number {
  return checkInt(epoch, 'epoch', 1, Number.MAX_SAFE_INTEGER);
}

function checkJson(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length > MAX_JSON) throw new InvalidInputError(`${name} must be JSON text of at most ${MAX_JSON} characters`);
  try {
    JSON.parse(value);
  } catch {
    throw new InvalidInputError(`${name} must be JSON text of at most ${MAX_JSON} characters`);
  }
  return value;
}

export function checkChannel(value: unknown): DurableChannel {
  if (typeof value !== 'string' || !(DURABLE_CHANNEL_NAMES as readonly string[]).includes(value)) throw new InvalidInputError(`channel must be one of ${DURABLE_CHANNEL_NAMES.join(', ')}`);
  return value as DurableChannel;
}

/** Queues (key id, epoch) for publication if `keyshare_journal` is on. Call it in the key insert's transaction. */
export async function journalKeyshare(db: Db, keyId: string, epoch: number, now: number): Promise<void> {
  const flag = await db.selectFrom('meta').select('value').where('key', '=', KEYSHARE_JOURNAL_META).executeTakeFirst();
  if (flag?.value !== 'on') return;
  await enqueueKeyshare(db, keyId, epoch, now);
}

export async function enqueueKeyshare(db: Db, keyId: string, epoch: number, now: number): Promise<boolean> {
  checkId(keyId, 'keyId');
  checkEpoch(epoch);
  checkMillis(now, 'now');
  const r = await db
    .insertInto('keyshare_outbox')
    .values({ key_id: keyId, epoch, entry: null, created_at: now })
    .onConflict((oc) => oc.columns(['key_id', 'epoch']).doNothing())
    .executeTakeFirst();
  return affected(r.numInsertedOrUpdatedRows) > 0;
}

export async function listKeyshareOutbox(db: Db, limit: number): Promise<KeyshareOutboxRow[]> {
  checkLimit(limit);
  const rows = await db.selectFrom('keyshare_outbox').selectAll().orderBy('created_at').orderBy('key_id').orderBy('epoch').limit(limit).execute();
  return rows.map((r) => ({ keyId: r.key_id, epoch: Number(r.epoch), entry: r.entry === null ? null : own(r.entry), createdAt: Number(r.created_at) }));
}

export async function setKeyshareEntry(db: Db, keyId: string, epoch: number, entry: Uint8Array): Promise<Uint8Array | undefined> {
  checkId(keyId, 'keyId');
  checkEpoch(epoch);
  const bytes = checkOutboxBytes(entry, 'entry');
  // Only a row without an entry takes one: the first bytes stored are the ones ever sent.
  await db.updateTable('keyshare_outbox').set({ entry: bytes }).where('key_id', '=', keyId).where('epoch', '=', epoch).where('entry', 'is', null).execute();
  const row = await db.selectFrom('keyshare_outbox').select('entry').where('key_id', '=', keyId).where('epoch', '=', epoch).executeTakeFirst();
  return row?.entry ? own(row.entry) : undefined;
}

export async function deleteKeyshareOutbox(db: Db, keyId: string, epoch: number): Promise<boolean> {
  checkId(keyId, 'keyId');
  checkEpoch(epoch);
  const r = await db.deleteFrom('keyshare_outbox').where('key_id', '=', keyId).where('epoch', '=', epoch).executeTakeFirst();
  return affected(r.numDeletedRows) > 0;
}

export async function countKeyshareOutbox(db: Db): Promise<{ unsealed: number; sealed: number }> {
  const r = await db
    .selectFrom('keyshare_outbox')
    .select((eb) => [eb.fn.countAll().as('total'), eb.fn.count('entry').as('sealed')])
    .executeTakeFirstOrThrow();
  return { unsealed: Number(r.total) - Number(r.sealed), sealed: Number(r.sealed) };
}

export async function recordKeysharePublication(db: Db, p: KeysharePublication): Promise<void> {
  const row = {
    key_id: checkId(p.keyId, 'keyId'),
    epoch: checkEpoch(p.epoch),
    log: checkLogUrl(p.log),
    leaf_index: checkInt(p.index, 'index', 0, Number.MAX_SAFE_INTEGER),
    checkpoint_size: checkInt(p.checkpointSize, 'checkpointSize', 1, Number.MAX_SAFE_INTEGER),
    proof: checkJson(p.proof, 'proof'),
    published_at: checkMillis(p.publishedAt, 'publishedAt'),
  };
  await db
    .insertInto('keyshare_publications')
    .values(row)
    .onConflict((oc) =>
      oc.columns(['key_id', 'epoch', 'log']).doUpdateSet((eb) => ({
        leaf_index: eb.ref('excluded.leaf_index'),
        checkpoint_size: eb.ref('excluded.checkpoint_size'),
        proof: eb.ref('excluded.proof'),
        published_at: eb.ref('excluded.published_at'),
      })),
    )
    .execute();
}

function checkLogUrl(value: unknown): string {
  if (typeof value !== 'string' || value.length < 1 || value.length > 2048) throw new InvalidInputError('log must be a URL of 1 to 2048 characters');
  return value;
}

export async function listKeysharePublications(db: Db, keyId: string): Promise<KeysharePublication[]> {
  checkId(keyId, 'keyId');
  const rows = await db.selectFrom('keyshare_publications').selectAll().where('key_id', '=', keyId).orderBy('epoch').orderBy('log').execute();
  return rows.map((r) => ({ keyId: r.key_id, epoch: Number(r.epoch), log: r.log, index: Number(r.leaf_index), checkpointSize: Number(r.checkpoint_size), proof: r.proof, publishedAt: Number(r.published_at) }));
}

/**
 * Records that `channel` holds the key at `epoch`, then activates a `pending_backup` key whose every
 * `required` channel holds it at its current epoch. The activation is not journaled (a restore marks
 * every restored key active anyway). Returns whether this call activated it; nothing happens for a
 * key that is gone.
 */
export async function recordKeyChannel(db: Db, keyId: string, channel: DurableChannel, epoch: number, detail: string, required: readonly DurableChannel[], now: number): Promise<{ activated: boolean }> {
  checkId(keyId, 'keyId');
  checkChannel(channel);
  checkEpoch(epoch);
  checkJson(detail, 'detail');
  required.forEach(checkChannel);
  checkMillis(now, 'now');
  const key = await db.selectFrom('keys').select(['status', 'epoch']).where('key_id', '=', keyId).executeTakeFirst();
  if (!key) return { activated: false };
  await db
    .insertInto('key_channels')
    .values({ key_id: keyId, channel, epoch, detail, recorded_at: now })
    .onConflict((oc) => oc.columns(['key_id', 'channel']).doUpdateSet((eb) => ({ epoch: eb.ref('excluded.epoch'), detail: eb.ref('excluded.detail'), recorded_at: eb.ref('excluded.recorded_at') })))
    .execute();
  if (key.status !== 'pending_backup') return { activated: false };
  const current = Number(key.epoch);
  const held = await db.selectFrom('key_channels').select('channel').where('key_id', '=', keyId).where('epoch', '=', current).execute();
  const have = new Set(held.map((h) => h.channel));
  if (!required.every((c) => have.has(c))) return { activated: false };
  const r = await db.updateTable('keys').set({ status: 'active' }).where('key_id', '=', keyId).where('status', '=', 'pending_backup').executeTakeFirst();
  return { activated: affected(r.numUpdatedRows) > 0 };
}

/**
 * Records that `channel` holds each of `keys` at its epoch (replacing what it held), `detail` for all,
 * in multi-row statements: a restore of 100,000 keys marks them in a few hundred statements. Activates
 * nothing (restored keys are active already). Every key must be in the store (a foreign key).
 */
export async function recordKeyChannels(db: Db, channel: DurableChannel, keys: readonly { keyId: string; epoch: number }[], detail: string, now: number): Promise<void> {
  checkChannel(channel);
  checkJson(detail, 'detail');
  checkMillis(now, 'now');
  const rows = keys.map((k) => ({ key_id: checkId(k.keyId, 'keyId'), channel, epoch: checkEpoch(k.epoch), detail, recorded_at: now }));
  for (let i = 0; i < rows.length; i += 1000) {
    await db
      .insertInto('key_channels')
      .values(rows.slice(i, i + 1000))
      .onConflict((oc) => oc.columns(['key_id', 'channel']).doUpdateSet((eb) => ({ epoch: eb.ref('excluded.epoch'), detail: eb.ref('excluded.detail'), recorded_at: eb.ref('excluded.recorded_at') })))
      .execute();
  }
}

/**
 * Records that `channel` holds every key in the store at its current epoch (replacing what it held),
 * `detail` for all, in one INSERT ... SELECT: a restore marks all it wrote without reading the keys
 * back (at 100,000 keys, reading them cost more than the import's own commit).
 */
export async function recordChannelForAllKeys(db: Db, channel: DurableChannel, detail: string, now: number): Promise<void> {
  checkChannel(channel);
  checkJson(detail, 'detail');
  checkMillis(now, 'now');
  // `where true`: SQLite's parser needs it between INSERT ... SELECT and ON CONFLICT; the casts give
  // PostgreSQL the parameters' types, which a SELECT list does not take from the target columns.
  const all = db
    .selectFrom('keys')
    .select(['key_id', sql<string>`cast(${channel} as text)`.as('channel'), 'epoch', sql<string>`cast(${detail} as text)`.as('detail'), sql<number>`cast(${now} as bigint)`.as('recorded_at')])
    .where(sql<boolean>`true`);
  await db
    .insertInto('key_channels')
    .columns(['key_id', 'channel', 'epoch', 'detail', 'recorded_at'])
    .expression(all)
    .onConflict((oc) => oc.columns(['key_id', 'channel']).doUpdateSet((eb) => ({ epoch: eb.ref('excluded.epoch'), detail: eb.ref('excluded.detail'), recorded_at: eb.ref('excluded.recorded_at') })))
    .execute();
}

export async function listKeyChannels(db: Db, keyId: string): Promise<KeyChannelRecord[]> {
  checkId(keyId, 'keyId');
  const rows = await db.selectFrom('key_channels').selectAll().where('key_id', '=', keyId).orderBy('channel').execute();
  return rows.map((r) => ({ channel: r.channel as DurableChannel, epoch: Number(r.epoch), detail: r.detail, recordedAt: Number(r.recorded_at) }));
}

/**
 * A coverage page in one query: the page of keys (public columns only) as a subquery, left-joined to
 * the channels holding each at its current epoch; one row per (key, channel), folded per key here.
 */
export async function listCoverageKeys(db: Db, afterKeyId: string | undefined, limit: number): Promise<CoverageKeyRow[]> {
  if (afterKeyId !== undefined) checkId(afterKeyId, 'afterKeyId');
  checkLimit(limit);
  // The group key as hex from the database itself: a Buffer per row is most of SQLite's cost here.
  const hex = db.getExecutor().adapter instanceof SqliteAdapter ? sql<string>`lower(hex(group_public_key))` : sql<string>`encode(group_public_key, 'hex')`;
  let page = db.selectFrom('keys').select(['key_id', 'curve', 'threshold', 'max_signers', 'identifier', hex.as('group_public_key'), 'status', 'epoch', 'created_at']).orderBy('key_id').limit(limit);
  if (afterKeyId !== undefined) page = page.where('key_id', '>', afterKeyId);
  const rows = await db
    .selectFrom(page.as('k'))
    .leftJoin('key_channels as c', (j) => j.onRef('c.key_id', '=', 'k.key_id').onRef('c.epoch', '=', 'k.epoch'))
    .select(['k.key_id', 'k.curve', 'k.threshold', 'k.max_signers', 'k.identifier', 'k.group_public_key', 'k.status', 'k.epoch', 'k.created_at', 'c.channel', 'c.detail'])
    .orderBy('k.key_id')
    .orderBy('c.channel')
    .execute();
  const out: CoverageKeyRow[] = [];
  let last: CoverageKeyRow | undefined;
  for (const r of rows) {
    if (last?.keyId !== r.key_id) {
      last = { keyId: r.key_id, curve: r.curve, threshold: Number(r.threshold), maxSigners: Number(r.max_signers), identifier: r.identifier, groupPublicKey: r.group_public_key, status: r.status, epoch: Number(r.epoch), createdAt: Number(r.created_at), channels: [] };
      out.push(last);
    }
    if (r.channel !== null && r.detail !== null) last.channels.push({ channel: r.channel as DurableChannel, detail: r.detail });
  }
  return out;
}

/** Per channel, how many keys it holds at their current epoch. */
export async function countKeyChannels(db: Db): Promise<Record<DurableChannel, number>> {
  const rows = await db
    .selectFrom('key_channels')
    .innerJoin('keys', 'keys.key_id', 'key_channels.key_id')
    .select(['key_channels.channel as channel', sql<number>`count(*)`.as('n')])
    .whereRef('key_channels.epoch', '=', 'keys.epoch')
    .groupBy('key_channels.channel')
    .execute();
  const out = Object.fromEntries(DURABLE_CHANNEL_NAMES.map((c) => [c, 0])) as Record<DurableChannel, number>;
  for (const r of rows) out[r.channel as DurableChannel] = Number(r.n);
  return out;
}
