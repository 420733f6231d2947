/**
 * Recovery from a package: per participant, decrypt closed leaves (standard RSA-OAEP decryptions,
 * done by the caller's `decrypt`) until one adds up to the verifying share; combine t shares; accept
 * only a key whose public key is the group key. Also the standard output forms and offline signing.
 */
import { createBase58check } from '@scure/base';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { LifeboatError } from '../errors.js';
import { concatBytes, ctEqual, toHex, utf8, wipe } from '../util/bytes.js';
import { decodePoint, describeIdentifier, frostGroupPublicKey, type FrostCurve, parseFrostPublic, parseIdentifier, suite, verifySignature } from '../keynode/frost/index.js';
import { type ErsPackage, type ErsPart, ROWS } from './format.js';
import { groupOf, lagrangeAtZero, type Pt } from './group.js';
import { closedIndices, openedShares } from './proof.js';

/** One standard RSA-OAEP-SHA256 decryption; undefined when it fails. */
export type Decrypt = (ciphertext: Uint8Array) => Promise<Uint8Array | undefined>;

/**
 * The participant's signing share from its part, or undefined when no row yields it (the part was
 * made for another RSA key, or is a cheat). Tries rows in order; `onRow` counts decryptions.
 */
export async function recoverShare(part: ErsPart, decrypt: Decrypt): Promise<Uint8Array | undefined> {
  const g = groupOf(part.curve);
  const X = decodePoint(part.curve, part.verifyingShare, 'verifying share') as unknown as Pt;
  const closed = closedIndices(part.challenge);
  for (let j = 0; j < ROWS; j++) {
    const row = part.rows[j]!;
    const plain = await decrypt(row.closed);
    if (!plain || plain.length !== 32) continue;
    let s: bigint;
    try {
      s = g.decodeScalar(plain, 'decrypted share');
    } catch {
      continue;
    } finally {
      wipe(plain);
    }
    const { values } = openedShares(g, row, closed[j]!);
    const x = values.reduce<bigint>((acc, v) => (v === undefined ? acc : (acc + v) % g.order), s);
    if (x !== 0n && g.BASE.multiply(x).equals(X)) return g.encodeScalar(x);
  }
  return undefined;
}

export interface RecoveredKey {
  curve: FrostCurve;
  /** The group secret key in the curve's scalar serialization (secret: wipe when done). */
  secret: Uint8Array;
  /** The group public key as plain verifiers take it. */
  groupPublicKey: Uint8Array;
  /** Participants whose shares were used. */
  used: string[];
}

/**
 * Recovers the group secret key. Throws LifeboatError `ers_insufficient_parts` (fewer than t shares
 * came out: wrong RSA key, or too few good parts; `decryption_failed` when no decryption at all
 * succeeded), `ers_wrong_key` (the combined key is not the group key's: never returned).
 */
export async function recoverKey(pkg: ErsPackage, decrypt: Decrypt): Promise<RecoveredKey> {
  const { public: pub } = parseFrostPublic(pkg.publicPackage, { curve: pkg.curve });
  const g = groupOf(pkg.curve);
  const t = pub.signers.min;
  const shares: { x: bigint; share: Uint8Array; id: string }[] = [];
  let anyDecrypted = false;
  const counting: Decrypt = async (c) => {
    const p = await decrypt(c);
    // Only a 32-byte plaintext is a decryption: anything else (a failing --decrypt-cmd) is not.
    if (p && p.length === 32) anyDecrypted = true;
    return p;
  };
  for (const part of pkg.parts) {
    if (shares.length >= t) break;
    const vs = pub.verifyingShares[part.identifier];
    if (!vs || !ctEqual(vs, part.verifyingShare) || !ctEqual(part.groupKey, pub.commitments[0]!)) continue;
    const share = await recoverShare(part, counting);
    if (share) shares.push({ x: parseIdentifier(pkg.curve, part.identifier), share, id: part.identifier });
  }
  if (shares.length < t) {
    shares.forEach((s) => wipe(s.share));
    if (!anyDecrypted) throw new LifeboatError('decryption_failed', 'no ciphertext of the package decrypted (to 32 bytes) with this RSA private key or --decrypt-cmd', { hint: 'is it the private key of the RSA key the package names (`lifeboat ers verify` prints its fingerprint)? a --decrypt-cmd must exit 0 and print only the plaintext' });
    throw new LifeboatError('ers_insufficient_parts', `only ${shares.length} of the ${t} shares needed came out of the package`, { hint: 'run `lifeboat ers verify` on it: a part whose proof fails holds no usable share' });
  }
  const xs = shares.map((s) => s.x);
  let d = 0n;
  for (const s of shares) d = (d + lagrangeAtZero(s.x, xs, g.order) * g.decodeScalar(s.share, 'share')) % g.order;
  shares.forEach((s) => wipe(s.share));
  const secret = g.encodeScalar(d);
  if (d === 0n || !ctEqual(g.BASE.multiply(d).toBytes(), pub.commitments[0]!)) {
    wipe(secret);
    throw new LifeboatError('ers_wrong_key', 'the combined key does not match the group public key; nothing is printed', { safety: true });
  }
  return { curve: pkg.curve, secret, groupPublicKey: frostGroupPublicKey(pkg.curve, pub), used: shares.map((s) => describeIdentifier(pkg.curve, s.id)) };
}

const b58check = createBase58check(sha256);
const ED_PREFIX_DS = utf8.encode('lifeboat/ers/v1/ed25519-prefix');

/** The standard output forms of a recovered key (docs/ers.md, "What recover prints"). Secret strings. */
export function keyForms(k: RecoveredKey): Record<string, string> {
  if (k.curve === 'ed25519') {
    const prefix = sha512(concatBytes(ED_PREFIX_DS, k.secret)).slice(0, 32);
    return { curve: k.curve, group_public_key: toHex(k.groupPublicKey), secret_scalar_hex: toHex(k.secret), expanded_secret_key_hex: toHex(concatBytes(k.secret, prefix)) };
  }
  const wif = b58check.encode(concatBytes(new Uint8Array([0x80]), k.secret, new Uint8Array([0x01])));
  return { curve: k.curve, group_public_key: toHex(k.groupPublicKey), secret_key_hex: toHex(k.secret), wif };
}

/**
 * Signs `message` with the recovered key, as the key's nodes would: RFC 8032 Ed25519, BIP-340, or
 * RFC 9591 secp256k1 Schnorr; checked with the plain verifier before it is returned.
 */
export function signWithRecovered(k: RecoveredKey, message: Uint8Array): Uint8Array {
  const sig = suite(k.curve).sign(message, k.secret);
  if (!verifySignature(k.curve, sig, message, k.groupPublicKey)) throw new LifeboatError('ers_wrong_key', 'the signature made with the recovered key does not verify under the group key', { safety: true });
  return sig;
}
