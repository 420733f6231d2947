/**
 * The public log's sequencing state (docs/log.md, "Storage"): enrolled submitters, entries waiting to
 * be sequenced, the index of every sequenced entry by its leaf hash, the tree head with its signed
 * checkpoint, and what the log knows of each witness. Tiles and entry bundles are not here: they are
 * blobs (../server/blobs.ts). Two backends implement it (./sqlite.ts, ./postgres.ts);
 * test/log-store.test.ts runs one conformance suite against both.
 *
 * Timestamps are integer milliseconds since the epoch; byte fields are returned as fresh Uint8Arrays.
 * Every method validates its arguments first and throws InvalidInputError (`invalid_input`) for a
 * malformed one before touching the database; an unreachable database throws LifeboatError
 * `store_unavailable`, a SQLite file locked past the busy timeout `store_busy`. Hashes and Ed25519
 * keys are 32 bytes; submitter and witness names are 1 to 64 of [A-Za-z0-9_.-]; entries are 1 to
 * 65,535 bytes; checkpoint notes 1 to 65,536 bytes (UTF-8).
 *
 * Opening one (./index.ts openLogStore) throws InvalidInputError `invalid_store_url` for a URL it does
 * not know, `insecure_permissions` for a SQLite file others can read, LifeboatError
 * `store_not_a_database`, `store_schema_newer` (migrated by a newer Lifeboat), `store_migration_failed`,
 * and `store_unavailable` / `store_busy` as above.
 */

export type LogStoreKind = 'sqlite' | 'postgres';

/** A submitter allowed to add entries (`lifeboat log enrol`). */
export interface SubmitterRecord {
  name: string;
  /** The public identity's Ed25519 signing key (32 bytes): what an entry's signature is checked with. */
  signingKey: Uint8Array;
  /** The public identity's X25519 box key (32 bytes), kept so the whole `lb1.` identity can be shown. */
  boxKey: Uint8Array;
  enrolledAt: number;
  /** When it was revoked (it may no longer add), or null. */
  revokedAt: number | null;
}

/** An entry taken by `POST /add`, not yet in a checkpoint. `id` orders them: sequencing takes ascending ids. */
export interface PendingRecord {
  id: number;
  /** The entry's RFC 6962 leaf hash, SHA-256(0x00 || bytes). */
  hash: Uint8Array;
  /** The entry as submitted (at most 65,535 bytes). */
  bytes: Uint8Array;
  receivedAt: number;
}

/** The tree as of the last committed checkpoint. */
export interface TreeHeadRecord {
  size: number;
  root: Uint8Array;
  /** The checkpoint note signed by the log (text form). */
  checkpoint: string;
  /** The same checkpoint with the co-signatures collected so far (equal to `checkpoint` before any). */
  cosigned: string;
  /**
   * The size up to which tiles and entry bundles are written (markPublished). Below `size` after a
   * crash between commitBatch and writing the tiles: the sequencer writes them again from the entries
   * the store still holds (listUnpublished) before anything else, so a tile is only ever written for
   * a committed tree and never changes.
   */
  publishedSize: number;
  updatedAt: number;
}

/** A sequenced entry whose tiles may not be written yet: the store keeps its bytes until markPublished. */
export interface SequencedRecord {
  index: number;
  hash: Uint8Array;
  bytes: Uint8Array;
}

/** What the log last learnt of a witness: the size of the newest checkpoint it co-signed (0 before any). */
export interface WitnessStateRecord {
  name: string;
  size: number;
  updatedAt: number;
}

/** Where an entry stands, by its leaf hash. */
export type EntryStatus = { state: 'sequenced'; index: number } | { state: 'pending'; id: number };

export interface LogStoreOps {
  /**
   * Enrols a submitter. Throws ConflictError `submitter_exists` if the name or the signing key is
   * already enrolled (revoked ones included: a name or key is never reused).
   */
  enrolSubmitter(rec: Omit<SubmitterRecord, 'revokedAt'>): Promise<void>;
  /** The submitter with that signing key (revoked or not), or undefined. */
  getSubmitter(signingKey: Uint8Array): Promise<SubmitterRecord | undefined>;
  /** Every submitter ordered by name. */
  listSubmitters(): Promise<SubmitterRecord[]>;
  /** Marks a submitter revoked. Throws NotFoundError `submitter_not_found`. Idempotent for a revoked one. */
  revokeSubmitter(name: string, now: number): Promise<void>;

