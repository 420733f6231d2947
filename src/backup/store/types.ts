/**
 * The backup service's storage interface (docs/backup.md) and the error contract of every method.
 * Two backends implement it (./sqlite.ts, ./postgres.ts) over one set of queries (./queries.ts) and
 * one set of migrations (./schema.ts); test/backup-store.test.ts runs the same cases against both.
 *
 * The store holds only what the service may see: OPAQUE registration records, wrapped backup keys,
 * auth public keys, hashes of invites and tokens, and entries and compactions encrypted on the node.
 *
 * Timestamps are integer milliseconds since the epoch. Byte fields are returned as fresh Uint8Arrays.
 * Every method validates its arguments first and throws InvalidInputError (`invalid_input`) for a
 * malformed one before touching the database; an unreachable database throws LifeboatError
 * `store_unavailable`, a SQLite file locked by another process past the busy timeout `store_busy`.
 * Account and stream names are 1 to 64 of [A-Za-z0-9_.-]; hashes are 32 bytes.
 */

export type BackupStoreKind = 'sqlite' | 'postgres';

/** An account as the service keeps it. `registration` is null until the invite was used. */
export interface AccountRecord {
  name: string;
  /** SHA-256 of the one-time invite code; null once registered. */
  inviteHash: Uint8Array | null;
  registration: AccountRegistration | null;
  /** SHA-256 of the account's restore token, or null when it has none. */
  restoreTokenHash: Uint8Array | null;
  createdAt: number;
  updatedAt: number;
}

export interface AccountRegistration {
  /** OPAQUE registration record (opaque to the store). */
  record: Uint8Array;
  /** The backup key wrapped under the password's export key (an `LBBK` envelope). */
  wrappedKey: Uint8Array;
  /** Ed25519 public key of the auth key derived from the backup key (32 bytes). */
  authPublicKey: Uint8Array;
}

export const EPHEMERAL_KINDS = ['login', 'challenge', 'siwe'] as const;
/**
 * `login`: an OPAQUE server login state between start and finish; `challenge`: an auth challenge;
 * `siwe`: a Sign-In with Ethereum nonce (its id), for a wallet login or registration.
 */
export type EphemeralKind = (typeof EPHEMERAL_KINDS)[number];

export interface EphemeralRecord {
  kind: EphemeralKind;
  /** 1 to 64 of [A-Za-z0-9_-]. */
  id: string;
  /** The account it was issued for (which may not exist: unknown accounts get the same treatment). */
  account: string;
  value: Uint8Array;
  expiresAt: number;
}

/**
 * An account's second factor (docs/format.md, "TOTP record"): the TOTP secret sealed under the
 * service's TOTP key (never in the clear here), the last time step a code was accepted for, and the
 * recovery codes' slots (10 of `used (1) ‖ SHA-256 (32)`).
 */
export interface TotpRecord {
  account: string;
  /** An `LBTS` envelope (src/backup/totp.ts sealTotpSecret). */
  sealedSecret: Uint8Array;
  /** The highest step a code was accepted for; a code is accepted only for a later step. -1 for none. */
  lastStep: number;
  recoverySlots: Uint8Array;
  createdAt: number;
  updatedAt: number;
}

export const TOKEN_KINDS = ['login', 'backup'] as const;
/** `login`: after a password login, good only to change the password; `backup`: after the auth-key proof, for streams. */
export type TokenKind = (typeof TOKEN_KINDS)[number];

export interface TokenRecord {
  /** SHA-256 of the token (32 bytes). */
  hash: Uint8Array;
  account: string;
  kind: TokenKind;
  expiresAt: number;
}

/** A stream's head as the service knows it. */
export interface StreamRecord {
  account: string;
  stream: string;
  /** The highest seq accepted, 0 before the first entry. */
  headSeq: number;
  /** SHA-256 of entry headSeq (32 zero bytes when headSeq is 0). */
  headHash: Uint8Array;
  /** The lowest seq still held (headSeq + 1 when none is). */
  firstSeq: number;
  createdAt: number;
  updatedAt: number;
}

/** One log entry: the service computes `hash` (SHA-256 of bytes) and parses seq and prev from its header. */
export interface EntryRecord {
  seq: number;
  /** The previous entry's hash, as named in this entry's header. */
  prevHash: Uint8Array;
  hash: Uint8Array;
  bytes: Uint8Array;
}

export const COMPACTION_STATES = ['uploading', 'complete'] as const;
export type CompactionState = (typeof COMPACTION_STATES)[number];

