/**
 * The vault file (docs/format.md, "Vault file"): an envelope with magic "LBVT", version 1, and the
 * 64-byte header
 *
 *   scheme_id(16) || master_fingerprint(32) || generation(u64 BE) || created_at(u64 BE, unix ms)
 *
 * bound as associated data. The plaintext is the JSON of ./contents.ts. Keys come from the master key:
 *   fingerprint = HKDF-SHA256(master, salt = scheme_id, info = "lifeboat:vault-master-fingerprint")
 *   data key    = HKDF-SHA256(master, salt = scheme_id, info = "lifeboat:vault-data-key")
 * The header is readable without a key (share holders keep copies and refuse rollbacks by generation;
 * recovery checks a combined master key against the fingerprint before anything is decrypted).
 * Pure: no I/O.
 */
import { openEnvelope, parseEnvelope, sealEnvelope, type Envelope } from '../crypto/envelope.js';
import { deriveKey } from '../crypto/kdf.js';
import { FormatError, InvalidInputError, ShareError } from '../errors.js';
import { concatBytes, ctEqual, toHex, wipe } from '../util/bytes.js';
import { encodeVaultPlaintext, MAX_VAULT_FILE_BYTES, parseVaultPlaintext, wipeContents, type VaultContents } from './contents.js';

export const VAULT_MAGIC = 'LBVT';
export const VAULT_VERSION = 1;
export const SCHEME_ID_LEN = 16;
export const FINGERPRINT_LEN = 32;
export const MASTER_KEY_LEN = 32;
export const VAULT_HEADER_LEN = SCHEME_ID_LEN + FINGERPRINT_LEN + 8 + 8;
const WHAT = 'lifeboat vault';

/** The vault header: public, authenticated only once the vault is opened with the right key. */
export interface VaultHeader {
  /** Which split of which master key the vault belongs to (16 bytes). */
  schemeId: Uint8Array;
  /** HKDF of the master key: lets a candidate key be checked before any decryption (32 bytes). */
  fingerprint: Uint8Array;
  /** 1 for a new vault, +1 on every write. At most 2^53 - 1. */
  generation: number;
  /** When this generation was written, unix milliseconds. */
  createdAt: number;
}

function assertBytes(b: Uint8Array, len: number, what: string): void {
  if (!(b instanceof Uint8Array) || b.length !== len) throw new InvalidInputError(`${what} must be ${len} bytes`);
}

function assertU53(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidInputError(`${what} must be an integer in 0..2^53-1`);
}

