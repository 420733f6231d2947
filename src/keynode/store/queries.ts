/**
 * The store's queries, written once over kysely for both dialects. `StoreOps` runs them on whatever it
 * is given: the store's own connection(s) or one transaction. The error contracts are in ./types.ts;
 * the backup outbox's queries are in ./outbox.ts, the signing path's nonce rows in ./nonces.ts.
 */
import { ConflictError, InvalidInputError, NotFoundError } from '../../errors.js';
import { affected } from '../../store/driver.js';
import { Precompiled } from './compiled.js';
import { type Db, guarded } from './db.js';
import * as keyshare from './keyshare.js';
import { consumeNonceRow, insertNonceRow, readForSigning } from './nonces.js';
import * as outbox from './outbox.js';
import {
  apiKeyToRow,
  checkId,
  checkInt,
  checkKeyStatus,
  checkListKeys,
  checkMillis,
  checkText,
  dkgToRow,
  keyToRow,
  rowToApiKey,
  rowToDkg,
  rowToKey,
} from './records.js';
import type { StoreSchema, TABLES } from './schema.js';
import type {
  ApiKeyRecord,
  CoverageKeyRow,
  DkgSessionRecord,
  DurableChannel,
  KeyChannelRecord,
  KeyNodeStoreOps,
  KeyshareOutboxRow,
  KeysharePublication,
  KeyRecord,
  KeyStatus,
  ListKeysOptions,
  MetaEntry,
  NonceRecord,
  OutboxChange,
  OutboxEntry,
  SigningRead,
} from './types.js';

export { type Db, guarded, isForeignKeyViolation, mapDriverError } from './db.js';

export class StoreOps implements KeyNodeStoreOps {
  constructor(protected readonly db: Db) {}

