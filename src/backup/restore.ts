/**
 * Rebuilding a key node from its backup stream (docs/backup.md, "Restore"): read the current
 * compaction and every entry after it, check the chain from the compaction's head to the stream's
 * head, decrypt and replay, check every share against its verifying share, and write a new node
 * (vault with the same node keys under a fresh master key, configuration, store) with the nonce epoch
 * advanced and no nonce at all. The store is written through the key node's importer: a key only
 * after its check passed, committed only after every check (./restore-stream.ts streams every restore
 * through it: to the head, to a point, and a dry run; writeRestoredNode writes a stream read whole).
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
import { type KeyNodeStore, type KeyNodeStoreTx, openKeyNodeStore } from '../keynode/store/index.js';
import { KeyImporter } from '../keynode/restore-import.js';
import type { NodeSecrets } from '../keynode/secrets.js';
import { createHash } from 'node:crypto';
import { type AgentHead, queueWholeState, resetBackupState, setRestoredBackupState } from './agent.js';
import { applyChange, decodeStampedChange, emptyState, type NodeChange, type NodeState, stateToSnapshot, type StreamSecrets } from './changes.js';
import { CompactionReader, type CompactionSink, type OpenedCompaction } from './compaction.js';
import { hashBlob, openEntry, ZERO_HASH } from './format.js';

/** A complete compaction as the service lists it. */
export interface CompactionRef {
  seq: number;
  /** SHA-256 of the whole compaction. */
  hash: Uint8Array;
  size: number;
  /** When the service completed it (its own clock; not authenticated), when known. */
  completedAt?: string | null;
}

