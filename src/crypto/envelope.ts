/**
 * The XChaCha20-Poly1305 envelope every Lifeboat artefact that holds secrets is wrapped in
 * (docs/format.md, "Envelope"):
 *
 *   magic(4) || version(1) || headerLen(u16 BE) || header(headerLen) || nonce(24) || ciphertext || tag(16)
 *
 * Everything before the nonce is the associated data, so the header (and the version) cannot be
 * changed without the tag failing. Nonces are 24 random bytes. Pure: no I/O.
 *
 * XChaCha20-Poly1305 is composed as draft-irtf-cfrg-xchacha-03 §2.3 defines it: noble's HChaCha20
 * derives the subkey, node:crypto's ChaCha20-Poly1305 (RFC 8439) does the bulk work, about 10x
 * noble's speed (bench/bulk-aead.ts) and faster at every size, so there is one path. The output is
 * byte-identical to noble's xchacha20poly1305 (test/crypto-envelope-bulk.test.ts).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { hchacha } from '@noble/ciphers/chacha.js';
import { u32 } from '@noble/ciphers/utils.js';
import { DecryptionError, FormatError, InvalidInputError } from '../errors.js';
import { u16be, utf8, wipe } from '../util/bytes.js';
import { randomBytes } from './random.js';

export const NONCE_LEN = 24;
export const TAG_LEN = 16;
const PREFIX_LEN = 7;
/** Bytes per cipher update: small enough that each piece is still in cache when Poly1305 reads it. */
const CHUNK = 64 << 10;
/** "expand 32-byte k" as little-endian words; hchacha swaps its inputs itself on big-endian hosts. */
const SIGMA = u32(utf8.encode('expand 32-byte k'));

