/**
 * C2SP tlog-checkpoint v1.0.0 (https://c2sp.org/tlog-checkpoint@v1.0.0): the note text that states a
 * log's tree head (origin, size, root hash, optional extension lines), and signing and opening it as a
 * signed note with the log's Ed25519 key. Pure. Byte layout: docs/log-format.md, "Checkpoint".
 */
import { base64 } from '@scure/base';
import { InvalidInputError } from '../errors.js';
import { LogError } from './errors.js';
import { checkKeyName, decodeCanonicalB64, openNote, parseNote, signNote, type NoteSigner, type NoteVerifier, type OpenedNote } from './note.js';

export const ROOT_HASH_BYTES = 32;
/** Lifeboat's limit on a tree size: a JavaScript safe integer (the spec allows up to 2^64 - 1). */
export const MAX_TREE_SIZE = Number.MAX_SAFE_INTEGER;

/** A log's tree head as a checkpoint states it. */
export interface Checkpoint {
  /** The log's identity, also the name of its key. */
  origin: string;
  /** Number of leaves. */
  size: number;
  /** RFC 6962 Merkle tree hash of the first `size` leaves. */
  rootHash: Uint8Array;
  /** Opaque non-empty lines after the root hash (not recommended; never used by Lifeboat's log). */
  extensions: string[];
}

const bad = (why: string): LogError =>
  new LogError('checkpoint_malformed', `checkpoint is malformed: ${why}`, 'a checkpoint reads: origin, tree size, base64 root hash, one per line');

function checkExtension(line: unknown): string {
  // eslint-disable-next-line no-control-regex
  if (typeof line !== 'string' || line.length === 0 || /[\u0000-\u001f]/.test(line)) throw new InvalidInputError('checkpoint extension lines must be non-empty single lines');
  return line;
}

/**
 * Encodes a checkpoint's note text (tlog-checkpoint, "Note text"), ending in a newline. Throws
 * InvalidInputError on a bad origin, a size that is not an integer in [0, 2^53 - 1], a root hash
 * that is not 32 bytes, or an empty or multi-line extension.
 */
export function encodeCheckpoint(c: Checkpoint): string {
  checkKeyName(c.origin, 'checkpoint origin');
  if (typeof c.size !== 'number' || !Number.isSafeInteger(c.size) || c.size < 0) throw new InvalidInputError('checkpoint size must be an integer from 0 to 2^53 - 1');
  if (!(c.rootHash instanceof Uint8Array) || c.rootHash.length !== ROOT_HASH_BYTES) throw new InvalidInputError('checkpoint root hash must be 32 bytes');
  const ext = (c.extensions ?? []).map(checkExtension);
  return [c.origin, String(c.size), base64.encode(c.rootHash), ...ext].map((l) => `${l}\n`).join('');
}

/**
 * Parses a checkpoint's note text (without signatures). Throws LogError `checkpoint_malformed` unless
 * it is at least three non-empty newline-terminated lines: a valid origin, a decimal size without
 * leading zeros and at most 2^53 - 1, and canonical base64 of exactly 32 bytes.
 */
export function parseCheckpoint(text: string): Checkpoint {
  if (typeof text !== 'string' || !text.endsWith('\n')) throw bad('the text does not end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw bad('it has fewer than three lines');
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  try {
    checkKeyName(origin, 'origin');
  } catch {
    throw bad('the origin line is empty, too long, or has spaces or a +');
  }
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) {
    throw bad('the tree size is not a decimal without leading zeros up to 2^53 - 1');
  }
  const rootHash = decodeCanonicalB64(rootText);
  if (!rootHash || rootHash.length !== ROOT_HASH_BYTES) throw bad('the root hash is not canonical base64 of 32 bytes');
  // eslint-disable-next-line no-control-regex
  if (extensions.some((l) => l.length === 0 || /[\u0000-\u001f]/.test(l))) throw bad('an extension line is empty');
  return { origin, size: Number(sizeText), rootHash, extensions };
}

/** A checkpoint as people and error messages name it: `<origin> size <n> root <base64>`. */
export function checkpointLabel(c: Pick<Checkpoint, 'origin' | 'size' | 'rootHash'>): string {
  return `${c.origin} size ${c.size} root ${base64.encode(c.rootHash)}`;
}

/** Signs a checkpoint with the log's key (whose name must be the origin). Returns the signed note. */
export function signCheckpoint(c: Checkpoint, logSigner: NoteSigner): string {
  if (logSigner.name !== c.origin) throw new InvalidInputError(`the log key is named ${logSigner.name}, the checkpoint origin is ${c.origin}`);
  return signNote(encodeCheckpoint(c), logSigner);
}

/** A checkpoint note opened with the log's key: the checkpoint, its text, and every signature line. */
export interface OpenedCheckpoint {
  checkpoint: Checkpoint;
  /** The note text (the body co-signatures sign). */
  text: string;
  note: OpenedNote;
}

/**
 * Opens a checkpoint note with the log's verifier key alone (tlog-checkpoint, "Signatures"): the log's
 * signature must be present and good, other lines are ignored here, and the origin must be the key's
 * name (or `origin` when given). Throws LogError `note_malformed`, `note_unverified` (no signature of
 * the log's key), `note_signature_invalid`, `checkpoint_malformed` or `checkpoint_origin_mismatch`.
 */
export function openCheckpoint(msg: string | Uint8Array, logVerifier: NoteVerifier, opts: { origin?: string } = {}): OpenedCheckpoint {
  const note = openNote(msg, [logVerifier]);
  const checkpoint = parseCheckpoint(note.text);
  const origin = opts.origin ?? logVerifier.name;
  if (checkpoint.origin !== origin) {
    throw new LogError('checkpoint_origin_mismatch', `the checkpoint is of log ${checkpoint.origin}, expected ${origin}`, 'check the log url and its key');
  }
  return { checkpoint, text: note.text, note };
}

/** Parses a checkpoint note's text without checking any signature (for showing or comparing only). */
export function peekCheckpoint(msg: string | Uint8Array): Checkpoint {
  return parseCheckpoint(parseNote(msg).text);
}
