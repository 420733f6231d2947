/**
 * The XChaCha20-Poly1305 envelope every Lifeboat artefact that holds secrets is wrapped in
 * (docs/format.md, "Envelope"):
 *
 *   magic(4) || version(1) || headerLen(u16 BE) || header(headerLen) || nonce(24) || ciphertext || tag(16)
 *
 * Everything before the nonce is the associated data, so the header (and the version) cannot be
 * changed without the tag failing. Nonces are 24 random bytes. Pure: no I/O.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { DecryptionError, FormatError, InvalidInputError } from '../errors.js';
import { concatBytes, u16be, utf8 } from '../util/bytes.js';
import { randomBytes } from './random.js';

export const NONCE_LEN = 24;
export const TAG_LEN = 16;
const PREFIX_LEN = 7;

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

/** Encrypts `plaintext` under the 32-byte `key` with `header` bound as associated data. */
export function sealEnvelope(opts: { magic: string; version: number; header: Uint8Array; key: Uint8Array; plaintext: Uint8Array }): Uint8Array {
  const magic = checkMagic(opts.magic);
  if (!Number.isInteger(opts.version) || opts.version < 1 || opts.version > 255) throw new InvalidInputError('envelope version must be 1..255');
  if (opts.header.length > 0xffff) throw new InvalidInputError('envelope header must be at most 65535 bytes');
  if (opts.key.length !== 32) throw new InvalidInputError('envelope key must be 32 bytes');
  const aad = concatBytes(magic, new Uint8Array([opts.version]), u16be(opts.header.length), opts.header);
  const nonce = randomBytes(NONCE_LEN);
  const ct = xchacha20poly1305(opts.key, nonce, aad).encrypt(opts.plaintext);
  return concatBytes(aad, nonce, ct);
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

/** Decrypts a parsed envelope. Throws DecryptionError on a wrong key or any altered byte. */
export function openEnvelope(env: Envelope, key: Uint8Array, what = 'envelope'): Uint8Array {
  if (key.length !== 32) throw new InvalidInputError('envelope key must be 32 bytes');
  try {
    return xchacha20poly1305(key, env.nonce, env.aad).decrypt(env.ciphertext);
  } catch {
    throw new DecryptionError(`${what} does not decrypt: wrong key or tampered data`);
  }
}
