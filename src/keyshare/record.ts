/**
 * The key-share backup record (`LBKB` v1): the public facts of one key share, the age ciphertext of its
 * compressed key package, and the node identity's signature over all of it. It is the payload of an
 * LBLE log entry of record type `keyshare-backup/v1`, and stands alone (a mirror, a file) since it is
 * signed by itself. Pure. Byte layout: docs/format.md, "Key-share backup record".
 */
import { FormatError, InvalidInputError } from '../errors.js';
import { signWithContext, verifyWithContext } from '../crypto/sign.js';
import type { Identity, PublicIdentity } from '../identity.js';
import { concatBytes, utf8 } from '../util/bytes.js';
import { checkKeyId } from '../keynode/frost/keyshare.js';
import { CURVE_CODE, decodePoint, FROST_CURVES, type FrostCurve, hex, MAX_SIGNERS, parseHex, parseIdentifier, SCALAR_LEN, suiteOf } from '../keynode/frost/suite.js';
import { ENTRY_OVERHEAD, MAX_ENTRY_BYTES } from '../log/entry.js';
import type { BackupMode } from './age.js';
import { KeyshareError } from './errors.js';

export const RECORD_MAGIC = utf8.encode('LBKB');
export const RECORD_VERSION = 1;
/** The LBLE record type whose payload is a record. */
export const KEYSHARE_RECORD_TYPE = 'keyshare-backup/v1';
/** The signing context: the signature is over "lifeboat:keyshare-backup\0" || every byte before it. */
export const RECORD_SIGNING_CONTEXT = 'keyshare-backup';
/** A record fills at most one log entry's payload. */
export const MAX_RECORD_BYTES = MAX_ENTRY_BYTES - ENTRY_OVERHEAD - KEYSHARE_RECORD_TYPE.length;
export const MNEMONIC_CHECK_LEN = 16;

const MODE_CODE: Record<BackupMode, number> = { passphrase: 1, recipient: 2 };
export type Compression = 'none' | 'brotli';
const COMPRESSION_CODE: Record<Compression, number> = { none: 0, brotli: 1 };

/** What a record says, besides its signature. */
export interface RecordFields {
  mode: BackupMode;
  curve: FrostCurve;
  /** FROST min_signers. */
  threshold: number;
  /** FROST max_signers. */
  maxSigners: number;
  node: PublicIdentity;
  /** Counts the share's versions for this key on this node, from 1; a reshare or rotation raises it. */
  epoch: number;
  /** This node's FROST identifier (64 hex digits). */
  identifier: string;
  keyId: string;
  /** The group public key as the package's commitments[0] element (32 or 33 bytes). */
  groupKey: Uint8Array;
  /** This participant's verifying share (an element). */
  verifyingShare: Uint8Array;
  /** mnemonicCheck(words, node): whether the words are this node's, before decrypting. */
  mnemonicCheck: Uint8Array;
  compression: Compression;
  /** The age v1 file of the key package. */
  ciphertext: Uint8Array;
}

export interface KeyshareRecord extends RecordFields {
  signature: Uint8Array;
  /** The exact encoding. */
  bytes: Uint8Array;
}

function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

