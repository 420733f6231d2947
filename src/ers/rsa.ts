/**
 * The ERS RSA key: parsing (SPKI and PKCS#8 PEM, the private key optionally passphrase-encrypted),
 * the size and exponent rules (at least 3072 bits, e = 65537), the fingerprint (SHA-256 of the SPKI
 * DER), key generation, and the standard RSA-OAEP-SHA256 decryption recover uses.
 */
import { constants, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, privateDecrypt } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { InvalidInputError, LifeboatError } from '../errors.js';
import { toHex } from '../util/bytes.js';
import { encryptPkcs8Scrypt } from './pkcs8.js';

export const MIN_RSA_BITS = 3072;
export const RSA_BITS_ALLOWED = [3072, 4096] as const;
const MAX_RSA_BITS = 8192;

/** A checked ERS public key. */
export interface ErsPublicKey {
  key: KeyObject;
  /** SPKI DER bytes. */
  spki: Uint8Array;
  /** SHA-256 of the SPKI DER. */
  fingerprint: Uint8Array;
  bits: number;
  /** Modulus length in bytes (ciphertext length). */
  k: number;
}

/** `SHA256:<hex>`, as keygen prints and verify reports it. */
export function describeFingerprint(fp: Uint8Array): string {
  return `SHA256:${toHex(fp)}`;
}

function badPem(what: string, hint?: string): InvalidInputError {
  return new InvalidInputError(`${what} is not a readable RSA key (malformed PEM or DER)`, { code: 'invalid_pem', hint: hint ?? 'give a PEM file: "-----BEGIN PUBLIC KEY-----" (SPKI) or "-----BEGIN PRIVATE KEY-----" (PKCS#8)' });
}

function checkRsa(key: KeyObject, what: string): { bits: number } {
  if (key.asymmetricKeyType !== 'rsa') {
    const type = key.asymmetricKeyType ?? 'non-RSA';
    throw new InvalidInputError(`${what} is ${/^[aeiou]/i.test(type) ? 'an' : 'a'} ${type} key, not RSA`, { code: 'invalid_rsa_key', hint: 'emergency recovery encrypts to an RSA key (3072 bits or more, e = 65537)' });
  }
  const d = key.asymmetricKeyDetails ?? {};
  const bits = d.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) {
    throw new InvalidInputError(`${what} has ${bits} bits; emergency recovery needs at least ${MIN_RSA_BITS}`, { code: 'rsa_key_too_small', hint: 'make one with `lifeboat ers keygen` (3072 bits, or --bits 4096)' });
  }
  if (bits > MAX_RSA_BITS || bits % 8 !== 0) throw new InvalidInputError(`${what} has ${bits} bits; this build takes multiples of 8 up to ${MAX_RSA_BITS}`, { code: 'invalid_rsa_key' });
  if (d.publicExponent !== 65537n) throw new InvalidInputError(`${what} has a public exponent other than 65537`, { code: 'invalid_rsa_key' });
  return { bits };
}

/** A checked public key from a KeyObject (public, or the public half of a private one). */
export function ersPublicKeyFromKeyObject(key: KeyObject, what: string): ErsPublicKey {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const { bits } = checkRsa(pub, what);
  const spki = new Uint8Array(pub.export({ type: 'spki', format: 'der' }));
  return { key: pub, spki, fingerprint: sha256(spki), bits, k: bits / 8 };
}

/**
 * Parses an RSA public key: SPKI PEM (`BEGIN PUBLIC KEY`), PKCS#1 PEM (`BEGIN RSA PUBLIC KEY`), or SPKI
 * DER bytes. Throws InvalidInputError `invalid_pem`, `invalid_rsa_key`, `rsa_key_too_small`.
 */
export function parseErsPublicKey(bytes: Uint8Array | string, what = 'the ERS public key'): ErsPublicKey {
  let key: KeyObject;
  try {
    const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('latin1');
    if (text.includes('-----BEGIN')) {
      if (/-----BEGIN (ENCRYPTED )?PRIVATE KEY-----|-----BEGIN RSA PRIVATE KEY-----/.test(text)) throw new InvalidInputError(`${what} is a private key; give the public one`, { code: 'invalid_pem', hint: 'never copy the private key next to a package; use the .pub file' });
      key = createPublicKey({ key: text, format: 'pem' });
    } else key = createPublicKey({ key: Buffer.from(bytes as Uint8Array), format: 'der', type: 'spki' });
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    throw badPem(what, 'give the public key as SPKI PEM ("-----BEGIN PUBLIC KEY-----", e.g. `openssl pkey -pubout`), PKCS#1 PEM ("-----BEGIN RSA PUBLIC KEY-----") or SPKI DER');
  }
  return ersPublicKeyFromKeyObject(key, what);
}

/**
 * Parses an RSA private key (PKCS#8 or PKCS#1 PEM), encrypted ones with `passphrase`. Throws
 * InvalidInputError `invalid_pem`, `passphrase_required`, `wrong_passphrase`, `rsa_key_too_small`.
 */
export function parseErsPrivateKey(pem: Uint8Array, passphrase?: string, what = 'the ERS private key'): { key: KeyObject; public: ErsPublicKey } {
  const text = Buffer.from(pem).toString('latin1');
  const encrypted = text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----');
  if (encrypted && passphrase === undefined) throw new InvalidInputError(`${what} is encrypted under a passphrase`, { code: 'passphrase_required', hint: 'pass --passphrase-fd N (or type it when asked)' });
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: text, format: 'pem', ...(encrypted ? { passphrase } : {}) });
  } catch {
    if (encrypted) throw new InvalidInputError(`${what} does not open with that passphrase`, { code: 'wrong_passphrase' });
    throw badPem(what, 'give the PKCS#8 PEM file `lifeboat ers keygen` wrote ("-----BEGIN PRIVATE KEY-----")');
  }
  return { key, public: ersPublicKeyFromKeyObject(key, what) };
}

/**
 * A new RSA key pair: the private key as PKCS#8 PEM (encrypted with AES-256-CBC under `passphrase`
 * when given: PBES2 with scrypt, pkcs8.ts), the public key as SPKI PEM. Throws InvalidInputError for
 * a size other than 3072 or 4096.
 */
export function generateErsKeyPair(bits: number, passphrase?: string): { privatePem: string; publicPem: string; public: ErsPublicKey } {
  if (!(RSA_BITS_ALLOWED as readonly number[]).includes(bits)) throw new InvalidInputError(`--bits must be ${RSA_BITS_ALLOWED.join(' or ')}`, { code: bits < MIN_RSA_BITS ? 'rsa_key_too_small' : 'invalid_input' });
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: bits, publicExponent: 65537 });
  let privatePem: string;
  if (passphrase === undefined) privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  else {
    const der = privateKey.export({ type: 'pkcs8', format: 'der' });
    privatePem = encryptPkcs8Scrypt(der, passphrase);
    der.fill(0);
  }
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  return { privatePem, publicPem, public: ersPublicKeyFromKeyObject(publicKey, 'the new key') };
}

/** SPKI PEM of a public key. */
export function spkiPem(pub: ErsPublicKey): string {
  return pub.key.export({ type: 'spki', format: 'pem' }) as string;
}

/**
 * A standard RSA-OAEP-SHA256 decryption (empty label) of one ciphertext. Returns undefined when it does
 * not decrypt (wrong key, or a ciphertext that is not one): the caller tries the next row.
 */
export function oaepDecrypt(privateKey: KeyObject, ciphertext: Uint8Array): Uint8Array | undefined {
  try {
    return new Uint8Array(privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, ciphertext));
  } catch {
    return undefined;
  }
}
