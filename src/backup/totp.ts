/**
 * The second factor of a backup account (docs/backup.md, "Second factor"; docs/format.md, "TOTP
 * record"): HOTP (RFC 4226) and TOTP (RFC 6238) as authenticator apps expect them (HMAC-SHA-1, 6
 * digits, 30-second steps), the `otpauth://` URI they scan, single-use recovery codes, and the TOTP
 * record the service keeps, its secret sealed under the service's TOTP key (a file in its data
 * directory, never in the database). Pure: no I/O.
 */
import { createHmac } from 'node:crypto';
import { base32nopad } from '@scure/base';
import { sha256 } from '@noble/hashes/sha2.js';
import { FormatError, InvalidInputError } from '../errors.js';
import { openEnvelope, parseEnvelope, sealEnvelope } from '../crypto/envelope.js';
import { deriveKey } from '../crypto/kdf.js';
import { randomBytes } from '../crypto/random.js';
import { concatBytes, ctEqual, lengthPrefixed, utf8, wipe } from '../util/bytes.js';
import { checkName } from './format.js';

/** RFC 6238 defaults that every authenticator app reads without asking. */
export const TOTP_PERIOD_S = 30;
export const TOTP_DIGITS = 6;
/** Steps accepted on either side of the current one (RFC 6238 section 5.2: clock drift, typing time). */
export const TOTP_WINDOW = 1;
/** 20 bytes: the HMAC-SHA-1 block's natural key size (RFC 4226 section 4, R6: at least 128 bits). */
export const TOTP_SECRET_BYTES = 20;
export const RECOVERY_CODES = 10;
export const TOTP_RECORD_MAGIC = 'LBTS';
const VERSION = 1;

/** A TOTP code: exactly six digits. */
export const TOTP_CODE_RE = /^[0-9]{6}$/;
/** A recovery code: four groups of four base32 characters (80 bits), lowercase, dash-separated. */
export const RECOVERY_CODE_RE = /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/;

/**
 * HOTP (RFC 4226 section 5.3): HMAC-SHA-1 of the 8-byte big-endian counter, dynamic truncation,
 * modulo 10^digits, left-padded with zeros. Throws InvalidInputError for digits outside 6..8 or a
 * counter that is not a non-negative safe integer.
 */
export function hotp(secret: Uint8Array, counter: number, digits = TOTP_DIGITS): string {
  if (!Number.isSafeInteger(counter) || counter < 0) throw new InvalidInputError('the hotp counter must be a non-negative integer');
  if (!Number.isInteger(digits) || digits < 6 || digits > 8) throw new InvalidInputError('hotp digits must be 6 to 8');
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', secret).update(msg).digest();
  const o = mac[mac.length - 1]! & 0x0f;
  const bin = ((mac[o]! & 0x7f) << 24) | (mac[o + 1]! << 16) | (mac[o + 2]! << 8) | mac[o + 3]!;
  return String(bin % 10 ** digits).padStart(digits, '0');
}

/** The TOTP time step of `nowMs` (RFC 6238 section 4: T = floor((unix time - T0) / X), T0 = 0). */
export function totpStep(nowMs: number, periodS = TOTP_PERIOD_S): number {
  return Math.floor(nowMs / 1000 / periodS);
}

/** TOTP (RFC 6238): HOTP with the time step as the counter. */
export function totp(secret: Uint8Array, nowMs: number, digits = TOTP_DIGITS, periodS = TOTP_PERIOD_S): string {
  return hotp(secret, totpStep(nowMs, periodS), digits);
}

/**
 * The step whose code `code` is, among the current step and TOTP_WINDOW steps either side, or
 * undefined. Every candidate is computed and compared in constant time, so the time taken does not
 * say which step (if any) matched.
 */
export function matchTotp(secret: Uint8Array, code: string, nowMs: number): number | undefined {
  const now = totpStep(nowMs);
  const given = utf8.encode(TOTP_CODE_RE.test(code) ? code : '000000x');
  let found: number | undefined;
  for (let s = now - TOTP_WINDOW; s <= now + TOTP_WINDOW; s++) {
    const hit = ctEqual(utf8.encode(hotp(secret, s)), given);
    if (hit && found === undefined) found = s;
  }
  return found;
}

/** A fresh TOTP secret (20 random bytes). */
export function newTotpSecret(): Uint8Array {
  return randomBytes(TOTP_SECRET_BYTES);
}

/** RFC 4648 base32 without padding, uppercase: how authenticator apps take a secret. */
export function totpSecretBase32(secret: Uint8Array): string {
  return base32nopad.encode(secret);
}

/**
 * The `otpauth://totp/` URI an authenticator app scans (the Key Uri Format: label `issuer:account`,
 * secret in base32, SHA1, 6 digits, 30 s). Throws InvalidInputError for a malformed account name.
 */
