/**
 * Recovering a key node from the public log and the operator's words alone (docs/keyshare.md,
 * "Recover"): verify the checkpoint (log key and witness quorum), check every tile against its root and
 * every entry bundle against its tile (so every entry read is in the tree the checkpoint signs), keep
 * the `keyshare-backup/v1` records of the node, take the latest per key, open and check each, and only
 * then write a node directory, built beside the target and renamed into place, with the node's own
 * identity, fresh storage keys, every key active, no nonce and a new nonce epoch.
 */
import { LifeboatError, NotFoundError } from '../errors.js';
import { encodePublicIdentity, identityFingerprint, type PublicIdentity } from '../identity.js';
import { ctEqual, toB64, utf8, wipe } from '../util/bytes.js';
import { type CheckpointRule, fetchCheckpoint } from '../log/audit/audit.js';
import type { LogSource } from '../log/audit/source.js';
import type { Checkpoint } from '../log/checkpoint.js';
import { verifyEntry } from '../log/entry.js';
import { verifyTree } from '../log/tile-reader.js';
import { ENTRIES_LEVEL, parseEntryBundle, TILE_WIDTH, verifyEntryBundle } from '../log/tiles.js';
import { assertRestorableDir, type LogTarget } from '../keynode/config.js';
import type { KeyshareSetup } from '../keynode/keyshare-setup.js';
import { KeyshareError } from './errors.js';
import { deriveAgeRecipient, mnemonicCheck } from './age.js';
import type { Mnemonic } from './mnemonic.js';
import { KEYSHARE_RECORD_TYPE, verifyRecord } from './record.js';
import { openBackup } from './seal.js';
import { type FoundRecord, latestPerKey } from './select.js';
import { type OpenedRecord, type RecoveredNodeWriter, writeRecoveredNode } from './recover-write.js';

export interface ScanResult {
  checkpoint: Checkpoint;
  entries: number;
  /** The node's records whose signatures verify, with their log index. */
  found: (FoundRecord & { timestamp: number })[];
  /** Entries naming the node that were skipped, and why (an LBLE or record that does not verify). */
  skipped: { index: number; errType: string }[];
}

const samePublic = (a: PublicIdentity, b: PublicIdentity): boolean => ctEqual(a.signingPublicKey, b.signingPublicKey) && ctEqual(a.boxPublicKey, b.boxPublicKey);

/**
 * Reads the whole log checked against a verified checkpoint and returns the node's backup records.
 * A record counts when its own signature verifies under `node`, whoever submitted it (a copy of a
 * node's record is still the node's). Throws what fetchCheckpoint and verifyTree throw (`note_*`,
 * `witness_quorum_not_met`, `tile_invalid`, `entry_bundle_invalid`, the source's errors).
 */
export async function scanLog(source: LogSource, rule: CheckpointRule, node: PublicIdentity, onProgress?: (done: number, total: number) => void): Promise<ScanResult> {
  const { checkpoint } = await fetchCheckpoint(source, rule);
  const found: ScanResult['found'] = [];
  const skipped: ScanResult['skipped'] = [];
  await verifyTree({ size: checkpoint.size, root: checkpoint.rootHash }, source, {
    onLevelZeroTile: async (tile, tileData) => {
      const bundle = { level: ENTRIES_LEVEL, index: tile.index, width: tile.width };
      const [data] = await source.readTiles([bundle]);
      const entries = parseEntryBundle(data!, tile.width);
      verifyEntryBundle(bundle, entries, tileData);
      entries.forEach((bytes, k) => {
        const index = tile.index * TILE_WIDTH + k;
        let e;
        try {
          e = verifyEntry(bytes);
        } catch (err) {
          if (err instanceof LifeboatError) return; // another submitter's bad entry: an audit reports it
          throw err;
        }
        if (e.recordType !== KEYSHARE_RECORD_TYPE) return;
        try {
          const record = verifyRecord(e.payload);
          if (samePublic(record.node, node)) found.push({ record, index, timestamp: e.timestamp });
        } catch (err) {
          if (!(err instanceof LifeboatError)) throw err;
          if (samePublic(e.submitter, node)) skipped.push({ index, errType: err.code });
        }
      });
      onProgress?.(Math.min(checkpoint.size, tile.index * TILE_WIDTH + tile.width), checkpoint.size);
    },
  });
  return { checkpoint, entries: checkpoint.size, found, skipped };
}

export interface RecoverResult {
  identity: string;
  fingerprint: string;
  checkpointSize: number;
  keys: { keyId: string; epoch: number; index: number; curve: string; tenant: string }[];
  superseded: number;
  skipped: { index: number; errType: string }[];
  /** The nonce epoch the store starts at; null when the node was written as a snapshot (it starts when loaded). */
  nonceEpoch: number | null;
  store: string;
  /** The snapshot file `node restore --in` loads, when the writer made one (the recovery kit), else null. */
  snapshot: string | null;
  /** What the recovered node publishes with: its words' mode (from its latest record) and the log, when it was read over http. */
  configured: { keyshareMode: KeyshareSetup['mode']; logs: string[] };
}

