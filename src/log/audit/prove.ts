/**
 * `lifeboat log prove` and `log verify-proof`: the inclusion proof document (../inclusion.ts) of one
 * entry, computed from the log's tiles (each checked against the root of a verified checkpoint), and
 * the check of such a document with the log's key alone.
 */
import { InvalidInputError, LifeboatError, LogVerificationError } from '../../errors.js';
import { type Checkpoint, openCheckpoint } from '../checkpoint.js';
import { type LogEntry, entrySubmitter, verifyEntry } from '../entry.js';
import { type InclusionDoc, verifyInclusionDoc } from '../inclusion.js';
import { equalBytes, leafHash, storedHashIndex } from '../merkle.js';
import { proveInclusion } from '../proof.js';
import { tileHashReader } from '../tile-reader.js';
import { ENTRIES_LEVEL, TILE_WIDTH, parseEntryBundle, tileOfTree, tilePath } from '../tiles.js';
import { type CheckpointRule, checkExtends, fetchCheckpoint } from './audit.js';
import type { LogSource } from './source.js';
import { identityFingerprint } from '../../identity.js';

export interface ProveOptions extends CheckpointRule {
  source: LogSource;
  index: number;
  /** Prove against the tree of this size: the log's checkpoint if it has it, else `saved` if it has it. */
  size?: number;
  /** A checkpoint note kept before (the audit state's), usable when it is of `size`. */
  saved?: string;
}

/**
 * The inclusion proof document of entry `index`, with the entry, against the log's current verified
 * checkpoint (or, with `size`, against the checkpoint of that size: the current one or `saved`, which
 * must be consistent with the current one). Throws the errors of fetchCheckpoint and checkExtends,
 * InvalidInputError `index_out_of_range`, LifeboatError `checkpoint_not_available`, and `tile_invalid`
 * / `entry_bundle_invalid` when the tiles or the entry's bundle do not match the root.
 */
export async function proveEntry(opts: ProveOptions): Promise<InclusionDoc> {
  const { source, index } = opts;
  const current = await fetchCheckpoint(source, opts);
  let target = current;
  if (opts.size !== undefined && opts.size !== current.checkpoint.size) {
    const saved = opts.saved === undefined ? null : openCheckpoint(opts.saved, opts.logVerifier);
    if (!saved || saved.checkpoint.size !== opts.size) {
      throw new LifeboatError('checkpoint_not_available', `the log's checkpoint is of size ${current.checkpoint.size}, and no kept checkpoint is of size ${opts.size}`, {
        hint: 'leave out --size to prove against the current checkpoint, or pass the --state of an audit that kept a checkpoint of that size',
      });
    }
    target = { note: opts.saved!, checkpoint: saved.checkpoint, cosignatures: [] };
    await checkExtends(target, current, source);
  }
  const size = target.checkpoint.size;
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
    throw new InvalidInputError(`entry ${index} is not in the log's tree of size ${size}`, { code: 'index_out_of_range', hint: `entries are numbered from 0 to ${size - 1}` });
  }
  const reader = tileHashReader({ size: current.checkpoint.size, root: current.checkpoint.rootHash }, source);
  const [hash] = await reader.readHashes([storedHashIndex(0, index)]);
  const bundle = tileOfTree(current.checkpoint.size, ENTRIES_LEVEL, Math.floor(index / TILE_WIDTH));
  const [data] = await source.readTiles([bundle]);
  const entry = parseEntryBundle(data!, bundle.width)[index % TILE_WIDTH]!;
  if (!equalBytes(leafHash(entry), hash!)) {
    throw new LogVerificationError('entry_bundle_invalid', 'entry_hash_mismatch', `entry ${index} in ${tilePath(bundle)} does not match its hash in tile/0`);
  }
  const doc: InclusionDoc = { index, leafHash: hash!, entry, proof: await proveInclusion(index, size, reader), checkpoint: target.note };
  verifyInclusionDoc(doc, opts.logVerifier);
  return doc;
}

/** What a checked proof says. */
export interface ProofFacts {
  checkpoint: Checkpoint;
  index: number;
  leafHash: Uint8Array;
  /** Present when the document carries the entry (then its signature was checked too). */
  entry: LogEntry | null;
  submitter: string | null;
  fingerprint: string | null;
}

/**
 * Checks an inclusion proof document: the checkpoint with the log's key (and the witness quorum), the
 * path to its root, and the entry's format and signature when the document carries it. Throws what
 * verifyInclusionDoc throws and, for a carried entry that fails its checks, LifeboatError
 * `log_entry_invalid` (a refusal for safety: the log signed a tree holding an entry no submitter signed).
 */
export function checkProof(doc: InclusionDoc, rule: CheckpointRule): ProofFacts {
  const checkpoint = verifyInclusionDoc(doc, rule.logVerifier, { witnesses: rule.witnesses, quorum: rule.quorum });
  let entry: LogEntry | null = null;
  if (doc.entry) {
    try {
      entry = verifyEntry(doc.entry);
    } catch (err) {
      if (!(err instanceof LifeboatError)) throw err;
      throw new LifeboatError('log_entry_invalid', `entry ${doc.index} is in the log's tree but fails its own check: ${err.message} (${err.code})`, {
        safety: err.code !== 'unsupported_version',
        hint: err.code === 'unsupported_version' ? 'upgrade lifeboat to read this entry' : 'the log holds an entry its submitter did not sign: keep the document as evidence',
      });
    }
  }
  return {
    checkpoint,
    index: doc.index,
    leafHash: doc.leafHash,
    entry,
    submitter: entry ? entrySubmitter(entry) : null,
    fingerprint: entry ? identityFingerprint(entry.submitter) : null,
  };
}
