/**
 * The two ways a key-share backup is encrypted, both age v1 (age-encryption) so standard tools open
 * them (docs/keyshare.md, "Two modes"):
 *   passphrase  one scrypt stanza, passphrase = the normalised mnemonic, work factor PASSPHRASE_LOG_N
 *   recipient   one mlkem768x25519 stanza to the hybrid post-quantum recipient derived from the mnemonic
 * Plain X25519 (`age1…` without `pq`) is refused: a published ciphertext lives forever, and a quantum
 * computer later would open it (harvest now, decrypt later).
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bech32 } from '@scure/base';
import { Decrypter, Encrypter, identityToRecipient } from 'age-encryption';
import { deriveKey } from '../crypto/kdf.js';
import { InvalidInputError } from '../errors.js';
import { concatBytes, utf8, wipe } from '../util/bytes.js';
import { ScryptIdentity, ScryptKeys, ScryptRecipient } from './age-scrypt.js';
import { KeyshareError } from './errors.js';
import type { Mnemonic } from './mnemonic.js';

/**
 * scrypt log2(N) for passphrase-mode backups (r = 8, p = 1). Low on purpose: the passphrase is a
 * checked 256-bit mnemonic, so brute force costs 2^255 scrypt runs at any N; N only slows the owner's
 * recovery. Measured in bench/keyshare.ts; argued in docs/keyshare.md, "The scrypt work factor".
 */
export const PASSPHRASE_LOG_N = 10;
/** The most a reader accepts in a record: more would let a record cost a reader seconds and 128 MiB+ each. */
export const MAX_LOG_N = 16;

export type BackupMode = 'passphrase' | 'recipient';

const SALT = utf8.encode('lifeboat:keyshare');
const AGE_HEADER = utf8.encode('age-encryption.org/v1\n');

/** The age identity (`AGE-SECRET-KEY-PQ-1…`) the words derive: HKDF-SHA256(entropy, "lifeboat:keyshare", "lifeboat:keyshare/age-pq-identity/v1"). Secret. */
export function deriveAgeIdentity(m: Mnemonic): string {
  const seed = deriveKey(m.entropy, SALT, 'keyshare/age-pq-identity/v1');
  try {
    return bech32.encodeFromBytes('AGE-SECRET-KEY-PQ-', seed).toUpperCase();
  } finally {
    wipe(seed);
  }
}

/** The hybrid recipient (`age1pq1…`, public) of the words' identity. */
export async function deriveAgeRecipient(m: Mnemonic): Promise<string> {
  return identityToRecipient(deriveAgeIdentity(m));
}

/**
 * 16 public bytes that tell whether a mnemonic is the one a node's backups were made under, without
 * decrypting: HMAC-SHA256(HKDF(entropy, "lifeboat:keyshare", "lifeboat:keyshare/mnemonic-check/v1"),
 * node signing key || node box key), first 16 bytes. Per node, so two nodes of one operator do not share it.
 */
export function mnemonicCheck(m: Mnemonic, node: { signingPublicKey: Uint8Array; boxPublicKey: Uint8Array }): Uint8Array {
  const k = deriveKey(m.entropy, SALT, 'keyshare/mnemonic-check/v1');
  try {
    return hmac(sha256, k, concatBytes(node.signingPublicKey, node.boxPublicKey)).slice(0, 16);
  } finally {
    wipe(k);
  }
}

/**
 * Checks a recipient for published backups: a hybrid `age1pq1…` of 1216 bytes. Throws KeyshareError
 * `keyshare_recipient_refused` for a plain X25519 `age1…`, InvalidInputError for anything else.
 */
export function checkRecipient(recipient: string): string {
  if (typeof recipient !== 'string') throw new InvalidInputError('the age recipient must be text');
  if (/^age1(?!pq1)[02-9ac-hj-np-z]+$/.test(recipient)) {
    throw new KeyshareError('keyshare_recipient_refused', 'a plain x25519 age recipient is refused for published backups', 'a public ciphertext lives forever: use the hybrid post-quantum recipient (age1pq1…) that `lifeboat keyshare identity` derives');
  }
  let ok = false;
  try {
    const { prefix, words } = bech32.decode(recipient as `${string}1${string}`, false);
    ok = prefix === 'age1pq' && bech32.fromWords(words).length === 1216;
  } catch {
    ok = false;
  }
  if (!ok) throw new InvalidInputError('the age recipient is not a hybrid post-quantum recipient (age1pq1…)');
  return recipient;
}