  /**
   * Takes an entry to sequence, unless one with the same leaf hash is known: returns its status
   * (sequenced: its index; pending: the id it already has), writing nothing, so the same entry added
   * twice, concurrently too, gets one index. Otherwise stores it and returns `{ state: 'pending', id }`.
   */
  addPending(hash: Uint8Array, bytes: Uint8Array, now: number): Promise<EntryStatus>;
  /**
   * addPending for 1 to 100,000 entries in one transaction (one commit, so one fsync on SQLite: how a
   * server takes the adds that arrive together). Returns each entry's status in the order given; an
   * entry given twice gets the same status both times. The store does not hash `bytes`: `hash` is
   * the caller's SHA-256(0x00 || bytes), as for addPending.
   */
  addPendingBatch(entries: { hash: Uint8Array; bytes: Uint8Array }[], now: number): Promise<EntryStatus[]>;
  /** Where the entry of that leaf hash stands, or undefined if unknown. */
  entryStatus(hash: Uint8Array): Promise<EntryStatus | undefined>;
  /** Up to `limit` (1..100,000) pending entries with the smallest ids, ascending. */
  listPending(limit: number): Promise<PendingRecord[]>;

  /** The committed tree head, or undefined before the first checkpoint (`log init` commits size 0). */
  getHead(): Promise<TreeHeadRecord | undefined>;
  /**
   * Commits a sequenced batch in one transaction, only if the committed head's size is still
   * `oldSize` (0 with no head yet): the pending entries `ids`, in the order given (the order the
   * sequencer hashed them in), get indexes oldSize, oldSize+1, …, stop being pending (their bytes stay,
   * for listUnpublished, until markPublished), and the head becomes (size = oldSize + ids.length,
   * root, checkpoint) with `cosigned` = checkpoint and publishedSize unchanged. An empty batch may
   * commit the first head, of size 0 (publishedSize 0), and nothing else: an empty batch on an existing
   * head would be a second checkpoint of one size. Throws ConflictError `sequence_conflict` if the head
   * moved (of two sequencers racing from one head exactly one wins), an id is repeated or not pending,
   * or an empty batch finds a head (nothing is written).
   */
  commitBatch(batch: { oldSize: number; ids: number[]; root: Uint8Array; checkpoint: string; now: number }): Promise<TreeHeadRecord>;
  /** Sequenced entries with index >= fromIndex whose bytes are still held, ascending, at most `limit` (1..100,000). */
  listUnpublished(fromIndex: number, limit: number): Promise<SequencedRecord[]>;
  /**
   * Records that the tiles and bundles of the tree of `size` (<= the head's size) are written: drops
   * the bytes of entries below `size` and raises publishedSize (never lowers it: a smaller size changes
   * nothing). Throws InvalidInputError if `size` is past the head's size or there is no head yet.
   */
  markPublished(size: number, now: number): Promise<void>;
  /**
   * Replaces the head's `cosigned` note, only if the head's size is still `size` (returns false and
   * writes nothing otherwise): the caller has checked it is the head's checkpoint with co-signatures added.
   */
  setCosigned(size: number, cosigned: string, now: number): Promise<boolean>;
  /** The index of the sequenced entry of that leaf hash, or undefined. */
  indexOf(hash: Uint8Array): Promise<number | undefined>;

  /** What the log knows of each witness, ordered by name. */
  listWitnessStates(): Promise<WitnessStateRecord[]>;
  /** Records the size a witness is known to have co-signed (creating the row); never lowers it. */
  setWitnessSize(name: string, size: number, now: number): Promise<void>;
}

export interface LogStore extends LogStoreOps {
  readonly kind: LogStoreKind;
  /**
   * Takes the store's sequencer lock for `origin` until the returned function is called (or the store
   * is closed): one sequencer per log on one store, even from two data directories. PostgreSQL: a
   * session advisory lock (pg_try_advisory_lock, keyed by the first 8 bytes of SHA-256 of the origin)
   * on a connection held for as long. SQLite: nothing here (resolves at once): the file lives in one
   * data directory, whose serve.lock already allows one `log serve`. Throws ConflictError `log_running`
   * when another session holds it, and `store_unavailable`.
   */
  holdSequencerLock(origin: string): Promise<() => Promise<void>>;
  /** Closes the connections; idempotent. */
  close(): Promise<void>;
}
