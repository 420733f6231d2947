/**
 * The inclusion proof document (docs/log-format.md, "Inclusion proof document"): what `POST /add`
 * answers and `lifeboat log prove` prints, and what `lifeboat log verify-proof` checks. One JSON object
 * that a reader can check with the log's verifier key alone: the entry (or its leaf hash), its index,
 * the RFC 9162 inclusion path, and the checkpoint (with any co-signatures) the path leads to. Pure.
 */
import { FormatError } from '../errors.js';
import { fromB64, toB64 } from '../util/bytes.js';
import { type Checkpoint, openCheckpoint } from './checkpoint.js';
import { verifyCheckpoint } from './cosignature.js';
import { HASH_SIZE, leafHash } from './merkle.js';
import type { NoteVerifier } from './note.js';
import { verifyInclusion } from './proof.js';

export const INCLUSION_DOC_TYPE = 'lifeboat-log-inclusion-proof';

export interface InclusionDoc {
  /** The entry's index in the log. */
  index: number;
  /** Its RFC 6962 leaf hash. */
  leafHash: Uint8Array;
  /** The entry's bytes, when the document carries them (then leafHash is their hash). */
  entry?: Uint8Array;
  /** The inclusion path from the leaf up (RFC 9162 §2.1.3.1) in the tree of the checkpoint's size. */
  proof: Uint8Array[];
  /** The signed checkpoint note, co-signatures included. */
  checkpoint: string;
}

/** The JSON form: snake_case, bytes as standard base64. */
export interface InclusionDocJson {
  version: 1;
  type: typeof INCLUSION_DOC_TYPE;
  index: number;
  tree_size: number;
  leaf_hash: string;
  entry?: string;
  proof: string[];
  checkpoint: string;
}

const malformed = (why: string): FormatError =>
  new FormatError('malformed', `inclusion proof document is malformed: ${why}`, 'pass the JSON that `lifeboat log prove` or `POST /add` produced, unchanged');

function treeSizeOf(checkpoint: string): number {
  const m = /^[^\n]*\n(0|[1-9][0-9]{0,15})\n/.exec(checkpoint);
  if (m === null) throw malformed('the checkpoint has no tree size line');
  return Number(m[1]);
}

/** Encodes a document to its JSON form (`tree_size` is read from the checkpoint). Never throws for a well-typed doc. */
export function encodeInclusionDoc(d: InclusionDoc): InclusionDocJson {
  const out: InclusionDocJson = {
    version: 1,
    type: INCLUSION_DOC_TYPE,
    index: d.index,
    tree_size: treeSizeOf(d.checkpoint),
    leaf_hash: toB64(d.leafHash),
    proof: d.proof.map(toB64),
    checkpoint: d.checkpoint,
  };
  if (d.entry !== undefined) out.entry = toB64(d.entry);
  return out;
}

function b64(v: unknown, what: string, len?: number): Uint8Array {
  if (typeof v !== 'string') throw malformed(`${what} is not a base64 string`);
  try {
    return fromB64(v, what, len);
  } catch {
    throw malformed(`${what} is not ${len === undefined ? 'base64' : `${len} bytes of base64`}`);
  }
}

/**
 * Parses the JSON form (a string or an already parsed value). Checks the shape only, not the proof:
 * a version other than 1 is `unsupported_version`, anything else off is `malformed` (FormatError).
 * When `entry` is present its leaf hash must be `leaf_hash`.
 */
export function parseInclusionDoc(input: string | unknown): InclusionDoc {
  let v: unknown = input;
  if (typeof input === 'string') {
    try {
      v = JSON.parse(input);
    } catch {
      throw malformed('not JSON');
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw malformed('not a JSON object');
  const o = v as Record<string, unknown>;
  if (o.type !== INCLUSION_DOC_TYPE) throw malformed(`type is not ${INCLUSION_DOC_TYPE}`);
  if (o.version !== 1) throw new FormatError('unsupported_version', `inclusion proof document version ${String(o.version)} is not supported`, 'this lifeboat reads version 1');
  if (!Number.isSafeInteger(o.index) || (o.index as number) < 0) throw malformed('index is not a whole number');
  if (typeof o.checkpoint !== 'string') throw malformed('checkpoint is not a string');
  const size = treeSizeOf(o.checkpoint);
  if (o.tree_size !== size) throw malformed(`tree_size ${String(o.tree_size)} is not the checkpoint's size ${size}`);
  if (!Array.isArray(o.proof) || o.proof.length > 64) throw malformed('proof is not a list of at most 64 hashes');
  const doc: InclusionDoc = {
    index: o.index as number,
    leafHash: b64(o.leaf_hash, 'leaf_hash', HASH_SIZE),
    proof: o.proof.map((h, i) => b64(h, `proof[${i}]`, HASH_SIZE)),
    checkpoint: o.checkpoint,
  };
  if (o.entry !== undefined) {
    doc.entry = b64(o.entry, 'entry');
    const h = leafHash(doc.entry);
    if (toB64(h) !== toB64(doc.leafHash)) throw malformed('leaf_hash is not the hash of entry');
  }
  return doc;
}

/**
 * Checks a document with the log's verifier key: the checkpoint's signature (and, with `witnesses`,
 * a quorum of co-signatures: see verifyCheckpoint), then the inclusion path from the leaf to the
 * checkpoint's root. Returns the checkpoint. Throws what openCheckpoint / verifyCheckpoint throw
 * (note_*, checkpoint_*, witness_quorum_not_met) and LogVerificationError `proof_invalid`.
 */
export function verifyInclusionDoc(doc: InclusionDoc, logVerifier: NoteVerifier, opts: { witnesses?: readonly NoteVerifier[]; quorum?: number } = {}): Checkpoint {
  const { checkpoint } = opts.witnesses && opts.witnesses.length > 0 ? verifyCheckpoint(doc.checkpoint, logVerifier, opts) : openCheckpoint(doc.checkpoint, logVerifier);
  verifyInclusion(doc.proof, doc.index, checkpoint.size, doc.leafHash, checkpoint.rootHash);
  return checkpoint;
}
