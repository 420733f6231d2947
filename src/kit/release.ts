/**
 * The recovery kit's release files (docs/format.md, "Recovery kit release"): beside the kit, a hash
 * file in sha256sum's format (`lifeboat-kit.sha256`) and its detached Ed25519 signature
 * (`lifeboat-kit.sha256.sig`), made with a release key kept in the vault (`lifeboat kit keygen|sign`),
 * checked by `kit verify` in the full CLI and in the kit itself. Pure: bytes and text in and out.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { FormatError, InvalidInputError, LifeboatError } from '../errors.js';
import { fingerprint, signingKeyPairFromSeed, signWithContext, verifyWithContext } from '../crypto/sign.js';
import { ctEqual, fromB64, fromB64u, fromHex, toB64, toB64u, toHex, utf8 } from '../util/bytes.js';

/** The files of a built kit, in the order the hash file lists them (those present). */
export const KIT_FILES = ['lifeboat-kit', 'lifeboat-kit.mjs'] as const;
export const HASH_FILE = 'lifeboat-kit.sha256';
export const SIGNATURE_FILE = `${HASH_FILE}.sig`;
/** The vault entry `kit keygen` stores the release key's 32-byte Ed25519 seed under (by default). */
export const RELEASE_KEY_ENTRY = 'kit/release-key';

const PUBLIC_PREFIX = 'lbkit1.';
const SIGNATURE_HEADER = 'lifeboat-kit-signature/v1';
/** Domain separation of the signature (signWithContext prefixes `lifeboat:` and a NUL). */
const CONTEXT = 'kit-release/v1';
const MAX_HASH_FILE = 64 * 1024;

export interface HashLine {
  sha256: Uint8Array;
  name: string;
}

/** `lbkit1.` + base64url (no padding) of the 32-byte Ed25519 public key. */
export function encodeKitPublicKey(publicKey: Uint8Array): string {
  return PUBLIC_PREFIX + toB64u(publicKey);
}

/** Parses a release public key. Throws InvalidInputError `invalid_kit_key` naming what is wrong. */
export function parseKitPublicKey(text: string, what = '--public-key'): Uint8Array {
  const t = text.trim();
  if (!t.startsWith(PUBLIC_PREFIX)) throw new InvalidInputError(`${what} is not a kit release key (it starts with ${PUBLIC_PREFIX})`, { code: 'invalid_kit_key', hint: 'give the key `lifeboat kit keygen` printed' });
  try {
    return fromB64u(t.slice(PUBLIC_PREFIX.length), what, 32);
  } catch {
    throw new InvalidInputError(`${what} is not a kit release key (32 bytes, base64url)`, { code: 'invalid_kit_key', hint: 'give the key `lifeboat kit keygen` printed' });
  }
}

/** The release key's fingerprint as people compare it (8 groups of 4 hex digits). */
export function kitKeyFingerprint(publicKey: Uint8Array): string {
  return fingerprint('ed25519', publicKey);
}

/** sha256sum's text format: `HEX  NAME\n` per file. */
export function encodeHashFile(lines: readonly HashLine[]): Uint8Array {
  return utf8.encode(lines.map((l) => `${toHex(l.sha256)}  ${l.name}\n`).join(''));
}

/**
 * Parses a hash file. Throws FormatError `malformed` on anything but `64 lowercase hex, two spaces, a
 * plain file name, LF` lines (at least one, names unique), or more than 64 KiB.
 */
export function parseHashFile(bytes: Uint8Array): HashLine[] {
  if (bytes.length > MAX_HASH_FILE) throw new FormatError('malformed', 'the kit hash file is larger than 64 KiB');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new FormatError('malformed', 'the kit hash file is not UTF-8');
  }
  if (!text.endsWith('\n')) throw new FormatError('malformed', 'the kit hash file does not end with a newline');
  const lines = text.slice(0, -1).split('\n');
  const out: HashLine[] = [];
  for (const [i, line] of lines.entries()) {
    const m = /^([0-9a-f]{64}) {2}([A-Za-z0-9._-]{1,128})$/.exec(line);
    if (!m) throw new FormatError('malformed', `line ${i + 1} of the kit hash file is not \`SHA256  NAME\``);
    if (out.some((l) => l.name === m[2])) throw new FormatError('malformed', `the kit hash file names ${m[2]} twice`);
    out.push({ sha256: fromHex(m[1]!, 'sha256', 32), name: m[2]! });
  }
  return out;
}

export interface KitSignature {
  publicKey: Uint8Array;
  signature: Uint8Array;
}