/** The one stanza of an age file's header, as far as a reader must know it before decrypting. */
export type AgeStanza = { kind: 'scrypt'; logN: number } | { kind: 'mlkem768x25519' };

/**
 * Reads the stanza of an age v1 file's header. Throws KeyshareError `keyshare_recipient_refused` for
 * any other stanza than one scrypt or one mlkem768x25519 (X25519 included), InvalidInputError when it
 * is not an age v1 file, and for a scrypt work factor over MAX_LOG_N.
 */
export function ageStanza(file: Uint8Array): AgeStanza {
  const bad = (why: string): never => {
    throw new InvalidInputError(`the backup ciphertext is not an age v1 file: ${why}`);
  };
  if (file.length < AGE_HEADER.length || !AGE_HEADER.every((b, i) => file[i] === b)) bad('no age header');
  // the header is ASCII up to the "--- " MAC line; the payload after it is binary
  const end = Math.min(file.length, 8192);
  let text = '';
  for (let i = 0; i < end; i++) text += String.fromCharCode(file[i]!);
  const macAt = text.indexOf('\n--- ');
  if (macAt < 0) bad('no header mac');
  const stanzas = text.slice(AGE_HEADER.length, macAt + 1).split('\n').filter((l) => l.startsWith('-> '));
  if (stanzas.length !== 1) {
    throw new KeyshareError('keyshare_recipient_refused', `the backup has ${stanzas.length} age stanzas, not one`, 'a key-share backup is made to one scrypt passphrase or one hybrid recipient');
  }
  const args = stanzas[0]!.slice(3).split(' ');
  if (args[0] === 'scrypt' && args.length === 3 && /^[1-9][0-9]?$/.test(args[2]!)) {
    const logN = Number(args[2]);
    if (logN > MAX_LOG_N) throw new InvalidInputError(`the backup's scrypt work factor 2^${logN} is over the 2^${MAX_LOG_N} a reader accepts`);
    return { kind: 'scrypt', logN };
  }
  if (args[0] === 'mlkem768x25519' && args.length === 2) return { kind: 'mlkem768x25519' };
  throw new KeyshareError('keyshare_recipient_refused', `the backup's age stanza is of type ${JSON.stringify(String(args[0]).slice(0, 32))}, refused`, 'only scrypt (passphrase mode) and mlkem768x25519 (recipient mode) are accepted');
}

/**
 * Encrypts to the passphrase (the normalised mnemonic) with an scrypt stanza of PASSPHRASE_LOG_N, on
 * Node's native scrypt (age-scrypt.ts). `keys` keeps the wrapping key for a decrypt-back check of the
 * same file (decryptWithMnemonic with the same keys); without it, the key is wiped here.
 */
export async function encryptToPassphrase(phrase: string, plaintext: Uint8Array, logN = PASSPHRASE_LOG_N, keys?: ScryptKeys): Promise<Uint8Array> {
  const own = keys ?? new ScryptKeys(phrase);
  try {
    const e = new Encrypter();
    e.addRecipient(new ScryptRecipient(own, logN));
    return await e.encrypt(plaintext);
  } finally {
    if (!keys) own.wipe();
  }
}

/** Encrypts to a checked hybrid recipient. */
export async function encryptToRecipient(recipient: string, plaintext: Uint8Array): Promise<Uint8Array> {
  const e = new Encrypter();
  e.addRecipient(checkRecipient(recipient));
  return e.encrypt(plaintext);
}

/**
 * Decrypts an age file with the mnemonic: the passphrase for an scrypt stanza (native scrypt; `keys`
 * from the encryption of the same seal skip a second derivation), the derived identity for an
 * mlkem768x25519 one. Returns null when it does not open (wrong words, or altered bytes); throws
 * what ageStanza throws.
 */
export async function decryptWithMnemonic(m: Mnemonic, file: Uint8Array, keys?: ScryptKeys): Promise<Uint8Array | null> {
  const stanza = ageStanza(file);
  const d = new Decrypter();
  const own = stanza.kind === 'scrypt' ? (keys ?? new ScryptKeys(m.phrase)) : undefined;
  if (own) d.addIdentity(new ScryptIdentity(own, MAX_LOG_N));
  else d.addIdentity(deriveAgeIdentity(m));
  try {
    return await d.decrypt(file);
  } catch {
    return null;
  } finally {
    if (own && !keys) own.wipe();
  }
}
