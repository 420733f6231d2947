/**
 * The three FROST ciphersuites a key node runs (RFC 9591 section 6 plus BIP-340), and the element and
 * scalar checks every parser in this folder shares. See docs/format.md (key node), "Curves".
 *
 *   ed25519    FROST(Ed25519, SHA-512)            RFC 9591 section 6.1; signatures verify as RFC 8032 Ed25519
 *   secp256k1  FROST(secp256k1, SHA-256)          RFC 9591 section 6.5; 65-byte R || z, RFC 9591 verification
 *   bip340     FROST(secp256k1, SHA-256, Taproot) noble's schnorr_FROST; signatures verify as BIP-340 under
 *                                                 the x-only group key (DKG output carries the BIP-341
 *                                                 key-path tweak with an empty merkle root)
 */
import { ed25519, ed25519_FROST } from '@noble/curves/ed25519.js';
import { schnorr, schnorr_FROST, secp256k1, secp256k1_FROST } from '@noble/curves/secp256k1.js';
import type { FROST } from '@noble/curves/abstract/frost.js';
import { InvalidInputError } from '../../errors.js';
import { fromHex, toHex } from '../../util/bytes.js';

export type FrostCurve = 'ed25519' | 'secp256k1' | 'bip340';
export const FROST_CURVES: readonly FrostCurve[] = ['ed25519', 'secp256k1', 'bip340'];

/** Most participants in one key; identifiers are 1..MAX_SIGNERS. */
export const MAX_SIGNERS = 100;
export const SCALAR_LEN = 32;

/** The one-byte curve code used in binary headers (docs/format.md (key node)). */
export const CURVE_CODE: Record<FrostCurve, number> = { ed25519: 1, secp256k1: 2, bip340: 3 };

/** What FROST needs of a point; both noble point classes provide it. */
interface GroupPoint {
  add(other: GroupPoint): GroupPoint;
  multiply(n: bigint): GroupPoint;
  multiplyUnsafe(n: bigint): GroupPoint;
  equals(other: GroupPoint): boolean;
  toBytes(): Uint8Array;
  is0(): boolean;
  assertValidity(): void;
  isTorsionFree(): boolean;
}

interface PointClass {
  BASE: GroupPoint;
  ZERO: GroupPoint;
  fromBytes(b: Uint8Array): GroupPoint;
}

/** A ciphersuite: the noble FROST object plus the group it runs in. */
export interface Suite {
  curve: FrostCurve;
  frost: FROST;
  point: PointClass;
  /** Encoded element length: 32 (ed25519) or 33 (SEC1 compressed). */
  pointLen: number;
  /** Scalars: ed25519 little-endian, secp256k1 big-endian (RFC 9591 SerializeScalar). */
  scalarLE: boolean;
  order: bigint;
}

const SUITES: Record<FrostCurve, Suite> = {
  ed25519: {
    curve: 'ed25519',
    frost: ed25519_FROST as FROST,
    point: ed25519.Point as unknown as PointClass,
    pointLen: 32,
    scalarLE: true,
    order: ed25519.Point.Fn.ORDER,
  },
  secp256k1: {
    curve: 'secp256k1',
    frost: secp256k1_FROST as FROST,
    point: secp256k1.Point as unknown as PointClass,
    pointLen: 33,
    scalarLE: false,
    order: secp256k1.Point.Fn.ORDER,
  },
  bip340: {
    curve: 'bip340',
    frost: schnorr_FROST as FROST,
    point: secp256k1.Point as unknown as PointClass,
    pointLen: 33,
    scalarLE: false,
    order: secp256k1.Point.Fn.ORDER,
  },
};

/** True when `x` names a supported curve. */
export function isFrostCurve(x: unknown): x is FrostCurve {
  return typeof x === 'string' && (FROST_CURVES as readonly string[]).includes(x);
}

/** The noble FROST object of a curve. Throws InvalidInputError for anything but the three names. */
export function suite(curve: FrostCurve): FROST {
  return suiteOf(curve).frost;
}

