/**
 * The restore check itself: `checkRestoredKey` (docs/format.md (key node), "Share check") for one key,
 * and `checkRange`, its verdict on every key of a range with the costly equation G·share = verifying
 * share checked for a whole batch by one random linear combination per curve. ./restore-verify.ts
 * drives it, on this thread or on worker threads.
 *
 * Per key, as checkRestoredKey: the LBKS share opens under the storage key for its row, the row's package
 * is the sealed one byte for byte, threshold, signer count and group key are the package's, the share is
 * a canonical non-zero scalar. Each VSS commitment C_k is decoded once (canonical, on the curve: noble's
 * assertValidity); they are the only points decoded. Y' = Σ id^k·C_k is evaluated by Horner's rule (DKG
 * identifiers are small: a few additions) and its encoding must equal the row's verifying share Y byte
 * for byte (RFC 9591 Appendix C.2 vss_verify). Y itself is never decoded: it is the encoding of Y'.
 *
 * Per batch and curve, with fresh uniform 128-bit r_i: (Σ r_i·s_i)·G = Σ r_i·Y'_i. If some Y'_i ≠ s_i·G
 * while every Y'_i lies in the group of prime order ℓ > 2^128, then for any choice of the other
 * coefficients at most one value of r_i mod ℓ balances the sum: a batch holding a bad key passes with
 * probability at most 2^-128 (the small-exponent batch test of Bellare, Garay and Rabin, Eurocrypt
 * 1998). On secp256k1 every point is in that group. On ed25519 (cofactor 8) a torsion component escapes
 * a linear combination with probability up to 1/2, so the sum is computed bit-sliced: T_w = Σ Y'_i over
 * the i whose coefficient has bit w set, every one of the 128 T_w must satisfy ℓ·T_w = O, and
 * Σ r_i·Y'_i = Σ 2^w·T_w. Each T_w is an independent random subset sum, so a Y'_i with a torsion
 * component leaves all 128 torsion-free with probability at most 2^-128; with the bound above, a bad
 * ed25519 batch passes with probability at most 2^-127.
 *
 * The square roots and sums run in WebAssembly (frost/field-wasm.ts, curve-wasm.ts: complete formulas,
 * public values only, variable time; without WebAssembly each key is checked on its own, same verdicts);
 * the one multiplication by the secret-derived Σ r_i·s_i is noble's constant-time one. When a batch fails, a bisection with smaller batches, then exact per-key checks, finds the first bad
 * key, and checkRestoredKey on it throws the error a key-at-a-time restore throws.
 */
