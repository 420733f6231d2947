/**
 * A node's key share at rest: the signing share and its public package, sealed in an `LBKS` envelope
 * under the node's storage key, with key_id, curve and identifier in the bound header so a ciphertext
 * copied to another key row is refused. docs/format.md (key node), "Key share at rest".
 */
import { openEnvelope, parseEnvelope, sealEnvelope } from '../../crypto/envelope.js';
import { FormatError, InvalidInputError, LifeboatError } from '../../errors.js';
import { concatBytes, utf8, wipe } from '../../util/bytes.js';
import { encodeFrostPublic, type FrostPublic, parseFrostPublic } from './public.js';
import { checkSecretScalar, CURVE_CODE, type FrostCurve, FROST_CURVES, hex, parseHex, parseIdentifier, SCALAR_LEN, suiteOf } from './suite.js';

/** One key as one node holds it. */
export interface KeyShare {
  keyId: string;
  curve: FrostCurve;
  /** This node's FROST identifier (64 hex digits). */
  identifier: string;
  /** The 32-byte signing share (secret; wipe when done). */
  share: Uint8Array;
  public: FrostPublic;
}

export const KEY_SHARE_MAGIC = 'LBKS';
const VERSION = 1;
const KEY_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/** Throws InvalidInputError unless `keyId` is 1..128 of [A-Za-z0-9._:-]. */
export function checkKeyId(keyId: unknown): asserts keyId is string {
  if (typeof keyId !== 'string' || !KEY_ID_RE.test(keyId)) throw new InvalidInputError('key id must be 1..128 characters of A-Z a-z 0-9 . _ : -');
}

/** Header shared by LBKS and LBNC: curve code, identifier scalar, key id (and what `extra` appends). */
export function encodeKeyHeader(curve: FrostCurve, identifier: string, keyId: string, extra: Uint8Array = new Uint8Array(0)): Uint8Array {
  checkKeyId(keyId);
  parseIdentifier(curve, identifier);
  const id = utf8.encode(keyId);
  return concatBytes(new Uint8Array([CURVE_CODE[curve]]), parseHex(identifier, 'identifier', SCALAR_LEN), extra, new Uint8Array([id.length]), id);
}

/** Parses encodeKeyHeader's bytes with an `extraLen`-byte field. Throws FormatError `malformed`. */
export function parseKeyHeader(header: Uint8Array, what: string, extraLen = 0): { curve: FrostCurve; identifier: string; keyId: string; extra: Uint8Array } {
  const fixed = 1 + SCALAR_LEN + extraLen + 1;
  const curve = FROST_CURVES.find((c) => CURVE_CODE[c] === header[0]);
  if (header.length < fixed || !curve) throw new FormatError('malformed', `${what} header is malformed`);
  const idLen = header[fixed - 1]!;
  if (header.length !== fixed + idLen) throw new FormatError('malformed', `${what} header is malformed`);
  const identifier = hex(header.subarray(1, 1 + SCALAR_LEN));
  let keyId: string;
  try {
    parseIdentifier(curve, identifier);
    keyId = utf8.decode(header.subarray(fixed));
    checkKeyId(keyId);
  } catch {
    throw new FormatError('malformed', `${what} header is malformed`);
  }
  return { curve, identifier, keyId, extra: header.slice(1 + SCALAR_LEN, 1 + SCALAR_LEN + extraLen) };
}

/**
 * Compares a parsed header with what the caller expects. Throws LifeboatError `key_share_mismatch`
 * (naming the field, never a secret) when it belongs to another key, curve or participant.
 */
export function checkExpected(what: string, got: { keyId: string; curve: FrostCurve; identifier: string }, expected: { keyId: string; curve?: FrostCurve; identifier?: string }): void {
  const field = got.keyId !== expected.keyId ? 'key id' : expected.curve !== undefined && got.curve !== expected.curve ? 'curve' : expected.identifier !== undefined && got.identifier !== expected.identifier ? 'identifier' : undefined;
  if (field) {
    throw new LifeboatError('key_share_mismatch', `${what} belongs to another ${field} than the one it was read for`, {
      hint: 'the row or file was copied from another key; restore it from a backup of this key',
    });
  }
}

/**
 * Seals a key share under the 32-byte `storageKey`. It checks shapes only (key id, curve, identifier
 * present in the package, share a canonical non-zero scalar), not that the share matches the package:
 * call verifyShareAgainstPublic first. Throws InvalidInputError.
 */
export function sealKeyShare(storageKey: Uint8Array, key: KeyShare): Uint8Array {
  suiteOf(key.curve);
  checkSecretScalar(key.curve, key.share, 'signing share');
  if (!(key.public?.verifyingShares?.[key.identifier] instanceof Uint8Array)) throw new InvalidInputError('the public package has no verifying share for this identifier');
  const header = encodeKeyHeader(key.curve, key.identifier, key.keyId);
  const plaintext = concatBytes(key.share, encodeFrostPublic(key.curve, key.public));
  try {
    return sealEnvelope({ magic: KEY_SHARE_MAGIC, version: VERSION, header, key: storageKey, plaintext });
  } finally {
    wipe(plaintext);
  }
}

/**
 * Opens a sealed key share. The header is compared with `expected` before decryption, and it is bound
 * as associated data, so a ciphertext moved to another key row fails either way. The public package is
 * checked for shape only (it was checked in full before sealing, and the tag vouches for it).
 * `opts.public` is the package these very bytes were opened with before (src/keynode/opened-keys.ts):
 * the same ciphertext under the same key decrypts to the same plaintext, so it is not parsed again.
 * Throws FormatError (`bad_magic`, `unsupported_version`, `truncated`, `malformed`), LifeboatError
 * `key_share_mismatch`, DecryptionError (wrong storage key or altered bytes).
 */
export function openKeyShare(storageKey: Uint8Array, bytes: Uint8Array, expected: { keyId: string; curve?: FrostCurve; identifier?: string }, opts: { public?: FrostPublic } = {}): KeyShare {
  const what = 'sealed key share';
  const env = parseEnvelope(bytes, { magic: KEY_SHARE_MAGIC, versions: [VERSION], what });
  const h = parseKeyHeader(env.header, what);
  checkExpected(what, h, expected);
  const plaintext = openEnvelope(env, storageKey, what);
  try {
    if (plaintext.length <= SCALAR_LEN) throw new FormatError('malformed', `${what} is malformed`);
    const pub = opts.public ?? parseFrostPublic(plaintext.subarray(SCALAR_LEN), { curve: h.curve, check: 'structure' }).public;
    if (!pub.verifyingShares[h.identifier]) throw new FormatError('malformed', `${what} holds a package without its own verifying share`);
    return { keyId: h.keyId, curve: h.curve, identifier: h.identifier, share: plaintext.slice(0, SCALAR_LEN), public: pub };
  } finally {
    wipe(plaintext);
  }
}
