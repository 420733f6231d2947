/**
 * Curve arithmetic for the batch check of restored shares (../restore-verify.ts), and for nothing else:
 * point decoding, and the multi-point sums of a batch equation over ./curve-wasm.ts's points (complete
 * formulas in WebAssembly), with bigint (each prime's own reduction) for the few normalizations.
 *
 * Public values only, variable time: the points are VSS commitments and their sums, the multipliers
 * identifiers, the group order and the batch's random coefficients. Noble's constant-time code would
 * make a restore of 100,000 keys miss its budget (docs/format.md, "In batches"), and none of it is
 * needed when no secret is involved. So no secret may reach these functions: the one product with a
 * secret-derived scalar, (Σ r_i·s_i)·G, stays noble's constant-time multiplication, in the caller.
 */
import { invert } from '@noble/curves/abstract/modular.js';
import { mark, type Points, powField, release } from './curve-wasm.js';

/** Bits of a batch coefficient r_i (the 2^-128 bound of the batch check). */
export const COEFF_BITS = 128;

// ---- Field arithmetic: bigint with each prime's own reduction (about 20% faster than `%`) ----

export type Group = 'ed25519' | 'secp256k1';
const P25519 = (1n << 255n) - 19n;
const M255 = (1n << 255n) - 1n;
const PK1 = (1n << 256n) - (1n << 32n) - 977n;
const CK1 = (1n << 32n) + 977n;
const M256 = (1n << 256n) - 1n;
const ED_D = 37095705934669439343138083508754565189542113879843219016388785533085940283555n;
const SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752n;

/** x mod 2^255 - 19 for 0 <= x < 2^512 (2^255 = 19). */
function r25519(x: bigint): bigint {
  x = (x & M255) + 19n * (x >> 255n);
  x = (x & M255) + 19n * (x >> 255n);
  return x >= P25519 ? x - P25519 : x;
}

const subE = (a: bigint, b: bigint): bigint => (a >= b ? a - b : a - b + P25519);

/** x mod p of secp256k1 for 0 <= x < 2^512 (2^256 = 2^32 + 977). */
function rK1(x: bigint): bigint {
  x = (x & M256) + CK1 * (x >> 256n);
  x = (x & M256) + CK1 * (x >> 256n);
  return x >= PK1 ? x - PK1 : x;
}

/** 32 bytes as an integer. */
function bytesToNum(b: Uint8Array, littleEndian: boolean): bigint {
  const v = new DataView(b.buffer, b.byteOffset, 32);
  const w = [0, 8, 16, 24].map((o) => v.getBigUint64(o, littleEndian));
  return littleEndian ? (w[3]! << 192n) | (w[2]! << 128n) | (w[1]! << 64n) | w[0]! : (w[0]! << 192n) | (w[1]! << 128n) | (w[2]! << 64n) | w[3]!;
}

/** An integer below 2^256 as 32 bytes at `out[offset..]`. */
function numToBytes(n: bigint, out: Uint8Array, offset: number, littleEndian: boolean): void {
  const v = new DataView(out.buffer, out.byteOffset + offset, 32);
  for (let k = 0; k < 4; k++) v.setBigUint64(littleEndian ? 8 * k : 24 - 8 * k, BigInt.asUintN(64, n >> BigInt(64 * k)), littleEndian);
}

/** Affine coordinates of a decoded or normalized point. */
export interface Affine {
  x: bigint;
  y: bigint;
}

/**
 * Decodes a point of `group` with noble's acceptance (RFC 8032 5.1.3 strict for ed25519, SEC 1 2.3.4
 * compressed for secp256k1; then noble's assertValidity: on the curve, not the identity). No subgroup
 * check (the batch handles torsion). Throws on anything suite.ts's commitment decoding refuses. The
 * square roots' powers are WebAssembly's (./curve-wasm.ts: a fifth of a bigint root's time), and the
 * result is checked against the curve equation here. Needs WebAssembly (see pointsOf). The tests
 * compare it with noble (test/keynode-restore-verify, test/field-wasm).
 */
export function decodePointFast(group: Group, bytes: Uint8Array): Affine {
  return group === 'ed25519' ? decodeEd25519(bytes) : decodeSecp256k1(bytes);
}

function decodeEd25519(bytes: Uint8Array): Affine {
  if (bytes.length !== 32) throw new Error('bad point: length');
  const sign = bytes[31]! >> 7;
  const y = bytesToNum(bytes, true) & M255;
  if (y >= P25519) throw new Error('bad point: y is not canonical');
  // x^2 = u/v, u = y^2 - 1, v = d·y^2 + 1: x = u·v^3·(u·v^7)^((p-5)/8), times sqrt(-1) if v·x^2 = -u.
  const y2 = r25519(y * y);
  const u = y2 === 0n ? P25519 - 1n : y2 - 1n;
  const v = r25519(ED_D * y2 + 1n);
  const v3 = r25519(r25519(v * v) * v);
  const uv7 = r25519(u * r25519(r25519(v3 * v3) * v));
  let x = r25519(r25519(u * v3) * r25519(root(powField('ed25519', uv7))));
  const vx2 = r25519(v * r25519(x * x));
  if (vx2 !== u) {
    if (vx2 !== P25519 - u) throw new Error('bad point: y is not on the curve');
    x = r25519(x * SQRT_M1);
  }
  if (x === 0n && sign === 1) throw new Error('bad point: x = 0 with the sign bit set');
  if (Number(x & 1n) !== sign) x = P25519 - x;
  // noble's assertValidity: -x^2 + y^2 = 1 + d·x^2·y^2, and not the identity (0, 1).
  const x2 = r25519(x * x);
  if (subE(y2, x2) !== r25519(1n + r25519(ED_D * r25519(x2 * y2)))) throw new Error('bad point: not on the curve');
  if (x === 0n && y === 1n) throw new Error('bad point: the identity');
  return { x, y };
}

