/**
 * The log's sequencer (docs/log.md, "How the sequencer keeps its promises"). Adds are verified and
 * stored as pending; every interval one batch (Sunlight-style) is hashed onto the tree and published:
 *
 *   listPending -> new root (appendLeaves over the log's own tiles, checked against the head's root)
 *   -> sign the checkpoint -> store.commitBatch (THE COMMIT POINT) -> write tiles and entry bundles
 *   -> store.markPublished -> witnesses co-sign (bounded by a timeout) -> store.setCosigned
 *   -> write public/checkpoint -> answer the adds waiting on the batch.
 *
 * A crash after the commit leaves head.publishedSize < head.size: start (and every tick) first writes
 * the missing tiles from the entries the store still holds, checked to hash to the committed root.
 * So a tile is only written for a committed tree, a checkpoint is signed once per committed size
 * (Ed25519 is deterministic: one size, one root, one signature), and an add is answered only once its
 * entry is durable and covered by a published checkpoint. Memory holds the head, not the tree: the
 * right edge is read back from the tiles each batch. Adds reach the store through ./intake.ts; the
 * witnesses are asked through ./cosign.ts.
 */
import { LifeboatError } from '../../errors.js';
import { toHex, utf8 } from '../../util/bytes.js';
import { checkpointLabel, openCheckpoint, signCheckpoint } from '../checkpoint.js';
import { parseEntry, verifyEntry } from '../entry.js';
import type { InclusionDoc } from '../inclusion.js';
import { appendLeaves, equalBytes, grownHashReader, type HashReader, leafHash, memoHashReader, treeHash } from '../merkle.js';
import type { NoteSigner, NoteVerifier } from '../note.js';
import { proveInclusion } from '../proof.js';
import { tileHashReader, type TileReader } from '../tile-reader.js';
import type { LogStore, TreeHeadRecord } from '../store/types.js';
import { blobTileReader, type BlobStore } from './blobs.js';
import { collectCosignatures, type Cosigner } from './cosign.js';
import { logBusy, logHalted, sequencingTimeout, storeBehind, submitterNotEnrolled } from './errors.js';
import { PendingIntake } from './intake.js';
import { SubmitterCache } from './submitters.js';
import { checkRoot, edgeRoot, writeGrownTree } from './tree-writer.js';

export interface SequencerOptions {
  store: LogStore;
  blobs: BlobStore;
  signer: NoteSigner;
  intervalMs: number;
  maxEntryBytes: number;
  cosign?: Cosigner;
  /** How long a batch waits for co-signatures before publishing without the missing ones (5 s). */
  cosignTimeoutMs?: number;
  /** How long an add waits for a checkpoint covering its entry before answering 503 (60 s). */
  addTimeoutMs?: number;
  /** Entries per batch (1024). */
  maxBatch?: number;
  /** Adds waiting at once before new ones are refused with 503 `log_busy` (10,000). */
  maxWaiting?: number;
  /** Entry bytes the waiting adds may hold together before new ones are refused with 503 `log_busy` (64 MiB). */
  maxWaitingBytes?: number;
  /** Adds of one entry waiting at once before another is refused with 503 `log_busy` (16). */
  maxWaitersPerEntry?: number;
  warn?: (line: string) => void;
}

interface Published {
  size: number;
  root: Uint8Array;
  checkpoint: string;
  /** The published tree's hashes, each read (and checked) once for all the proofs against it. */
  reader: HashReader;
}

interface Waiter {
  index: number | undefined;
  list: { resolve: (p: Published) => void; reject: (e: unknown) => void }[];
}

export class Sequencer {
  private readonly o: Required<Omit<SequencerOptions, 'cosign'>> & Pick<SequencerOptions, 'cosign'>;
  private readonly tiles: TileReader;
  private readonly verifier: NoteVerifier;
  private head!: TreeHeadRecord;
  private published!: Published;
  private readonly waiters = new Map<string, Waiter>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Set when the sequencer stopped for safety (see halted). */
  private fault_: LifeboatError | undefined;
  private onFault: ((err: LifeboatError) => void) | undefined;
  /** Resolves with the refusal for safety that stopped sequencing (tile_invalid, store_behind, log_forked). */
  readonly halted: Promise<LifeboatError> = new Promise((resolve) => (this.onFault = resolve));
  /** Adds that arrived together, stored in one transaction (addPendingBatch: one commit for all). */
  private readonly intake: PendingIntake;
  /** Entry bytes held by adds in flight (maxWaitingBytes). */
  private waitingBytes = 0;
  private readonly submitters: SubmitterCache;