  /**
   * Runs a change and its journal entry (outbox.journal) in one transaction: the one this StoreOps
   * runs in, or a new one when it runs on the store's connection.
   */
  protected journaled<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    return guarded(() => (this.db.isTransaction ? fn(this.db) : this.db.transaction().execute(fn)));
  }

  async insertKey(key: KeyRecord): Promise<void> {
    const row = keyToRow(key);
    await this.journaled(async (db) => {
      // ON CONFLICT DO NOTHING rather than catching a unique violation: on PostgreSQL a failed
      // statement would poison an enclosing transaction, and a caller may well go on after key_exists.
      const r = await db.insertInto('keys').values(row).onConflict((oc) => oc.column('key_id').doNothing()).executeTakeFirst();
      if (affected(r.numInsertedOrUpdatedRows) === 0) throw new ConflictError(`key ${row.key_id} already exists`, 'key_exists');
      await outbox.journal(db, { op: 'key_put', key: rowToKey(row) });
      await keyshare.journalKeyshare(db, row.key_id, Number(row.epoch), Date.now());
    });
  }

  async getKey(keyId: string): Promise<KeyRecord | undefined> {
    checkId(keyId, 'keyId');
    const row = await guarded(() => this.db.selectFrom('keys').selectAll().where('key_id', '=', keyId).executeTakeFirst());
    return row === undefined ? undefined : rowToKey(row);
  }

  async listKeys(opts: ListKeysOptions): Promise<KeyRecord[]> {
    const { afterKeyId, limit, tenant } = checkListKeys(opts);
    return (await this.keyPage(afterKeyId, limit, tenant)).map(rowToKey);
  }

  /** One page of key rows in key_id order, of one tenant if given (the snapshot pages with this too). */
  protected keyPage(afterKeyId: string | undefined, limit: number, tenant?: string): Promise<StoreSchema['keys'][]> {
    let q = this.db.selectFrom('keys').selectAll().orderBy('key_id').limit(limit);
    if (afterKeyId !== undefined) q = q.where('key_id', '>', afterKeyId);
    if (tenant !== undefined) q = q.where('tenant', '=', tenant);
    return guarded(() => q.execute());
  }

  async setKeyStatus(keyId: string, status: KeyStatus): Promise<void> {
    checkId(keyId, 'keyId');
    checkKeyStatus(status);
    await this.journaled(async (db) => {
      await updateKeyStatus(db, keyId, status);
      await outbox.journal(db, { op: 'key_status', keyId, status });
    });
  }

  async setKeyStatusUnjournaled(keyId: string, status: KeyStatus): Promise<void> {
    checkId(keyId, 'keyId');
    checkKeyStatus(status);
    await guarded(() => updateKeyStatus(this.db, keyId, status));
  }

  async deleteKey(keyId: string): Promise<boolean> {
    checkId(keyId, 'keyId');
    return this.journaled(async (db) => {
      const r = await db.deleteFrom('keys').where('key_id', '=', keyId).executeTakeFirst();
      if (affected(r.numDeletedRows) === 0) return false;
      await outbox.journal(db, { op: 'key_delete', keyId });
      return true;
    });
  }

  countKeys(): Promise<number> {
    return this.count('keys');
  }

  async countKeysWithStatus(status: KeyStatus): Promise<number> {
    const r = await guarded(() => this.db.selectFrom('keys').select((eb) => eb.fn.countAll().as('n')).where('status', '=', status).executeTakeFirstOrThrow());
    return Number(r.n);
  }

  insertNonce(nonce: NonceRecord): Promise<void> {
    return insertNonceRow(this.db, nonce);
  }

  async consumeNonce(keyId: string, nonceId: string): Promise<NonceRecord | undefined> {
    checkId(keyId, 'keyId');
    checkId(nonceId, 'nonceId');
    return guarded(() => consumeNonceRow(this.db, keyId, nonceId));
  }

  async getKeyForSigning(keyId: string, nonceId?: string): Promise<SigningRead | undefined> {
    checkId(keyId, 'keyId');
    if (nonceId !== undefined) checkId(nonceId, 'nonceId');
    // One statement for the key, the nonce and the epoch (./nonces.ts).
    return readForSigning(this.db, keyId, nonceId ?? '');
  }

  async deleteAllNonces(): Promise<number> {
    const r = await guarded(() => this.db.deleteFrom('nonces').executeTakeFirst());
    return affected(r.numDeletedRows);
  }

  async deleteNoncesCreatedBefore(createdBefore: number): Promise<number> {
    const before = checkMillis(createdBefore, 'createdBefore');
    const r = await guarded(() => this.db.deleteFrom('nonces').where('created_at', '<', before).executeTakeFirst());
    return affected(r.numDeletedRows);
  }

  async countNonces(keyId?: string): Promise<number> {
    if (keyId === undefined) return this.count('nonces');
    checkId(keyId, 'keyId');
    const r = await guarded(() =>
      this.db.selectFrom('nonces').select((eb) => eb.fn.countAll().as('n')).where('key_id', '=', keyId).executeTakeFirstOrThrow(),
    );
    return Number(r.n);
  }

  async insertDkgSession(session: DkgSessionRecord): Promise<void> {
    const row = dkgToRow(session);
    const r = await guarded(() => this.db.insertInto('dkg_sessions').values(row).onConflict((oc) => oc.column('session_id').doNothing()).executeTakeFirst());
    if (affected(r.numInsertedOrUpdatedRows) === 0) throw new ConflictError(`dkg session ${row.session_id} already exists`, 'dkg_session_exists');
  }

  async advanceDkgSession(sessionId: string, from: number, to: number, state: Uint8Array): Promise<boolean> {
    checkId(sessionId, 'sessionId');
    checkInt(from, 'from', 0, 1000);
    checkInt(to, 'to', 0, 1000);
    if (!(state instanceof Uint8Array) || state.length === 0) throw new InvalidInputError('state must be non-empty bytes');
    const r = await guarded(() => this.db.updateTable('dkg_sessions').set({ step: to, state }).where('session_id', '=', sessionId).where('step', '=', from).executeTakeFirst());
    return affected(r.numUpdatedRows) > 0;
  }

  async getDkgSession(sessionId: string): Promise<DkgSessionRecord | undefined> {
    checkId(sessionId, 'sessionId');
    const row = await guarded(() => this.db.selectFrom('dkg_sessions').selectAll().where('session_id', '=', sessionId).executeTakeFirst());
    return row === undefined ? undefined : rowToDkg(row);
  }

  async deleteDkgSession(sessionId: string): Promise<boolean> {
    checkId(sessionId, 'sessionId');
    const r = await guarded(() => this.db.deleteFrom('dkg_sessions').where('session_id', '=', sessionId).executeTakeFirst());
    return affected(r.numDeletedRows) > 0;
  }

  async deleteExpiredDkgSessions(now: number): Promise<number> {
    checkMillis(now, 'now');
    const r = await guarded(() => this.db.deleteFrom('dkg_sessions').where('expires_at', '<=', now).executeTakeFirst());
    return affected(r.numDeletedRows);
  }

  async insertApiKey(apiKey: ApiKeyRecord): Promise<void> {
    const row = apiKeyToRow(apiKey);
    await this.journaled(async (db) => {
      const r = await db.insertInto('api_keys').values(row).onConflict((oc) => oc.column('id').doNothing()).executeTakeFirst();
      if (affected(r.numInsertedOrUpdatedRows) === 0) throw new ConflictError(`api key ${row.id} already exists`, 'api_key_exists');
      await outbox.journal(db, { op: 'api_key_put', apiKey: rowToApiKey(row) });
    });
  }

  async findApiKeyById(id: string): Promise<ApiKeyRecord | undefined> {
    checkId(id, 'id');
    const row = (await guarded(() => API_KEY_BY_ID.run(this.db, { id }))).rows[0];
    return row === undefined ? undefined : rowToApiKey(row);
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    const rows = await guarded(() => this.db.selectFrom('api_keys').selectAll().orderBy('id').execute());
    return rows.map(rowToApiKey);
  }

  async revokeApiKey(id: string, at: number): Promise<boolean> {
    checkId(id, 'id');
    checkMillis(at, 'at');
    return this.journaled(async (db) => {
      const r = await db.updateTable('api_keys').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
      if (affected(r.numUpdatedRows) > 0) {
        await outbox.journal(db, { op: 'api_key_revoke', id, at });
        return true;
      }
      const found = await db.selectFrom('api_keys').select('id').where('id', '=', id).executeTakeFirst();
      if (found === undefined) throw new NotFoundError(`api key ${id} does not exist`, 'api_key_not_found');
      return false;
    });
  }

  async getMeta(key: string): Promise<string | undefined> {
    checkText(key, 'meta key', 1);
    const row = await guarded(() => this.db.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirst());
    return row?.value;
  }

  async setMeta(key: string, value: string): Promise<void> {
    checkText(key, 'meta key', 1);
    checkText(value, 'meta value');
    await guarded(() =>
      this.db
        .insertInto('meta')
        .values({ key, value })
        .onConflict((oc) => oc.column('key').doUpdateSet((eb) => ({ value: eb.ref('excluded.value') })))
        .execute(),
    );
  }

  appendOutbox(change: Uint8Array, now: number): Promise<number> {
    return guarded(() => outbox.appendOutbox(this.db, change, now));
  }

  listUnsealedOutbox(limit: number): Promise<OutboxChange[]> {
    return guarded(() => outbox.listUnsealedOutbox(this.db, limit));
  }

  sealOutbox(id: number, seq: number, entry: Uint8Array): Promise<void> {
    return guarded(() => outbox.sealOutbox(this.db, id, seq, entry));
  }

  listSealedOutbox(afterSeq: number, limit: number): Promise<OutboxEntry[]> {
    return guarded(() => outbox.listSealedOutbox(this.db, afterSeq, limit));
  }

  deleteSealedOutboxThrough(seq: number): Promise<number> {
    return guarded(() => outbox.deleteSealedOutboxThrough(this.db, seq));
  }

  countOutbox(): Promise<{ unsealed: number; sealed: number }> {
    return guarded(() => outbox.countOutbox(this.db));
  }

  enqueueKeyshare(keyId: string, epoch: number, now: number): Promise<boolean> {
    return guarded(() => keyshare.enqueueKeyshare(this.db, keyId, epoch, now));
  }

  listKeyshareOutbox(limit: number): Promise<KeyshareOutboxRow[]> {
    return guarded(() => keyshare.listKeyshareOutbox(this.db, limit));
  }

  setKeyshareEntry(keyId: string, epoch: number, entry: Uint8Array): Promise<Uint8Array | undefined> {
    return guarded(() => keyshare.setKeyshareEntry(this.db, keyId, epoch, entry));
  }

  deleteKeyshareOutbox(keyId: string, epoch: number): Promise<boolean> {
    return guarded(() => keyshare.deleteKeyshareOutbox(this.db, keyId, epoch));
  }

  countKeyshareOutbox(): Promise<{ unsealed: number; sealed: number }> {
    return guarded(() => keyshare.countKeyshareOutbox(this.db));
  }

  recordKeysharePublication(p: KeysharePublication): Promise<void> {
    return guarded(() => keyshare.recordKeysharePublication(this.db, p));
  }

  listKeysharePublications(keyId: string): Promise<KeysharePublication[]> {
    return guarded(() => keyshare.listKeysharePublications(this.db, keyId));
  }

  recordKeyChannel(keyId: string, channel: DurableChannel, epoch: number, detail: string, required: readonly DurableChannel[], now: number): Promise<{ activated: boolean }> {
    // One transaction: the channel's row and the activation it may complete go together.
    return this.journaled((db) => keyshare.recordKeyChannel(db, keyId, channel, epoch, detail, required, now));
  }

  recordKeyChannels(channel: DurableChannel, keys: readonly { keyId: string; epoch: number }[], detail: string, now: number): Promise<void> {
    return this.journaled((db) => keyshare.recordKeyChannels(db, channel, keys, detail, now));
  }

  recordChannelForAllKeys(channel: DurableChannel, detail: string, now: number): Promise<void> {
    return this.journaled((db) => keyshare.recordChannelForAllKeys(db, channel, detail, now));
  }

  listKeyChannels(keyId: string): Promise<KeyChannelRecord[]> {
    return guarded(() => keyshare.listKeyChannels(this.db, keyId));
  }

  listCoverageKeys(afterKeyId: string | undefined, limit: number): Promise<CoverageKeyRow[]> {
    return guarded(() => keyshare.listCoverageKeys(this.db, afterKeyId, limit));
  }

  countKeyChannels(): Promise<Record<DurableChannel, number>> {
    return guarded(() => keyshare.countKeyChannels(this.db));
  }

  protected async listMeta(): Promise<MetaEntry[]> {
    return guarded(() => this.db.selectFrom('meta').select(['key', 'value']).orderBy('key').execute());
  }

  protected async count(table: (typeof TABLES)[number]): Promise<number> {
    const r = await guarded(() => this.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow());
    return Number(r.n);
  }
}

// Compiled once (./compiled.ts), as the signing path's statements (./nonces.ts): every API key check reads it.
const API_KEY_BY_ID = new Precompiled(['id'], (db, v) => db.selectFrom('api_keys').selectAll().where('id', '=', v.id));

async function updateKeyStatus(db: Db, keyId: string, status: KeyStatus): Promise<void> {
  const r = await db.updateTable('keys').set({ status }).where('key_id', '=', keyId).executeTakeFirst();
  if (affected(r.numUpdatedRows) === 0) throw new NotFoundError(`key ${keyId} does not exist`, 'key_id_not_exists');
}
