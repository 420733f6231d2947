/**
 * The backup store's queries, written once over kysely for both dialects. `QueryOps` runs them on
 * whatever it is given: the store's own connection(s) or one transaction. The error contracts are in
 * ./types.ts. This file holds accounts, ephemerals and tokens; streams and entries are ./entries.ts,
 * second factors ./totp.ts, the compaction methods ./store.ts.
 *
 * A method that answers with a contract error does so before it writes anything, and never by way of a
 * failed statement (inserts use ON CONFLICT DO NOTHING), so a caller's transaction stays usable on
 * PostgreSQL. The one exception is a foreign-key race with deleteAccount, which fails the statement.
 */
import type { Kysely } from 'kysely';
import { ConflictError, NotFoundError } from '../../errors.js';
import { affected, guardWith, isForeignKeyViolation, mapDriverError } from '../../store/driver.js';
import {
  checkEphemeralKind,
  checkHash,
  checkId,
  checkMillis,
  checkName,
  checkPasswordChange,
  checkRegistration,
  checkTokenKind,
  ephemeralToRow,
  rowToAccount,
  rowToEphemeral,
  rowToToken,
  tokenToRow,
} from './records.js';
import type { BackupSchema } from './schema.js';
import type { AccountRecord, AccountRegistration, BackupStoreKind, BackupStoreOps, EphemeralKind, EphemeralRecord, TokenKind, TokenRecord } from './types.js';

export type Db = Kysely<BackupSchema>;

type CompactionMethods = 'beginCompaction' | 'putCompactionChunk' | 'getCompactionChunk' | 'getCompaction' | 'currentCompaction' | 'listCompactions' | 'completeCompaction';
/** Added by ./totp.ts. */
type SecondFactorMethods = 'getTotp' | 'setTotp' | 'advanceTotpStep' | 'replaceRecoverySlots';
/** Added by ./entries.ts. */
export type EntryMethods = 'getStream' | 'listStreams' | 'appendEntries' | 'listEntries' | 'getEntry';

/**
 * Turns a driver error the caller can act on into a LifeboatError (../../store/driver.ts):
 * `store_unavailable` for an unreachable PostgreSQL, `store_busy` with a hint that names the backup
 * server for a locked SQLite file. Anything else passes as is. Returns the error to throw; never throws.
 */
export function mapError(err: unknown): unknown {
  return mapDriverError(err, 'another process holds a write lock on the database file; run one backup server per sqlite file');
}

/** Runs a query, mapping driver errors (see mapError): throws what it throws, mapped. */
export const guarded = guardWith(mapError);

/** A kysely row count as a number (../../store/driver.ts); never throws. */
export { affected };

export function accountNotFound(name: string): NotFoundError {
  return new NotFoundError(`account ${name} does not exist`, 'account_not_found');
}

/**
 * Accounts, ephemerals and tokens: BackupStoreOps but for the streams and entries (./entries.ts), the
 * second factors (./totp.ts) and the compactions (./store.ts).
 */
export class QueryOps implements Omit<BackupStoreOps, CompactionMethods | SecondFactorMethods | EntryMethods> {
  constructor(
    protected readonly db: Db,
    readonly kind: BackupStoreKind,
  ) {}