/** The full ciphersuite record of a curve. Throws InvalidInputError for an unknown curve. */
export function suiteOf(curve: FrostCurve): Suite {
  if (!isFrostCurve(curve)) throw new InvalidInputError(`unknown curve; expected one of ${FROST_CURVES.join(', ')}`);
  return SUITES[curve];
}

function bytesToScalar(s: Suite, b: Uint8Array): bigint {
  let n = 0n;
  if (s.scalarLE) for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  else for (let i = 0; i < b.length; i++) n = (n << 8n) | BigInt(b[i]!);
  return n;
}

/**
 * Decodes a serialized scalar (RFC 9591 DeserializeScalar): exactly 32 bytes, below the group order.
 * Throws InvalidInputError naming `what`. Public scalars only; the value is variable-time.
 */
export function decodeScalar(curve: FrostCurve, b: Uint8Array, what: string, opts: { nonZero?: boolean } = {}): bigint {
  const s = suiteOf(curve);
  if (!(b instanceof Uint8Array) || b.length !== SCALAR_LEN) throw new InvalidInputError(`${what} must be ${SCALAR_LEN} bytes`);
  const n = bytesToScalar(s, b);
  if (n >= s.order) throw new InvalidInputError(`${what} is not a canonical scalar`);
  if (opts.nonZero && n === 0n) throw new InvalidInputError(`${what} must not be zero`);
  return n;
}

/** Checks a secret scalar's length and range without turning it into a printable value. Throws InvalidInputError. */
export function checkSecretScalar(curve: FrostCurve, b: Uint8Array, what: string): void {
  decodeScalar(curve, b, what, { nonZero: true });
}

/**
 * Decodes an element (RFC 9591 DeserializeElement): canonical encoding, on the curve, in the prime-order
 * subgroup, not the identity. Throws InvalidInputError naming `what`.
 */
export function decodePoint(curve: FrostCurve, b: Uint8Array, what: string): GroupPoint {
  const s = suiteOf(curve);
  if (!(b instanceof Uint8Array) || b.length !== s.pointLen) throw new InvalidInputError(`${what} must be ${s.pointLen} bytes`);
  let p: GroupPoint;
  try {
    p = s.point.fromBytes(b);
    p.assertValidity();
  } catch {
    throw new InvalidInputError(`${what} is not a point on ${curve}`);
  }
  if (p.is0() || !p.isTorsionFree()) throw new InvalidInputError(`${what} is the identity or outside the prime-order subgroup`);
  const again = p.toBytes();
  for (let i = 0; i < b.length; i++) if (again[i] !== b[i]) throw new InvalidInputError(`${what} is not canonically encoded`);
  return p;
}

/** The canonical identifier of participant number `n` (1-based): SerializeScalar(n) as lowercase hex. */
export function identifierOf(curve: FrostCurve, n: number): string {
  if (!Number.isInteger(n) || n < 1 || n > MAX_SIGNERS) throw new InvalidInputError(`participant number must be 1..${MAX_SIGNERS}`);
  return suiteOf(curve).frost.Identifier.fromNumber(n);
}

/**
 * Parses an identifier: 64 lowercase hex digits, the canonical encoding of a non-zero scalar.
 * Throws InvalidInputError naming `what`.
 */
export function parseIdentifier(curve: FrostCurve, id: unknown, what = 'identifier'): bigint {
  if (typeof id !== 'string' || !/^[0-9a-f]{64}$/.test(id)) throw new InvalidInputError(`${what} must be 64 lowercase hex digits`);
  return decodeScalar(curve, fromHex(id, what, SCALAR_LEN), what, { nonZero: true });
}

/** The participant number of an identifier made by identifierOf, or undefined for any other scalar. */
export function participantNumber(curve: FrostCurve, id: string): number | undefined {
  let n: bigint;
  try {
    n = parseIdentifier(curve, id);
  } catch {
    return undefined;
  }
  return n >= 1n && n <= BigInt(MAX_SIGNERS) ? Number(n) : undefined;
}