/** Where a restore reads a stream from (the backup service's client, or a test double). */
export interface RestoreSource {
  /** The stream's head and current compaction as the service states them. Throws NotFoundError `stream_not_found`. */
  stream(stream: string): Promise<{ headSeq: number; headHash: Uint8Array; firstSeq?: number; compaction: CompactionRef | null }>;
  /** Every complete compaction the service keeps (the current and the previous one), by seq. */
  compactions(stream: string): Promise<CompactionRef[]>;
  /**
   * The bytes of a compaction the service named (the current one `stream()` named, or one
   * `compactions()` listed), chunk by chunk as they come. The reader checks their size and SHA-256
   * against `ref` itself (readNamedCompaction).
   */
  compactionChunks(stream: string, ref: CompactionRef, onBytes?: (done: number, total: number) => void): AsyncIterable<Uint8Array>;
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

/** An entry opened and checked to follow the one before it. */
export interface OpenedEntry {
  seq: number;
  change: NodeChange;
  /** When the change was committed on the node (ms), or null for an entry sealed before that was recorded. */
  committedAt: number | null;
  hash: Uint8Array;
}

const PAGE = 2000;

/** LifeboatError `backup_chain_broken` (a safety refusal): nothing was restored. */
export function chainError(msg: string): LifeboatError {
  return new LifeboatError('backup_chain_broken', msg, {
    status: 409,
    hint: 'the backup service returned entries that do not chain: an entry is missing, altered, reordered or replayed. Nothing was restored',
  });
}

/**
/** A compaction read whole into a state (loadNamedCompaction; a restore and `backup check` stream instead). */
export interface LoadedCompaction extends OpenedCompaction {
  state: NodeState;
}

/**
 * Reads a compaction the service named, chunk by chunk through CompactionReader (either version),
 * handing its records to `sink`: its size and SHA-256 must be the named ones (counted as the chunks
 * come, checked at the end), it must belong to `stream` and cover the named seq. What the sink got is
 * final only once this returns. `afterChunk` runs after each chunk's records went to the sink, and
 * the next chunk is read once it resolves. Throws `backup_chain_broken`, `entry_misplaced`,
 * DecryptionError, FormatError, what `afterChunk` throws, and the source's errors.
 */
export async function readNamedCompaction(
  source: Pick<RestoreSource, 'compactionChunks'>,
  backupKey: Uint8Array,
  stream: string,
  ref: CompactionRef,
  sink: CompactionSink,
  onBytes?: (done: number, total: number) => void,
  afterChunk?: () => Promise<void>,
): Promise<OpenedCompaction> {
  const notNamed = () => chainError(`the compaction at entry ${ref.seq} downloaded is not the one the service named (size or hash differ)`);
  const reader = new CompactionReader(backupKey, { stream }, sink);
  const hash = createHash('sha256');
  let size = 0;
  // Bytes that are not the named ones are refused as such first (as a whole read would): a reader's
  // error is kept until the size and hash are known.
  let failed: { err: unknown } | undefined;
  for await (const chunk of source.compactionChunks(stream, ref, onBytes)) {
    size += chunk.length;
    if (size > ref.size) throw notNamed();
    hash.update(chunk);
    if (failed) continue;
    try {
      reader.push(chunk);
    } catch (err) {
      failed = { err };
      continue;
    }
    // A streamed restore hands the chunk's records on here (back-pressure: the next chunk waits).
    await afterChunk?.();
  }
  if (size !== ref.size || !ctEqual(new Uint8Array(hash.digest()), ref.hash)) throw notNamed();
  if (failed) throw failed.err;
  const c = reader.finish();
  if (c.seq !== ref.seq) throw chainError(`the compaction covers entry ${c.seq}, but the service named ${ref.seq}`);
  return c;
}

/** The sink that gathers a compaction's records into `state`. */
export function stateSink(state: NodeState): CompactionSink {
  return {
    secrets: (s) => void (state.secrets = s),
    key: (k) => void state.keys.set(k.keyId, k),
    apiKey: (a) => void state.apiKeys.set(a.id, a),
  };
}

/** readNamedCompaction into a fresh state. */
export async function loadNamedCompaction(source: RestoreSource, backupKey: Uint8Array, stream: string, ref: CompactionRef, onBytes?: (done: number, total: number) => void): Promise<LoadedCompaction> {
  const state = emptyState();
  const c = await readNamedCompaction(source, backupKey, stream, ref, stateSink(state), onBytes);
  return { ...c, state };
}

/**
 * Reads the entries after `from`, in order, each opened (under its own key) and checked to follow the
 * one before it; `visit` sees each (and is awaited) and returns false to stop there (that entry then
 * does not count).
 * Returns the last entry visited and how many were. Throws `backup_chain_broken`, `entry_misplaced`,
 * DecryptionError, FormatError, and the source's errors.
 */
export async function walkEntries(
  source: RestoreSource,
  backupKey: Uint8Array,
  stream: string,
  from: AgentHead,
  visit: (e: OpenedEntry) => boolean | void | Promise<boolean | void>,
  onPage?: (read: number) => void,
): Promise<{ head: AgentHead; read: number }> {
  let { seq, hash } = from;
  let read = 0;
  for (;;) {
    const page = await source.entries(stream, seq, PAGE);
    if (page.length === 0) break;
    for (const bytes of page) {
      const e = openEntry(backupKey, bytes, { stream, seq: seq + 1 });
      if (!ctEqual(e.prev, hash)) throw chainError(`entry ${seq + 1} does not follow entry ${seq}`);
      const { change, committedAt } = decodeStampedChange(e.plaintext);
      const next = hashBlob(bytes);
      if ((await visit({ seq: seq + 1, change, committedAt, hash: next })) === false) return { head: { seq, hash }, read };
      seq += 1;
      hash = next;
      read += 1;
    }
    onPage?.(read);
  }
  return { head: { seq, hash }, read };
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
  assertNotRolledBack(stream, info.headSeq, opts.expectSeq);
  const state = emptyState();
  let from: AgentHead = { seq: 0, hash: ZERO_HASH };
  if (info.compaction) {
    const c = await readNamedCompaction(source, backupKey, stream, info.compaction, stateSink(state), (d, t) => progress('compaction', d, t));
    from = { seq: c.seq, hash: c.head };
  }
  const total = info.headSeq - from.seq;
  const { head, read } = await walkEntries(source, backupKey, stream, from, (e) => applyChange(state, e.change), (n) => progress('entries', n, Math.max(total, n)));
  assertAtHead(info, head);
  if (!state.secrets) throw new LifeboatError('backup_incomplete', 'the stream holds no node keys (its first entry is missing)', { status: 409 });
  return { state, head, compactionSeq: from.seq, entries: read };
}

/** Throws `backup_rolled_back` when the service's head is below what the operator expects. */
export function assertNotRolledBack(stream: string, headSeq: number, expectSeq: number | undefined): void {
  if (expectSeq !== undefined && headSeq < expectSeq) {
    throw new LifeboatError('backup_rolled_back', `the service holds stream ${stream} up to entry ${headSeq}, below the expected ${expectSeq}`, {
      status: 409,
      hint: 'the backup service lost acknowledged entries (rolled back); restore from another channel (a node backup file, a database dump)',
    });
  }
}

/** Throws `backup_truncated` or `backup_chain_broken` unless the entries read end at the head the service states. */
export function assertAtHead(info: { headSeq: number; headHash: Uint8Array }, head: AgentHead): void {
  if (head.seq < info.headSeq) {
    throw new LifeboatError('backup_truncated', `the stream ends at entry ${head.seq}, but the service states its head is ${info.headSeq}`, {
      status: 409,
      hint: 'entries are missing on the backup service; nothing was restored',
    });
  }
  if (head.seq > info.headSeq || !ctEqual(head.hash, info.headHash)) throw chainError(`the entries end at ${head.seq}, which is not the head the service states (${info.headSeq})`);
}

export { assertRestorableDir } from '../keynode/config.js';

/** What a restore wrote. */
export interface RestoredNode {
  keys: number;
  apiKeys: number;
  epoch: number;
  fingerprint: string;
  store: string;
}

/**
 * Keys per batch given to the importer: one check thread's part (src/keynode/restore-workers.ts), large
 * enough that a batch's fixed check cost is small per key, small enough that the batches in flight
 * hold little memory.
 */
export const RESTORE_BATCH = 4_096;

/**
 * Builds a node in `dir`, which must not hold one. `fill` writes the store (the build directory's
 * default SQLite file, or `opts.store`) through the importer, and calls `writeVault` with the stream's
 * node keys before it commits: the vault (the same node keys under a fresh master key, with the
 * backup key) and the master key file go into the build directory, which is renamed into place last
 * with node.json. Throws ConflictError `node_exists` and what `fill` throws; after any error the
 * build directory is gone (an external store is left as the importer's rollback left it: empty).
 */
export async function buildRestoredNode(
  dir: string,
  opts: { backup: BackupConfig; backupKey: Uint8Array; store?: string },
  fill: (store: KeyNodeStore, writeVault: (s: StreamSecrets) => void) => Promise<{ keys: number; apiKeys: number; epoch: number }>,
): Promise<RestoredNode> {
  assertRestorableDir(dir, opts.store);
  const target = resolve(dir);
  // Built beside the target and renamed into place last: a restore killed at any point leaves no node
  // (at most a `.NAME.restoring-…` directory to delete), so a retry starts over.
  mkdirSync(dirname(target), { recursive: true });
  const build = join(dirname(target), `.${basename(target)}.restoring-${toHex(randomBytes(6))}`);
  const paths = nodePaths(build);
  // The configuration names the final paths; the store is written at the build path meanwhile.
  const config = { ...defaultNodeConfig(nodePaths(target)), ...(opts.store ? { store: opts.store } : {}), backup: opts.backup };
  let secrets: NodeSecrets | undefined;
  const writeVault = (s: StreamSecrets) => {
    const master = { schemeId: randomBytes(16), key: randomBytes(32) };
    writeFileAtomic(paths.vault, createNodeVaultWith(master, { identity: s.identity, storageKey: s.storageKey, exportKey: s.exportKey, wrappingKey: s.wrappingKey, backupKey: opts.backupKey }));
    storeMasterKey({ dir: build, identity: '', vault: paths.vault, manifest: '', masterKey: paths.masterKey }, master);
    secrets = loadNodeSecrets(paths.vault, master);
  };
  try {
    ensurePrivateDir(build);
    const store = await openKeyNodeStore(opts.store ?? paths.defaultStore);
    let r: { keys: number; apiKeys: number; epoch: number };
    try {
      r = await fill(store, writeVault);
    } finally {
      await store.close();
    }
    if (!secrets) throw new LifeboatError('internal_error', 'the restore wrote no vault', { status: 500 });
    saveNodeConfig(paths, config);
    if (existsSync(target)) rmdirSync(target); // empty: assertRestorableDir said so
    renameSync(build, target);
    fsyncDir(dirname(target));
    return { ...r, fingerprint: identityFingerprint(secrets.identity), store: config.store };
  } catch (err) {
    rmSync(build, { recursive: true, force: true });
    throw err;
  }
}

/**
 * What a restored node records beside its keys, in the import's transaction (KeyImporter.finish's
 * beforeCommit): the backup journal on; the agent's state at the stream's head, or, with `fork` (a
 * point-in-time restore before the head), a new stream started over from the whole state; and each
 * key as held by the `backup` channel at the entry read up to (docs/keynode.md, "Durable channels"),
 * as the agent records a key it backed up. Throws the store's errors.
 */
export async function recordRestoredState(tx: KeyNodeStoreTx, r: { head: AgentHead; compactionSeq: number; now: number; fork?: { from: string } }): Promise<void> {
  await tx.setMeta('backup_journal', 'on');
  if (r.fork) {
    await resetBackupState(tx, r.now);
    await queueWholeState(tx, r.now);
  } else await setRestoredBackupState(tx, r.head, r.compactionSeq, r.now);
  const detail = JSON.stringify({ seq: r.head.seq, ...(r.fork ? { stream: r.fork.from } : {}) });
  await tx.recordChannelForAllKeys('backup', detail, r.now);
}

/**
 * Writes a node rebuilt from a stream read whole (readBackupStream, readStreamAt; `node restore`
 * streams instead: ./restore-stream.ts) into `dir`,
 * which must not hold a node, through the importer: every share checked before it is written,
 * restored keys all `active`, with recordRestoredState in the same transaction. Throws ConflictError
 * `node_exists`, `store_not_empty`, `share_mismatch`, and the store's errors.
 */
export async function writeRestoredNode(
  dir: string,
  read: ReadStream,
  opts: { backup: BackupConfig; backupKey: Uint8Array; store?: string; progress?: RestoreProgressFn; now?: () => number; fork?: { from: string } },
): Promise<RestoredNode> {
  const s = read.state.secrets!;
  const snap = stateToSnapshot(read.state);
  const progress = opts.progress ?? (() => {});
  return buildRestoredNode(dir, opts, async (store, writeVault) => {
    writeVault(s);
    const imp = await KeyImporter.begin(store, s.storageKey, { expectedKeys: snap.keys.length, progress: (d, t) => progress('verify', d, t) });
    try {
      for (let i = 0; i < snap.keys.length; i += RESTORE_BATCH) await imp.add(snap.keys.slice(i, i + RESTORE_BATCH).map((k) => ({ ...k, status: 'active' as const })));
      const now = (opts.now ?? Date.now)();
      return await imp.finish([], snap.apiKeys, { beforeCommit: (tx) => recordRestoredState(tx, { head: read.head, compactionSeq: read.compactionSeq, now, fork: opts.fork }) });
    } catch (err) {
      await imp.abort();
      throw err;
    }
  });
}

/** The default stream name of a node: `node-` and 16 hex digits of its identity fingerprint. */
export function defaultStreamName(fingerprint: string): string {
  return `node-${fingerprint.replace(/[^0-9a-f]/g, '').slice(0, 16)}`;
}