/** Three lines: the header, `key: lbkit1.…`, `signature: BASE64` (64 bytes), each ending in LF. */
export function encodeKitSignature(s: KitSignature): Uint8Array {
  return utf8.encode(`${SIGNATURE_HEADER}\nkey: ${encodeKitPublicKey(s.publicKey)}\nsignature: ${toB64(s.signature)}\n`);
}

/** Parses a signature file. Throws FormatError `malformed` (or `unsupported_version` for another header). */
export function parseKitSignature(bytes: Uint8Array): KitSignature {
  if (bytes.length > 1024) throw new FormatError('malformed', 'the kit signature file is larger than 1 KiB');
  const lines = utf8.decode(bytes).split('\n');
  if (lines[0] !== SIGNATURE_HEADER) {
    if (/^lifeboat-kit-signature\/v\d+$/.test(lines[0] ?? '')) throw new FormatError('unsupported_version', `the kit signature file is ${lines[0]}, not ${SIGNATURE_HEADER}`);
    throw new FormatError('malformed', `the kit signature file does not start with ${SIGNATURE_HEADER}`);
  }
  if (lines.length !== 4 || lines[3] !== '') throw new FormatError('malformed', 'the kit signature file is not three lines');
  const key = /^key: (\S+)$/.exec(lines[1]!);
  const sig = /^signature: ([A-Za-z0-9+/]{86}==)$/.exec(lines[2]!);
  if (!key || !sig) throw new FormatError('malformed', 'the kit signature file lacks its `key:` or `signature:` line');
  let publicKey: Uint8Array;
  try {
    publicKey = parseKitPublicKey(key[1]!, 'the signature file\'s key');
  } catch {
    throw new FormatError('malformed', 'the kit signature file\'s key is not a kit release key');
  }
  return { publicKey, signature: fromB64(sig[1]!, 'signature', 64) };
}

/** Signs a hash file with the release key's 32-byte seed. */
export function signHashFile(hashFile: Uint8Array, seed: Uint8Array): KitSignature {
  const kp = signingKeyPairFromSeed(seed);
  return { publicKey: kp.publicKey, signature: signWithContext(CONTEXT, hashFile, kp.secretKey) };
}

// Each code is in SAFETY_CODES (src/errors.ts): a refusal for safety, exit 3.
const refuse = (code: string, message: string, hint: string): LifeboatError => new LifeboatError(code, message, { hint });
const DO_NOT_RUN = 'do not run this kit: get another copy from where the release was made, and check it again';

/**
 * Checks a kit file against the signed hash file. In order: the signature file names `publicKey`
 * (else `kit_key_mismatch`), its signature over the hash file verifies (else `kit_signature_invalid`: an
 * altered hash or signature file), the hash file lists `name` (else `kit_not_listed`) with the file's
 * SHA-256 (else `kit_hash_mismatch`: an altered kit). Each is a refusal for safety (exit 3); a file that
 * does not parse is FormatError.
 */
export function verifyKitRelease(opts: { file: Uint8Array; name: string; hashFile: Uint8Array; signatureFile: Uint8Array; publicKey: Uint8Array }): { sha256: string; fingerprint: string } {
  const sig = parseKitSignature(opts.signatureFile);
  if (!ctEqual(sig.publicKey, opts.publicKey)) {
    throw refuse('kit_key_mismatch', `the kit was signed by release key ${kitKeyFingerprint(sig.publicKey)}, not ${kitKeyFingerprint(opts.publicKey)}`, `compare --public-key with the one your release process printed (\`lifeboat kit keygen\`); ${DO_NOT_RUN}`);
  }
  if (!verifyWithContext(CONTEXT, opts.hashFile, sig.signature, opts.publicKey)) {
    throw refuse('kit_signature_invalid', 'the kit hash file\'s signature does not verify: the hash file or its signature was altered', DO_NOT_RUN);
  }
  const line = parseHashFile(opts.hashFile).find((l) => l.name === opts.name);
  if (!line) throw refuse('kit_not_listed', `the signed hash file does not list ${opts.name}`, `the kit files are ${KIT_FILES.join(', ')}; a renamed kit is checked with --name`);
  const actual = sha256(opts.file);
  if (!ctEqual(actual, line.sha256)) {
    throw refuse('kit_hash_mismatch', `${opts.name} has SHA-256 ${toHex(actual)}, not the signed ${toHex(line.sha256)}: the kit was altered`, DO_NOT_RUN);
  }
  return { sha256: toHex(actual), fingerprint: kitKeyFingerprint(opts.publicKey) };
}
