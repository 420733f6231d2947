/** Ed25519 signatures (RFC 8032) for identities: primaries, operators, share holders. Pure. */
import { createPrivateKey, createPublicKey, type KeyObject, sign as nativeSign, verify as nativeVerify } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { InvalidInputError } from '../errors.js';
import { concatBytes, ctEqual, toHex, utf8 } from '../util/bytes.js';
import { randomBytes } from './random.js';

export interface SigningKeyPair {
  /** 32-byte Ed25519 seed. */
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

export function generateSigningKeyPair(): SigningKeyPair {
  const secretKey = randomBytes(32);
  return { secretKey, publicKey: publicKeyOf(secretKey) };
}

/** The key pair of a 32-byte seed. Throws InvalidInputError on a wrong length. */
export function signingKeyPairFromSeed(seed: Uint8Array): SigningKeyPair {
  if (seed.length !== 32) throw new InvalidInputError('signing seed must be 32 bytes');
  return { secretKey: seed, publicKey: publicKeyOf(seed) };
}

/** PKCS#8 of an Ed25519 seed (RFC 8410): this prefix, then the 32 bytes. */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
/** SPKI of an Ed25519 public key (RFC 8410): this prefix, then the 32 bytes. */
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * Native signing keys by the seed array they were made from, with a copy of the seed it held then:
 * making one costs more than a signature, and an identity signs many times with one seed. A seed
 * array that was since wiped or refilled no longer matches its copy and gets a new key; the entry
 * goes with the array.
 */
const nativeKeys = new WeakMap<Uint8Array, { seed: Uint8Array; key: KeyObject }>();

function nativeKey(seed: Uint8Array): KeyObject {
  const have = nativeKeys.get(seed);
  if (have && ctEqual(have.seed, seed)) return have.key;
  const der = Buffer.concat([PKCS8_ED25519, seed]);
  try {
    const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    nativeKeys.set(seed, { seed: seed.slice(), key });
    return key;
  } finally {
    der.fill(0);
  }
}

/** The public key of a seed (natively: the same 32 bytes RFC 8032 derives). */
function publicKeyOf(seed: Uint8Array): Uint8Array {
  const spki = createPublicKey(nativeKey(seed)).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(SPKI_ED25519.length));
}

/**
 * Signs `message` with a domain-separation `context` so a signature for one purpose never serves
 * another. Ed25519 signatures are deterministic: Node's native signer (OpenSSL) gives the very bytes
 * the pure one would, at a fraction of its cost (a key node signs every log entry it publishes).
 */
export function signWithContext(context: string, message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  if (secretKey.length !== 32) throw new InvalidInputError('signing seed must be 32 bytes');
  return new Uint8Array(nativeSign(null, concatBytes(utf8.encode(`lifeboat:${context}\0`), message), nativeKey(secretKey)));
}

/**
 * Verifies a signature made by signWithContext, as RFC 8032 and Go's crypto/ed25519 do (OpenSSL:
 * canonical encodings only, cofactorless), at a seventh of the pure verifier's cost. Returns false
 * (never throws) on any malformed input.
 */
export function verifyWithContext(context: string, message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    if (signature.length !== 64 || publicKey.length !== 32) return false;
    const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, publicKey]), format: 'der', type: 'spki' });
    return nativeVerify(null, concatBytes(utf8.encode(`lifeboat:${context}\0`), message), key, signature);
  } catch {
    return false;
  }
}

/**
 * A key's fingerprint as people compare it: SHA-256 over a labelled key, first 16 bytes, as
 * 8 groups of 4 hex digits. The label keeps an X25519 and an Ed25519 key with equal bytes apart.
 */
export function fingerprint(label: 'x25519' | 'ed25519' | 'identity', publicKey: Uint8Array): string {
  const h = toHex(sha256(concatBytes(utf8.encode(`lifeboat-fingerprint:${label}\0`), publicKey)).subarray(0, 16));
  return h.match(/.{4}/g)!.join(':');
}