  constructor(opts: SequencerOptions) {
    const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as SequencerOptions;
    this.o = { cosignTimeoutMs: 5000, addTimeoutMs: 60_000, maxBatch: 1024, maxWaiting: 10_000, maxWaitingBytes: 64 * 1024 * 1024, maxWaitersPerEntry: 16, warn: () => {}, ...given };
    this.tiles = blobTileReader(opts.blobs);
    this.verifier = opts.signer.verifier();
    this.submitters = new SubmitterCache(opts.store);
    this.intake = new PendingIntake(opts.store);
  }

  /** The refusal for safety that stopped sequencing, if one did. */
  get fault(): LifeboatError | undefined {
    return this.fault_;
  }

  /** Checkpoints published without co-signatures (a witness failed or timed out) since start; /metrics. */
  cosignFailures = 0;

  /** Entries added and waiting for a published checkpoint that holds them; /metrics. */
  get pendingEntries(): number {
    return this.waiters.size;
  }

  /** The tree size of the checkpoint last published. */
  get size(): number {
    return this.published.size;
  }

  /**
   * Recovers and starts the batch loop: finishes a batch committed before a crash (its tiles), checks
   * the tiles against the head, and rewrites public/checkpoint from the store's head. Throws
   * LifeboatError `log_not_initialized` without a head, `log_key_mismatch` when the head was not
   * signed by this log's key, LogVerificationError `tile_invalid` for tiles that do not match it.
   */
  async start(): Promise<void> {
    const head = await this.o.store.getHead();
    if (!head) throw new LifeboatError('log_not_initialized', 'the store has no tree head', { hint: 'run `lifeboat log init` for this data directory and store' });
    let opened;
    try {
      opened = openCheckpoint(head.checkpoint, this.verifier);
    } catch (err) {
      throw new LifeboatError('log_key_mismatch', 'the store’s checkpoint is not signed by this log’s key', { hint: 'the store belongs to another log: check --data-dir and the store url', cause: err });
    }
    if (opened.checkpoint.size !== head.size || !equalBytes(opened.checkpoint.rootHash, head.root)) {
      throw new LifeboatError('log_key_mismatch', 'the store’s checkpoint does not state its head', { hint: 'the store is damaged: restore it from a backup' });
    }
    this.head = head;
    const published = await this.readPublished();
    if (published && published.size > head.size) {
      throw storeBehind(`the store's head (size ${head.size}) is behind the checkpoint the log published, ${checkpointLabel(published)}`);
    }
    if (published && published.size === head.size && !equalBytes(published.rootHash, head.root)) throw this.forked(published);
    const recovered = head.publishedSize < head.size ? await this.publishCommitted() : new Map<string, number>();
    const tree = tileHashReader(this.head, this.tiles);
    checkRoot(await treeHash(this.head.size, tree), this.head.root, `the tiles of tree size ${this.head.size}`);
    if (published && !equalBytes(await treeHash(published.size, tree), published.rootHash)) throw this.forked(published);
    // a head no witness co-signed yet (the empty tree of a new log included) goes to the witnesses now
    await this.publish(recovered, this.head.cosigned === this.head.checkpoint);
    this.schedule(this.o.intervalMs);
  }

  /** public/checkpoint as the log last published it (checked with the log's key), or undefined before any. */
  private async readPublished(): Promise<{ origin: string; size: number; rootHash: Uint8Array } | undefined> {
    const bytes = await this.o.blobs.get('checkpoint');
    return bytes === undefined ? undefined : openCheckpoint(utf8.decode(bytes), this.verifier).checkpoint;
  }

  private forked(published: { origin: string; size: number; rootHash: Uint8Array }): LifeboatError {
    const head = { origin: this.o.signer.name, size: this.head.size, rootHash: this.head.root };
    return new LifeboatError('log_forked', `the store's head ${checkpointLabel(head)} is not the tree of the published ${checkpointLabel(published)}`, {
      status: 500,
      hint: 'the store and public/ are of different histories: keep both as evidence and restore the store and public/ from one backup',
    });
  }

  /** Stops sequencing for good after a refusal for safety: every waiting and later add gets 503 `log_halted`. */
  private halt(err: LifeboatError): void {
    if (this.fault_) return;
    this.fault_ = err;
    this.stopped = true;
    clearTimeout(this.timer);
    this.o.warn(`sequencing stopped for safety: ${err.message} (${err.code})`);
    const answer = logHalted(err);
    for (const w of this.waiters.values()) for (const p of w.list) p.reject(answer);
    this.waiters.clear();
    this.onFault!(err);
  }