/** A parsed envelope: nothing in it is trusted until `openEnvelope` succeeds. */
export interface Envelope {
  version: number;
  header: Uint8Array;
  /** The associated data: magic, version, header length and header. */
  aad: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

function checkMagic(magic: string): Uint8Array {
  const m = utf8.encode(magic);
  if (m.length !== 4) throw new InvalidInputError('envelope magic must be 4 ASCII bytes');
  return m;
}

/**
 * Keys a node ChaCha20-Poly1305 cipher for XChaCha20 (draft-irtf-cfrg-xchacha-03 §2.3): subkey =
 * HChaCha20(key, nonce[0..16]), IETF nonce = 4 zero bytes || nonce[16..24]. Node copies the key into
 * its own context, so the subkey is wiped before this returns.
 */
function keyed<C>(key: Uint8Array, nonce: Uint8Array, make: (subkey: Uint8Array, iv: Uint8Array) => C): C {
  // key | nonce prefix | subkey, in one fresh buffer so every part is 4-byte aligned for u32 views
  const scratch = new Uint8Array(80);
  try {
    scratch.set(key, 0);
    scratch.set(nonce.subarray(0, 16), 32);
    hchacha(SIGMA, u32(scratch.subarray(0, 32)), u32(scratch.subarray(32, 48)), u32(scratch.subarray(48)));
    const iv = new Uint8Array(12);
    iv.set(nonce.subarray(16, 24), 4);
    return make(scratch.subarray(48), iv);
  } finally {
    wipe(scratch);
  }
}

/** Writes ciphertext || tag of `plaintext` into `out` at `at`, which must have room for both. */
function sealInto(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, at: number): void {
  const cipher = keyed(key, nonce, (subkey, iv) => createCipheriv('chacha20-poly1305', subkey, iv, { authTagLength: TAG_LEN }));
  cipher.setAAD(aad, { plaintextLength: plaintext.length });
  let o = at;
  for (let i = 0; i < plaintext.length; i += CHUNK) {
    const piece = cipher.update(plaintext.subarray(i, i + CHUNK));
    out.set(piece, o);
    o += piece.length;
  }
  const rest = cipher.final();
  out.set(rest, o);
  o += rest.length;
  if (o !== at + plaintext.length) throw new Error('chacha20-poly1305 returned a ciphertext of the wrong length');
  out.set(cipher.getAuthTag(), o);
}

/** Returns the plaintext of ciphertext || tag; throws (any error) unless node verified the tag. */
function openBytes(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array {
  if (nonce.length !== NONCE_LEN || sealed.length < TAG_LEN) throw new Error('malformed envelope');
  const ctLen = sealed.length - TAG_LEN;
  const decipher = keyed(key, nonce, (subkey, iv) => createDecipheriv('chacha20-poly1305', subkey, iv, { authTagLength: TAG_LEN }));
  decipher.setAAD(aad, { plaintextLength: ctLen });
  decipher.setAuthTag(sealed.subarray(ctLen));
  const out = new Uint8Array(ctLen);
  try {
    let o = 0;
    for (let i = 0; i < ctLen; i += CHUNK) {
      const piece = decipher.update(sealed.subarray(i, Math.min(i + CHUNK, ctLen)));
      out.set(piece, o);
      o += piece.length;
      wipe(piece);
    }
    // RFC 8439 §2.8: final() compares the tag and throws on a mismatch; until then `out` is unverified
    const rest = decipher.final();
    out.set(rest, o);
    o += rest.length;
    wipe(rest);
    if (o !== ctLen) throw new Error('chacha20-poly1305 returned a plaintext of the wrong length');
    return out;
  } catch (err) {
    wipe(out);
    throw err;
  }
}

/**
 * Encrypts `plaintext` under the 32-byte `key` with `header` bound as associated data. Throws
 * InvalidInputError for a magic that is not 4 bytes, a version outside 1..255, a header over
 * 65535 bytes or a key that is not 32 bytes.
 */
export function sealEnvelope(opts: { magic: string; version: number; header: Uint8Array; key: Uint8Array; plaintext: Uint8Array }): Uint8Array {
  const magic = checkMagic(opts.magic);
  if (!Number.isInteger(opts.version) || opts.version < 1 || opts.version > 255) throw new InvalidInputError('envelope version must be 1..255');
  if (opts.header.length > 0xffff) throw new InvalidInputError('envelope header must be at most 65535 bytes');
  if (opts.key.length !== 32) throw new InvalidInputError('envelope key must be 32 bytes');
  const aadLen = PREFIX_LEN + opts.header.length;
  const out = new Uint8Array(aadLen + NONCE_LEN + opts.plaintext.length + TAG_LEN);
  out.set(magic, 0);
  out[4] = opts.version;
  out.set(u16be(opts.header.length), 5);
  out.set(opts.header, PREFIX_LEN);
  const nonce = randomBytes(NONCE_LEN);
  out.set(nonce, aadLen);
  sealInto(opts.key, nonce, out.subarray(0, aadLen), opts.plaintext, out, aadLen + NONCE_LEN);
  return out;
}

/**
 * Parses an envelope without decrypting it. Throws FormatError: `bad_magic` when it is not this
 * artefact, `unsupported_version` for a version not in `versions`, `truncated` when bytes are missing.
 */
export function parseEnvelope(bytes: Uint8Array, opts: { magic: string; versions: readonly number[]; what: string }): Envelope {
  const magic = checkMagic(opts.magic);
  if (bytes.length < PREFIX_LEN) throw new FormatError('truncated', `${opts.what} is truncated`);
  for (let i = 0; i < 4; i++) {
    if (bytes[i] !== magic[i]) throw new FormatError('bad_magic', `not a ${opts.what} (bad magic)`);
  }
  const version = bytes[4]!;
  if (!opts.versions.includes(version)) {
    throw new FormatError('unsupported_version', `${opts.what} version ${version} is not supported (this build reads ${opts.versions.join(', ')})`, 'upgrade lifeboat to read files written by a newer version');
  }
  const headerLen = (bytes[5]! << 8) | bytes[6]!;
  const headerEnd = PREFIX_LEN + headerLen;
  if (bytes.length < headerEnd + NONCE_LEN + TAG_LEN) throw new FormatError('truncated', `${opts.what} is truncated`);
  return {
    version,
    header: bytes.subarray(PREFIX_LEN, headerEnd),
    aad: bytes.subarray(0, headerEnd),
    nonce: bytes.subarray(headerEnd, headerEnd + NONCE_LEN),
    ciphertext: bytes.subarray(headerEnd + NONCE_LEN),
  };
}

/**
 * Decrypts a parsed envelope into a fresh Uint8Array. Throws InvalidInputError for a key that is not
 * 32 bytes, and DecryptionError on a wrong key or any altered or missing byte, never saying which.
 */
export function openEnvelope(env: Envelope, key: Uint8Array, what = 'envelope'): Uint8Array {
  if (key.length !== 32) throw new InvalidInputError('envelope key must be 32 bytes');
  try {
    return openBytes(key, env.nonce, env.aad, env.ciphertext);
  } catch {
    throw new DecryptionError(`${what} does not decrypt: wrong key or tampered data`);
  }
}