export interface CompactionRecord {
  /** 1 to 64 of [A-Za-z0-9_-], chosen by the service. */
  id: string;
  account: string;
  stream: string;
  /** The stream seq the compaction covers (the state after entry `seq`), at least 1. */
  seq: number;
  /** SHA-256 of the whole compaction (the chunks concatenated). */
  hash: Uint8Array;
  /** Total bytes, 1 to 2^40. */
  size: number;
  /** Number of chunks, 1 to 1,000,000. */
  chunkCount: number;
  state: CompactionState;
  createdAt: number;
  /** When it completed, or null. */
  completedAt: number | null;
}

export interface BackupStoreOps {
  /** Creates an invited account. Throws ConflictError `account_exists` if the name is taken. */
  createAccount(name: string, inviteHash: Uint8Array, now: number): Promise<void>;
  /** Returns the account, or undefined. */
  getAccount(name: string): Promise<AccountRecord | undefined>;
  /** Every account ordered by name. */
  listAccounts(): Promise<AccountRecord[]>;
  /**
   * Registers an invited account: sets the registration and clears the invite, atomically, only if the
   * account exists, is not registered yet and its invite hash equals `inviteHash` (compared by the
   * database; the caller has already compared in constant time). Returns false otherwise, changing nothing.
   */
  completeRegistration(name: string, inviteHash: Uint8Array, reg: AccountRegistration, now: number): Promise<boolean>;
  /**
   * Replaces the record and wrapped key of a registered account (password change); the auth public key
   * stays. Throws NotFoundError `account_not_found` if there is no registered account of that name.
   */
  replacePassword(name: string, reg: Pick<AccountRegistration, 'record' | 'wrappedKey'>, now: number): Promise<void>;
  /**
   * Sets (or, with null, clears) the SHA-256 of a registered account's restore token, replacing any
   * earlier one. Throws NotFoundError `account_not_found` if there is no registered account of that name.
   */
  setRestoreTokenHash(name: string, hash: Uint8Array | null, now: number): Promise<void>;
  /** Deletes an account with its tokens, ephemerals, streams, entries and compactions. Returns false if absent. */
  deleteAccount(name: string): Promise<boolean>;

  /** The account's TOTP record, or undefined when it has no second factor. */
  getTotp(account: string): Promise<TotpRecord | undefined>;
  /**
   * Sets (replacing any earlier one) or, with null, removes the account's TOTP record. Throws
   * NotFoundError `account_not_found` if there is no such account.
   */
  setTotp(account: string, rec: Omit<TotpRecord, 'account'> | null): Promise<void>;
  /**
   * Records that a code of `step` was accepted, only if `step` is above the last one (compare and set
   * in one statement: of two logins with one code exactly one gets it). Returns false otherwise.
   */
  advanceTotpStep(account: string, step: number, now: number): Promise<boolean>;
  /**
   * Replaces the recovery slots only if they still equal `expected` (compare and set: a code is used
   * once, whatever runs at the same time). Returns false otherwise, changing nothing.
   */
  replaceRecoverySlots(account: string, expected: Uint8Array, next: Uint8Array, now: number): Promise<boolean>;

  /** Stores a single-use ephemeral. Throws ConflictError `ephemeral_exists` if (kind, id) is taken. */
  putEphemeral(rec: EphemeralRecord): Promise<void>;
  /**
   * Deletes and returns the ephemeral in one statement (single use: of concurrent callers exactly one
   * gets it). Returns undefined if absent. An expired one is still returned: the caller checks expiresAt.
   */
  takeEphemeral(kind: EphemeralKind, id: string): Promise<EphemeralRecord | undefined>;

  /**
   * Stores a token hash. Throws ConflictError `token_exists` if the hash is taken, NotFoundError
   * `account_not_found` if there is no such account (a token never outlives its account).
   */
  putToken(rec: TokenRecord): Promise<void>;
  /** Returns the token, or undefined. An expired one is still returned: the caller checks expiresAt. */
  getToken(hash: Uint8Array): Promise<TokenRecord | undefined>;
  /** Deletes the account's tokens of that kind; returns how many. */
  deleteTokens(account: string, kind: TokenKind): Promise<number>;
  /**
   * Deletes expired ephemerals and tokens (expiresAt <= now) and compactions still `uploading` that
   * were created at or before `staleUploadsBefore`, with their chunks. Returns how many rows of each.
   */
  deleteExpired(now: number, staleUploadsBefore: number): Promise<{ ephemerals: number; tokens: number; uploads: number }>;