function decodeSecp256k1(bytes: Uint8Array): Affine {
  if (bytes.length !== 33 || (bytes[0] !== 2 && bytes[0] !== 3)) throw new Error('bad point: length or prefix');
  const x = bytesToNum(bytes.subarray(1), false);
  if (x >= PK1) throw new Error('bad point: x is not canonical');
  // y = (x^3 + 7)^((p+1)/4), p = 3 mod 4: a root when one exists, checked by squaring it back.
  const y2 = rK1(rK1(rK1(x * x) * x) + 7n);
  let y = rK1(root(powField('secp256k1', y2)));
  if (rK1(y * y) !== y2) throw new Error('bad point: x is not on the curve');
  if (y !== 0n && Number(y & 1n) !== (bytes[0] & 1)) y = PK1 - y;
  return { x, y };
}

/** A root power, which needs WebAssembly (callers check pointsOf first). */
function root(v: bigint | undefined): bigint {
  if (v === undefined) throw new Error('point decoding needs WebAssembly');
  return v;
}

// ---- Sums over the WebAssembly arena (./curve-wasm.ts) ----

export { ArenaExhausted, mark, release } from './curve-wasm.js';
export type { Points } from './curve-wasm.js';

/** The curve's point operations (complete formulas in WebAssembly); undefined where WebAssembly is missing. */
export { points as pointsOf } from './curve-wasm.js';

const PRIMES: Record<Group, { p: bigint; red: (x: bigint) => bigint }> = {
  ed25519: { p: P25519, red: r25519 },
  'secp256k1': { p: PK1, red: rK1 },
};

/** Projective X, Y, Z of `h`, reduced (each prime's reduction ends below p). */
function reduced(A: Points, h: number): [bigint, bigint, bigint] {
  const { red } = PRIMES[A.group];
  return A.coords(h).map(red) as [bigint, bigint, bigint];
}

/** h is the identity: (0:1:1) on ed25519 (X = 0, Y = Z), Z = 0 on secp256k1. */
export function isIdentity(A: Points, h: number): boolean {
  const [x, y, z] = reduced(A, h);
  return A.group === 'ed25519' ? x === 0n && y === z && z !== 0n : z === 0n;
}

/** h equals the affine point a (cross-multiplied, no inversion). */
export function equalsAffine(A: Points, h: number, a: Affine): boolean {
  const [x, y, z] = reduced(A, h);
  const { red } = PRIMES[A.group];
  return z !== 0n && red(a.x * z) === x && red(a.y * z) === y;
}

/** Affine coordinates of many points with one inversion; undefined for a point at infinity (Z = 0). */
export function toAffineMany(A: Points, hs: number[]): (Affine | undefined)[] {
  const { red, p } = PRIMES[A.group];
  const all = hs.map((h) => reduced(A, h));
  const live = all.filter(([, , z]) => z !== 0n);
  const inv = invertMany(live.map(([, , z]) => z), red, p);
  let k = 0;
  return all.map(([x, y, z]) => {
    if (z === 0n) return undefined;
    const zi = inv[k++]!;
    return { x: red(x * zi), y: red(y * zi) };
  });
}

/** Inverses of non-zero field elements with one inversion (Montgomery's trick). */
function invertMany(zs: bigint[], red: (x: bigint) => bigint, p: bigint): bigint[] {
  const prefix = new Array<bigint>(zs.length);
  let acc = 1n;
  zs.forEach((z, i) => (acc = red((prefix[i] = acc) * z)));
  let inv = zs.length ? invert(acc, p) : 1n;
  const out = new Array<bigint>(zs.length);
  for (let i = zs.length - 1; i >= 0; i--) {
    out[i] = red(inv * prefix[i]!);
    inv = red(inv * zs[i]!);
  }
  return out;
}

/** The encoding of an affine point: ed25519 RFC 8032 5.1.2, secp256k1 SEC 1 compressed. */
export function encodeAffine(group: Group, a: Affine): Uint8Array {
  if (group === 'ed25519') {
    const out = new Uint8Array(32);
    numToBytes(a.y, out, 0, true);
    out[31]! |= Number(a.x & 1n) << 7;
    return out;
  }
  const out = new Uint8Array(33);
  out[0] = 2 + Number(a.y & 1n);
  numToBytes(a.x, out, 1, false);
  return out;
}

