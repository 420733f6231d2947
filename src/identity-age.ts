/**
 * Identity files encrypted under a passphrase (`operator keygen --passphrase`): the identity file's
 * JSON as an ASCII-armored age v1 file with one scrypt stanza at age's own work factor (2^18), so
 * `age -d` opens it too. Every command that reads an operator key takes such a file and asks for the
 * passphrase: from `--operator-passphrase-fd N`, else a hidden prompt (or the next stdin line).
 * docs/format.md, "Identity".
 */
import { armor, Decrypter, Encrypter } from 'age-encryption';
import { InvalidInputError } from './errors.js';
import { type Identity, identityFileText, type IdentityRole, isAgeEncrypted, parseIdentityFile } from './identity.js';
import { ScryptIdentity, ScryptKeys, ScryptRecipient } from './keyshare/age-scrypt.js';
import { utf8 } from './util/bytes.js';
import { assertPrivateFile, readFileOrThrow, writeFileAtomic } from './util/files.js';

/** scrypt log2(N) of an encrypted identity file: age's default. */
export const IDENTITY_LOG_N = 18;
/** The most a reader accepts (age's own readers accept more; 2^20 is 1 GiB of memory). */
const MAX_LOG_N = 20;
/** The shortest passphrase `operator keygen --passphrase` takes. */
export const MIN_PASSPHRASE = 8;

/** Writes an identity file encrypted under `passphrase` (armored age, 0600, atomic). */
export async function saveIdentityEncrypted(path: string, id: Identity, passphrase: string): Promise<void> {
  if (passphrase.length < MIN_PASSPHRASE) throw new InvalidInputError(`the passphrase must be at least ${MIN_PASSPHRASE} characters; nothing was written`);
  const keys = new ScryptKeys(passphrase);
  try {
    const e = new Encrypter();
    e.addRecipient(new ScryptRecipient(keys, IDENTITY_LOG_N));
    writeFileAtomic(path, armor.encode(await e.encrypt(utf8.encode(identityFileText(id)))));
  } finally {
    keys.wipe();
  }
}

/**
 * Loads an identity file, plain or encrypted; for an encrypted one, `passphrase()` is asked once.
 * Throws as loadIdentity, and InvalidInputError `wrong_passphrase` when it does not open.
 */
export async function loadIdentityFile(path: string, role: IdentityRole, passphrase: () => Promise<string>): Promise<Identity> {
  const bytes = readFileOrThrow(path, 'identity file');
  assertPrivateFile(path, 'identity file');
  if (!isAgeEncrypted(bytes)) return parseIdentityFile(bytes, path, role);
  const keys = new ScryptKeys(await passphrase());
  let plain: Uint8Array;
  try {
    const d = new Decrypter();
    d.addIdentity(new ScryptIdentity(keys, MAX_LOG_N));
    const text = utf8.decode(bytes);
    plain = await d.decrypt(text.startsWith('-----BEGIN') ? armor.decode(text) : bytes);
  } catch {
    throw new InvalidInputError(`${path} does not open with that passphrase`, { code: 'wrong_passphrase', hint: 'type the passphrase given to `lifeboat operator keygen --passphrase`' });
  } finally {
    keys.wipe();
  }
  return parseIdentityFile(plain, path, role);
}
