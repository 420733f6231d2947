/**
 * Identities of the parties: a primary, an operator, a share holder. Each has an Ed25519 signing key
 * (to authenticate requests) and an X25519 box key (to receive sealed shares). The secret file is
 * JSON, 0600, written atomically; the public identity travels as one token `lb1.<base64url(sign‖box)>`
 * and is compared by its fingerprint. See docs/format.md, "Identity".
 */
import { z } from 'zod';
import { FormatError, InvalidInputError } from './errors.js';
import { boxPublicKey, type BoxKeyPair, generateBoxKeyPair } from './crypto/sealedbox.js';
import { fingerprint, generateSigningKeyPair, type SigningKeyPair, signingKeyPairFromSeed } from './crypto/sign.js';
import { concatBytes, fromB64, fromB64u, toB64, toB64u, utf8 } from './util/bytes.js';
import { assertPrivateFile, readFileOrThrow, writeFileAtomic } from './util/files.js';

export type IdentityRole = 'primary' | 'operator' | 'holder' | 'node';

/** The public half of an identity. */
export interface PublicIdentity {
  signingPublicKey: Uint8Array;
  boxPublicKey: Uint8Array;
}

export interface Identity extends PublicIdentity {
  role: IdentityRole;
  signing: SigningKeyPair;
  box: BoxKeyPair;
}

const PUBLIC_PREFIX = 'lb1.';

const identityFile = z.object({
  version: z.literal(1),
  type: z.literal('lifeboat-identity'),
  role: z.enum(['primary', 'operator', 'holder', 'node']),
  signing_seed: z.string(),
  box_secret_key: z.string(),
});

export function generateIdentity(role: IdentityRole): Identity {
  const signing = generateSigningKeyPair();
  const box = generateBoxKeyPair();
  return { role, signing, box, signingPublicKey: signing.publicKey, boxPublicKey: box.publicKey };
}

/** The text of an identity's secret file. Secret. */
export function identityFileText(id: Identity): string {
  const doc = { version: 1, type: 'lifeboat-identity', role: id.role, signing_seed: toB64(id.signing.secretKey), box_secret_key: toB64(id.box.secretKey) };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Writes an identity's secret file (0600, atomic). */
export function saveIdentity(path: string, id: Identity): void {
  writeFileAtomic(path, identityFileText(id));
}

/**
 * Loads an identity's secret file. Throws NotFoundError when missing, InvalidInputError when others can
 * read it, FormatError when it is not an identity file or is of another role than `role`.
 */
export function loadIdentity(path: string, role?: IdentityRole): Identity {
  const bytes = readFileOrThrow(path, 'identity file');
  assertPrivateFile(path, 'identity file');
  return parseIdentityFile(bytes, path, role);
}

/** Parses the bytes of an identity's secret file read from `path`. Throws FormatError as loadIdentity. */
export function parseIdentityFile(bytes: Uint8Array, path: string, role?: IdentityRole): Identity {
  if (isAgeEncrypted(bytes)) {
    throw new FormatError('malformed', `${path} is encrypted under a passphrase (age)`, 'this command does not take an encrypted identity file; decrypt it with `age -d` to a 0600 file');
  }
  let doc: z.infer<typeof identityFile>;
  try {
    doc = identityFile.parse(JSON.parse(utf8.decode(bytes)));
  } catch {
    throw new FormatError('malformed', `${path} is not a lifeboat identity file`);
  }
  if (role && doc.role !== role) throw new FormatError('malformed', `${path} holds a ${doc.role} identity, expected ${role}`);
  const signing = signingKeyPairFromSeed(fromB64(doc.signing_seed, 'signing seed', 32));
  const boxSecret = fromB64(doc.box_secret_key, 'box secret key', 32);
  const box = { secretKey: boxSecret, publicKey: boxPublicKey(boxSecret) };
  return { role: doc.role, signing, box, signingPublicKey: signing.publicKey, boxPublicKey: box.publicKey };
}

/** Whether a file is age v1 (binary or armored): an identity file encrypted under a passphrase. */
export function isAgeEncrypted(bytes: Uint8Array): boolean {
  const head = utf8.decode(bytes.subarray(0, 40));
  return head.startsWith('age-encryption.org/v1\n') || head.startsWith('-----BEGIN AGE ENCRYPTED FILE-----');
}

/** Encodes a public identity as `lb1.<base64url(signing public key ‖ box public key)>`. */
export function encodePublicIdentity(id: PublicIdentity): string {
  return PUBLIC_PREFIX + toB64u(concatBytes(id.signingPublicKey, id.boxPublicKey));
}

/** Parses a public identity token. Throws InvalidInputError naming `what` when it is malformed. */
export function parsePublicIdentity(token: string, what = 'public identity'): PublicIdentity {
  if (typeof token !== 'string' || !token.startsWith(PUBLIC_PREFIX)) {
    throw new InvalidInputError(`${what} must start with ${PUBLIC_PREFIX}`, { hint: 'copy the key printed by `lifeboat ... init` or `identity show`' });
  }
  const raw = fromB64u(token.slice(PUBLIC_PREFIX.length), what, 64);
  return { signingPublicKey: raw.slice(0, 32), boxPublicKey: raw.slice(32) };
}

/** The fingerprint people compare: 8 groups of 4 hex digits over both public keys. */
export function identityFingerprint(id: PublicIdentity): string {
  return fingerprint('identity', concatBytes(id.signingPublicKey, id.boxPublicKey));
}
