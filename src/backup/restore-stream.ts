/**
 * The streamed restore of a node from its backup service (docs/backup.md, "Restore"), to the stream's
 * head or to a point (./point.ts, readToPoint: entries after the point are never read into the node),
 * and its dry run (checkStreamRestore: the same reading and checks, nothing written): the compaction's
 * key records go, in batches as its chunks are downloaded and opened,
 * into the key node's importer (src/keynode/restore-import.ts), which checks each batch's shares on
 * worker threads while the batch before is written; the entries after the compaction are then
 * applied on top. Download, decryption, checks and import overlap, and memory holds a few batches,
 * never the node (API keys, a few, are gathered whole).
 *
 * Every check of readBackupStream holds. Those that can only be made at the end — the compaction's
 * size and SHA-256 and its last chunk (readNamedCompaction), the entries reaching the head the
 * service states (assertAtHead), the node keys present — are made before the importer commits; a
 * failure rolls the import back (buildRestoredNode then deletes the build directory): nothing usable
 * is left, and the node never exists with a key that was not checked (src/keynode/restore-import.ts).
 */
import { LifeboatError } from '../errors.js';
import { ctEqual } from '../util/bytes.js';
import type { BackupConfig } from '../keynode/config.js';
import { KeyImporter } from '../keynode/restore-import.js';
import { identityFromSeeds } from '../keynode/secrets.js';
import { dryRunStore } from '../keynode/store/dry-import.js';
import type { ApiKeyRecord, KeyNodeStore, KeyRecord } from '../keynode/store/types.js';
import { identityFingerprint } from '../identity.js';
import type { AgentHead } from './agent.js';
import type { NodeChange, StreamSecrets } from './changes.js';
import type { CompactionSink } from './compaction.js';
import { ZERO_HASH } from './format.js';
import { chooseCompaction, type PointPlan, type PointRead, type PointTarget, readToPoint } from './point.js';
import {
  assertAtHead,
  assertNotRolledBack,
  buildRestoredNode,
  readNamedCompaction,
  recordRestoredState,
  RESTORE_BATCH,
  type RestoredNode,
  type RestoreProgressFn,
  type RestoreSource,
  walkEntries,
} from './restore.js';

/** Compaction bytes per key, about (a binary key record): only to size the importer's threads early. */
const BYTES_PER_KEY = 1024;

/** What a streamed restore read and wrote. */
export interface StreamedRestore extends RestoredNode, PointRead {}

/** What a dry run read and checked: what a restore would write. */
export interface CheckedRestore extends PointRead {
  fingerprint: string;
  keys: number;
  apiKeys: number;
}

/** The part of the stream a restore reads: to the head the service states, or to a point planned before (point.ts planPoint). */
type Range = { info: Awaited<ReturnType<RestoreSource['stream']>>; point?: undefined } | { point: PointPlan; info?: undefined };

const noKeys = () => new LifeboatError('backup_incomplete', 'the stream holds no node keys (its first entry is missing)', { status: 409 });

/** The restore's state between the stream's records and the importer. */
export class Feed implements PointTarget {
  secrets: StreamSecrets | undefined;
  readonly apiKeys = new Map<string, ApiKeyRecord>();
  importer: KeyImporter | undefined;
  private batch: KeyRecord[] = [];

  constructor(
    private readonly store: Pick<KeyNodeStore, 'beginImport'>,
    private readonly expectedKeys: number,
    private readonly progress: RestoreProgressFn,
  ) {}

  setSecrets(s: StreamSecrets): void {
    // Keys already given were checked under the storage key they came with: it must not change.
    if (this.importer && this.secrets && !ctEqual(s.storageKey, this.secrets.storageKey)) {
      throw new LifeboatError('share_mismatch', 'the stream changes the node’s storage key after its first keys', { status: 409, hint: 'nothing was restored; this backup was altered or mixed with another node’s' });
    }
    this.secrets = s;
  }

  /** A key of the compaction (synchronous: the reader's sink); every restored key is active. */
  key(k: KeyRecord): void {
    if (!this.secrets) throw noKeys();
    this.batch.push({ ...k, status: 'active' });
  }