  /** Returns the stream, or undefined if no entry was ever accepted into it. */
  getStream(account: string, stream: string): Promise<StreamRecord | undefined>;
  /** The account's streams ordered by name. */
  listStreams(account: string): Promise<StreamRecord[]>;
  /**
   * Appends a batch of entries (ordered by seq, consecutive, 1 to 10,000 of them, each at most 1 MiB)
   * in one transaction, creating the stream on its first entry. For each entry:
   *   seq <= head and held with an equal hash: accepted again (idempotent), nothing written;
   *   seq <= head and held with another hash: ConflictError `entry_conflict`;
   *   seq <= head and no longer held (pruned by a compaction): ConflictError `entry_pruned`;
   *   seq == head + 1: its prevHash must equal the head hash (32 zero bytes when head is 0), else
   *     ConflictError `chain_mismatch`; it becomes the head;
   *   seq > head + 1: ConflictError `sequence_gap`.
   * The first faulty entry names the error. NotFoundError `account_not_found` if the account does not
   * exist. On any error nothing of the batch is written, not even the stream row, so a caller's
   * transaction may go on. Concurrent appends to one stream serialize (row lock on PostgreSQL).
   * Returns the head after the batch (unchanged, updatedAt too, when every entry was already held).
   */
  appendEntries(account: string, stream: string, entries: EntryRecord[], now: number): Promise<StreamRecord>;
  /** Up to `limit` (1..10,000) entries with seq > afterSeq, ordered by seq; [] past the end or for no stream. */
  listEntries(account: string, stream: string, afterSeq: number, limit: number): Promise<EntryRecord[]>;
  /** The held entry of that seq, or undefined. */
  getEntry(account: string, stream: string, seq: number): Promise<EntryRecord | undefined>;

  /**
   * Starts a compaction upload (state `uploading`). Throws NotFoundError `stream_not_found` if the
   * stream has no entries, ConflictError `compaction_exists` if the id is taken.
   */
  beginCompaction(rec: Omit<CompactionRecord, 'state' | 'completedAt'>): Promise<void>;
  /**
   * Stores chunk `n` (0-based, < chunkCount, 1 byte to 8 MiB) of an uploading compaction; storing the
   * same chunk again replaces it. Throws NotFoundError `compaction_not_found` if there is no such
   * compaction of that account and stream, ConflictError `compaction_complete` if it has completed,
   * InvalidInputError `invalid_input` if n >= its chunkCount (known only once it is read).
   */
  putCompactionChunk(account: string, stream: string, id: string, n: number, bytes: Uint8Array): Promise<void>;
  /** Chunk `n`, or undefined if absent (never uploaded, or the compaction is gone). */
  getCompactionChunk(account: string, stream: string, id: string, n: number): Promise<Uint8Array | undefined>;
  /** Returns the compaction, or undefined. */
  getCompaction(account: string, stream: string, id: string): Promise<CompactionRecord | undefined>;
  /** The complete compaction with the highest seq, or undefined. */
  currentCompaction(account: string, stream: string): Promise<CompactionRecord | undefined>;
  /** Every complete compaction of the stream (the current and the previous one), by seq ascending; [] for none. */
  listCompactions(account: string, stream: string): Promise<CompactionRecord[]>;
  /**
   * Marks an uploading compaction complete and prunes, in one transaction: the caller has verified its
   * chunks, size and hash. Throws NotFoundError `compaction_not_found`; ConflictError
   * `compaction_stale` if a complete compaction with seq >= this one's exists (nothing changes).
   * Idempotent for an already complete one. After it: the complete compactions older than the
   * previous current one are deleted with their chunks, and so are the entries with seq <= the
   * previous current compaction's seq (all entries are kept while there is no previous one); the
   * stream's firstSeq follows (and its updatedAt with it). Uploads still `uploading` stay, for
   * deleteExpired; one older than the new current can only fail with `compaction_stale` now.
   * `declared` (a streamed upload's hash, size and chunk count, verified by the caller) replaces the
   * ones the record began with.
   */
  completeCompaction(account: string, stream: string, id: string, now: number, declared?: { hash: Uint8Array; size: number; chunkCount: number }): Promise<void>;
}

/** What a transaction body gets: the same operations, all inside the one transaction. */
export type BackupStoreTx = BackupStoreOps;

export interface BackupStore extends BackupStoreOps {
  readonly kind: BackupStoreKind;
  /**
   * Runs `fn` in one transaction (see KeyNodeStore.transaction for the rules). A contract error of an
   * operation inside `fn` has written nothing and leaves the transaction usable, on PostgreSQL too
   * (but for `account_not_found` / `stream_not_found` from a deleteAccount racing it: rethrow those).
   */
  transaction<T>(fn: (tx: BackupStoreTx) => Promise<T>): Promise<T>;
  /** Closes the connections; idempotent. */
  close(): Promise<void>;
}