function u64be(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

/** Encodes the 64-byte header. Throws InvalidInputError on a wrong length or an out-of-range number. */
export function encodeVaultHeader(h: VaultHeader): Uint8Array {
  assertBytes(h.schemeId, SCHEME_ID_LEN, 'scheme id');
  assertBytes(h.fingerprint, FINGERPRINT_LEN, 'master fingerprint');
  assertU53(h.generation, 'generation');
  if (h.generation < 1) throw new InvalidInputError('generation must be at least 1');
  assertU53(h.createdAt, 'created_at');
  return concatBytes(h.schemeId, h.fingerprint, u64be(h.generation), u64be(h.createdAt));
}

/**
 * Parses the 64-byte header (the envelope's header field). Throws FormatError `malformed` on another
 * length, a generation of 0, or a number past 2^53 - 1.
 */
export function parseVaultHeader(header: Uint8Array): VaultHeader {
  if (header.length !== VAULT_HEADER_LEN) throw new FormatError('malformed', `vault header is ${header.length} bytes, expected ${VAULT_HEADER_LEN}`);
  const dv = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const generation = dv.getBigUint64(SCHEME_ID_LEN + FINGERPRINT_LEN);
  const createdAt = dv.getBigUint64(SCHEME_ID_LEN + FINGERPRINT_LEN + 8);
  if (generation < 1n || generation > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError('malformed', 'vault generation is out of range');
  if (createdAt > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError('malformed', 'vault created_at is out of range');
  return {
    schemeId: header.slice(0, SCHEME_ID_LEN),
    fingerprint: header.slice(SCHEME_ID_LEN, SCHEME_ID_LEN + FINGERPRINT_LEN),
    generation: Number(generation),
    createdAt: Number(createdAt),
  };
}

/**
 * Reads the header of a vault file without a key. Throws FormatError: `bad_magic` (not a vault),
 * `unsupported_version`, `truncated`, `malformed` (also for more bytes than any vault has).
 */
export function readVaultHeader(bytes: Uint8Array): VaultHeader {
  return parseVaultHeader(parseVaultEnvelope(bytes).header);
}

function parseVaultEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length > MAX_VAULT_FILE_BYTES) throw new FormatError('malformed', `a vault of ${bytes.length} bytes is larger than any valid vault`);
  return parseEnvelope(bytes, { magic: VAULT_MAGIC, versions: [VAULT_VERSION], what: WHAT });
}

/** The master key's fingerprint for `schemeId`. Throws InvalidInputError on wrong lengths. */
export function masterFingerprint(masterKey: Uint8Array, schemeId: Uint8Array): Uint8Array {
  assertBytes(masterKey, MASTER_KEY_LEN, 'master key');
  assertBytes(schemeId, SCHEME_ID_LEN, 'scheme id');
  return deriveKey(masterKey, schemeId, 'vault-master-fingerprint', FINGERPRINT_LEN);
}

/**
 * Checks `masterKey` against the vault's fingerprint (constant time), before any decryption.
 * Throws ShareError `wrong_master_key` when it does not match, FormatError when `vault` is bytes
 * that are not a vault, InvalidInputError on a key of the wrong length.
 */
export function checkMasterKey(vault: Uint8Array | VaultHeader, masterKey: Uint8Array): void {
  const header = vault instanceof Uint8Array ? readVaultHeader(vault) : vault;
  const fp = masterFingerprint(masterKey, header.schemeId);
  const ok = ctEqual(fp, header.fingerprint);
  wipe(fp);
  if (!ok) {
    throw new ShareError(
      'wrong_master_key',
      `the master key does not match the vault of recovery scheme ${toHex(header.schemeId)}`,
      'the shares were combined from another scheme, or typed wrongly; check them with `lifeboat recovery verify`',
    );
  }
}

function seal(contents: VaultContents, masterKey: Uint8Array, schemeId: Uint8Array, generation: number): Uint8Array {
  const plaintext = encodeVaultPlaintext(contents);
  const header = encodeVaultHeader({ schemeId, fingerprint: masterFingerprint(masterKey, schemeId), generation, createdAt: Date.now() });
  const key = deriveKey(masterKey, schemeId, 'vault-data-key');
  try {
    return sealEnvelope({ magic: VAULT_MAGIC, version: VAULT_VERSION, header, key, plaintext });
  } finally {
    wipe(key, plaintext);
  }
}

/** The bytes of a new, empty vault (generation 1). Throws InvalidInputError on wrong lengths. */
export function createVault(masterKey: Uint8Array, schemeId: Uint8Array): Uint8Array {
  return seal({ entries: new Map() }, masterKey, schemeId, 1);
}

/**
 * Encrypts `contents` as the next generation after `previousGeneration` (0 for a new vault).
 * Throws InvalidInputError: a name, value, count or total over the limits (see contents.ts), wrong
 * key or scheme id lengths, or a generation out of range.
 */
export function sealVault(contents: VaultContents, masterKey: Uint8Array, schemeId: Uint8Array, previousGeneration: number): Uint8Array {
  assertU53(previousGeneration, 'previous generation');
  if (previousGeneration >= Number.MAX_SAFE_INTEGER) throw new InvalidInputError('vault generation would overflow');
  assertBytes(masterKey, MASTER_KEY_LEN, 'master key');
  assertBytes(schemeId, SCHEME_ID_LEN, 'scheme id');
  return seal(contents, masterKey, schemeId, previousGeneration + 1);
}

/**
 * Decrypts a vault. The master key is checked against the fingerprint first, so a wrong key is
 * never used to decrypt. Throws FormatError (`bad_magic`, `unsupported_version`, `truncated`,
 * `malformed` header or contents), ShareError `wrong_master_key`, DecryptionError when the file
 * was altered, InvalidInputError on a key of the wrong length.
 */
export function openVault(bytes: Uint8Array, masterKey: Uint8Array): VaultContents {
  const env = parseVaultEnvelope(bytes);
  const header = parseVaultHeader(env.header);
  checkMasterKey(header, masterKey);
  const key = deriveKey(masterKey, header.schemeId, 'vault-data-key');
  let plaintext: Uint8Array | undefined;
  try {
    plaintext = openEnvelope(env, key, 'the vault');
    return parseVaultPlaintext(plaintext);
  } finally {
    wipe(key, plaintext);
  }
}

/**
 * Re-encrypts a vault under a new master key and scheme (rotation), keeping every entry and its
 * time; the new generation is the old one plus one, so holders accept it as newer. Throws as
 * openVault for the old key and as sealVault for the new one.
 */
export function reencryptVault(bytes: Uint8Array, oldMasterKey: Uint8Array, newMasterKey: Uint8Array, newSchemeId: Uint8Array): Uint8Array {
  const { generation } = readVaultHeader(bytes);
  const contents = openVault(bytes, oldMasterKey);
  try {
    return sealVault(contents, newMasterKey, newSchemeId, generation);
  } finally {
    wipeContents(contents);
  }
}

export { type VaultContents, type VaultEntry, type VaultEntryInfo } from './contents.js';
