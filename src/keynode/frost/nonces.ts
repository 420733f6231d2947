/**
 * Signing nonces at rest, between round one and round two: an `LBNC` envelope under the storage key
 * whose bound header names the key, the signer and the commitments, so a nonce row cannot be swapped
 * for another. docs/format.md (key node), "Signing nonces at rest". The table that holds them is never
 * backed up, and a row is deleted in the transaction that signs with it.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { openEnvelope, parseEnvelope, sealEnvelope } from '../../crypto/envelope.js';
import { FormatError, InvalidInputError, LifeboatError } from '../../errors.js';
import { concatBytes, ctEqual, lengthPrefixed, utf8, wipe } from '../../util/bytes.js';
import { checkExpected, encodeKeyHeader, parseKeyHeader } from './keyshare.js';
import { nonceId, type NonceCommitments, type SigningNonces } from './signing.js';
import { checkSecretScalar, SCALAR_LEN, suiteOf } from './suite.js';

export const NONCES_MAGIC = 'LBNC';
const VERSION = 1;

function commitmentDigest(c: NonceCommitments): Uint8Array {
  return sha256(lengthPrefixed(utf8.encode('lifeboat-frost-nonce-commitments'), utf8.encode(c.identifier), c.hiding, c.binding));
}

/**
 * Seals round-one nonces under the 32-byte `storageKey`. Throws InvalidInputError on malformed or
 * already-used (zero) nonces or commitments of another signer.
 */
export function sealNonces(storageKey: Uint8Array, nonces: SigningNonces): Uint8Array {
  suiteOf(nonces.curve);
  checkSecretScalar(nonces.curve, nonces.hiding, 'hiding nonce');
  checkSecretScalar(nonces.curve, nonces.binding, 'binding nonce');
  const c = nonces.commitments;
  if (c.identifier !== nonces.identifier) throw new InvalidInputError('nonce commitments belong to another signer');
  // Length only: these commitments were just computed by commit() from the nonces themselves, and
  // signShare compares them byte for byte before noble validates every element. A full decode here
  // (a subgroup check per point) cost ~4 ms per round one on ed25519 for nothing.
  const len = suiteOf(nonces.curve).pointLen;
  if (c.hiding.length !== len || c.binding.length !== len) throw new InvalidInputError(`nonce commitments must be ${len}-byte elements`);
  const header = encodeKeyHeader(nonces.curve, nonces.identifier, nonces.keyId, commitmentDigest(c));
  const plaintext = concatBytes(nonces.hiding, nonces.binding, c.hiding, c.binding);
  try {
    return sealEnvelope({ magic: NONCES_MAGIC, version: VERSION, header, key: storageKey, plaintext });
  } finally {
    wipe(plaintext);
  }
}

/**
 * Opens sealed nonces. `expected.nonceId` (see nonceId) ties the row to the commitments the signing
 * request names. Throws FormatError (`bad_magic`, `unsupported_version`, `truncated`, `malformed`),
 * LifeboatError `key_share_mismatch` (another key, curve or signer) or `commitment_mismatch` (other
 * commitments than expected), DecryptionError (wrong key, altered bytes).
 */
export function openNonces(storageKey: Uint8Array, bytes: Uint8Array, expected: { keyId: string; identifier?: string; nonceId?: string }): SigningNonces {
  const what = 'sealed signing nonces';
  const env = parseEnvelope(bytes, { magic: NONCES_MAGIC, versions: [VERSION], what });
  const h = parseKeyHeader(env.header, what, 32);
  checkExpected(what, h, expected);
  const plaintext = openEnvelope(env, storageKey, what);
  try {
    const pl = suiteOf(h.curve).pointLen;
    if (plaintext.length !== 2 * SCALAR_LEN + 2 * pl) throw new FormatError('malformed', `${what} are malformed`);
    const commitments: NonceCommitments = {
      identifier: h.identifier,
      hiding: plaintext.slice(2 * SCALAR_LEN, 2 * SCALAR_LEN + pl),
      binding: plaintext.slice(2 * SCALAR_LEN + pl),
    };
    if (!ctEqual(commitmentDigest(commitments), h.extra)) throw new FormatError('malformed', `${what} do not match their header`);
    if (expected.nonceId !== undefined && nonceId(commitments) !== expected.nonceId) {
      throw new LifeboatError('commitment_mismatch', `${what} were made for other commitments than the request names`, { status: 409 });
    }
    return {
      keyId: h.keyId,
      curve: h.curve,
      identifier: h.identifier,
      hiding: plaintext.slice(0, SCALAR_LEN),
      binding: plaintext.slice(SCALAR_LEN, 2 * SCALAR_LEN),
      commitments,
    };
  } finally {
    wipe(plaintext);
  }
}