  async start(): Promise<KeyImporter> {
    if (!this.secrets) throw noKeys();
    this.importer ??= await KeyImporter.begin(this.store, this.secrets.storageKey, { expectedKeys: this.expectedKeys, progress: (d, t) => this.progress('verify', d, t) });
    return this.importer;
  }

  /** Hands the gathered keys to the importer once a batch is full (`all`: whatever there is). */
  async flush(all = false): Promise<void> {
    if (this.batch.length === 0 || (!all && this.batch.length < RESTORE_BATCH)) return;
    const imp = await this.start();
    const batch = this.batch;
    this.batch = [];
    await imp.add(batch);
  }

  sink(): CompactionSink {
    return { secrets: (s) => this.setSecrets(s), key: (k) => this.key(k), apiKey: (a) => void this.apiKeys.set(a.id, a) };
  }

  afterChunk(): Promise<void> {
    return this.flush();
  }

  afterCompaction(): Promise<void> {
    return this.flush(true);
  }

  /** Drops what was read (a point's base found inexact at its end): the import is rolled back, the store empty again. */
  async reset(): Promise<void> {
    await this.importer?.abort();
    this.importer = undefined;
    this.secrets = undefined;
    this.batch = [];
    this.apiKeys.clear();
  }

  /** The API keys gathered, by id. */
  sortedApiKeys(): ApiKeyRecord[] {
    return [...this.apiKeys.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** A change after the compaction, in stream order. */
  async change(c: NodeChange): Promise<void> {
    switch (c.op) {
      case 'secrets':
        return this.setSecrets(c.secrets);
      case 'key_put':
        return (await this.start()).apply({ op: 'key_put', key: { ...c.key, status: 'active' } });
      case 'key_delete':
        // Before any key there is nothing to delete.
        return this.importer?.apply(c);
      case 'key_status':
        // A restored key is active whatever its status was (the agent activates it once backed up).
        return;
      case 'api_key_put':
        return void this.apiKeys.set(c.apiKey.id, c.apiKey);
      case 'api_key_revoke': {
        const a = this.apiKeys.get(c.id);
        if (a && a.revokedAt === null) this.apiKeys.set(c.id, { ...a, revokedAt: c.at });
      }
    }
  }
}

/**
 * A feed whose import writes nothing (store/dry-import.ts): every key checked as a restore checks it
 * (a dry run, `backup check`). `expectedBytes`: the compaction's size, to size the check threads early.
 */
export function checkingFeed(expectedBytes: number, progress: RestoreProgressFn): Feed {
  return new Feed(dryRunStore(), Math.floor(expectedBytes / BYTES_PER_KEY), progress);
}

/**
 * Reads `range` of the stream into `feed`: to the head, the current compaction and every entry after
 * it, which must end at the head the service states; to a point, readToPoint.
 */
async function feedRange(source: RestoreSource, backupKey: Uint8Array, stream: string, range: Range, feed: Feed, progress: RestoreProgressFn): Promise<PointRead> {
  if (range.point) return readToPoint(source, backupKey, stream, range.point, feed, progress);
  const info = range.info;
  let from: AgentHead = { seq: 0, hash: ZERO_HASH };
  if (info.compaction) {
    const c = await readNamedCompaction(source, backupKey, stream, info.compaction, feed.sink(), (d, t) => progress('compaction', d, t), () => feed.afterChunk());
    await feed.afterCompaction();
    from = { seq: c.seq, hash: c.head };
  }
  const total = info.headSeq - from.seq;
  const { head, read } = await walkEntries(source, backupKey, stream, from, (e) => feed.change(e.change), (n) => progress('entries', n, Math.max(total, n)));
  assertAtHead(info, head);
  return { head, compactionSeq: from.seq, entries: read, committedAt: null };
}

/**
 * Streams `range` into an import into `store` and hands the importer, every key given and checked or
 * in check, to `done` (which finishes it). Any error aborts the import (rolled back) and is thrown.
 */
async function importRange<R>(
  store: Pick<KeyNodeStore, 'beginImport'>,
  source: RestoreSource,
  backupKey: Uint8Array,
  stream: string,
  range: Range,
  progress: RestoreProgressFn,
  done: (imp: KeyImporter, secrets: StreamSecrets, read: PointRead, apiKeys: ApiKeyRecord[]) => Promise<R>,
): Promise<R> {
  const base = range.point ? chooseCompaction(range.point.compactions, range.point.at.seq) : range.info.compaction;
  const feed = new Feed(store, Math.floor((base?.size ?? 0) / BYTES_PER_KEY), progress);
  try {
    const read = await feedRange(source, backupKey, stream, range, feed, progress);
    const secrets = feed.secrets;
    if (!secrets) throw noKeys();
    return await done(await feed.start(), secrets, read, feed.sortedApiKeys());
  } catch (err) {
    await feed.importer?.abort();
    throw err;
  }
}

/** The head range: the stream as the service states it, refused below `expectSeq`. */
async function headRange(source: RestoreSource, stream: string, expectSeq: number | undefined): Promise<Range> {
  const info = await source.stream(stream);
  assertNotRolledBack(stream, info.headSeq, expectSeq);
  return { info };
}

/**
 * Restores `stream` at its head, or at `point` (planned by point.ts planPoint; with `fork`, a point
 * before the head: the node starts a new stream, recordRestoredState), into a new node in `dir`
 * (which must not hold one), streamed (see the top of this file). Throws `backup_rolled_back` (head
 * below `expectSeq`), `backup_chain_broken`, `backup_truncated`, `entry_misplaced`,
 * `backup_incomplete`, `backup_point_unavailable`, DecryptionError, FormatError, `share_mismatch`,
 * `duplicate_key_id`, `node_exists`, `store_not_empty`, and the source's and the store's errors;
 * after any of them nothing is restored.
 */
export async function restoreStreamToNode(
  source: RestoreSource,
  backupKey: Uint8Array,
  stream: string,
  dir: string,
  opts: { backup: BackupConfig; store?: string; expectSeq?: number; point?: PointPlan; fork?: { from: string }; progress?: RestoreProgressFn; now?: () => number },
): Promise<StreamedRestore> {
  const progress = opts.progress ?? (() => {});
  const range: Range = opts.point ? { point: opts.point } : await headRange(source, stream, opts.expectSeq);
  let read: PointRead | undefined;
  const built = await buildRestoredNode(dir, { backup: opts.backup, backupKey, store: opts.store }, (store, writeVault) =>
    importRange(store, source, backupKey, stream, range, progress, (imp, secrets, r, apiKeys) => {
      writeVault(secrets);
      read = r;
      const now = (opts.now ?? Date.now)();
      return imp.finish([], apiKeys, { beforeCommit: (tx) => recordRestoredState(tx, { head: r.head, compactionSeq: r.compactionSeq, now, fork: opts.fork }) });
    }),
  );
  return { ...built, ...read! };
}

/**
 * A dry run of restoreStreamToNode: the same reading, the same checks of every key (in the same
 * batches, on the same worker threads) and of each key row as the store would check it, but no store
 * is opened and no file is written (store/dry-import.ts). Returns what a restore would write. Throws
 * what restoreStreamToNode throws, except `node_exists` and `store_not_empty`.
 */
export async function checkStreamRestore(
  source: RestoreSource,
  backupKey: Uint8Array,
  stream: string,
  opts: { expectSeq?: number; point?: PointPlan; progress?: RestoreProgressFn } = {},
): Promise<CheckedRestore> {
  const progress = opts.progress ?? (() => {});
  const range: Range = opts.point ? { point: opts.point } : await headRange(source, stream, opts.expectSeq);
  return importRange(dryRunStore(), source, backupKey, stream, range, progress, async (imp, secrets, read, apiKeys) => {
    const r = await imp.finish([], apiKeys);
    return { ...read, fingerprint: identityFingerprint(identityFromSeeds(secrets.identity)), keys: r.keys, apiKeys: r.apiKeys };
  });
}
