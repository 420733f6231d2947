/**
 * The signing path's rows (docs/keynode.md, "Signing and nonces"): a round-one nonce inserted, a nonce
 * consumed by one DELETE ... RETURNING, and the one-statement read of a key, its nonce and the node's
 * nonce epoch. The statements are compiled once (./compiled.ts). Ids are checked by the caller
 * (StoreOps, ./queries.ts).
 */
import { ConflictError, NotFoundError } from '../../errors.js';
import { affected } from '../../store/driver.js';
import { Precompiled } from './compiled.js';
import { type Db, guarded, isForeignKeyViolation, mapDriverError } from './db.js';
import { nonceToRow, rowToKey, rowToNonce } from './records.js';
import type { NonceRecord, SigningRead } from './types.js';
import { NONCE_EPOCH_META } from './types.js';

/**
 * Inserts a round-one nonce on `db` (StoreOps.insertNonce; the SQLite store runs it without an fsync,
 * ./sqlite.ts). Throws NotFoundError `key_id_not_exists`, ConflictError `nonce_exists`.
 */
export async function insertNonceRow(db: Db, nonce: NonceRecord): Promise<void> {
  const row = nonceToRow(nonce);
  let r;
  try {
    r = await db.insertInto('nonces').values(row).onConflict((oc) => oc.column('nonce_id').doNothing()).executeTakeFirst();
  } catch (err) {
    if (isForeignKeyViolation(err)) throw new NotFoundError(`key ${row.key_id} does not exist`, 'key_id_not_exists');
    throw mapDriverError(err);
  }
  if (affected(r.numInsertedOrUpdatedRows) === 0) throw new ConflictError(`nonce ${row.nonce_id} already exists`, 'nonce_exists');
}

/**
 * One DELETE ... RETURNING: the row goes to whichever statement deletes it first. On PostgreSQL a
 * concurrent deleter waits for the row lock, then finds the row gone and returns nothing; SQLite runs
 * one writer at a time. Ids are checked by the caller.
 */
export async function consumeNonceRow(db: Db, keyId: string, nonceId: string): Promise<NonceRecord | undefined> {
  const row = (await CONSUME_NONCE.run(db, { keyId, nonceId })).rows[0];
  return row === undefined ? undefined : rowToNonce(row);
}

/**
 * StoreOps.getKeyForSigning's one statement (SIGNING_READ, below): the key, its nonce `nonceId` when
 * unused ('' for none) and the node's nonce epoch; undefined without the key. Throws as guarded.
 */
export async function readForSigning(db: Db, keyId: string, nonceId: string): Promise<SigningRead | undefined> {
  const row = (await guarded(() => SIGNING_READ.run(db, { keyId, nonceId }))).rows[0];
  if (row === undefined) return undefined;
  const { n_nonce_id, n_encrypted_nonces, n_commitments, n_created_at, n_epoch, nonce_epoch_meta, ...key } = row;
  const nonce =
    n_nonce_id === null || n_encrypted_nonces === null || n_commitments === null || n_created_at === null || n_epoch === null
      ? undefined
      : rowToNonce({ nonce_id: n_nonce_id, key_id: key.key_id, encrypted_nonces: n_encrypted_nonces, commitments: n_commitments, created_at: n_created_at, epoch: n_epoch });
  return { key: rowToKey(key), ...(nonce ? { nonce } : {}), nonceEpoch: Number(nonce_epoch_meta ?? '0') };
}

// The signing path's queries, compiled once (./compiled.ts). keys LEFT JOIN nonces (the one asked
// for, if any), with the epoch as a scalar subquery: one statement instead of three, on both dialects.
const SIGNING_READ = new Precompiled(['keyId', 'nonceId'], (db, v) =>
  db
    .selectFrom('keys')
    .leftJoin('nonces', (j) => j.onRef('nonces.key_id', '=', 'keys.key_id').on('nonces.nonce_id', '=', v.nonceId))
    .selectAll('keys')
    .select(['nonces.nonce_id as n_nonce_id', 'nonces.encrypted_nonces as n_encrypted_nonces', 'nonces.commitments as n_commitments', 'nonces.created_at as n_created_at', 'nonces.epoch as n_epoch'])
    .select((eb) => eb.selectFrom('meta').select('value').where('key', '=', NONCE_EPOCH_META).as('nonce_epoch_meta'))
    .where('keys.key_id', '=', v.keyId),
);
const CONSUME_NONCE = new Precompiled(['keyId', 'nonceId'], (db, v) => db.deleteFrom('nonces').where('nonce_id', '=', v.nonceId).where('key_id', '=', v.keyId).returningAll());
