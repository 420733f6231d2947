/**
 * The C2SP tlog-witness add-checkpoint request body (https://c2sp.org/tlog-witness, "add-checkpoint"):
 *
 *     old <size>\n
 *     <base64 hash>\n            zero to 63 consistency proof lines
 *     \n
 *     <checkpoint signed note>
 *
 * and the 409 answer body, `<size>\n` (Content-Type text/x.tlog.size). Pure: the log's cosigner
 * encodes, the witness parses. Layout: docs/log-format.md, "Witness protocol".
 */
import { base64 } from '@scure/base';
import { InvalidInputError } from '../../errors.js';
import { utf8 } from '../../util/bytes.js';
import { HASH_SIZE } from '../merkle.js';
import { decodeCanonicalB64, MAX_NOTE_BYTES } from '../note.js';
import { WitnessError } from './errors.js';

/** The spec's limit on consistency proof lines (a proof in a tree below 2^63 has at most 63 hashes). */
export const MAX_PROOF_LINES = 63;
/** The largest body a witness reads: the old line, 63 proof lines and a note at its size limit. */
export const MAX_ADD_CHECKPOINT_BYTES = MAX_NOTE_BYTES + 64 * (MAX_PROOF_LINES + 1) + 32;
/** The media type of a 409 answer's body. */
export const TLOG_SIZE_TYPE = 'text/x.tlog.size';

/** What an add-checkpoint request says: the size the client thinks the witness holds, a proof, the note. */
export interface AddCheckpointRequest {
  oldSize: number;
  /** Consistency proof from oldSize to the checkpoint's size, 32-byte hashes. */
  proof: Uint8Array[];
  /** The checkpoint signed note (not verified here). */
  checkpoint: string;
}

const SIZE = /^(0|[1-9][0-9]{0,15})$/;

function parseSize(s: string): number | null {
  if (!SIZE.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

/** Encodes a request body. Throws InvalidInputError on a bad size, more than 63 hashes, a hash not 32 bytes, or a note without a final newline. */
export function encodeAddCheckpoint(r: AddCheckpointRequest): string {
  if (!Number.isSafeInteger(r.oldSize) || r.oldSize < 0) throw new InvalidInputError('old size must be an integer from 0 to 2^53 - 1');
  if (!Array.isArray(r.proof) || r.proof.length > MAX_PROOF_LINES) throw new InvalidInputError(`a consistency proof has at most ${MAX_PROOF_LINES} hashes`);
  if (r.proof.some((h) => !(h instanceof Uint8Array) || h.length !== HASH_SIZE)) throw new InvalidInputError(`every proof hash must be ${HASH_SIZE} bytes`);
  if (typeof r.checkpoint !== 'string' || !r.checkpoint.endsWith('\n')) throw new InvalidInputError('the checkpoint note must end with a newline');
  return `old ${r.oldSize}\n${r.proof.map((h) => `${base64.encode(h)}\n`).join('')}\n${r.checkpoint}`;
}

const malformed = (why: string): WitnessError =>
  new WitnessError(
    'witness_request_malformed',
    `add-checkpoint request is malformed: ${why}`,
    'the body is "old <size>", up to 63 base64 proof hashes, a blank line, then the checkpoint note, each line ending in a newline',
  );

/**
 * Parses a request body. Throws WitnessError `witness_request_malformed` (400) on a body over
 * MAX_ADD_CHECKPOINT_BYTES, bad UTF-8, no blank line after the proof, a bad `old` line, more than 63
 * proof lines or one that is not canonical base64 of 32 bytes. The checkpoint note is returned
 * unparsed (the witness opens it with the log's key).
 */
export function parseAddCheckpoint(body: Uint8Array | string): AddCheckpointRequest {
  const size = typeof body === 'string' ? utf8.encode(body).length : body.length;
  if (size > MAX_ADD_CHECKPOINT_BYTES) throw malformed(`it is over ${MAX_ADD_CHECKPOINT_BYTES} bytes`);
  let text: string;
  if (typeof body === 'string') text = body;
  else {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body);
    } catch {
      throw malformed('it is not utf-8');
    }
  }
  const end = text.indexOf('\n\n');
  if (end < 0) throw malformed('there is no blank line between the proof and the checkpoint');
  const [oldLine = '', ...proofLines] = text.slice(0, end).split('\n');
  if (!oldLine.startsWith('old ')) throw malformed('the first line is not "old <size>"');
  const oldSize = parseSize(oldLine.slice(4));
  if (oldSize === null) throw malformed('the old size is not a decimal without leading zeros up to 2^53 - 1');
  if (proofLines.length > MAX_PROOF_LINES) throw malformed(`it has more than ${MAX_PROOF_LINES} proof lines`);
  const proof = proofLines.map((l, i) => {
    const h = decodeCanonicalB64(l);
    if (!h || h.length !== HASH_SIZE) throw malformed(`proof line ${i + 1} is not canonical base64 of a ${HASH_SIZE}-byte hash`);
    return h;
  });
  const checkpoint = text.slice(end + 2);
  if (checkpoint.length === 0) throw malformed('there is no checkpoint after the blank line');
  return { oldSize, proof, checkpoint };
}

/** The body of a 409 answer: the witness's size and a newline. */
export function encodeTlogSize(size: number): string {
  return `${size}\n`;
}

/** Parses a 409 answer body (`<size>\n`); null when it is not one. */
export function parseTlogSize(body: string): number | null {
  if (!body.endsWith('\n')) return null;
  return parseSize(body.slice(0, -1));
}
