/**
 * The bearer codes the backup service hands out: one-time invite codes (`lbi_`), tokens (`lbt_`) and
 * restore tokens (`lbr_`), each 32 random bytes in base64url. The store keeps only a SHA-256 of each;
 * the service (./service.ts) compares what is presented against it in constant time.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { InvalidInputError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { fromB64u, toB64u, utf8 } from '../util/bytes.js';
import { TOKEN_RE } from './api.js';

/** SHA-256 of an invite code: what the store keeps. */
export function inviteHash(invite: string): Uint8Array {
  return sha256(utf8.encode(invite));
}

/** A fresh one-time invite code (`lbi_` and 32 random bytes, base64url) and the hash the store keeps. */
export function newInvite(): { invite: string; hash: Uint8Array } {
  const invite = `lbi_${toB64u(randomBytes(32))}`;
  return { invite, hash: inviteHash(invite) };
}

/** SHA-256 of a token's 32 random bytes: what the store keeps. Throws InvalidInputError for a malformed token. */
export function tokenHash(token: string): Uint8Array {
  if (!TOKEN_RE.test(token)) throw new InvalidInputError('a token is lbt_ and 43 base64url characters');
  return sha256(fromB64u(token.slice(4), 'token', 32));
}

/** A fresh token (`lbt_` and 32 random bytes, base64url) and the hash the store keeps (tokenHash's). */
export function newToken(): { token: string; hash: Uint8Array } {
  const secret = randomBytes(32);
  return { token: `lbt_${toB64u(secret)}`, hash: sha256(secret) };
}

/** SHA-256 of a restore token's text: what the store keeps. */
export function restoreTokenHash(restoreToken: string): Uint8Array {
  return sha256(utf8.encode(restoreToken));
}

/** A fresh restore token (`lbr_` and 32 random bytes, base64url) and the hash the store keeps. */
export function newRestoreToken(): { restoreToken: string; hash: Uint8Array } {
  const restoreToken = `lbr_${toB64u(randomBytes(32))}`;
  return { restoreToken, hash: restoreTokenHash(restoreToken) };
}
