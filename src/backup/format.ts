/**
 * The backup stream's byte formats (docs/format.md, "Backup stream"; docs/backup.md). Pure: no I/O.
 *
 *   entry (LBBE v1)       envelope, header = lp(stream) || seq (u64 BE) || prev (32)
 *   compaction (LBBC v1)  envelope, header = lp(stream) || seq (u64 BE) || head (32)
 *   wrapped key (LBBK v1) envelope, header = lp(account) || auth public key (32)
 *
 * In headers lp(x) is a u16 BE length and the bytes; in key-derivation salts it is `lengthPrefixed`
 * (u32 BE lengths). Entry and compaction keys are derived from the backup key with the stream and seq
 * bound in; the whole header is associated data as in every envelope.
 */
import { createHash } from 'node:crypto';
import { FormatError, InvalidInputError, LifeboatError } from '../errors.js';
import { openEnvelope, parseEnvelope, sealEnvelope } from '../crypto/envelope.js';
import { deriveKey } from '../crypto/kdf.js';
import { signingKeyPairFromSeed, type SigningKeyPair } from '../crypto/sign.js';
import { concatBytes, ctEqual, lengthPrefixed, u16be, utf8, wipe } from '../util/bytes.js';

export const ENTRY_MAGIC = 'LBBE';
export const COMPACTION_MAGIC = 'LBBC';
export const WRAPPED_KEY_MAGIC = 'LBBK';
const VERSION = 1;
export const HASH_LEN = 32;
/** The `prev` of entry 1 and the `head` of nothing. */
export const ZERO_HASH = new Uint8Array(HASH_LEN);
/** Account and stream names: 1 to 64 of these. */
export const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/** Throws InvalidInputError naming `what` unless `name` is 1 to 64 of [A-Za-z0-9_.-]. */
export function checkName(name: unknown, what: string): string {
  if (typeof name !== 'string' || !NAME_RE.test(name)) throw new InvalidInputError(`${what} must be 1 to 64 of A-Z a-z 0-9 _ . -`);
  return name;
}

function checkSeq(seq: unknown, min: number): number {
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < min) throw new InvalidInputError(`seq must be an integer >= ${min}`);
  return seq;
}

