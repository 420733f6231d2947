/**
 * Shamir's secret sharing over GF(256), byte by byte (SLIP-0039 "Shamir's secret-sharing" and
 * "Polynomial interpolation"). Every byte of the secret is the constant term of its own random
 * polynomial of degree threshold-1; a share is the vector of those polynomials' values at one x.
 *
 * Secret bytes are only ever multiplied by public constants (x coordinates and Lagrange basis
 * values), through gf256.mulAddTo, so the work is constant-time in the secret.
 */
import { InvalidInputError, ShareError } from '../errors.js';
import { wipe } from '../util/bytes.js';
import { lagrangeBasis, mulAddTo } from './gf256.js';
import { randomBytes } from './random.js';

/** One point (x, f(x)) of the byte-wise polynomials; `y` has the secret's length. */
export interface ShamirShare {
  x: number;
  y: Uint8Array;
}

function checkInt(v: number, name: string, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new InvalidInputError(`${name} must be an integer in ${min}..${max}, got ${String(v)}`);
  }
}

function checkBytes(v: unknown, name: string): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array) || v.length === 0) throw new InvalidInputError(`${name} must be a non-empty Uint8Array`);
}

/** Word-aligned bytes let gf256 take its 4-bytes-per-step path; copies (to be wiped) only when needed. */
function alignedCopyIfNeeded(b: Uint8Array): Uint8Array {
  return (b.byteOffset & 3) === 0 ? b : b.slice();
}

/**
 * Splits `secret` into `count` shares at x = 1..count, any `threshold` of which recover it (f(0) is the
 * secret, as in classic Shamir; SLIP-0039 uses its own layout on top of `interpolate`). All random
 * coefficients come from one randomBytes call and are wiped afterwards.
 * Throws InvalidInputError unless secret is a non-empty Uint8Array, 1 ≤ count ≤ 255 and
 * 1 ≤ threshold ≤ count.
 */
export function splitSecret(secret: Uint8Array, threshold: number, count: number): ShamirShare[] {
  checkBytes(secret, 'secret');
  checkInt(count, 'count', 1, 255);
  checkInt(threshold, 'threshold', 1, count);
  const len = secret.length;
  const s = alignedCopyIfNeeded(secret);
  // Coefficients a_1..a_{t-1} at a word-aligned stride, from a single CSPRNG call.
  const stride = (len + 3) & ~3;
  const random = randomBytes(stride * (threshold - 1));
  const coef = [s];
  for (let k = 1; k < threshold; k++) coef.push(random.subarray((k - 1) * stride, (k - 1) * stride + len));
  const shares: ShamirShare[] = [];
  for (let x = 1; x <= count; x++) shares.push({ x, y: evaluate(coef, x) });
  wipe(random);
  if (s !== secret) wipe(s);
  return shares;
}

/** Horner's rule: f(x) = (…(a_{t-1}·x ⊕ a_{t-2})·x ⊕ …)·x ⊕ a_0, with x public. */
function evaluate(coef: Uint8Array[], x: number): Uint8Array {
  const t = coef.length;
  const y = new Uint8Array(coef[0]!.length);
  if (t === 1) {
    y.set(coef[0]!);
    return y;
  }
  mulAddTo(y, coef[t - 1]!, x, coef[t - 2]!);
  for (let k = t - 3; k >= 0; k--) mulAddTo(y, y, x, coef[k]!);
  return y;
}

/**
 * Recovers the secret f(0) from shares made by splitSecret. Needs at least `threshold` of them; with
 * fewer it returns an unrelated value (plain Shamir carries no threshold or digest — SLIP-0039 adds both).
 * Throws ShareError('insufficient_shares') when given none, ShareError('duplicate_share') when two
 * shares have the same x, ShareError('invalid_share') for x = 0 (the secret's own slot: a share moved
 * there would force the result, see SLIP-0039 design rationale 3) or unequal lengths, and
 * InvalidInputError for malformed arguments.
 */
export function combineShares(shares: readonly ShamirShare[]): Uint8Array {
  if (!Array.isArray(shares)) throw new InvalidInputError('shares must be an array');
  if (shares.length === 0) throw new ShareError('insufficient_shares', 'no shares given: at least 1 is needed');
  for (const [i, s] of shares.entries()) {
    if (s?.x === 0) throw new ShareError('invalid_share', `share ${i + 1} has x = 0, which no share may have`);
  }
  return interpolate(shares, 0);
}

/** Checks points for interpolation: non-empty, x in 0..255 and pairwise distinct, equal y lengths. */
function checkPoints(points: readonly ShamirShare[]): void {
  if (!Array.isArray(points)) throw new InvalidInputError('points must be an array');
  if (points.length === 0) throw new ShareError('insufficient_shares', 'no shares given: at least 1 is needed');
  const len = points[0]?.y?.length;
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    if (typeof p !== 'object' || p === null) throw new InvalidInputError(`share ${i + 1} must be an object {x, y}`);
    if (!Number.isInteger(p.x) || p.x < 0 || p.x > 255) checkInt(p.x, `share ${i + 1} x`, 0, 255);
    if (!(p.y instanceof Uint8Array) || p.y.length === 0) checkBytes(p.y, `share ${i + 1} y`);
    if (p.y.length !== len) throw new ShareError('invalid_share', `shares differ in length (${len} and ${p.y.length} bytes)`);
    for (let j = 0; j < i; j++) {
      if (points[j]!.x === p.x) throw new ShareError('duplicate_share', `two shares have the same x (${p.x})`);
    }
  }
}

/**
 * Evaluates at `x` the unique polynomial of lowest degree through `points` (SLIP-0039
 * "Polynomial interpolation", byte-wise). Exported for SLIP-0039, which places the secret at 255 and
 * its digest at 254. With fewer points than the sharing threshold the result is unrelated to the
 * secret; the caller must know the threshold.
 * Throws ShareError('insufficient_shares') for no points, ShareError('duplicate_share') for repeated
 * x, ShareError('invalid_share') for unequal lengths, InvalidInputError for x or points out of range.
 */
export function interpolate(points: readonly ShamirShare[], x: number): Uint8Array {
  checkPoints(points);
  checkInt(x, 'x', 0, 255);
  const basis = lagrangeBasis(
    points.map((p) => p.x),
    x,
  );
  const out = new Uint8Array(points[0]!.y.length);
  for (let i = 0; i < points.length; i++) {
    const y = alignedCopyIfNeeded(points[i]!.y);
    mulAddTo(out, y, basis[i]!, out);
    if (y !== points[i]!.y) wipe(y);
  }
  return out;
}