export function otpauthUri(secret: Uint8Array, account: string, issuer = 'Lifeboat'): string {
  checkName(account, 'account');
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
  const q = new URLSearchParams({ secret: totpSecretBase32(secret), issuer, algorithm: 'SHA1', digits: String(TOTP_DIGITS), period: String(TOTP_PERIOD_S) });
  return `otpauth://totp/${label}?${q}`;
}

/** Ten fresh recovery codes (RECOVERY_CODE_RE), shown once at enrolment. */
export function newRecoveryCodes(n = RECOVERY_CODES): string[] {
  return Array.from({ length: n }, () => {
    const s = base32nopad.encode(randomBytes(10)).toLowerCase();
    return `${s.slice(0, 4)}-${s.slice(4, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}`;
  });
}

/** What the store keeps of a recovery code: SHA-256 of `lp(account) ‖ lp(code)`. 80 random bits each. */
export function recoveryCodeHash(account: string, code: string): Uint8Array {
  return sha256(lengthPrefixed(utf8.encode(account), utf8.encode(code)));
}

/** Recovery codes as stored: 10 slots of `used (1 byte, 0 or 1) ‖ hash (32)`. */
const SLOT = 33;

/** The stored recovery slots of fresh codes (none used). */
export function encodeRecoverySlots(account: string, codes: string[]): Uint8Array {
  return concatBytes(...codes.map((c) => concatBytes(new Uint8Array([0]), recoveryCodeHash(account, c))));
}

/**
 * Finds `code` among the slots (every slot compared, in constant time). Returns its index and whether
 * it was used, or undefined. Throws FormatError for slots that are not a multiple of 33 bytes.
 */
export function findRecoveryCode(slots: Uint8Array, account: string, code: string): { index: number; used: boolean } | undefined {
  if (slots.length % SLOT !== 0) throw new FormatError('malformed', 'the recovery code slots are malformed');
  const h = recoveryCodeHash(account, RECOVERY_CODE_RE.test(code) ? code : '');
  let found: { index: number; used: boolean } | undefined;
  for (let i = 0; i * SLOT < slots.length; i++) {
    const hit = ctEqual(slots.subarray(i * SLOT + 1, (i + 1) * SLOT), h);
    if (hit && found === undefined) found = { index: i, used: slots[i * SLOT] !== 0 };
  }
  return found;
}

/** The slots with slot `index` marked used (a new array). */
export function markRecoveryUsed(slots: Uint8Array, index: number): Uint8Array {
  const next = slots.slice();
  next[index * SLOT] = 1;
  return next;
}

/** How many recovery codes are left unused. */
export function recoveryCodesLeft(slots: Uint8Array): number {
  let n = 0;
  for (let i = 0; i * SLOT < slots.length; i++) if (slots[i * SLOT] === 0) n++;
  return n;
}

function recordKey(sealKey: Uint8Array, account: string): Uint8Array {
  if (!(sealKey instanceof Uint8Array) || sealKey.length !== 32) throw new InvalidInputError('the totp seal key must be 32 bytes');
  return deriveKey(sealKey, utf8.encode(account), 'backup/totp-seal/v1');
}

/**
 * The sealed TOTP secret (an `LBTS` v1 envelope, header lp16(account)) under a key derived from the
 * service's TOTP seal key: the database alone does not yield the secret, and a sealed secret moved to
 * another account does not open.
 */
export function sealTotpSecret(sealKey: Uint8Array, account: string, secret: Uint8Array): Uint8Array {
  checkName(account, 'account');
  const a = utf8.encode(account);
  const key = recordKey(sealKey, account);
  try {
    return sealEnvelope({ magic: TOTP_RECORD_MAGIC, version: VERSION, header: concatBytes(new Uint8Array([a.length >> 8, a.length & 0xff]), a), key, plaintext: secret });
  } finally {
    wipe(key);
  }
}

/**
 * Opens a sealed TOTP secret of `account`. Throws FormatError (`bad_magic`, `unsupported_version`,
 * `truncated`, `malformed`: another account's header), DecryptionError for another seal key or altered bytes.
 */
export function openTotpSecret(sealKey: Uint8Array, account: string, sealed: Uint8Array): Uint8Array {
  const env = parseEnvelope(sealed, { magic: TOTP_RECORD_MAGIC, versions: [VERSION], what: 'sealed totp secret' });
  const h = env.header;
  const len = h.length >= 2 ? (h[0]! << 8) | h[1]! : -1;
  if (len < 0 || h.length !== 2 + len || utf8.decode(h.subarray(2)) !== account) throw new FormatError('malformed', 'the sealed totp secret belongs to another account');
  const key = recordKey(sealKey, account);
  try {
    return openEnvelope(env, key, 'sealed totp secret');
  } finally {
    wipe(key);
  }
}