  /** Runs `fn` in a transaction of its own, or in the caller's when this handle is one. */
  protected atomic<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    return guarded(() => (this.db.isTransaction ? fn(this.db) : this.db.transaction().execute(fn)));
  }

  protected async accountExists(db: Db, name: string): Promise<boolean> {
    const row = await guarded(() => db.selectFrom('accounts').select('name').where('name', '=', name).executeTakeFirst());
    return row !== undefined;
  }

  async createAccount(name: string, inviteHash: Uint8Array, now: number): Promise<void> {
    const row = {
      name: checkName(name, 'account'),
      invite_hash: checkHash(inviteHash, 'inviteHash'),
      record: null,
      wrapped_key: null,
      auth_public_key: null,
      created_at: checkMillis(now, 'now'),
      updated_at: now,
    };
    const r = await guarded(() => this.db.insertInto('accounts').values(row).onConflict((oc) => oc.column('name').doNothing()).executeTakeFirst());
    if (affected(r.numInsertedOrUpdatedRows) === 0) throw new ConflictError(`account ${name} already exists`, 'account_exists');
  }

  async getAccount(name: string): Promise<AccountRecord | undefined> {
    checkName(name, 'account');
    const row = await guarded(() => this.db.selectFrom('accounts').selectAll().where('name', '=', name).executeTakeFirst());
    return row === undefined ? undefined : rowToAccount(row);
  }

  async listAccounts(): Promise<AccountRecord[]> {
    const rows = await guarded(() => this.db.selectFrom('accounts').selectAll().orderBy('name').execute());
    return rows.map(rowToAccount);
  }

  async completeRegistration(name: string, inviteHash: Uint8Array, reg: AccountRegistration, now: number): Promise<boolean> {
    checkName(name, 'account');
    const invite = checkHash(inviteHash, 'inviteHash');
    const set = { ...checkRegistration(reg), invite_hash: null, updated_at: checkMillis(now, 'now') };
    const r = await guarded(() =>
      this.db.updateTable('accounts').set(set).where('name', '=', name).where('record', 'is', null).where('invite_hash', '=', invite).executeTakeFirst(),
    );
    return affected(r.numUpdatedRows) > 0;
  }

  async replacePassword(name: string, reg: Pick<AccountRegistration, 'record' | 'wrappedKey'>, now: number): Promise<void> {
    checkName(name, 'account');
    const set = { ...checkPasswordChange(reg), updated_at: checkMillis(now, 'now') };
    const r = await guarded(() => this.db.updateTable('accounts').set(set).where('name', '=', name).where('record', 'is not', null).executeTakeFirst());
    if (affected(r.numUpdatedRows) === 0) throw new NotFoundError(`there is no registered account ${name}`, 'account_not_found');
  }

  async setRestoreTokenHash(name: string, hash: Uint8Array | null, now: number): Promise<void> {
    checkName(name, 'account');
    const set = { restore_token_hash: hash === null ? null : checkHash(hash, 'restore token hash'), updated_at: checkMillis(now, 'now') };
    const r = await guarded(() => this.db.updateTable('accounts').set(set).where('name', '=', name).where('record', 'is not', null).executeTakeFirst());
    if (affected(r.numUpdatedRows) === 0) throw new NotFoundError(`there is no registered account ${name}`, 'account_not_found');
  }

  async deleteAccount(name: string): Promise<boolean> {
    checkName(name, 'account');
    return this.atomic(async (db) => {
      // The account first: its delete cascades to the stream rows, so on PostgreSQL it waits for an
      // append in flight (which holds its stream row) and the entries delete then sees that append's rows.
      const r = await db.deleteFrom('accounts').where('name', '=', name).executeTakeFirst();
      await db.deleteFrom('entries').where('account', '=', name).execute();
      await db.deleteFrom('ephemerals').where('account', '=', name).execute();
      return affected(r.numDeletedRows) > 0;
    });
  }

  async putEphemeral(rec: EphemeralRecord): Promise<void> {
    const row = ephemeralToRow(rec);
    const r = await guarded(() =>
      this.db
        .insertInto('ephemerals')
        .values(row)
        .onConflict((oc) => oc.columns(['kind', 'id']).doNothing())
        .executeTakeFirst(),
    );
    if (affected(r.numInsertedOrUpdatedRows) === 0) throw new ConflictError(`ephemeral ${row.kind} ${row.id} already exists`, 'ephemeral_exists');
  }

  async takeEphemeral(kind: EphemeralKind, id: string): Promise<EphemeralRecord | undefined> {
    checkEphemeralKind(kind);
    checkId(id, 'ephemeral id');
    // One DELETE ... RETURNING: of concurrent takers, the one whose delete goes first gets the row; on
    // PostgreSQL the others wait for its row lock and then find nothing, SQLite runs one writer at a time.
    const row = await guarded(() => this.db.deleteFrom('ephemerals').where('kind', '=', kind).where('id', '=', id).returningAll().executeTakeFirst());
    return row === undefined ? undefined : rowToEphemeral(row);
  }

  async putToken(rec: TokenRecord): Promise<void> {
    const row = tokenToRow(rec);
    // Checked first so the common refusal is not a failed statement; the foreign key catches a race.
    if (!(await this.accountExists(this.db, row.account))) throw accountNotFound(row.account);
    let r;
    try {
      r = await this.db.insertInto('tokens').values(row).onConflict((oc) => oc.column('hash').doNothing()).executeTakeFirst();
    } catch (err) {
      if (isForeignKeyViolation(err)) throw accountNotFound(row.account);
      throw mapError(err);
    }
    if (affected(r.numInsertedOrUpdatedRows) === 0) throw new ConflictError('a token with this hash already exists', 'token_exists');
  }

  async getToken(hash: Uint8Array): Promise<TokenRecord | undefined> {
    const h = checkHash(hash, 'token hash');
    const row = await guarded(() => this.db.selectFrom('tokens').selectAll().where('hash', '=', h).executeTakeFirst());
    return row === undefined ? undefined : rowToToken(row);
  }

  async deleteTokens(account: string, kind: TokenKind): Promise<number> {
    checkName(account, 'account');
    checkTokenKind(kind);
    const r = await guarded(() => this.db.deleteFrom('tokens').where('account', '=', account).where('kind', '=', kind).executeTakeFirst());
    return affected(r.numDeletedRows);
  }

  async deleteExpired(now: number, staleUploadsBefore: number): Promise<{ ephemerals: number; tokens: number; uploads: number }> {
    checkMillis(now, 'now');
    checkMillis(staleUploadsBefore, 'staleUploadsBefore');
    const db = this.db;
    const e = await guarded(() => db.deleteFrom('ephemerals').where('expires_at', '<=', now).executeTakeFirst());
    const t = await guarded(() => db.deleteFrom('tokens').where('expires_at', '<=', now).executeTakeFirst());
    // Chunks go with their compaction (ON DELETE CASCADE); only the compaction rows are counted.
    const u = await guarded(() =>
      db.deleteFrom('compactions').where('state', '=', 'uploading').where('created_at', '<=', staleUploadsBefore).executeTakeFirst(),
    );
    return { ephemerals: affected(e.numDeletedRows), tokens: affected(t.numDeletedRows), uploads: affected(u.numDeletedRows) };
  }
}
