/**
 * The key node's storage interface: what a key node keeps, and the error contract of every method.
 * Two backends implement it (./sqlite.ts, ./postgres.ts) over one set of queries (./queries.ts) and
 * one set of migrations (./schema.ts); test/keynode-store.test.ts runs the same cases against both.
 * The records it takes and returns are in ./record-types.ts, re-exported here: importers name this path.
 *
 * The store holds ciphertext only for secrets: a key share and a signing nonce arrive here already
 * encrypted under the node's storage key, and API keys arrive hashed. It never sees a plaintext share.
 *
 * Timestamps are integer milliseconds since the epoch. Byte fields are returned as fresh Uint8Arrays.
 * Every method validates its arguments first and throws InvalidInputError (`invalid_input`) for a
 * malformed one, before touching the database; a database that cannot be reached throws LifeboatError
 * `store_unavailable`.
 *
 * The backup journal (docs/backup.md, "The agent in the key node"): while the meta entry
 * `backup_journal` is `on` (BACKUP_JOURNAL_META, set once when the node is set up for backups), every
 * call that changes a key or an API key appends the change (src/backup/changes.ts) to the outbox in
 * the same transaction as the change: a transaction of its own when called on the store, the caller's
 * inside `transaction`. So the outbox holds a change exactly when it committed. A call that throws or
 * changes nothing appends nothing. The flag is read in that transaction; turn it on before the node
 * takes writes (on PostgreSQL, a write in flight at the moment it is turned on may go unjournaled).
 */
import type {
  ApiKeyRecord,
  CoverageKeyRow,
  DkgSessionRecord,
  DurableChannel,
  KeyChannelRecord,
  KeyRecord,
  KeyshareOutboxRow,
  KeysharePublication,
  KeyStatus,
  ListKeysOptions,
  MetaEntry,
  NonceClaim,
  NonceRecord,
  OutboxChange,
  OutboxEntry,
  SigningRead,
  StoreSnapshot,
} from './record-types.js';

export * from './record-types.js';

/** The operations available both on the store and inside a transaction. */
export interface KeyNodeStoreOps {
  /**
   * Stores a new key; journaled as `key_put`, and queued for publication while `keyshare_journal` is
   * on. Throws ConflictError `key_exists` if key_id is taken.
   */
  insertKey(key: KeyRecord): Promise<void>;
  /** Returns the key, or undefined if there is no key with that id. */
  getKey(keyId: string): Promise<KeyRecord | undefined>;
  /**
   * Returns up to `limit` keys ordered by key_id (bytewise), after `afterKeyId` if given, of `tenant`
   * only if given; [] past the end.
   */
  listKeys(opts: ListKeysOptions): Promise<KeyRecord[]>;
  /**
   * Sets a key's status; journaled as `key_status` (also when it had that status already). Throws
   * NotFoundError `key_id_not_exists` if there is no such key.
   */
  setKeyStatus(keyId: string, status: KeyStatus): Promise<void>;
  /**
   * setKeyStatus without the journal, for the backup agent alone: it activates a `pending_backup` key
   * once the entry holding its `key_put` is acknowledged. That activation needs no entry of its own,
   * because a restore marks every restored key active anyway; journaling it would add one entry per
   * key for nothing. Throws NotFoundError `key_id_not_exists` if there is no such key.
   */
  setKeyStatusUnjournaled(keyId: string, status: KeyStatus): Promise<void>;
  /** Deletes a key and its unused nonces; journaled as `key_delete` if it deleted. Returns false if there was no such key. */
  deleteKey(keyId: string): Promise<boolean>;
  countKeys(): Promise<number>;
  /** Counts the keys of one status (`pending_backup`: waiting for their durable channels; /metrics). */
  countKeysWithStatus(status: KeyStatus): Promise<number>;