function u64be(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

function lp16(s: string): Uint8Array {
  const b = utf8.encode(s);
  return concatBytes(u16be(b.length), b);
}

/** SHA-256 of an entry's or a compaction's bytes: what the chain and the service name it by. */
export function hashBlob(bytes: Uint8Array): Uint8Array {
  // node's native SHA-256 (several times noble's on the service's ingest path); same digest.
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

/** The header of an entry or a compaction: where it belongs and what precedes it. Not trusted before it opens. */
export interface StreamHeader {
  stream: string;
  seq: number;
  /** Entry: the previous entry's hash. Compaction: the hash of entry `seq` (the head it covers). */
  link: Uint8Array;
}

function encodeHeader(h: StreamHeader): Uint8Array {
  checkName(h.stream, 'stream');
  checkSeq(h.seq, 0);
  if (!(h.link instanceof Uint8Array) || h.link.length !== HASH_LEN) throw new InvalidInputError('link hash must be 32 bytes');
  return concatBytes(lp16(h.stream), u64be(h.seq), h.link);
}

/** Fatal on bad UTF-8; one decoder for every header (a whole-input decode keeps no state). */
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

function decodeHeader(header: Uint8Array, what: string): StreamHeader {
  const bad = () => new FormatError('malformed', `${what} header is malformed`);
  if (header.length < 2) throw bad();
  const len = (header[0]! << 8) | header[1]!;
  if (header.length !== 2 + len + 8 + HASH_LEN) throw bad();
  let stream: string;
  try {
    stream = STRICT_UTF8.decode(header.subarray(2, 2 + len));
  } catch {
    throw bad();
  }
  if (!NAME_RE.test(stream)) throw bad();
  const seq = new DataView(header.buffer, header.byteOffset + 2 + len, 8).getBigUint64(0);
  if (seq > BigInt(MAX_SEQ)) throw bad();
  return { stream, seq: Number(seq), link: header.slice(2 + len + 8) };
}

function blobKey(backupKey: Uint8Array, kind: 'entry' | 'compaction', stream: string, seq: number): Uint8Array {
  if (!(backupKey instanceof Uint8Array) || backupKey.length !== 32) throw new InvalidInputError('backup key must be 32 bytes');
  return deriveKey(backupKey, lengthPrefixed(utf8.encode(stream), u64be(seq)), `backup/${kind}/v1`);
}

const BLOBS = { entry: { magic: ENTRY_MAGIC, what: 'backup entry' }, compaction: { magic: COMPACTION_MAGIC, what: 'backup compaction' } } as const;

/** Seals an entry or a compaction under its own derived key, its header bound as associated data. */
function sealBlob(kind: 'entry' | 'compaction', backupKey: Uint8Array, h: StreamHeader, plaintext: Uint8Array): Uint8Array {
  checkSeq(h.seq, 1);
  const header = encodeHeader(h);
  const key = blobKey(backupKey, kind, h.stream, h.seq);
  try {
    return sealEnvelope({ magic: BLOBS[kind].magic, version: VERSION, header, key, plaintext });
  } finally {
    wipe(key);
  }
}

/** Opens an entry or a compaction after `check` accepted its header; the key comes from the header's stream and seq. */
function openBlob(kind: 'entry' | 'compaction', backupKey: Uint8Array, bytes: Uint8Array, check: (h: StreamHeader) => void): { h: StreamHeader; plaintext: Uint8Array } {
  const env = parseEnvelope(bytes, { magic: BLOBS[kind].magic, versions: [VERSION], what: BLOBS[kind].what });
  const h = decodeHeader(env.header, BLOBS[kind].what);
  check(h);
  const key = blobKey(backupKey, kind, h.stream, h.seq);
  try {
    return { h, plaintext: openEnvelope(env, key, `${BLOBS[kind].what} ${h.seq}`) };
  } finally {
    wipe(key);
  }
}

/** Encrypts one change as entry `seq` of `stream`, chained to `prev` (ZERO_HASH for seq 1). */
export function sealEntry(backupKey: Uint8Array, h: { stream: string; seq: number; prev: Uint8Array }, plaintext: Uint8Array): Uint8Array {
  return sealBlob('entry', backupKey, { stream: h.stream, seq: h.seq, link: h.prev }, plaintext);
}

/** Reads an entry's header without decrypting (what the service checks). Throws FormatError. */
export function parseEntryHeader(bytes: Uint8Array): StreamHeader {
  const env = parseEnvelope(bytes, { magic: ENTRY_MAGIC, versions: [VERSION], what: 'backup entry' });
  const h = decodeHeader(env.header, 'backup entry');
  if (h.seq < 1) throw new FormatError('malformed', 'backup entry seq must be at least 1');
  return h;
}

/**
 * Opens an entry that must be entry `seq` of `stream`. Throws FormatError (`bad_magic`,
 * `unsupported_version`, `truncated`, `malformed`), LifeboatError `entry_misplaced` when it names
 * another stream or seq (a replay or a reorder), DecryptionError when it was altered or the key is wrong.
 */
export function openEntry(backupKey: Uint8Array, bytes: Uint8Array, expect: { stream: string; seq: number }): { prev: Uint8Array; plaintext: Uint8Array } {
  const { h, plaintext } = openBlob('entry', backupKey, bytes, (h) => {
    if (h.stream !== expect.stream || h.seq !== expect.seq) {
      throw new LifeboatError('entry_misplaced', `backup entry names ${h.stream}#${h.seq} where ${expect.stream}#${expect.seq} belongs (replayed or reordered)`, { status: 400, safety: true });
    }
  });
  return { prev: h.link, plaintext };
}

/** Encrypts a whole node state as a compaction of `stream` covering entries up to `seq` (whose hash is `head`). */
export function sealCompaction(backupKey: Uint8Array, h: { stream: string; seq: number; head: Uint8Array }, plaintext: Uint8Array): Uint8Array {
  return sealBlob('compaction', backupKey, { stream: h.stream, seq: h.seq, link: h.head }, plaintext);
}

/** Reads a compaction's header (or the first chunk's) without decrypting. Throws FormatError. */
export function parseCompactionHeader(bytes: Uint8Array): StreamHeader {
  const env = parseEnvelope(bytes, { magic: COMPACTION_MAGIC, versions: [VERSION], what: 'backup compaction' });
  return decodeHeader(env.header, 'backup compaction');
}

/** Opens a compaction that must belong to `stream`. Throws like openEntry (`entry_misplaced` for another stream). */
export function openCompaction(backupKey: Uint8Array, bytes: Uint8Array, expect: { stream: string }): { seq: number; head: Uint8Array; plaintext: Uint8Array } {
  const { h, plaintext } = openBlob('compaction', backupKey, bytes, (h) => {
    if (h.stream !== expect.stream) throw new LifeboatError('entry_misplaced', `backup compaction belongs to stream ${h.stream}, not ${expect.stream}`, { status: 400, safety: true });
  });
  return { seq: h.seq, head: h.link, plaintext };
}

/** The Ed25519 key that proves possession of the backup key to the service; wipe its secretKey when done. */
export function backupAuthKey(backupKey: Uint8Array): SigningKeyPair {
  if (!(backupKey instanceof Uint8Array) || backupKey.length !== 32) throw new InvalidInputError('backup key must be 32 bytes');
  // The pair keeps the seed as its secret key: the caller wipes it when done.
  return signingKeyPairFromSeed(deriveKey(backupKey, new Uint8Array(0), 'backup/auth/v1'));
}

/** The signing context and message of a session proof (docs/backup.md). */
export const SESSION_CONTEXT = 'lifeboat/backup/session/v1';
export function sessionProofMessage(account: string, challenge: Uint8Array): Uint8Array {
  return concatBytes(lengthPrefixed(utf8.encode(checkName(account, 'account'))), challenge);
}

function wrapKeyFrom(exportKey: Uint8Array, account: string): Uint8Array {
  if (!(exportKey instanceof Uint8Array) || exportKey.length < 32) throw new InvalidInputError('export key must be at least 32 bytes');
  return deriveKey(exportKey, utf8.encode(account), 'backup/wrap/v1');
}

/** Wraps the backup key under the OPAQUE export key; the header names the account and the auth public key. */
export function wrapBackupKey(exportKey: Uint8Array, account: string, backupKey: Uint8Array): Uint8Array {
  const key = wrapKeyFrom(exportKey, account);
  try {
    return wrapBackupKeyWith(key, account, backupKey);
  } finally {
    wipe(key);
  }
}

/** Wraps the backup key under a 32-byte wrapping key (a wallet account's, src/backup/wallet.ts walletWrapKey). */
export function wrapBackupKeyWith(wrapKey: Uint8Array, account: string, backupKey: Uint8Array): Uint8Array {
  checkName(account, 'account');
  const auth = backupAuthKey(backupKey);
  try {
    return sealEnvelope({ magic: WRAPPED_KEY_MAGIC, version: VERSION, header: concatBytes(lp16(account), auth.publicKey), key: wrapKey, plaintext: backupKey });
  } finally {
    wipe(auth.secretKey);
  }
}

/** The account and auth public key a wrapped key names (what the service checks). Throws FormatError. */
export function parseWrappedKeyHeader(bytes: Uint8Array): { account: string; authPublicKey: Uint8Array } {
  const env = parseEnvelope(bytes, { magic: WRAPPED_KEY_MAGIC, versions: [VERSION], what: 'wrapped backup key' });
  const bad = () => new FormatError('malformed', 'wrapped backup key header is malformed');
  if (env.header.length < 2) throw bad();
  const len = (env.header[0]! << 8) | env.header[1]!;
  if (env.header.length !== 2 + len + 32) throw bad();
  const account = utf8.decode(env.header.subarray(2, 2 + len));
  if (!NAME_RE.test(account)) throw bad();
  return { account, authPublicKey: env.header.slice(2 + len) };
}

/**
 * Unwraps the backup key with the export key of a login to `account`. Throws FormatError, DecryptionError
 * (wrong export key or altered), LifeboatError `wrong_backup_key` when the key inside does not derive
 * the auth public key the header names.
 */
export function unwrapBackupKey(exportKey: Uint8Array, account: string, wrapped: Uint8Array): Uint8Array {
  const key = wrapKeyFrom(exportKey, account);
  try {
    return unwrapBackupKeyWith(key, account, wrapped);
  } finally {
    wipe(key);
  }
}

/** Unwraps the backup key with a 32-byte wrapping key. Throws like unwrapBackupKey. */
export function unwrapBackupKeyWith(wrapKey: Uint8Array, account: string, wrapped: Uint8Array): Uint8Array {
  const h = parseWrappedKeyHeader(wrapped);
  if (h.account !== account) throw new FormatError('malformed', `the wrapped backup key belongs to account ${h.account}, not ${account}`);
  const env = parseEnvelope(wrapped, { magic: WRAPPED_KEY_MAGIC, versions: [VERSION], what: 'wrapped backup key' });
  const backupKey = openEnvelope(env, wrapKey, 'wrapped backup key');
  const auth = backupAuthKey(backupKey);
  wipe(auth.secretKey);
  if (backupKey.length !== 32 || !ctEqual(auth.publicKey, h.authPublicKey)) {
    wipe(backupKey);
    throw new LifeboatError('wrong_backup_key', 'the wrapped key is not the backup key this account was registered with', { status: 400 });
  }
  return backupKey;
}