/** h = k·h for a public k >= 0, double-and-add (identifiers, the group order). */
export function mulPublic(A: Points, h: number, k: bigint): void {
  const m = mark();
  const base = A.identity();
  A.copy(base, h);
  if (k === 0n) A.copy(h, A.identity());
  const bits = k.toString(2);
  for (let i = 1; i < bits.length; i++) {
    A.double(h);
    if (bits[i] === '1') A.add(h, base);
  }
  release(m);
}

/**
 * Σ (id^k mod ℓ)·C_k, as RFC 9591 (and noble) evaluates the commitments, in a new place. By Horner's
 * rule, (...(C_{t-1}·id + C_{t-2})·id + ...) + C_0, when id^(t-1) < ℓ (DKG identifiers are small), so
 * the integer powers are the reduced ones; else term by term with the reduced powers, which differ
 * from the integer ones on a torsion component of an ed25519 commitment.
 */
export function horner(A: Points, commitments: Affine[], id: bigint, order: bigint): number {
  if (id ** BigInt(commitments.length - 1) >= order) {
    const y = A.identity();
    let e = 1n;
    for (const c of commitments) {
      const m = mark();
      const term = A.fromAffine(c.x, c.y);
      mulPublic(A, term, e);
      A.add(y, term);
      release(m);
      e = (e * id) % order;
    }
    return y;
  }
  const last = commitments[commitments.length - 1]!;
  const y = A.fromAffine(last.x, last.y);
  for (let k = commitments.length - 2; k >= 0; k--) {
    mulPublic(A, y, id);
    const m = mark();
    A.add(y, A.fromAffine(commitments[k]!.x, commitments[k]!.y));
    release(m);
  }
  return y;
}

// ---- Sums of a batch ----

/** Bits [bit, bit + width) of coefficient i, width <= 16. */
function digit(limbs: Uint32Array, i: number, bit: number, width: number): number {
  const k = bit >>> 5;
  const o = bit & 31;
  let v = limbs[4 * i + k]! >>> o;
  if (o + width > 32 && k < 3) v |= limbs[4 * i + k + 1]! << (32 - o);
  return v & ((1 << width) - 1);
}

/** Σ r_i·P_i by buckets (Pippenger) over c-bit windows of the 128-bit coefficients, in a new place. */
export function msm(A: Points, pts: number[], limbs: Uint32Array): number {
  const n = pts.length;
  // The window width that minimises (windows) × (n additions + 2^(c+1) more).
  let c = 2;
  const cost = (w: number) => Math.ceil(COEFF_BITS / w) * (n + 2 ** (w + 1));
  for (let w = 3; w <= 16; w++) if (cost(w) < cost(c)) c = w;
  const sum = A.identity(); // taken before the mark: it outlives the release
  const m = mark();
  const buckets = Array.from({ length: 1 << c }, () => A.identity());
  const used = new Uint8Array(1 << c);
  const [running, windowSum] = [A.identity(), A.identity()];
  const zero = A.identity();
  for (let w = Math.ceil(COEFF_BITS / c) - 1; w >= 0; w--) {
    for (let k = 0; k < c; k++) A.double(sum);
    used.fill(0);
    const width = Math.min(c, COEFF_BITS - w * c);
    for (let i = 0; i < n; i++) {
      const d = digit(limbs, i, w * c, width);
      if (d === 0) continue;
      if (used[d]) A.add(buckets[d]!, pts[i]!);
      else A.copy(buckets[d]!, pts[i]!);
      used[d] = 1;
    }
    A.copy(running, zero);
    A.copy(windowSum, zero);
    let started = false;
    for (let d = buckets.length - 1; d > 0; d--) {
      if (used[d]) {
        A.add(running, buckets[d]!);
        started = true;
      }
      if (started) A.add(windowSum, running);
    }
    A.add(sum, windowSum);
  }
  release(m);
  return sum;
}

/**
 * The 128 bit-plane sums T_w = Σ_{i : bit w of r_i} P_i, five points at a time (the 32 subset sums of
 * the five, then one addition per plane): about 30 additions per point. In new places.
 */
export function bitPlaneSums(A: Points, pts: number[], limbs: Uint32Array): number[] {
  const G = 5;
  const planes = Array.from({ length: COEFF_BITS }, () => A.identity()); // before the mark: returned
  const m = mark();
  const table = Array.from({ length: 1 << G }, () => A.identity());
  for (let start = 0; start < pts.length; start += G) {
    const size = Math.min(G, pts.length - start);
    for (let mask = 1; mask < 1 << size; mask++) {
      const low = pts[start + 31 - Math.clz32(mask & -mask)]!;
      const rest = mask & (mask - 1);
      A.copy(table[mask]!, low);
      if (rest !== 0) A.add(table[mask]!, table[rest]!);
    }
    for (let w = 0; w < COEFF_BITS; w++) {
      let mask = 0;
      for (let j = 0; j < size; j++) mask |= ((limbs[4 * (start + j) + (w >>> 5)]! >>> (w & 31)) & 1) << j;
      if (mask !== 0) A.add(planes[w]!, table[mask]!);
    }
  }
  release(m);
  return planes;
}
