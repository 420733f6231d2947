/**
 * The importer of a streamed restore (docs/keynode.md, "Backup and restore"): keys arrive batch by
 * batch as a backup is read, each batch is checked (the batched share check of restore-verify.ts, on
 * worker threads that stay up for the whole restore) while the batch before it is written, and the
 * writes go into one store transaction (KeyNodeStore.beginImport) that `finish` commits. Memory is
 * bounded by the batches in flight (`maxInFlight`), not by the node's size.
 *
 * Why no node can ever sign with an unchecked share, whatever fails and when:
 *   - a batch is written only after its own check passed (a write waits for its batch's verdict), so
 *     the transaction never holds a row that was not checked;
 *   - the transaction is committed by `finish` alone, after every batch was checked and written; any
 *     error (a share_mismatch, a repeated key id, a store error, a bad change) rolls it back, and a
 *     process killed before the commit leaves the store as empty as it was: there is no partial store
 *     for a node to serve;
 *   - the commit writes the nonce epoch advanced past the backup's and `restored_at`, and the store
 *     was empty (no nonce) when the import began: no nonce from before the restore exists or would be
 *     accepted.
 * Checking a batch while the previous one is written changes none of this: a verdict only ever gates
 * the write of its own batch, and writes happen in the order the batches were given.
 */
import { availableParallelism } from 'node:os';
import { InvalidInputError, LifeboatError } from '../errors.js';
import { NONCE_EPOCH_META } from './store/types.js';
import { type RestoreProgress, type RestoreVerifier, startRestoreVerifier, WORKER_MIN_KEYS } from './restore-verify.js';
import type { ApiKeyRecord, KeyNodeStore, KeyNodeStoreTx, KeyRecord, KeyStatus, MetaEntry, StoreImport } from './store/types.js';

/** A change after the compaction, applied on top of the keys imported (in the order given). */
export type ImportChange =
  | { op: 'key_put'; key: KeyRecord }
  | { op: 'key_status'; keyId: string; status: KeyStatus }
  | { op: 'key_delete'; keyId: string }
  | { op: 'api_key_put'; apiKey: ApiKeyRecord }
  | { op: 'api_key_revoke'; id: string; at: number };

export interface KeyImporterOptions {
  /** Batches given and not yet written before `add` (or `apply`) waits for one to be written (default 4). */
  maxInFlight?: number;
  /**
   * Worker threads for the share checks. Default: availableParallelism() from the first batch when
   * `expectedKeys` reaches WORKER_MIN_KEYS, else the calling thread until POOL_FROM_KEYS keys were
   * given (starting threads costs more than it saves on a small restore), then availableParallelism().
   * 0: always the calling thread.
   */
  workers?: number;
  /** How many keys the restore expects (an estimate, e.g. from the compaction's size): only picks the default `workers`. */
  expectedKeys?: number;
  /** `key_put` changes gathered into one checked batch (default 2,000). */
  putBatch?: number;
  /** Keys checked so far, of the keys given so far (the total is not known before the end). */
  progress?: RestoreProgress;
}

/** What an importer did so far (tests and benchmarks). */
export interface ImporterStats {
  keysGiven: number;
  keysWritten: number;
  inFlight: number;
  /** The most batches in flight at once: never above maxInFlight. */
  peakInFlight: number;
  workers: number;
}

const DEFAULT_IN_FLIGHT = 4;
/** Keys given from which the checks move to worker threads by default: a restore that fills a batch is likely large. */
const POOL_FROM_KEYS = 2_000;
const DEFAULT_PUT_BATCH = 2_000;

/**
 * A streamed restore into an empty store; see the top of this file. Use: `begin`, `add` batch after
 * batch, `apply` the changes after them, `finish` (or `abort`). After an error every call throws it
 * again and the store is rolled back.
 */
export class KeyImporter {
  readonly #session: StoreImport;
  readonly #storageKey: Uint8Array;
  readonly #maxInFlight: number;
  readonly #workers: number | undefined;
  readonly #expected: number;
  readonly #putBatch: number;
  readonly #progress: RestoreProgress;
  #verifier: RestoreVerifier | undefined;
  /** The check on the calling thread, for the first batches of a restore too small for workers. */
  #here: RestoreVerifier | undefined;
  /** The writes, chained in the order the batches and changes were given. */
  #tail: Promise<void> = Promise.resolve();
  #waiters: (() => void)[] = [];
  #puts = new Map<string, KeyRecord>();
  #failure: unknown;
  #rolledBack: Promise<void> | undefined;
  #state: 'open' | 'finishing' | 'done' = 'open';
  #stats: ImporterStats = { keysGiven: 0, keysWritten: 0, inFlight: 0, peakInFlight: 0, workers: 0 };
  #checked = 0;

