/**
 * Rebuilding a key node from its backup stream (docs/backup.md, "Restore"): read the current
 * compaction and every entry after it, check the chain from the compaction's head to the stream's
 * head, decrypt and replay, check every share against its verifying share, and only then write a new
 * node (vault with the same node keys under a fresh master key, configuration, store) with the nonce
 * epoch advanced and no nonce at all.
 */
import { existsSync, mkdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { LifeboatError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { ctEqual, toHex } from '../util/bytes.js';
import { ensurePrivateDir, fsyncDir, writeFileAtomic } from '../util/files.js';
import { identityFingerprint } from '../identity.js';
import { assertRestorableDir, type BackupConfig, defaultNodeConfig, nodePaths, saveNodeConfig } from '../keynode/config.js';
import { storeMasterKey } from '../primary/datadir.js';
import { createNodeVaultWith, loadNodeSecrets } from '../keynode/secrets.js';
import { openKeyNodeStore } from '../keynode/store/index.js';
import { restoreNodeBackup } from '../keynode/backup.js';
import { type AgentHead, setRestoredBackupState } from './agent.js';
import { applyChange, decodeChange, emptyState, type NodeState, stateToSnapshot } from './changes.js';
import { CompactionReader, type OpenedCompaction } from './compaction.js';
import { hashBlob, openEntry, ZERO_HASH } from './format.js';

/** Where a restore reads a stream from (the backup service's client, or a test double). */
export interface RestoreSource {
  /** The stream's head and current compaction as the service states them. Throws NotFoundError `stream_not_found`. */
  stream(stream: string): Promise<{ headSeq: number; headHash: Uint8Array; compaction: { seq: number; hash: Uint8Array; size: number } | null }>;
  /** The current compaction's bytes (the one `stream()` named). */
  compaction(stream: string, onBytes?: (done: number, total: number) => void): Promise<Uint8Array>;
  /**
   * The same compaction chunk by chunk, its size and hash checked against what `stream()` named once the
   * last is read (a throw then). When present, a restore reads this instead of `compaction`.
   */
  compactionChunks?(stream: string, onBytes?: (done: number, total: number) => void): AsyncIterable<Uint8Array>;
  /** Up to `limit` entries after `afterSeq`, in seq order. */
  entries(stream: string, afterSeq: number, limit: number): Promise<Uint8Array[]>;
}

export type RestorePhase = 'compaction' | 'entries' | 'verify' | 'write';
export type RestoreProgressFn = (phase: RestorePhase, done: number, total: number) => void;

export interface ReadStream {
  state: NodeState;
  head: AgentHead;
  compactionSeq: number;
  entries: number;
}

const PAGE = 2000;

function chainError(msg: string): LifeboatError {
  return new LifeboatError('backup_chain_broken', msg, {
    status: 409,
    hint: 'the backup service returned entries that do not chain: an entry is missing, altered, reordered or replayed. Nothing was restored',
  });
}

/**
 * Reads the compaction `source` names into `state`, streamed (either version: CompactionReader), chunk
 * by chunk when the source can. Throws `backup_chain_broken` when its bytes are not the ones named, and
 * what CompactionReader throws.
 */
async function readCompaction(source: RestoreSource, backupKey: Uint8Array, stream: string, named: { size: number; hash: Uint8Array }, state: NodeState, progress: RestoreProgressFn): Promise<OpenedCompaction> {
  const reader = new CompactionReader(backupKey, { stream }, {
    secrets: (s) => void (state.secrets = s),
    key: (k) => void state.keys.set(k.keyId, k),
    apiKey: (a) => void state.apiKeys.set(a.id, a),
  });
  if (source.compactionChunks) {
    for await (const chunk of source.compactionChunks(stream, (d, t) => progress('compaction', d, t))) reader.push(chunk);
  } else {
    const bytes = await source.compaction(stream, (d, t) => progress('compaction', d, t));
    if (bytes.length !== named.size || !ctEqual(hashBlob(bytes), named.hash)) throw chainError('the compaction downloaded is not the one the service named (size or hash differ)');
    reader.push(bytes);
  }
  return reader.finish();
}

/**
 * Reads and checks a whole stream. Throws LifeboatError `backup_chain_broken` (a gap, reorder, splice,
 * or a compaction whose head is not the entry chain's), `backup_truncated` (fewer entries than the head
 * the service states), `backup_rolled_back` (head below `expectSeq`), `entry_misplaced` (an entry of
 * another stream or seq), DecryptionError (altered bytes or a wrong backup key), FormatError.
 */
export async function readBackupStream(source: RestoreSource, backupKey: Uint8Array, stream: string, opts: { expectSeq?: number; progress?: RestoreProgressFn } = {}): Promise<ReadStream> {
  const progress = opts.progress ?? (() => {});
  const info = await source.stream(stream);
  if (opts.expectSeq !== undefined && info.headSeq < opts.expectSeq) {
    throw new LifeboatError('backup_rolled_back', `the service holds stream ${stream} up to entry ${info.headSeq}, below the expected ${opts.expectSeq}`, {
      status: 409,
      hint: 'the backup service lost acknowledged entries (rolled back); restore from another channel (a node backup file, a database dump)',
    });
  }
  const state = emptyState();
  let seq = 0;
  let hash: Uint8Array = ZERO_HASH;
  let compactionSeq = 0;
  if (info.compaction) {
    const c = await readCompaction(source, backupKey, stream, info.compaction, state, progress);
    if (c.seq !== info.compaction.seq) throw chainError(`the compaction covers entry ${c.seq}, but the service named ${info.compaction.seq}`);
    seq = c.seq;
    hash = c.head;
    compactionSeq = c.seq;
  }
  const total = info.headSeq - seq;
  let read = 0;
  for (;;) {
    const page = await source.entries(stream, seq, PAGE);
    if (page.length === 0) break;
    for (const bytes of page) {
      const e = openEntry(backupKey, bytes, { stream, seq: seq + 1 });
      if (!ctEqual(e.prev, hash)) throw chainError(`entry ${seq + 1} does not follow entry ${seq}`);
      applyChange(state, decodeChange(e.plaintext));
      seq += 1;
      hash = hashBlob(bytes);
      read += 1;
    }
    progress('entries', read, Math.max(total, read));
  }
  if (seq < info.headSeq) {
    throw new LifeboatError('backup_truncated', `the stream ends at entry ${seq}, but the service states its head is ${info.headSeq}`, {
      status: 409,
      hint: 'entries are missing on the backup service; nothing was restored',
    });
  }
  if (seq > info.headSeq || !ctEqual(hash, info.headHash)) throw chainError(`the entries end at ${seq}, which is not the head the service states (${info.headSeq})`);
  if (!state.secrets) throw new LifeboatError('backup_incomplete', 'the stream holds no node keys (its first entry is missing)', { status: 409 });
  return { state, head: { seq, hash }, compactionSeq, entries: read };
}

export { assertRestorableDir } from '../keynode/config.js';

/**
 * Writes a node rebuilt from a stream into `dir`, which must not hold a node. Every share is checked
 * against its verifying share before the store is written (restoreNodeBackup); restored keys are all
 * `active` (each is durable in the stream it came from). Throws ConflictError `node_exists`, and what
 * restoreNodeBackup throws (`store_not_empty`, `share_mismatch`).
 */
export async function writeRestoredNode(
  dir: string,
  read: ReadStream,
  opts: { backup: BackupConfig; backupKey: Uint8Array; store?: string; progress?: RestoreProgressFn; now?: () => number },
): Promise<{ keys: number; apiKeys: number; epoch: number; fingerprint: string; store: string }> {
  assertRestorableDir(dir, opts.store);
  const target = resolve(dir);
  // Built beside the target and renamed into place last: a restore killed at any point leaves no node
  // (at most a `.NAME.restoring-…` directory to delete), so a retry starts over.
  mkdirSync(dirname(target), { recursive: true });
  const build = join(dirname(target), `.${basename(target)}.restoring-${toHex(randomBytes(6))}`);
  const paths = nodePaths(build);
  // The configuration names the final paths; the store is written at the build path meanwhile.
  const config = { ...defaultNodeConfig(nodePaths(target)), ...(opts.store ? { store: opts.store } : {}), backup: opts.backup };
  const s = read.state.secrets!;
  try {
    ensurePrivateDir(build);
    const master = { schemeId: randomBytes(16), key: randomBytes(32) };
    writeFileAtomic(paths.vault, createNodeVaultWith(master, { identity: s.identity, storageKey: s.storageKey, exportKey: s.exportKey, wrappingKey: s.wrappingKey, backupKey: opts.backupKey }));
    storeMasterKey({ dir: build, identity: '', vault: paths.vault, manifest: '', masterKey: paths.masterKey }, master);
    const secrets = loadNodeSecrets(paths.vault, master);
    const snap = stateToSnapshot(read.state);
    snap.keys = snap.keys.map((k) => ({ ...k, status: 'active' as const }));
    const store = await openKeyNodeStore(opts.store ?? paths.defaultStore);
    let r: { keys: number; epoch: number };
    try {
      const progress = opts.progress ?? (() => {});
      r = await restoreNodeBackup(store, secrets, snap, (d, t) => progress('verify', d, t));
      await store.transaction(async (tx) => {
        await tx.setMeta('backup_journal', 'on');
        await setRestoredBackupState(tx, read.head, read.compactionSeq, (opts.now ?? Date.now)());
      });
    } finally {
      await store.close();
    }
    saveNodeConfig(paths, config);
    if (existsSync(target)) rmdirSync(target); // empty: assertRestorableDir said so
    renameSync(build, target);
    fsyncDir(dirname(target));
    return { keys: r.keys, apiKeys: snap.apiKeys.length, epoch: r.epoch, fingerprint: identityFingerprint(secrets.identity), store: config.store };
  } catch (err) {
    rmSync(build, { recursive: true, force: true });
    throw err;
  }
}

/** The default stream name of a node: `node-` and 16 hex digits of its identity fingerprint. */
export function defaultStreamName(fingerprint: string): string {
  return `node-${fingerprint.replace(/[^0-9a-f]/g, '').slice(0, 16)}`;
}