  /** Stops the loop after the batch in flight; adds still waiting are answered 503 `log_stopping`. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    const err = new LifeboatError('log_stopping', 'the log is shutting down', { status: 503, hint: 'send the entry again once the log is back: it keeps its index' });
    for (const w of this.waiters.values()) for (const p of w.list) p.reject(err);
    this.waiters.clear();
  }

  /**
   * Takes an entry and resolves once it is in a published checkpoint, with its inclusion proof (no
   * `entry`). The same entry twice gets the same index. Throws what verifyEntry throws (size limit,
   * format, `entry_signature_invalid`), ForbiddenError `submitter_not_enrolled`, 503 `log_busy`,
   * `sequencing_timeout`, `log_stopping`, and the store's errors.
   */
  async add(bytes: Uint8Array): Promise<InclusionDoc> {
    // The cheap checks first: the format, then the enrolment (cached), and only then the Ed25519 signature.
    const entry = parseEntry(bytes, { maxBytes: this.o.maxEntryBytes });
    const sub = await this.submitters.get(entry.submitter.signingPublicKey);
    if (!sub || sub.revokedAt !== null || !equalBytes(sub.boxKey, entry.submitter.boxPublicKey)) throw submitterNotEnrolled(sub?.revokedAt != null);
    verifyEntry(bytes, { maxBytes: this.o.maxEntryBytes });
    if (this.fault_) throw logHalted(this.fault_);
    if (this.stopped) throw new LifeboatError('log_stopping', 'the log is shutting down', { status: 503 });
    if (this.waitingBytes + bytes.length > this.o.maxWaitingBytes) throw logBusy();
    const hash = leafHash(bytes);
    const key = toHex(hash);
    // Wait before storing, so a batch that takes the entry right after the store finds the waiter.
    let w = this.waiters.get(key);
    if (!w) {
      if (this.waiters.size >= this.o.maxWaiting) throw logBusy();
      w = { index: undefined, list: [] };
      this.waiters.set(key, w);
    } else if (w.list.length >= this.o.maxWaitersPerEntry) throw logBusy();
    const waiter = w;
    this.waitingBytes += bytes.length;
    let entryOf: { resolve: (p: Published) => void; reject: (e: unknown) => void } | undefined;
    const done = new Promise<Published>((resolve, reject) => {
      entryOf = { resolve, reject };
      waiter.list.push(entryOf);
    });
    done.catch(() => {}); // rejected (stop, halt) maybe before it is awaited below: never an unhandled rejection
    const drop = (): void => {
      waiter.list = waiter.list.filter((x) => x !== entryOf);
      if (waiter.list.length === 0 && this.waiters.get(key) === waiter) this.waiters.delete(key);
    };
    const timer = setTimeout(() => {
      drop();
      entryOf!.reject(sequencingTimeout(Math.round(this.o.addTimeoutMs / 1000)));
    }, this.o.addTimeoutMs);
    try {
      const status = await this.intake.take(hash, bytes);
      if (status.state === 'sequenced') {
        waiter.index = status.index;
        this.resolveWaiters(new Map());
      }
      const pub = await done;
      return { index: waiter.index!, leafHash: hash, proof: await proveInclusion(waiter.index!, pub.size, pub.reader), checkpoint: pub.checkpoint };
    } catch (err) {
      drop();
      throw err;
    } finally {
      clearTimeout(timer);
      this.waitingBytes -= bytes.length;
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => (this.running = undefined));
    }, ms);
  }

  private async tick(): Promise<void> {
    const started = Date.now();
    let more = false;
    try {
      if (this.head.publishedSize < this.head.size) await this.publish(await this.publishCommitted(), true);
      // A batch committed and written whose checkpoint did not go out (setCosigned or the checkpoint write failed).
      else if (this.published.size < this.head.size) await this.publish(await this.waiterIndexes(), true);
      more = await this.sequenceBatch();
    } catch (err) {
      if (err instanceof LifeboatError && err.safety) return this.halt(err);
      this.o.warn(`sequencing failed, retrying next interval: ${(err as Error).message} (${(err as LifeboatError).code ?? 'internal_error'})`);
      // The head may have moved (another sequencer on the store) or the commit may have landed.
      this.head = (await this.o.store.getHead().catch(() => undefined)) ?? this.head;
    }
    this.schedule(more ? 0 : Math.max(0, this.o.intervalMs - (Date.now() - started)));
  }

  /** One batch; returns whether more entries were pending than it took. */
  private async sequenceBatch(): Promise<boolean> {
    const pending = await this.o.store.listPending(this.o.maxBatch);
    if (pending.length === 0) return false;
    const old = this.head;
    const hashes = pending.map((p) => p.hash);
    pending.forEach((p) => {
      if (!equalBytes(leafHash(p.bytes), p.hash)) throw new LifeboatError('store_inconsistent', `pending entry ${p.id} does not hash to its leaf hash`, { status: 500 });
    });
    const oldReader = tileHashReader(old, this.tiles);
    const reader = grownHashReader(old.size, await appendLeaves(old.size, hashes, oldReader), oldReader);
    const size = old.size + pending.length;
    const root = await treeHash(size, reader);
    const checkpoint = signCheckpoint({ origin: this.o.signer.name, size, rootHash: root, extensions: [] }, this.o.signer);
    this.head = await this.o.store.commitBatch({ oldSize: old.size, ids: pending.map((p) => p.id), root, checkpoint, now: Date.now() });
    await writeGrownTree(this.o.blobs, old.size, size, reader, pending.map((p) => p.bytes));
    await this.o.store.markPublished(size, Date.now());
    this.head = { ...this.head, publishedSize: size };
    await this.publish(new Map(hashes.map((h, i) => [toHex(h), old.size + i])), true, reader);
    return pending.length === this.o.maxBatch;
  }

  /** The indexes of the waiting adds' entries the store has sequenced, by leaf hash. */
  private async waiterIndexes(): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    for (const [key, w] of this.waiters) {
      if (w.index !== undefined) continue;
      const index = await this.o.store.indexOf(Uint8Array.from(Buffer.from(key, 'hex')));
      if (index !== undefined) found.set(key, index);
    }
    return found;
  }

  /**
   * Writes the tiles of entries committed but not yet published (a crash or a failed write after
   * commitBatch), from the bytes the store kept, checking they hash to the committed root first.
   * Returns their indexes by leaf hash.
   */
  private async publishCommitted(): Promise<Map<string, number>> {
    const from = this.head.publishedSize;
    const to = this.head.size;
    const recs = [];
    while (from + recs.length < to) {
      const page = await this.o.store.listUnpublished(from + recs.length, Math.min(10_000, to - from - recs.length));
      if (page.length === 0) break;
      recs.push(...page);
    }
    recs.forEach((r, i) => {
      if (r.index !== from + i || !equalBytes(leafHash(r.bytes), r.hash)) throw new LifeboatError('store_inconsistent', `the store lacks the bytes of entry ${from + i}`, { status: 500, hint: 'restore the store from a backup' });
    });
    if (recs.length !== to - from) throw new LifeboatError('store_inconsistent', `the store holds ${recs.length} of the ${to - from} unpublished entries`, { status: 500, hint: 'restore the store from a backup' });
    const oldReader = tileHashReader({ size: from, root: await edgeRoot(from, this.tiles) }, this.tiles);
    const reader = grownHashReader(from, await appendLeaves(from, recs.map((r) => r.hash), oldReader), oldReader);
    checkRoot(await treeHash(to, reader), this.head.root, `the tiles of tree size ${from} and the entries after it`);
    await writeGrownTree(this.o.blobs, from, to, reader, recs.map((r) => r.bytes));
    await this.o.store.markPublished(to, Date.now());
    this.head = { ...this.head, publishedSize: to };
    this.o.warn(`published the tiles of entries ${from} to ${to - 1}, committed before a restart`);
    return new Map(recs.map((r) => [toHex(r.hash), r.index]));
  }

  /** Co-signs (when asked and configured), writes public/checkpoint, answers the waiting adds. */
  private async publish(indexes: Map<string, number>, cosign: boolean, reader?: HashReader): Promise<void> {
    const head = this.head;
    let note = head.cosigned;
    if (cosign && this.o.cosign) {
      const got = await collectCosignatures(head, this.o.cosign, this.o.cosignTimeoutMs, this.tiles, this.verifier, (err) => {
        this.cosignFailures++;
        this.o.warn(`checkpoint of size ${head.size} published without co-signatures: ${err.message}`);
      });
      if (got !== head.checkpoint && (await this.o.store.setCosigned(head.size, got, Date.now()))) note = got;
    }
    await this.o.blobs.put('checkpoint', note);
    // The batch's own reader (its new hashes in memory, older ones from checked tiles) when there is one.
    this.published = { size: head.size, root: head.root, checkpoint: note, reader: memoHashReader(reader ?? tileHashReader(head, this.tiles)) };
    this.resolveWaiters(indexes);
  }

  private resolveWaiters(indexes: Map<string, number>): void {
    const pub = this.published;
    if (!pub) return;
    for (const [key, w] of this.waiters) {
      w.index ??= indexes.get(key);
      if (w.index !== undefined && w.index < pub.size) {
        this.waiters.delete(key);
        for (const p of w.list) p.resolve(pub);
      }
    }
  }
}