  private constructor(session: StoreImport, storageKey: Uint8Array, opts: KeyImporterOptions) {
    this.#session = session;
    this.#storageKey = storageKey;
    this.#maxInFlight = Math.max(1, opts.maxInFlight ?? DEFAULT_IN_FLIGHT);
    this.#workers = opts.workers;
    this.#expected = opts.expectedKeys ?? 0;
    this.#putBatch = Math.max(1, opts.putBatch ?? DEFAULT_PUT_BATCH);
    this.#progress = opts.progress ?? (() => {});
  }

  /**
   * Starts an import into `store`, which must be empty; `storageKey` is the node's (the shares are
   * sealed under it); a dry run passes dryRunStore() (store/dry-import.ts): every check, nothing written.
   * Throws ConflictError `store_not_empty` and the store's errors.
   */
  static async begin(store: Pick<KeyNodeStore, 'beginImport'>, storageKey: Uint8Array, opts: KeyImporterOptions = {}): Promise<KeyImporter> {
    return new KeyImporter(await store.beginImport(), storageKey, opts);
  }

  /** What the import did so far. */
  stats(): ImporterStats {
    return { ...this.#stats };
  }

  /**
   * Takes a batch of new keys (a few thousand: each is checked as one), copied, so the caller may reuse
   * its array. Resolves once the batch is queued: it waits while `maxInFlight` batches are, and
   * throws the error of any earlier batch or change (share_mismatch naming the first bad key, a
   * repeated key id as InvalidInputError `duplicate_key_id`, the store's errors): the import is then
   * rolled back. Errors of this batch come from a later call, at the latest `finish`.
   */
  async add(keys: readonly KeyRecord[]): Promise<void> {
    this.#open();
    await this.#flushPuts();
    await this.#queueKeys([...keys], 'insert');
  }

  /**
   * Applies a change after the keys given so far (a `key_put` replaces a key or adds one, checked as
   * any other; a `key_status` or `key_delete` of an absent key, or an `api_key_revoke` of an absent or
   * revoked API key, changes nothing). Waits and throws as `add`.
   */
  async apply(change: ImportChange): Promise<void> {
    this.#open();
    if (change.op === 'key_put') {
      // Gathered into batches, checked as `add`'s; a later put of one key id replaces the earlier.
      this.#puts.delete(change.key.keyId);
      this.#puts.set(change.key.keyId, change.key);
      if (this.#puts.size >= this.#putBatch) await this.#flushPuts();
      return;
    }
    await this.#flushPuts();
    const s = this.#session;
    const write =
      change.op === 'key_status'
        ? () => s.setKeyStatus(change.keyId, change.status)
        : change.op === 'key_delete'
          ? () => s.deleteKey(change.keyId)
          : change.op === 'api_key_put'
            ? () => s.putApiKeys([change.apiKey])
            : change.op === 'api_key_revoke'
              ? () => s.revokeApiKey(change.id, change.at)
              : undefined;
    if (!write) throw new InvalidInputError('unknown restore change');
    await this.#queue(() => Promise.resolve(), write);
  }

  /**
   * Waits until every key given so far was checked and written (a caller that reports what failed
   * where: `backup check`); the import stays open. Throws what `add` throws.
   */
  async settle(): Promise<void> {
    this.#open();
    await this.#flushPuts();
    await this.#tail.catch(() => {});
    this.#throwIfFailed();
  }

  /** How many keys the import holds so far (after `settle`: every key given). Throws the store's errors. */
  async keyCount(): Promise<number> {
    this.#open();
    return this.#session.countKeys();
  }

  /**
   * Waits for every batch to be checked and written, writes `apiKeys` (replacing any of their ids) and
   * `meta` with the nonce epoch advanced past `meta`'s and `restored_at` now, and commits. Returns the
   * keys the store holds and the new epoch. `beforeCommit` runs last in the same transaction (what a
   * restore records beside the keys: it commits with them or not at all). Throws what `add` throws
   * and what `beforeCommit` throws (the import is then rolled back), and the store's errors of the commit.
   */
  async finish(
    meta: readonly MetaEntry[],
    apiKeys: readonly ApiKeyRecord[],
    opts: { beforeCommit?: (tx: KeyNodeStoreTx) => Promise<void> } = {},
  ): Promise<{ keys: number; apiKeys: number; epoch: number }> {
    this.#open();
    try {
      await this.#flushPuts();
      this.#state = 'finishing';
      await this.#tail;
      this.#throwIfFailed();
      // Every key is checked: the check threads' memory goes before what the commit still does.
      this.#stopVerifier();
      const epoch = Number(meta.find((m) => m.key === NONCE_EPOCH_META)?.value ?? '0') + 1;
      if (!Number.isSafeInteger(epoch) || epoch < 1) throw new InvalidInputError('the backup’s nonce epoch is not a number');
      await this.#session.putApiKeys(apiKeys);
      await this.#session.putMeta([
        ...meta.filter((m) => m.key !== NONCE_EPOCH_META && m.key !== 'restored_at'),
        { key: NONCE_EPOCH_META, value: String(epoch) },
        { key: 'restored_at', value: new Date().toISOString() },
      ]);
      const keys = await this.#session.countKeys();
      await opts.beforeCommit?.(this.#session.tx);
      await this.#session.commit();
      this.#state = 'done';
      this.#progress(this.#checked, this.#stats.keysGiven);
      return { keys, apiKeys: apiKeys.length, epoch };
    } catch (err) {
      await this.#fail(err);
      throw this.#failure;
    } finally {
      this.#stopVerifier();
    }
  }

  /** Rolls the import back (the store is as empty as before) and stops the check threads. Idempotent; throws nothing. */
  async abort(): Promise<void> {
    await this.#fail(new LifeboatError('restore_aborted', 'the restore was aborted', { status: 409 }));
  }

  #open(): void {
    this.#throwIfFailed();
    if (this.#state !== 'open') throw new InvalidInputError('this restore import has ended');
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  /**
   * Records the first failure, stops the checks, wakes every waiting caller and rolls back, once the
   * write running (if any) has ended: `inChain` when called from the chain itself, where none is.
   */
  #fail(err: unknown, inChain = false): Promise<void> {
    if (this.#rolledBack) return this.#rolledBack;
    if (this.#state === 'done') return Promise.resolve();
    this.#failure = err;
    this.#stopVerifier();
    for (const wake of this.#waiters.splice(0)) wake();
    const running = inChain ? Promise.resolve() : this.#tail.catch(() => {});
    this.#rolledBack = running.then(() => this.#session.rollback());
    return this.#rolledBack;
  }

  #stopVerifier(): void {
    this.#verifier?.stop();
  }

  async #flushPuts(): Promise<void> {
    if (this.#puts.size === 0) return;
    const batch = [...this.#puts.values()];
    this.#puts.clear();
    await this.#queueKeys(batch, 'upsert');
  }

  /** Queues the batch: its check starts once there is room, its write runs behind the earlier ones once it passed. */
  async #queueKeys(batch: KeyRecord[], mode: 'insert' | 'upsert'): Promise<void> {
    await this.#queue(
      () => {
        this.#stats.keysGiven += batch.length;
        return this.#check(batch);
      },
      async () => {
        await (mode === 'insert' ? this.#session.insertKeys(batch) : this.#session.putKeys(batch));
        this.#stats.keysWritten += batch.length;
      },
    );
  }

  /**
   * Waits until fewer than maxInFlight batches are in flight (throws if the import failed meanwhile),
   * then starts `verdict` and queues `write` behind the writes before it, to run once `verdict` resolves.
   */
  async #queue(verdict: () => Promise<void>, write: () => Promise<void>): Promise<void> {
    while (this.#stats.inFlight >= this.#maxInFlight) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
      this.#throwIfFailed();
    }
    this.#stats.inFlight += 1;
    this.#stats.peakInFlight = Math.max(this.#stats.peakInFlight, this.#stats.inFlight);
    const checked = verdict();
    const step = this.#tail.then(async () => {
      this.#throwIfFailed();
      await checked;
      await write();
    });
    this.#tail = step.then(
      () => this.#done(),
      (err: unknown) => {
        this.#done();
        // A failure from outside (abort, a stream error) already rolls back once this chain has ended:
        // waiting here for that rollback would wait for itself, and nothing would ever settle.
        if (this.#rolledBack) return Promise.reject(err);
        return this.#fail(err, true).then(() => Promise.reject(err));
      },
    );
    // A failure is reported by the next call; the chain itself must not count as unhandled.
    this.#tail.catch(() => {});
  }

  #done(): void {
    this.#stats.inFlight -= 1;
    this.#waiters.shift()?.();
  }

  /** The check of one batch, started now; its rejection is handled where the write awaits it. */
  #check(batch: readonly KeyRecord[]): Promise<void> {
    if (!this.#verifier) {
      const large = this.#expected >= WORKER_MIN_KEYS || this.#stats.keysGiven >= POOL_FROM_KEYS;
      const workers = this.#workers ?? (large ? availableParallelism() : 0);
      if (workers > 0) {
        this.#verifier = startRestoreVerifier(this.#storageKey, workers);
        this.#stats.workers = this.#verifier.workers;
      }
    }
    const verifier = this.#verifier ?? (this.#here ??= startRestoreVerifier(this.#storageKey, 0));
    const p = verifier.verify(batch, (n) => this.#progress((this.#checked += n), this.#stats.keysGiven));
    p.catch(() => {});
    return p;
  }
}
