/**
 * RSAES-OAEP encryption with a caller-chosen seed (RFC 8017 section 7.1.1, SHA-256, MGF1-SHA-256, empty
 * label), followed by raw RSA. The ciphertext is an ordinary RSA-OAEP-SHA256 ciphertext: any standard
 * decryptor (an HSM, `openssl pkeyutl -decrypt -pkeyopt rsa_padding_mode:oaep -pkeyopt
 * rsa_oaep_md:sha256`, node's privateDecrypt) opens it. The chosen seed makes it re-computable by a
 * verifier who is shown the seed (docs/ers.md, "Encryption").
 */
import { constants, createHash, type KeyObject, publicEncrypt } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { InvalidInputError } from '../errors.js';
import { u32be } from '../util/bytes.js';

const HLEN = 32;
/** SHA-256 of the empty label (RFC 8017 7.1.1 step 2a). */
const LHASH = sha256(new Uint8Array(0));

/** MGF1 with SHA-256 (RFC 8017 appendix B.2.1): `len` bytes of mask from `seed`. */
export function mgf1(seed: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(len);
  // node's native SHA-256 (OpenSSL): a 3072-bit OAEP encoding hashes 12 blocks, 192 of them per proof
  for (let counter = 0, off = 0; off < len; counter++, off += HLEN) {
    const block = createHash('sha256').update(seed).update(u32be(counter)).digest();
    out.set(block.subarray(0, Math.min(HLEN, len - off)), off);
    block.fill(0);
  }
  return out;
}

/**
 * EME-OAEP encoding (RFC 8017 7.1.1 step 2) of `message` for a `k`-byte modulus with the given 32-byte
 * `seed`: `0x00 || maskedSeed || maskedDB`. Throws InvalidInputError when the message is too long for k.
 */
export function emeOaepEncode(message: Uint8Array, seed: Uint8Array, k: number): Uint8Array {
  if (seed.length !== HLEN) throw new InvalidInputError('oaep seed must be 32 bytes');
  if (message.length > k - 2 * HLEN - 2) throw new InvalidInputError('message too long for this rsa key');
  const dbLen = k - HLEN - 1;
  const db = new Uint8Array(dbLen);
  db.set(LHASH, 0);
  db[dbLen - message.length - 1] = 0x01;
  db.set(message, dbLen - message.length);
  const dbMask = mgf1(seed, dbLen);
  for (let i = 0; i < dbLen; i++) db[i]! ^= dbMask[i]!;
  const seedMask = mgf1(db, HLEN);
  const em = new Uint8Array(k);
  for (let i = 0; i < HLEN; i++) em[1 + i] = seed[i]! ^ seedMask[i]!;
  em.set(db, 1 + HLEN);
  db.fill(0);
  return em;
}

/**
 * RSA-OAEP-SHA256 encryption of `message` under `publicKey` (a node KeyObject of `k`-byte modulus) with
 * the chosen `seed`: deterministic in (message, seed). Returns k bytes.
 */
export function oaepEncryptWithSeed(publicKey: KeyObject, k: number, message: Uint8Array, seed: Uint8Array): Uint8Array {
  const em = emeOaepEncode(message, seed, k);
  try {
    return new Uint8Array(publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, em));
  } finally {
    em.fill(0);
  }
}