import { LifeboatError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { ctEqual, wipe } from '../util/bytes.js';
// The frost files themselves, not the index: a worker thread loads only what the check needs.
import { type KeyShare, openKeyShare } from './frost/keyshare.js';
import { encodeFrostPublic, verifyShareAgainstPublic } from './frost/public.js';
import { decodeScalar, type FrostCurve, parseIdentifier, suiteOf } from './frost/suite.js';
import { type Affine, ArenaExhausted, bitPlaneSums, COEFF_BITS, decodePointFast, encodeAffine, equalsAffine, type Group, horner, isIdentity, mark, msm, mulPublic, pointsOf, release, toAffineMany } from './frost/batch-arith.js';
import type { Counters } from './restore-workers.js';
import type { KeyRecord } from './store/types.js';
import { openRestoredRow, type OpenedRow } from './restore-open.js';

/** What a refusal tells the operator to do. */
export const HINT = 'nothing was restored; this backup or database was altered or mixed with another node’s: use another backup of this node';
/** A bisection step checks keys one by one below this many. */
const LINEAR_BELOW = 32;

/**
 * The restore check of one stored key, before anything is written: its sealed share opens under this
 * node's storage key for this very row (key id, curve and identifier are bound in the LBKS header), the
 * row's public package is byte for byte the one sealed with the share, G·share equals the verifying
 * share and the VSS commitments at the identifier give it too (verifyShareAgainstPublic), and the row's
 * threshold, signer count and group key are the package's. That is everything this node signs with.
 * The other participants' verifying shares are not re-checked here: they were checked in full when the
 * share was stored, they are authenticated twice (LBKS and the backup's envelope), and the node never
 * uses them. Any failure is LifeboatError `share_mismatch` naming the key, with the cause's code in the
 * message.
 */
export function checkRestoredKey(storageKey: Uint8Array, rec: KeyRecord): void {
  let key: KeyShare | undefined;
  try {
    key = openKeyShare(storageKey, rec.encryptedShare, { keyId: rec.keyId, curve: rec.curve, identifier: rec.identifier });
    if (!ctEqual(encodeFrostPublic(key.curve, key.public), rec.publicPackage)) {
      throw new LifeboatError('share_mismatch', 'its public package differs from the one sealed with its share');
    }
    verifyShareAgainstPublic(key);
    const signers = Object.keys(key.public.verifyingShares).length;
    if (rec.threshold !== key.public.commitments.length || rec.maxSigners !== signers) {
      throw new LifeboatError('share_mismatch', `its threshold or signer count (${rec.threshold} of ${rec.maxSigners}) is not the package's`);
    }
    // suite.ts groupPublicKey's encoding, without its point decoding (the package is authenticated).
    const c0 = key.public.commitments[0] ?? new Uint8Array(0);
    if (!ctEqual(rec.curve === 'bip340' ? c0.subarray(1) : c0, rec.groupPublicKey)) {
      throw new LifeboatError('share_mismatch', 'its group public key is not the one of its public package');
    }
  } catch (err) {
    const code = err instanceof LifeboatError ? err.code : 'internal_error';
    const why = err instanceof LifeboatError ? err.message : 'its share cannot be read';
    throw new LifeboatError('share_mismatch', `key ${String(rec.keyId).slice(0, 64)}: the share does not match its verifying share (${code}: ${why})`, { hint: HINT, cause: err });
  } finally {
    if (key) wipe(key.share);
  }
}

// ---- Per key ----

/** One key that passed its per-key checks: what its batch needs. */
interface Prepared {
  index: number;
  group: Group;
  /** The signing share as a scalar: secret; a bigint cannot be wiped, it goes with the batch. */
  share: bigint;
  /** Y' = Σ id^k·C_k, a point of the WebAssembly arena (frost/curve-wasm.ts), and once normalized its affine form. */
  y: number;
  affine?: Affine;
  /** The row's verifying share, which Y' must encode to. */
  yBytes: Uint8Array;
}

const groupOf = (curve: FrostCurve): Group => (curve === 'ed25519' ? 'ed25519' : 'secp256k1');

/**
 * Everything checkRestoredKey checks of one key except G·share = Y' (the batch's part). Undefined when
 * checkRestoredKey refuses the key for a reason of its own, or Y' has no encoding equal to Y.
 */
function prepareKey(storageKey: Uint8Array, rec: KeyRecord, index: number, counters: Counters): Prepared | undefined {
  let row: OpenedRow | undefined;
  try {
    row = openRestoredRow(storageKey, rec);
    if (!row) return undefined;
    const { commitments, max, verifyingShare: yBytes } = row.pub;
    if (rec.threshold !== commitments.length || rec.maxSigners !== max) return undefined;
    const c0 = commitments[0] ?? new Uint8Array(0);
    if (!ctEqual(rec.curve === 'bip340' ? c0.subarray(1) : c0, rec.groupPublicKey)) return undefined;
    const group = groupOf(row.curve);
    if (!(yBytes instanceof Uint8Array) || yBytes.length !== suiteOf(row.curve).pointLen) return undefined;
    const id = parseIdentifier(row.curve, row.identifier);
    const share = decodeScalar(row.curve, row.share, 'signing share', { nonZero: true });
    const points = commitments.map((c) => {
      counters.pointsDecoded++;
      return decodePointFast(group, c);
    });
    return { index, group, share, y: horner(pointsOf(group)!, points, id, suiteOf(row.curve).order), yBytes };
  } catch (err) {
    if (err instanceof ArenaExhausted) throw err; // out of memory: no verdict on this key
    return undefined;
  } finally {
    if (row) wipe(row.share);
  }
}

/** Normalizes every Y' (one inversion per group); returns the first item whose encoding is not its Y, or -1. */
function firstVssMismatch(items: Prepared[]): number {
  for (const g of ['ed25519', 'secp256k1'] as const) {
    const mine = items.filter((p) => p.group === g);
    const affine = toAffineMany(pointsOf(g)!, mine.map((p) => p.y));
    mine.forEach((p, k) => (p.affine = affine[k]));
  }
  return items.findIndex((p) => !p.affine || !ctEqual(encodeAffine(p.group, p.affine), p.yBytes));
}

// ---- Per batch ----

/** Fresh uniform 128-bit coefficients from the system CSPRNG, as bigints and as 32-bit limbs (low first). */
function coefficients(n: number): { r: bigint[]; limbs: Uint32Array } {
  const limbs = new Uint32Array(4 * n);
  new Uint8Array(limbs.buffer).set(randomBytes(16 * n));
  const r = new Array<bigint>(n);
  for (let i = 0; i < n; i++) r[i] = (BigInt(limbs[4 * i + 3]!) << 96n) | (BigInt(limbs[4 * i + 2]!) << 64n) | (BigInt(limbs[4 * i + 1]!) << 32n) | BigInt(limbs[4 * i]!);
  return { r, limbs };
}

/** (Σ r_i·s_i)·G as noble computes it (constant time), in affine form; undefined for the identity. */
function baseTimes(group: Group, s: bigint): Affine | undefined {
  return s === 0n ? undefined : (suiteOf(group).point.BASE.multiply(s) as unknown as { toAffine(): Affine }).toAffine();
}

/** The batch equation of one group: (Σ r_i·s_i)·G = Σ r_i·Y'_i, with ed25519's torsion checks. */
function groupEquationHolds(group: Group, items: Prepared[]): boolean {
  if (items.length === 0) return true;
  const { r, limbs } = coefficients(items.length);
  let s = 0n;
  for (let i = 0; i < items.length; i++) s += r[i]! * items[i]!.share;
  const lhs = baseTimes(group, s % suiteOf(group).order);
  const A = pointsOf(group)!;
  const m = mark();
  try {
    if (group === 'secp256k1') {
      const rhs = msm(A, items.map((p) => p.y), limbs);
      return lhs ? equalsAffine(A, rhs, lhs) : isIdentity(A, rhs);
    }
    const planes = bitPlaneSums(A, items.map((p) => p.y), limbs);
    const order = suiteOf(group).order;
    const t = A.identity();
    for (const plane of planes) {
      A.copy(t, plane);
      mulPublic(A, t, order);
      if (!isIdentity(A, t)) return false;
    }
    const rhs = A.identity();
    for (let w = COEFF_BITS - 1; w >= 0; w--) {
      A.double(rhs);
      A.add(rhs, planes[w]!);
    }
    return lhs ? equalsAffine(A, rhs, lhs) : isIdentity(A, rhs);
  } finally {
    release(m);
  }
}

function batchHolds(items: Prepared[], counters: Counters): boolean {
  counters.batches++;
  return groupEquationHolds('ed25519', items.filter((p) => p.group === 'ed25519')) && groupEquationHolds('secp256k1', items.filter((p) => p.group === 'secp256k1'));
}

/** The exact check of one key: G·share = Y' (noble's constant-time base multiplication). */
function keyHolds(p: Prepared): boolean {
  return equalsAffine(pointsOf(p.group)!, p.y, baseTimes(p.group, p.share)!);
}

/** The first bad item of `items`, whose batch failed: bisection with smaller batches, then key by key. */
function firstBadItem(items: Prepared[], counters: Counters): Prepared | undefined {
  let lo = 0;
  let hi = items.length;
  while (hi - lo >= LINEAR_BELOW) {
    const mid = (lo + hi) >> 1;
    if (!batchHolds(items.slice(lo, mid), counters)) hi = mid;
    else lo = mid;
  }
  // The whole list only if a half passed that should not have (probability 2^-128).
  return items.slice(lo, hi).find((p) => !keyHolds(p)) ?? items.find((p) => !keyHolds(p));
}

/**
 * Checks records[from..to): returns the index of the first bad key, or -1. Per-key checks in order up
 * to the first key they refuse, then one batch for the keys before it.
 */
export function checkRange(storageKey: Uint8Array, records: readonly KeyRecord[], from: number, to: number, counters: Counters): number {
  if (!pointsOf('ed25519')) return firstRefused(storageKey, records, from, to);
  const m = mark();
  try {
    const items: Prepared[] = [];
    let perKeyBad = -1;
    for (let i = from; i < to && perKeyBad < 0; i++) {
      const p = prepareKey(storageKey, records[i]!, i, counters);
      if (p) items.push(p);
      else perKeyBad = i;
    }
    const vssBad = firstVssMismatch(items);
    if (vssBad >= 0) {
      perKeyBad = items[vssBad]!.index;
      items.length = vssBad;
    }
    if (batchHolds(items, counters)) return perKeyBad;
    return (firstBadItem(items, counters) ?? items[0]!).index;
  } catch (err) {
    if (!(err instanceof ArenaExhausted)) throw err;
    release(m);
    return firstRefused(storageKey, records, from, to);
  } finally {
    release(m);
  }
}

/**
 * Without WebAssembly (node --jitless, or an instance that cannot start or grow): checkRestoredKey on
 * each key in turn; the first it refuses, or -1.
 */
function firstRefused(storageKey: Uint8Array, records: readonly KeyRecord[], from: number, to: number): number {
  for (let i = from; i < to; i++) {
    try {
      checkRestoredKey(storageKey, records[i]!);
    } catch {
      return i;
    }
  }
  return -1;
}
