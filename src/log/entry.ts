/**
 * A log entry (`LBLE` v1): a typed, versioned record signed by its submitter, an `lb1.` identity. The
 * log is generic: it checks the structure, the size and the submitter's signature, never the payload.
 * Pure. Byte layout: docs/log-format.md, "Log entry".
 *
 *   "LBLE" || 0x01 || u8 n || record type (n) || submitter (64: ed25519 pk || x25519 pk)
 *   || u64 BE timestamp (ms) || u32 BE m || payload (m) || ed25519 signature (64)
 */
import { createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { FormatError, InvalidInputError } from '../errors.js';
import { signWithContext } from '../crypto/sign.js';
import { encodePublicIdentity, type Identity, type PublicIdentity } from '../identity.js';
import { concatBytes, toB64u, toHex, utf8 } from '../util/bytes.js';
import { LogError } from './errors.js';

export const ENTRY_MAGIC = utf8.encode('LBLE');
export const ENTRY_VERSION = 1;
/** The signing context: the signature is over "lifeboat:log-entry\0" || every byte before it. */
export const ENTRY_SIGNING_CONTEXT = 'log-entry';
/** A tlog-tiles entry bundle gives each entry a u16 length, so no entry can be longer. */
export const MAX_ENTRY_BYTES = 65535;
/** Bytes of an entry besides its record type and payload. */
export const ENTRY_OVERHEAD = 4 + 1 + 1 + 64 + 8 + 4 + 64;
export const MAX_TIMESTAMP_MS = Number.MAX_SAFE_INTEGER;
/** Record types: 1 to 64 of [a-z0-9._/-], starting with a letter or digit, e.g. `keyshare-backup/v1`. */
export const RECORD_TYPE_RE = /^[a-z0-9][a-z0-9._/-]{0,63}$/;

/** A parsed entry. `bytes` is the exact encoding, what the tree hashes as the leaf. */
export interface LogEntry {
  recordType: string;
  submitter: PublicIdentity;
  /** Milliseconds since the epoch, as the submitter stated (the log does not check it). */
  timestamp: number;
  payload: Uint8Array;
  signature: Uint8Array;
  bytes: Uint8Array;
}

/** What a submitter fills in. */
export interface EntryFields {
  recordType: string;
  payload: Uint8Array;
  /** Defaults to now. */
  timestamp?: number;
}

function checkMax(maxBytes: number | undefined): number {
  const max = maxBytes ?? MAX_ENTRY_BYTES;
  if (!Number.isInteger(max) || max < ENTRY_OVERHEAD + 1 || max > MAX_ENTRY_BYTES) throw new InvalidInputError(`the entry size limit must be an integer from ${ENTRY_OVERHEAD + 1} to ${MAX_ENTRY_BYTES}`);
  return max;
}

const tooLarge = (len: number, max: number): LogError =>
  new LogError('entry_too_large', `the entry is ${len} bytes, over the limit of ${max}`, 'split the record, or raise the log\'s entry size limit (at most 65535)');

/** The bytes before the signature. Throws InvalidInputError on a bad field. */
function encodeUnsigned(recordType: string, submitter: PublicIdentity, timestamp: number, payload: Uint8Array): Uint8Array {
  if (typeof recordType !== 'string' || !RECORD_TYPE_RE.test(recordType)) throw new InvalidInputError('record type must be 1 to 64 of a-z 0-9 . _ / - starting with a letter or digit');
  if (!(submitter?.signingPublicKey instanceof Uint8Array) || submitter.signingPublicKey.length !== 32 || !(submitter.boxPublicKey instanceof Uint8Array) || submitter.boxPublicKey.length !== 32) {
    throw new InvalidInputError('submitter must be a public identity (two 32-byte keys)');
  }
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new InvalidInputError('entry timestamp must be an integer number of milliseconds from 0 to 2^53 - 1');
  if (!(payload instanceof Uint8Array)) throw new InvalidInputError('entry payload must be bytes');
  const head = new Uint8Array(6 + recordType.length);
  head.set(ENTRY_MAGIC, 0);
  head[4] = ENTRY_VERSION;
  head[5] = recordType.length;
  head.set(utf8.encode(recordType), 6);
  const nums = new Uint8Array(12);
  const dv = new DataView(nums.buffer);
  dv.setBigUint64(0, BigInt(timestamp));
  dv.setUint32(8, payload.length);
  return concatBytes(head, submitter.signingPublicKey, submitter.boxPublicKey, nums, payload);
}

/**
 * Builds and signs an entry with the submitter's identity. Throws InvalidInputError on a bad field
 * and LogError `entry_too_large` when the encoding is over `maxBytes` (default and most 65535).
 */
export function createEntry(fields: EntryFields, submitter: Identity, opts: { maxBytes?: number } = {}): Uint8Array {
  const max = checkMax(opts.maxBytes);
  const timestamp = fields.timestamp ?? Date.now();
  const unsigned = encodeUnsigned(fields.recordType, submitter, timestamp, fields.payload);
  if (unsigned.length + 64 > max) throw tooLarge(unsigned.length + 64, max);
  return concatBytes(unsigned, signWithContext(ENTRY_SIGNING_CONTEXT, unsigned, submitter.signing.secretKey));
}

/**
 * Encodes an entry from its fields and a given signature (no signing, no verifying): for tools and
 * tests that need exact bytes. Throws InvalidInputError on a bad field or a signature not of 64 bytes.
 */
export function encodeEntry(e: Omit<LogEntry, 'bytes'>): Uint8Array {
  if (!(e.signature instanceof Uint8Array) || e.signature.length !== 64) throw new InvalidInputError('entry signature must be 64 bytes');
  return concatBytes(encodeUnsigned(e.recordType, e.submitter, e.timestamp, e.payload), e.signature);
}

/**
 * Parses an entry's structure without checking its signature. Throws LogError `entry_too_large`, then
 * FormatError `bad_magic`, `unsupported_version`, `truncated` (shorter than its fields say) or
 * `malformed` (a bad record type, a timestamp over 2^53 - 1, bytes after the signature).
 */
export function parseEntry(bytes: Uint8Array, opts: { maxBytes?: number } = {}): LogEntry {
  const max = checkMax(opts.maxBytes);
  if (!(bytes instanceof Uint8Array)) throw new InvalidInputError('an entry must be bytes');
  if (bytes.length > max) throw tooLarge(bytes.length, max);
  const magicLen = Math.min(bytes.length, 4);
  for (let i = 0; i < magicLen; i++) if (bytes[i] !== ENTRY_MAGIC[i]) throw new FormatError('bad_magic', 'not a log entry: bad magic', 'a log entry starts with LBLE');
  if (bytes.length < 6) throw new FormatError('truncated', 'log entry is truncated');
  if (bytes[4] !== ENTRY_VERSION) throw new FormatError('unsupported_version', `log entry version ${bytes[4]} is not supported (this build reads version ${ENTRY_VERSION})`, 'upgrade lifeboat');
  const n = bytes[5]!;
  if (bytes.length < ENTRY_OVERHEAD + n) throw new FormatError('truncated', 'log entry is truncated');
  let recordType: string;
  try {
    recordType = utf8.decode(bytes.subarray(6, 6 + n));
  } catch {
    recordType = '';
  }
  if (!RECORD_TYPE_RE.test(recordType)) throw new FormatError('malformed', 'log entry record type is not 1 to 64 of a-z 0-9 . _ / -');
  let o = 6 + n;
  const submitter = { signingPublicKey: bytes.slice(o, o + 32), boxPublicKey: bytes.slice(o + 32, o + 64) };
  o += 64;
  const dv = new DataView(bytes.buffer, bytes.byteOffset + o, 12);
  const ts = dv.getBigUint64(0);
  if (ts > BigInt(MAX_TIMESTAMP_MS)) throw new FormatError('malformed', 'log entry timestamp is over 2^53 - 1');
  const m = dv.getUint32(8);
  o += 12;
  if (bytes.length < o + m + 64) throw new FormatError('truncated', 'log entry is truncated');
  if (bytes.length > o + m + 64) throw new FormatError('malformed', 'log entry has bytes after its signature');
  return {
    recordType,
    submitter,
    timestamp: Number(ts),
    payload: bytes.slice(o, o + m),
    signature: bytes.slice(o + m),
    bytes: bytes.slice(),
  };
}

const SIGNED_PREFIX = utf8.encode(`lifeboat:${ENTRY_SIGNING_CONTEXT}\0`); // as signWithContext prefixes
const keyCache = new Map<string, KeyObject | null>();

/**
 * Ed25519 (RFC 8032) verification of a submitter signature with node's native implementation: an
 * audit checks every entry, and this is over ten times noble's rate. The log and the audit both verify
 * through here, so they accept exactly the same entries. A few submitters sign many entries, so
 * their key objects are cached (bounded).
 */
function verifySubmitterSignature(unsigned: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  const id = toHex(publicKey);
  let key = keyCache.get(id);
  if (key === undefined) {
    try {
      key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: toB64u(publicKey) }, format: 'jwk' });
    } catch {
      key = null;
    }
    if (keyCache.size >= 1024) keyCache.clear();
    keyCache.set(id, key);
  }
  if (!key) return false;
  try {
    return nodeVerify(null, concatBytes(SIGNED_PREFIX, unsigned), key, signature);
  } catch {
    return false;
  }
}

/**
 * Parses an entry and checks its submitter's signature: what the log does before taking an entry, and
 * what an audit does for every one. Throws what parseEntry throws, and LogError
 * `entry_signature_invalid` when the signature does not verify under the embedded signing key.
 */
export function verifyEntry(bytes: Uint8Array, opts: { maxBytes?: number } = {}): LogEntry {
  const e = parseEntry(bytes, opts);
  const unsigned = bytes.subarray(0, bytes.length - 64);
  if (!verifySubmitterSignature(unsigned, e.signature, e.submitter.signingPublicKey)) {
    throw new LogError('entry_signature_invalid', `the submitter signature of the ${e.recordType} entry does not verify`, 'the entry was altered, or signed with another key than the one it names');
  }
  return e;
}

/** The submitter's `lb1.` token, as `lifeboat log enrol` takes it and an audit reports it. */
export function entrySubmitter(e: Pick<LogEntry, 'submitter'>): string {
  return encodePublicIdentity(e.submitter);
}