/** Records opened at once. */
const OPEN_CONCURRENCY = 4;

/**
 * Recovers `node` into `dir` (absent or empty). Opens every current record before writing anything;
 * any failure leaves no node. Throws NotFoundError `keyshare_none_found` when the log holds no record
 * of the node, KeyshareError `keyshare_conflict`, what openBackup throws (naming the key), ConflictError
 * `node_exists`, and what scanLog throws.
 */
export async function recoverNode(opts: {
  source: LogSource;
  rule: CheckpointRule;
  node: PublicIdentity;
  mnemonic: Mnemonic;
  dir: string;
  store?: string;
  /** The log read, as the recovered node's log target (`--log URL`); none for a mirrored directory. */
  logTarget?: LogTarget;
  /** What fills the node's storage: its store (the CLI: recover-store.ts) or a snapshot file (the kit: writeNodeSnapshot). */
  writer: RecoveredNodeWriter;
  onProgress?: (phase: 'reading' | 'opening', done: number, total: number) => void;
}): Promise<RecoverResult> {
  assertRestorableDir(opts.dir, opts.store);
  const scan = await scanLog(opts.source, opts.rule, opts.node, (d, t) => opts.onProgress?.('reading', d, t));
  const sel = latestPerKey(scan.found);
  if (sel.conflicts.length > 0) {
    const c = sel.conflicts[0]!;
    throw new KeyshareError('keyshare_conflict', `the log holds ${c.indexes.length} disagreeing records of key ${c.keyId} at epoch ${c.epoch} (entries ${c.indexes.join(', ')}); nothing was recovered`, 'someone holding the node key signed two different shares for one epoch: treat the node key as compromised');
  }
  if (sel.latest.size === 0) {
    throw new NotFoundError(`the log (${scan.entries} entries) holds no key-share backup of node ${identityFingerprint(opts.node)}`, 'keyshare_none_found', 'check --node-identity, and that the node published to this log');
  }
  const current = [...sel.latest.values()].sort((a, b) => a.index - b.index);
  const timestamps = new Map(scan.found.map((x) => [x.index, x.timestamp] as const));
  const opened: OpenedRecord[] = [];
  try {
    // OPEN_CONCURRENCY at once: the native scrypt of each runs on the thread pool, beside the checks
    const slots: OpenedRecord[] = new Array(current.length);
    let next = 0;
    let done = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (next < current.length && !failed) {
        const i = next++;
        const f = current[i]!;
        try {
          slots[i] = { ...(await openBackup(f.record.bytes, opts.node, opts.mnemonic)), index: f.index, timestamp: timestamps.get(f.index)! };
        } catch (err) {
          failed = true;
          throw err;
        }
        opts.onProgress?.('opening', ++done, current.length);
      }
    };
    const settled = await Promise.allSettled(Array.from({ length: Math.min(OPEN_CONCURRENCY, current.length) }, worker));
    for (const o of slots) if (o) opened.push(o);
    const rejected = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (rejected) throw rejected.reason;
    // The mode of the words is the node's latest record's: it kept one mode all its life.
    const mode = current[current.length - 1]!.record.mode;
    const setup: KeyshareSetup =
      mode === 'passphrase' ? { mode, phrase: utf8.encode(opts.mnemonic.phrase) } : { mode, recipient: await deriveAgeRecipient(opts.mnemonic), mnemonicCheck: toB64(mnemonicCheck(opts.mnemonic, opts.node)) };
    let written;
    try {
      written = await writeRecoveredNode(opts.dir, opened, { store: opts.store, setup, logs: opts.logTarget ? [opts.logTarget] : [], checkpointSize: scan.checkpoint.size, writer: opts.writer });
    } finally {
      if (setup.mode === 'passphrase') wipe(setup.phrase);
    }
    return {
      identity: encodePublicIdentity(opts.node),
      fingerprint: identityFingerprint(opts.node),
      checkpointSize: scan.checkpoint.size,
      keys: opened.map((o) => ({ keyId: o.key.keyId, epoch: o.record.epoch, index: o.index, curve: o.key.curve, tenant: o.tenant })),
      superseded: sel.superseded.length,
      skipped: scan.skipped,
      nonceEpoch: written.epoch,
      store: written.store,
      snapshot: written.snapshot,
      configured: { keyshareMode: mode, logs: opts.logTarget ? [opts.logTarget.url] : [] },
    };
  } finally {
    for (const o of opened) wipe(o.key.share, o.identitySeeds);
  }
}