/** The bytes before the signature. Throws InvalidInputError naming the bad field. */
export function encodeUnsignedRecord(f: RecordFields): Uint8Array {
  if (!(f.mode in MODE_CODE)) throw new InvalidInputError('record mode must be passphrase or recipient');
  const s = suiteOf(f.curve);
  if (!Number.isInteger(f.threshold) || !Number.isInteger(f.maxSigners) || f.threshold < 2 || f.threshold > f.maxSigners || f.maxSigners > MAX_SIGNERS) {
    throw new InvalidInputError(`record signers must satisfy 2 <= threshold <= max signers <= ${MAX_SIGNERS}`);
  }
  if (!(f.node?.signingPublicKey instanceof Uint8Array) || f.node.signingPublicKey.length !== 32 || !(f.node.boxPublicKey instanceof Uint8Array) || f.node.boxPublicKey.length !== 32) {
    throw new InvalidInputError('record node must be a public identity (two 32-byte keys)');
  }
  if (!Number.isSafeInteger(f.epoch) || f.epoch < 1) throw new InvalidInputError('record epoch must be an integer from 1 to 2^53 - 1');
  parseIdentifier(f.curve, f.identifier);
  checkKeyId(f.keyId);
  if (!(f.groupKey instanceof Uint8Array) || f.groupKey.length !== s.pointLen) throw new InvalidInputError(`record group key must be ${s.pointLen} bytes`);
  if (!(f.verifyingShare instanceof Uint8Array) || f.verifyingShare.length !== s.pointLen) throw new InvalidInputError(`record verifying share must be ${s.pointLen} bytes`);
  if (!(f.mnemonicCheck instanceof Uint8Array) || f.mnemonicCheck.length !== MNEMONIC_CHECK_LEN) throw new InvalidInputError(`record mnemonic check must be ${MNEMONIC_CHECK_LEN} bytes`);
  if (!(f.compression in COMPRESSION_CODE)) throw new InvalidInputError('record compression must be none or brotli');
  if (!(f.ciphertext instanceof Uint8Array) || f.ciphertext.length === 0) throw new InvalidInputError('record ciphertext must be non-empty bytes');
  const id = utf8.encode(f.keyId);
  const head = new Uint8Array([...RECORD_MAGIC, RECORD_VERSION, MODE_CODE[f.mode], CURVE_CODE[f.curve], f.threshold, f.maxSigners]);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, f.ciphertext.length);
  const out = concatBytes(
    head,
    f.node.signingPublicKey,
    f.node.boxPublicKey,
    u64(f.epoch),
    parseHex(f.identifier, 'identifier', SCALAR_LEN),
    new Uint8Array([id.length]),
    id,
    f.groupKey,
    f.verifyingShare,
    f.mnemonicCheck,
    new Uint8Array([COMPRESSION_CODE[f.compression]]),
    len,
    f.ciphertext,
  );
  if (out.length + 64 > MAX_RECORD_BYTES) throw new InvalidInputError(`the record would be ${out.length + 64} bytes, over the ${MAX_RECORD_BYTES} a log entry carries`);
  return out;
}

/** Encodes and signs a record with the node identity (whose public half must be `f.node`). Throws InvalidInputError. */
export function signRecord(f: RecordFields, node: Identity): Uint8Array {
  if (!equal(node.signingPublicKey, f.node.signingPublicKey) || !equal(node.boxPublicKey, f.node.boxPublicKey)) throw new InvalidInputError('the record names another node than the identity signing it');
  const unsigned = encodeUnsignedRecord(f);
  return concatBytes(unsigned, signWithContext(RECORD_SIGNING_CONTEXT, unsigned, node.signing.secretKey));
}