  /**
   * Stores a round-1 nonce. Throws NotFoundError `key_id_not_exists` if its key does not exist, and
   * ConflictError `nonce_exists` if nonce_id is taken (by any key).
   */
  insertNonce(nonce: NonceRecord): Promise<void>;
  /**
   * Deletes the nonce and returns it, in one statement. Returns undefined if there is no such nonce
   * for that key: never made, made for another key, or already consumed. Of any number of concurrent
   * callers for one nonce, on any number of connections or processes, exactly one gets the record.
   */
  consumeNonce(keyId: string, nonceId: string): Promise<NonceRecord | undefined>;
  /**
   * The key, its nonce `nonceId` (when given and unused) and the node's nonce epoch, read in one
   * query: what round one (the key and the epoch to stamp) and round two (the key, the nonce, the
   * epoch it must carry) need. Reads only: round two still consumes the nonce with consumeNonce.
   * Returns undefined if there is no such key. Throws InvalidInputError on a malformed id.
   */
  getKeyForSigning(keyId: string, nonceId?: string): Promise<SigningRead | undefined>;
  /** Deletes every nonce (what a restore does before it serves). Returns how many were deleted. */
  deleteAllNonces(): Promise<number>;
  /** Deletes the unused nonces created before `createdBefore` (ms); returns how many. Expired nonces can never sign. */
  deleteNoncesCreatedBefore(createdBefore: number): Promise<number>;
  /** Counts the unused nonces, of one key if given. */
  countNonces(keyId?: string): Promise<number>;

  /** Creates a DKG session at its first step. Throws ConflictError `dkg_session_exists` if its id is taken. */
  insertDkgSession(session: DkgSessionRecord): Promise<void>;
  /**
   * Moves a session from step `from` to `to` with its new sealed state, only if it is still at `from`
   * (compare and set): false when another request moved or deleted it meanwhile.
   */
  advanceDkgSession(sessionId: string, from: number, to: number, state: Uint8Array): Promise<boolean>;
  /** Returns the session, or undefined if absent. An expired session is returned until it is deleted: check expiresAt. */
  getDkgSession(sessionId: string): Promise<DkgSessionRecord | undefined>;
  /** Returns false if there was no such session. */
  deleteDkgSession(sessionId: string): Promise<boolean>;
  /** Deletes every session with expiresAt <= now. Returns how many. */
  deleteExpiredDkgSessions(now: number): Promise<number>;

  /** Stores a new API key; journaled as `api_key_put`. Throws ConflictError `api_key_exists` if the id is taken. */
  insertApiKey(apiKey: ApiKeyRecord): Promise<void>;
  /** Returns the API key, revoked or not (check revokedAt), or undefined if there is no such id. */
  findApiKeyById(id: string): Promise<ApiKeyRecord | undefined>;
  /** Every API key, revoked ones included, ordered by id. */
  listApiKeys(): Promise<ApiKeyRecord[]>;
  /**
   * Marks the API key revoked at `at`; journaled as `api_key_revoke` if this call revoked it. Returns
   * true if this call revoked it, false if it already was (the first revocation time is kept). Throws
   * NotFoundError `api_key_not_found` if there is no such id.
   */
  revokeApiKey(id: string, at: number): Promise<boolean>;

  /** Returns the value, or undefined if the key was never set. */
  getMeta(key: string): Promise<string | undefined>;
  /** Creates or replaces the value. */
  setMeta(key: string, value: string): Promise<void>;

  /**
   * Appends a change the caller encoded (the backup agent's own, e.g. `secrets`) to the outbox,
   * whatever `backup_journal` says, and returns its id. `change` is 1 byte to 8 MiB.
   */
  appendOutbox(change: Uint8Array, now: number): Promise<number>;
  /**
   * Up to `limit` (1 to 10,000) changes not yet sealed, by id. Two changes to one key or API key are in
   * the order they committed; on PostgreSQL, changes to different ones may commit out of id order, so
   * a change can appear behind one with a higher id (replay does not mind: they touch different records).
   */
  listUnsealedOutbox(limit: number): Promise<OutboxChange[]>;
  /**
   * Seals a change into its entry: sets seq (1 or more) and entry (1 byte to 8 MiB) and empties the
   * change. Throws NotFoundError `outbox_row_not_found` if there is no row `id` or it is sealed already,
   * else ConflictError `outbox_seq_exists` if a row still held has that seq. Seal in the transaction
   * that read the change and the previous entry, so each seq and prev is assigned once.
   */
  sealOutbox(id: number, seq: number, entry: Uint8Array): Promise<void>;
  /** Up to `limit` (1 to 10,000) sealed entries with seq above `afterSeq`, by seq. */
  listSealedOutbox(afterSeq: number, limit: number): Promise<OutboxEntry[]>;
  /** Deletes the sealed entries with seq <= `seq` (acknowledged by the service); returns how many. Unsealed changes stay. */
  deleteSealedOutboxThrough(seq: number): Promise<number>;
  /** How many changes wait to be sealed, and how many sealed entries wait for their ack. */
  countOutbox(): Promise<{ unsealed: number; sealed: number }>;

