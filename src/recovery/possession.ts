/**
 * Proof that a share holder still holds, and can open, the exact sealed share recorded in the
 * manifest, without revealing it (docs/format.md, "Possession proof").
 *
 * At init the primary derives, for every member share, an Ed25519 "possession key" from the share:
 *   seed = HKDF-SHA256(ikm = normalized mnemonic, salt = scheme_id, info = "lifeboat:possession-key")
 * and records only its public key in the public manifest. To answer a fresh challenge the holder opens
 * its sealed share, re-derives the key and signs (context "possession"):
 *   scheme_id || challenge(32) || SHA-256(sealed share) || holder box public key
 * The verifier checks the signature with the manifest's key and the hash against the manifest, so a
 * holder that lost the share, lost its key, or holds another box cannot answer. The same derivation
 * checks a typed offline share against the manifest without reconstructing anything.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { deriveKey } from '../crypto/kdf.js';
import { signingKeyPairFromSeed, signWithContext, verifyWithContext } from '../crypto/sign.js';
import { ctEqual, lengthPrefixed, utf8, wipe } from '../util/bytes.js';
import { normalizeMnemonic } from '../crypto/slip39.js';

const CONTEXT = 'possession';

export { normalizeMnemonic };

/** The possession public key of a member share (what the manifest records). */
export function possessionPublicKey(schemeId: Uint8Array, mnemonic: string): Uint8Array {
  const seed = deriveKey(utf8.encode(normalizeMnemonic(mnemonic)), schemeId, 'possession-key');
  const pk = signingKeyPairFromSeed(seed).publicKey;
  wipe(seed);
  return pk;
}

function message(schemeId: Uint8Array, challenge: Uint8Array, sealedShareHash: Uint8Array, holderBoxPublicKey: Uint8Array): Uint8Array {
  return lengthPrefixed(schemeId, challenge, sealedShareHash, holderBoxPublicKey);
}

/** The holder's answer to `challenge`, made from its opened share. */
export function provePossession(opts: { schemeId: Uint8Array; mnemonic: string; challenge: Uint8Array; sealedShare: Uint8Array; holderBoxPublicKey: Uint8Array }): Uint8Array {
  const seed = deriveKey(utf8.encode(normalizeMnemonic(opts.mnemonic)), opts.schemeId, 'possession-key');
  const sig = signWithContext(CONTEXT, message(opts.schemeId, opts.challenge, sha256(opts.sealedShare), opts.holderBoxPublicKey), seed);
  wipe(seed);
  return sig;
}

/** Checks a possession answer against the manifest's key and sealed-share hash. Returns false on any mismatch. */
export function verifyPossession(opts: {
  schemeId: Uint8Array;
  challenge: Uint8Array;
  sealedShareHash: Uint8Array;
  expectedSealedShareHash: Uint8Array;
  holderBoxPublicKey: Uint8Array;
  possessionKey: Uint8Array;
  signature: Uint8Array;
}): boolean {
  if (!ctEqual(opts.sealedShareHash, opts.expectedSealedShareHash)) return false;
  return verifyWithContext(CONTEXT, message(opts.schemeId, opts.challenge, opts.sealedShareHash, opts.holderBoxPublicKey), opts.signature, opts.possessionKey);
}