/** Encodes a record with a given signature (no signing, no checking it): for tools and negative tests. */
export function encodeRecord(r: RecordFields & { signature: Uint8Array }): Uint8Array {
  if (!(r.signature instanceof Uint8Array) || r.signature.length !== 64) throw new InvalidInputError('record signature must be 64 bytes');
  return concatBytes(encodeUnsignedRecord(r), r.signature);
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const malformed = (why: string): FormatError => new FormatError('malformed', `key-share backup record: ${why}`);
const truncated = (): FormatError => new FormatError('truncated', 'key-share backup record is truncated');

/**
 * Parses a record's structure, not its signature. Throws FormatError, in this order: `malformed` over
 * MAX_RECORD_BYTES; `bad_magic`; `truncated` (shorter than its fields say); `unsupported_version`;
 * `malformed` (unknown mode, curve or compression, signers out of range, epoch 0 or over 2^53 - 1, a
 * non-canonical identifier, a bad key id, a group key or verifying share that is not a valid element,
 * an empty ciphertext, bytes after the signature).
 */
export function parseRecord(bytes: Uint8Array): KeyshareRecord {
  if (!(bytes instanceof Uint8Array)) throw new InvalidInputError('a key-share backup record must be bytes');
  if (bytes.length > MAX_RECORD_BYTES) throw malformed(`${bytes.length} bytes, over the ${MAX_RECORD_BYTES} a log entry carries`);
  for (let i = 0; i < Math.min(4, bytes.length); i++) if (bytes[i] !== RECORD_MAGIC[i]) throw new FormatError('bad_magic', 'not a key-share backup record: bad magic', 'a key-share backup record starts with LBKB');
  if (bytes.length < 5) throw truncated();
  if (bytes[4] !== RECORD_VERSION) throw new FormatError('unsupported_version', `key-share backup record version ${bytes[4]} is not supported (this build reads version ${RECORD_VERSION})`, 'upgrade lifeboat');
  if (bytes.length < 114) throw truncated();
  const mode = (Object.keys(MODE_CODE) as BackupMode[]).find((m) => MODE_CODE[m] === bytes[5]);
  if (!mode) throw malformed(`unknown mode ${bytes[5]}`);
  const curve = FROST_CURVES.find((c) => CURVE_CODE[c] === bytes[6]);
  if (!curve) throw malformed(`unknown curve code ${bytes[6]}`);
  const threshold = bytes[7]!;
  const maxSigners = bytes[8]!;
  if (threshold < 2 || threshold > maxSigners || maxSigners > MAX_SIGNERS) throw malformed(`signers must satisfy 2 <= threshold <= max signers <= ${MAX_SIGNERS}`);
  const node = { signingPublicKey: bytes.slice(9, 41), boxPublicKey: bytes.slice(41, 73) };
  const epochBig = new DataView(bytes.buffer, bytes.byteOffset + 73, 8).getBigUint64(0);
  if (epochBig < 1n || epochBig > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed('epoch must be from 1 to 2^53 - 1');
  const identifier = hex(bytes.subarray(81, 113));
  try {
    parseIdentifier(curve, identifier);
  } catch {
    throw malformed('the identifier is not a canonical non-zero scalar');
  }
  const idLen = bytes[113]!;
  const pointLen = suiteOf(curve).pointLen;
  let o = 114;
  const fixedAfterId = 2 * pointLen + MNEMONIC_CHECK_LEN + 1 + 4;
  if (bytes.length < o + idLen + fixedAfterId) throw truncated();
  let keyId: string;
  try {
    keyId = utf8.decode(bytes.subarray(o, o + idLen));
    checkKeyId(keyId);
  } catch {
    throw malformed('the key id is not 1 to 128 of A-Z a-z 0-9 . _ : -');
  }
  o += idLen;
  const groupKey = bytes.slice(o, o + pointLen);
  const verifyingShare = bytes.slice(o + pointLen, o + 2 * pointLen);
  try {
    decodePoint(curve, groupKey, 'group key');
    decodePoint(curve, verifyingShare, 'verifying share');
  } catch {
    throw malformed('the group key or the verifying share is not a valid element of the curve');
  }
  o += 2 * pointLen;
  const mnemonicCheck = bytes.slice(o, o + MNEMONIC_CHECK_LEN);
  o += MNEMONIC_CHECK_LEN;
  const compression = (Object.keys(COMPRESSION_CODE) as Compression[]).find((c) => COMPRESSION_CODE[c] === bytes[o]);
  if (!compression) throw malformed(`unknown compression ${bytes[o]}`);
  const c = new DataView(bytes.buffer, bytes.byteOffset + o + 1, 4).getUint32(0);
  o += 5;
  if (c === 0) throw malformed('the ciphertext is empty');
  if (bytes.length < o + c + 64) throw truncated();
  if (bytes.length > o + c + 64) throw malformed('bytes after the signature');
  return {
    mode,
    curve,
    threshold,
    maxSigners,
    node,
    epoch: Number(epochBig),
    identifier,
    keyId,
    groupKey,
    verifyingShare,
    mnemonicCheck,
    compression,
    ciphertext: bytes.slice(o, o + c),
    signature: bytes.slice(o + c),
    bytes: bytes.slice(),
  };
}

/**
 * Parses a record and checks its signature under the node identity it names. Throws what parseRecord
 * throws, and KeyshareError `keyshare_signature_invalid`.
 */
export function verifyRecord(bytes: Uint8Array): KeyshareRecord {
  const r = parseRecord(bytes);
  if (!verifyWithContext(RECORD_SIGNING_CONTEXT, bytes.subarray(0, bytes.length - 64), r.signature, r.node.signingPublicKey)) {
    throw new KeyshareError('keyshare_signature_invalid', `the backup record of key ${r.keyId} does not verify under the node identity it names`, 'the record was altered after it was signed; it is not used');
  }
  return r;
}