  /**
   * Queues (key id, epoch) for publication to the public log, whatever `keyshare_journal` says (`node
   * mnemonic setup` queues the keys held before). Returns false if it was queued already. insertKey
   * queues a new key itself, in its transaction, while `keyshare_journal` is `on`.
   */
  enqueueKeyshare(keyId: string, epoch: number, now: number): Promise<boolean>;
  /** Up to `limit` (1 to 10,000) queued publications, oldest first. */
  listKeyshareOutbox(limit: number): Promise<KeyshareOutboxRow[]>;
  /**
   * Stores the entry of a queued publication unless it has one already, and returns the entry the row
   * holds (the first one stored: every retry sends those bytes), or undefined if there is no such row.
   */
  setKeyshareEntry(keyId: string, epoch: number, entry: Uint8Array): Promise<Uint8Array | undefined>;
  /** Removes a queued publication (published everywhere, or superseded). Returns false if there was none. */
  deleteKeyshareOutbox(keyId: string, epoch: number): Promise<boolean>;
  /** How many queued publications have no entry yet, and how many have one (sealed, maybe sent). */
  countKeyshareOutbox(): Promise<{ unsealed: number; sealed: number }>;
  /** Records (or replaces) what a log answered for a key's record at an epoch. */
  recordKeysharePublication(p: KeysharePublication): Promise<void>;
  /** What the logs answered for a key, by epoch and log. */
  listKeysharePublications(keyId: string): Promise<KeysharePublication[]>;
  /**
   * Records that `channel` holds the key at `epoch` (replacing what it held before), then activates the
   * key if it is `pending_backup` and every `required` channel holds it at its current epoch (without
   * a journal entry, as setKeyStatusUnjournaled). Returns whether this call activated it; a key that is
   * gone changes nothing. `detail` is JSON text of at most 64 KiB.
   */
  recordKeyChannel(keyId: string, channel: DurableChannel, epoch: number, detail: string, required: readonly DurableChannel[], now: number): Promise<{ activated: boolean }>;
  /**
   * Records that `channel` holds each key at the epoch given (replacing what it held), with one `detail`
   * for all, in one transaction of multi-row statements; activates nothing (a restore marks its keys).
   * Every key must be in the store. InvalidInputError for a malformed id, epoch, channel or detail.
   */
  recordKeyChannels(channel: DurableChannel, keys: readonly { keyId: string; epoch: number }[], detail: string, now: number): Promise<void>;
  /**
   * Records that `channel` holds every key in the store at its current epoch (replacing what it held),
   * with one `detail` for all, in one statement; activates nothing (a restore marks what it wrote).
   * InvalidInputError for a malformed channel or detail.
   */
  recordChannelForAllKeys(channel: DurableChannel, detail: string, now: number): Promise<void>;
  /** The channels that hold the key, each with the epoch it holds. */
  listKeyChannels(keyId: string): Promise<KeyChannelRecord[]>;
  /**
   * One page of keys for `GET /v1/coverage`, in one query: up to `limit` keys whose key_id sorts after
   * `afterKeyId` (when given), in key_id order, each with its public columns only (never its share nor
   * its public package) and the channels that hold it at its current epoch.
   */
  listCoverageKeys(afterKeyId: string | undefined, limit: number): Promise<CoverageKeyRow[]>;
  /** Per channel, how many keys it holds at their current epoch. */
  countKeyChannels(): Promise<Record<DurableChannel, number>>;
}

/** What a transaction body gets: the same operations, all inside the one transaction. */
export type KeyNodeStoreTx = KeyNodeStoreOps;

export type StoreKind = 'sqlite' | 'postgres';

