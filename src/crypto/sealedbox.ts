/**
 * Anonymous sealed boxes, byte-compatible with libsodium's crypto_box_seal / crypto_box_seal_open:
 *   sealed = epk(32) || xsalsa20poly1305(k, nonce, m)        (tag(16) || ciphertext)
 *   k      = HSalsa20(X25519(esk, pk), 0^16)                 (crypto_box_beforenm)
 *   nonce  = BLAKE2b-192(epk || pk)
 * See libsodium crypto_box/crypto_box_seal.c. Pure: no I/O.
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { hsalsa, xsalsa20poly1305 } from '@noble/ciphers/salsa.js';
import { blake2b } from '@noble/hashes/blake2.js';
import { DecryptionError, InvalidInputError } from '../errors.js';
import { concatBytes, wipe } from '../util/bytes.js';
import { randomBytes } from './random.js';

export const SEALED_BOX_OVERHEAD = 48; // epk 32 + tag 16

/** An X25519 key pair: 32-byte secret and public keys. */
export interface BoxKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

// "expand 32-byte k" as little-endian words.
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);

function checkKey(k: Uint8Array, what: string): void {
  if (!(k instanceof Uint8Array) || k.length !== 32) throw new InvalidInputError(`${what} must be 32 bytes`);
}

function u8to32(b: Uint8Array): Uint32Array {
  const out = new Uint32Array(b.length / 4);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = dv.getUint32(i * 4, true);
  return out;
}

function u32to8(w: Uint32Array): Uint8Array {
  const out = new Uint8Array(w.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < w.length; i++) dv.setUint32(i * 4, w[i]!, true);
  return out;
}

/** crypto_box_beforenm: HSalsa20 of the X25519 shared point. Throws DecryptionError on a low-order point. */
function boxKey(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  let shared: Uint8Array;
  try {
    shared = x25519.getSharedSecret(secretKey, publicKey);
  } catch {
    throw new DecryptionError('sealed box: invalid public key');
  }
  const out = new Uint32Array(8);
  const sharedWords = u8to32(shared);
  hsalsa(SIGMA, sharedWords, new Uint32Array(4), out);
  const key = u32to8(out);
  wipe(shared);
  sharedWords.fill(0);
  out.fill(0);
  return key;
}

function sealNonce(epk: Uint8Array, pk: Uint8Array): Uint8Array {
  return blake2b(concatBytes(epk, pk), { dkLen: 24 });
}

/** Generates an X25519 key pair. */
export function generateBoxKeyPair(): BoxKeyPair {
  const secretKey = randomBytes(32);
  return { secretKey, publicKey: x25519.getPublicKey(secretKey) };
}

/** Derives the X25519 public key of a secret key. Throws InvalidInputError on a wrong length. */
export function boxPublicKey(secretKey: Uint8Array): Uint8Array {
  checkKey(secretKey, 'secret key');
  return x25519.getPublicKey(secretKey);
}

/** Seals `message` to `recipientPublicKey` (crypto_box_seal). Throws InvalidInputError on a bad key. */
export function seal(message: Uint8Array, recipientPublicKey: Uint8Array): Uint8Array {
  checkKey(recipientPublicKey, 'recipient public key');
  const eph = generateBoxKeyPair();
  const key = boxKey(eph.secretKey, recipientPublicKey);
  const nonce = sealNonce(eph.publicKey, recipientPublicKey);
  const boxed = xsalsa20poly1305(key, nonce).encrypt(message);
  wipe(key, eph.secretKey);
  return concatBytes(eph.publicKey, boxed);
}

/**
 * Opens a sealed box (crypto_box_seal_open). Throws DecryptionError when it is too short, was sealed
 * to another key, or was altered.
 */
export function openSealed(sealed: Uint8Array, keyPair: BoxKeyPair): Uint8Array {
  checkKey(keyPair.secretKey, 'secret key');
  checkKey(keyPair.publicKey, 'public key');
  if (!(sealed instanceof Uint8Array) || sealed.length < SEALED_BOX_OVERHEAD) throw new DecryptionError('sealed box is truncated');
  const epk = sealed.subarray(0, 32);
  const key = boxKey(keyPair.secretKey, epk);
  const nonce = sealNonce(epk, keyPair.publicKey);
  try {
    return xsalsa20poly1305(key, nonce).decrypt(sealed.subarray(32));
  } catch {
    throw new DecryptionError('sealed box does not open: sealed to another key, or altered');
  } finally {
    wipe(key);
  }
}