/** How an identifier reads in a message: `participant 2` for small ones, a hex prefix otherwise. */
export function describeIdentifier(curve: FrostCurve, id: string): string {
  const n = participantNumber(curve, id);
  return n === undefined ? `participant ${id.slice(0, 16)}…` : `participant ${n}`;
}

/** Decodes an element that is only compared, never trusted alone: on the curve, canonical; no subgroup check. */
function decodeForEquation(curve: FrostCurve, b: Uint8Array, what: string): GroupPoint {
  const s = suiteOf(curve);
  if (!(b instanceof Uint8Array) || b.length !== s.pointLen) throw new InvalidInputError(`${what} must be ${s.pointLen} bytes`);
  try {
    const p = s.point.fromBytes(b);
    p.assertValidity();
    return p;
  } catch {
    throw new InvalidInputError(`${what} is not a point on ${curve}`);
  }
}

/**
 * The RFC 9591 Appendix C.2 evaluation of a VSS commitment at `identifier`: sum of commitment[j] * id^j.
 * Public inputs only (variable time). The elements are not checked for the prime-order subgroup (the
 * costly part on ed25519): callers compare the sum with an element that is checked or derived from G.
 * Throws InvalidInputError on bytes that are not a point.
 */
export function evaluateCommitment(curve: FrostCurve, commitments: readonly Uint8Array[], identifier: bigint): GroupPoint {
  const s = suiteOf(curve);
  let acc = s.point.ZERO;
  let power = 1n;
  commitments.forEach((c, j) => {
    const p = decodeForEquation(curve, c, `commitment ${j}`);
    acc = acc.add(power === 1n ? p : p.multiplyUnsafe(power));
    power = (power * identifier) % s.order;
  });
  return acc;
}

/** G * scalar in constant time (the scalar may be secret), encoded. Throws InvalidInputError on a bad scalar. */
export function baseMultiplyEncoded(curve: FrostCurve, scalar: Uint8Array, what: string): Uint8Array {
  const n = decodeScalar(curve, scalar, what, { nonZero: true });
  return suiteOf(curve).point.BASE.multiply(n).toBytes();
}

/**
 * The group public key as plain verifiers take it: ed25519 32 bytes, secp256k1 33 bytes (SEC1
 * compressed), bip340 32 bytes (x-only, BIP-340). Throws InvalidInputError on a bad element.
 */
export function groupPublicKey(curve: FrostCurve, commitment0: Uint8Array): Uint8Array {
  decodePoint(curve, commitment0, 'group public key');
  return curve === 'bip340' ? commitment0.slice(1) : commitment0.slice();
}

/**
 * Verifies a group signature the way an outside verifier does: RFC 8032 Ed25519 (`ed25519.verify`,
 * strict: canonical encodings, no small-order key),
 * BIP-340 (`schnorr.verify`), or for secp256k1 the RFC 9591 section 6.5 verification (no other standard
 * verifier exists for it). Returns false, never throws, on any malformed input.
 */
export function verifySignature(curve: FrostCurve, signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    if (curve === 'ed25519') return ed25519.verify(signature, message, publicKey, { zip215: false });
    if (curve === 'bip340') return schnorr.verify(signature, message, publicKey);
    if (curve === 'secp256k1') return secp256k1_FROST.verify(signature, message, publicKey);
    return false;
  } catch {
    return false;
  }
}

/** Hex of bytes, for the JSON formats. */
export const hex = toHex;

/** Parses lowercase hex of an exact length; throws InvalidInputError naming `what`. */
export function parseHex(s: unknown, what: string, len?: number): Uint8Array {
  if (typeof s !== 'string' || s.length % 2 !== 0 || !/^[0-9a-f]*$/.test(s)) throw new InvalidInputError(`${what} must be lowercase hex`);
  return fromHex(s, what, len);
}