export interface KeyNodeStore extends KeyNodeStoreOps {
  readonly kind: StoreKind;
  /**
   * Runs `fn` in one transaction: commits when its promise resolves, rolls back and rethrows when it
   * rejects. Use only `tx` inside `fn`: on SQLite the store's own methods wait for the transaction to
   * end, so calling them from `fn` deadlocks. On PostgreSQL the isolation is READ COMMITTED, and a
   * statement that failed (e.g. insertNonce's `key_id_not_exists`) aborts the transaction: rethrow it.
   */
  transaction<T>(fn: (tx: KeyNodeStoreTx) => Promise<T>): Promise<T>;
  /**
   * Reads keys, API keys and meta in one consistent read transaction (REPEATABLE READ, read only on
   * PostgreSQL; a separate read-only connection on a SQLite file, so writes go on meanwhile). See
   * StoreSnapshot for what is left out and why; the backup outbox is left out too (it belongs to this
   * node's stream, not to its state).
   */
  exportSnapshot(): Promise<StoreSnapshot>;
  /**
   * Writes a snapshot into an empty store in one transaction; nothing is written if anything fails.
   * Nothing is journaled. Throws ConflictError `store_not_empty` if any table (keys, nonces, DKG
   * sessions, API keys, meta, backup outbox) has a row, and InvalidInputError if a record is malformed
   * or ids repeat.
   */
  importSnapshot(snapshot: StoreSnapshot): Promise<void>;
  /**
   * Round two's consumption: consumeNonce, with the moment the deletion is on disk apart, so the caller
   * can compute while the disk syncs. `synced` resolves once it is (SQLite: the commit runs without an
   * fsync of its own, then the WAL is fdatasynced; PostgreSQL: at once, the commit was durable) and
   * rejects with LifeboatError `store_sync_failed` when it cannot be made so. Await it before anything
   * that relies on the nonce being spent (a signature share) leaves the node. Undefined as consumeNonce.
   */
  claimNonce(keyId: string, nonceId: string): Promise<NonceClaim | undefined>;
  /**
   * Starts a bulk import into an empty store (a streamed restore: ../restore-import.ts), in one
   * transaction that holds the store's connection until `commit` or `rollback`: nothing of it is
   * visible before `commit`, and a process killed meanwhile leaves the store as empty as it was.
   * Use no other method of the store until it ends. Throws ConflictError `store_not_empty` if any
   * table has a row (as importSnapshot), and the store's errors.
   */
  beginImport(): Promise<StoreImport>;
  /** Closes the connections; idempotent. Any other call after it fails. */
  close(): Promise<void>;
}

/**
 * One bulk import (KeyNodeStore.beginImport): rows written in a single transaction, on SQLite with
 * prepared statements, on PostgreSQL with multi-row statements. Nothing is journaled. Every method
 * checks its records first (InvalidInputError `invalid_input`); after any error the caller must
 * `rollback`. After `commit` or `rollback` every method throws.
 */
export interface StoreImport {
  /** The store's operations inside the import's transaction (what a restore records beside its keys before the commit). */
  readonly tx: KeyNodeStoreTx;
  /** Inserts new keys. Throws InvalidInputError `duplicate_key_id` naming a key id already imported (or repeated in `keys`). */
  insertKeys(keys: readonly KeyRecord[]): Promise<void>;
  /** Inserts keys or replaces those with their ids (a `key_put` after the compaction); ids must not repeat in `keys`. */
  putKeys(keys: readonly KeyRecord[]): Promise<void>;
  /** Sets a key's status; nothing if there is no such key. */
  setKeyStatus(keyId: string, status: KeyStatus): Promise<void>;
  /** Deletes a key; nothing if there is no such key. */
  deleteKey(keyId: string): Promise<void>;
  /** Inserts API keys or replaces those with their ids. */
  putApiKeys(apiKeys: readonly ApiKeyRecord[]): Promise<void>;
  /** Marks an API key revoked at `at` unless it is already (or absent). */
  revokeApiKey(id: string, at: number): Promise<void>;
  /** Creates or replaces meta entries. */
  putMeta(entries: readonly MetaEntry[]): Promise<void>;
  /** How many keys the import holds so far. */
  countKeys(): Promise<number>;
  /** Commits: the store then holds everything written. Throws the store's errors (then nothing is kept). */
  commit(): Promise<void>;
  /** Rolls back: the store is as empty as before. Idempotent, also after a failed commit; throws nothing. */
  rollback(): Promise<void>;
}
