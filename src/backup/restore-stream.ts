/**
 * The streamed restore of a node from its backup service, to the stream's head (docs/backup.md,
 * "Restore"): the compaction's key records go, in batches as its chunks are downloaded and opened,
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
import type { ApiKeyRecord, KeyNodeStore, KeyRecord } from '../keynode/store/types.js';
import type { AgentHead } from './agent.js';
import type { NodeChange, StreamSecrets } from './changes.js';
import { ZERO_HASH } from './format.js';
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
export interface StreamedRestore extends RestoredNode {
  head: AgentHead;
  compactionSeq: number;
  entries: number;
}

const noKeys = () => new LifeboatError('backup_incomplete', 'the stream holds no node keys (its first entry is missing)', { status: 409 });

/** The restore's state between the stream's records and the importer. */
class Feed {
  secrets: StreamSecrets | undefined;
  readonly apiKeys = new Map<string, ApiKeyRecord>();
  importer: KeyImporter | undefined;
  private batch: KeyRecord[] = [];

  constructor(
    private readonly store: KeyNodeStore,
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
 * Restores `stream` at its head into a new node in `dir` (which must not hold one), streamed (see the
 * top of this file). Throws `backup_rolled_back` (head below `expectSeq`), `backup_chain_broken`,
 * `backup_truncated`, `entry_misplaced`, `backup_incomplete`, DecryptionError, FormatError,
 * `share_mismatch`, `duplicate_key_id`, `node_exists`, `store_not_empty`, and the source's and the
 * store's errors; after any of them nothing is restored.
 */
export async function restoreStreamToNode(
  source: RestoreSource,
  backupKey: Uint8Array,
  stream: string,
  dir: string,
  opts: { backup: BackupConfig; store?: string; expectSeq?: number; progress?: RestoreProgressFn; now?: () => number },
): Promise<StreamedRestore> {
  const progress = opts.progress ?? (() => {});
  const info = await source.stream(stream);
  assertNotRolledBack(stream, info.headSeq, opts.expectSeq);
  let read: { head: AgentHead; compactionSeq: number; entries: number } | undefined;
  const built = await buildRestoredNode(dir, { backup: opts.backup, backupKey, store: opts.store }, async (store, writeVault) => {
    const feed = new Feed(store, Math.floor((info.compaction?.size ?? 0) / BYTES_PER_KEY), progress);
    try {
      let from: AgentHead = { seq: 0, hash: ZERO_HASH };
      if (info.compaction) {
        const sink = { secrets: (s: StreamSecrets) => feed.setSecrets(s), key: (k: KeyRecord) => feed.key(k), apiKey: (a: ApiKeyRecord) => void feed.apiKeys.set(a.id, a) };
        const c = await readNamedCompaction(source, backupKey, stream, info.compaction, sink, (d, t) => progress('compaction', d, t), () => feed.flush());
        await feed.flush(true);
        from = { seq: c.seq, hash: c.head };
      }
      const total = info.headSeq - from.seq;
      const { head, read: entries } = await walkEntries(source, backupKey, stream, from, (e) => feed.change(e.change), (n) => progress('entries', n, Math.max(total, n)));
      assertAtHead(info, head);
      const secrets = feed.secrets;
      if (!secrets) throw noKeys();
      writeVault(secrets);
      read = { head, compactionSeq: from.seq, entries };
      const imp = await feed.start();
      const apiKeys = [...feed.apiKeys.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const now = (opts.now ?? Date.now)();
      const r = await imp.finish([], apiKeys, { beforeCommit: (tx) => recordRestoredState(tx, { head, compactionSeq: from.seq, now }) });
      return r;
    } catch (err) {
      await feed.importer?.abort();
      throw err;
    }
  });
  return { ...built, ...read! };
}
