/**
 * Curve arithmetic for the batch check of restored shares (../restore-verify.ts), and for nothing else:
 * point decoding, EFD point formulas for ed25519 and secp256k1 in bigint with each prime's own
 * reduction, and the multi-point sums of a batch equation.
 *
 * Public values only, variable time: the points are VSS commitments and their sums, the multipliers
 * identifiers, the group order and the batch's random coefficients. Noble's constant-time code would
 * make a restore of 100,000 keys miss its budget (docs/format.md, "In batches"), and none of it is
 * needed when no secret is involved. So no secret may reach these functions: the one product with a
 * secret-derived scalar, (Σ r_i·s_i)·G, stays noble's constant-time multiplication, in the caller.
 */
import { ECDH } from 'node:crypto';
import { invert } from '@noble/curves/abstract/modular.js';
import { powField } from './field-wasm.js';

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

/** x mod p of secp256k1 for 0 <= x < 2^512 (2^256 = 2^32 + 977). */
function rK1(x: bigint): bigint {
  x = (x & M256) + CK1 * (x >> 256n);
  x = (x & M256) + CK1 * (x >> 256n);
  return x >= PK1 ? x - PK1 : x;
}

/** x^(2^n) mod 2^255 - 19. */
function sq25519(x: bigint, n: number): bigint {
  for (let i = 0; i < n; i++) x = r25519(x * x);
  return x;
}


/** x^((p-5)/8) mod 2^255 - 19: noble's addition chain (ed25519_pow_2_252_3). */
function pow25519(x: bigint): bigint {
  const r = r25519;
  const b2 = r(r(x * x) * x);
  const b4 = r(sq25519(b2, 2) * b2);
  const b5 = r(sq25519(b4, 1) * x);
  const b10 = r(sq25519(b5, 5) * b5);
  const b20 = r(sq25519(b10, 10) * b10);
  const b40 = r(sq25519(b20, 20) * b20);
  const b80 = r(sq25519(b40, 40) * b40);
  const b160 = r(sq25519(b80, 80) * b80);
  const b240 = r(sq25519(b160, 80) * b80);
  const b250 = r(sq25519(b240, 10) * b10);
  return r(sq25519(b250, 2) * x);
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
 * square roots' powers are WebAssembly's (./field-wasm.ts: a fifth of a bigint root's time); where
 * WebAssembly is missing, ed25519's is taken over this file's reductions and secp256k1's is OpenSSL's
 * (node:crypto ECDH.convertKey). Either way the result is checked against the curve equation here.
 * The tests compare it with noble (through restore-verify.ts).
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
  const root = powField('ed25519', uv7);
  let x = r25519(r25519(u * v3) * (root === undefined ? pow25519(uv7) : r25519(root)));
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
  const root = powField('secp256k1', y2);
  let y = root === undefined ? sqrtK1OpenSSL(bytes) : rK1(root);
  if (rK1(y * y) !== y2) throw new Error('bad point: x is not on the curve');
  if (y !== 0n && Number(y & 1n) !== (bytes[0] & 1)) y = PK1 - y;
  return { x, y };
}

/** y of a compressed secp256k1 point through OpenSSL (node:crypto), where WebAssembly is missing. */
function sqrtK1OpenSSL(bytes: Uint8Array): bigint {
  try {
    const full = ECDH.convertKey(bytes, 'secp256k1', undefined, undefined, 'uncompressed') as Buffer;
    return bytesToNum(full.subarray(33), false);
  } catch {
    throw new Error('bad point: x is not on the curve');
  }
}

// ---- Group arithmetic for the sums, EFD formulas (hyperelliptic.org/EFD) ----

/** What the generic sums need of a curve's projective points. */
export interface Arith<P> {
  zero: P;
  isZero(p: P): boolean;
  add(p: P, q: P): P;
  double(p: P): P;
  fromAffine(a: Affine): P;
  /** Affine coordinates of many points with one inversion; undefined for an identity without them. */
  toAffineMany(ps: P[]): (Affine | undefined)[];
  encode(a: Affine): Uint8Array;
  /** p equals the affine point a (cross-multiplied, no inversion). */
  equalsAffine(p: P, a: Affine): boolean;
}

/** secp256k1, Jacobian (x/z^2, y/z^3), z = 0 the identity: dbl-2009-l, add-2007-bl. */
export interface Jac {
  x: bigint;
  y: bigint;
  z: bigint;
}
const subK = (a: bigint, b: bigint): bigint => (a >= b ? a - b : a - b + PK1);

function jDouble(p: Jac): Jac {
  if (p.z === 0n) return p;
  const a = rK1(p.x * p.x);
  const b = rK1(p.y * p.y);
  const c = rK1(b * b);
  const xb = p.x + b;
  const d = rK1(2n * subK(subK(rK1(xb * xb), a), c));
  const e = rK1(3n * a);
  const x = subK(rK1(e * e), rK1(2n * d));
  return { x, y: subK(rK1(e * subK(d, x)), rK1(8n * c)), z: rK1(2n * rK1(p.y * p.z)) };
}

function jAdd(p: Jac, q: Jac): Jac {
  if (p.z === 0n) return q;
  if (q.z === 0n) return p;
  const z1z1 = rK1(p.z * p.z);
  const z2z2 = q.z === 1n ? 1n : rK1(q.z * q.z);
  const u1 = q.z === 1n ? p.x : rK1(p.x * z2z2);
  const s1 = q.z === 1n ? p.y : rK1(p.y * rK1(q.z * z2z2));
  const h = subK(rK1(q.x * z1z1), u1);
  const rr = rK1(2n * subK(rK1(q.y * rK1(p.z * z1z1)), s1));
  if (h === 0n) return rr === 0n ? jDouble(p) : K1.zero;
  const i = rK1(4n * rK1(h * h));
  const j = rK1(h * i);
  const v = rK1(u1 * i);
  const x = subK(subK(rK1(rr * rr), j), rK1(2n * v));
  const zz = p.z + q.z;
  return { x, y: subK(rK1(rr * subK(v, x)), rK1(2n * rK1(s1 * j))), z: rK1(subK(subK(rK1(zz * zz), z1z1), z2z2) * h) };
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

export const K1: Arith<Jac> = {
  zero: { x: 1n, y: 1n, z: 0n },
  isZero: (p) => p.z === 0n,
  add: jAdd,
  double: jDouble,
  fromAffine: (a) => ({ x: a.x, y: a.y, z: 1n }),
  toAffineMany(ps) {
    const live = ps.filter((p) => p.z !== 0n);
    const inv = invertMany(live.map((p) => p.z), rK1, PK1);
    let k = 0;
    return ps.map((p) => {
      if (p.z === 0n) return undefined;
      const zi = inv[k++]!;
      const zi2 = rK1(zi * zi);
      return { x: rK1(p.x * zi2), y: rK1(p.y * rK1(zi2 * zi)) };
    });
  },
  encode(a) {
    const out = new Uint8Array(33);
    out[0] = 2 + Number(a.y & 1n);
    numToBytes(a.x, out, 1, false);
    return out;
  },
  equalsAffine(p, a) {
    if (p.z === 0n) return false;
    const zz = rK1(p.z * p.z);
    return rK1(a.x * zz) === p.x && rK1(a.y * rK1(zz * p.z)) === p.y;
  },
};

/** ed25519, extended (x/z, y/z, t = xy/z), a = -1: noble's add-2008-hwcd (complete) and dbl-2008-hwcd. */
export interface Ext {
  x: bigint;
  y: bigint;
  z: bigint;
  t: bigint;
}
const addE = (a: bigint, b: bigint): bigint => (a + b >= P25519 ? a + b - P25519 : a + b);
const subE = (a: bigint, b: bigint): bigint => (a >= b ? a - b : a - b + P25519);

export const ED: Arith<Ext> = {
  zero: { x: 0n, y: 1n, z: 1n, t: 0n },
  isZero: (p) => p.x === 0n && p.y === p.z,
  add(p, q) {
    const a = r25519(p.x * q.x);
    const b = r25519(p.y * q.y);
    const c = r25519(r25519(p.t * ED_D) * q.t);
    const d = q.z === 1n ? p.z : r25519(p.z * q.z);
    const e = subE(subE(r25519((p.x + p.y) * (q.x + q.y)), a), b);
    const f = subE(d, c);
    const g = addE(d, c);
    const h = addE(b, a);
    return { x: r25519(e * f), y: r25519(g * h), z: r25519(f * g), t: r25519(e * h) };
  },
  double(p) {
    const a = r25519(p.x * p.x);
    const b = r25519(p.y * p.y);
    const c = r25519(2n * r25519(p.z * p.z));
    const d = subE(0n, a);
    const xy = p.x + p.y;
    const e = subE(subE(r25519(xy * xy), a), b);
    const g = addE(d, b);
    const f = subE(g, c);
    const h = subE(d, b);
    return { x: r25519(e * f), y: r25519(g * h), z: r25519(f * g), t: r25519(e * h) };
  },
  fromAffine: (a) => ({ x: a.x, y: a.y, z: 1n, t: r25519(a.x * a.y) }),
  toAffineMany(ps) {
    const inv = invertMany(ps.map((p) => p.z), r25519, P25519);
    return ps.map((p, i) => ({ x: r25519(p.x * inv[i]!), y: r25519(p.y * inv[i]!) }));
  },
  encode(a) {
    const out = new Uint8Array(32);
    numToBytes(a.y, out, 0, true);
    out[31]! |= Number(a.x & 1n) << 7;
    return out;
  },
  equalsAffine: (p, a) => r25519(a.x * p.z) === p.x && r25519(a.y * p.z) === p.y,
};

/** k·p for a public k >= 0, double-and-add (identifiers, their powers, the group order). */
export function mulPublic<P>(A: Arith<P>, p: P, k: bigint): P {
  let acc = A.zero;
  for (const bit of k.toString(2)) {
    acc = A.double(acc);
    if (bit === '1') acc = A.add(acc, p);
  }
  return acc;
}

/** Σ id^k·C_k by Horner's rule: (...(C_{t-1}·id + C_{t-2})·id + ...) + C_0. */
export function horner<P>(A: Arith<P>, commitments: Affine[], id: bigint): P {
  let y = A.fromAffine(commitments[commitments.length - 1]!);
  for (let k = commitments.length - 2; k >= 0; k--) y = A.add(mulPublic(A, y, id), A.fromAffine(commitments[k]!));
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

/** Σ r_i·P_i by buckets (Pippenger) over c-bit windows of the 128-bit coefficients. */
export function msm<P>(A: Arith<P>, points: P[], limbs: Uint32Array): P {
  const n = points.length;
  // The window width that minimises (windows) × (n mixed additions + 2^(c+1) full ones, at 3/2 the cost).
  let c = 2;
  const cost = (w: number) => Math.ceil(COEFF_BITS / w) * (2 * n + 3 * 2 ** (w + 1));
  for (let w = 3; w <= 16; w++) if (cost(w) < cost(c)) c = w;
  let sum = A.zero;
  for (let w = Math.ceil(COEFF_BITS / c) - 1; w >= 0; w--) {
    for (let k = 0; k < c; k++) sum = A.double(sum);
    const buckets = new Array<P | undefined>(1 << c);
    const width = Math.min(c, COEFF_BITS - w * c);
    for (let i = 0; i < n; i++) {
      const d = digit(limbs, i, w * c, width);
      if (d !== 0) buckets[d] = buckets[d] === undefined ? points[i]! : A.add(buckets[d], points[i]!);
    }
    let running = A.zero;
    let windowSum = A.zero;
    for (let d = buckets.length - 1; d > 0; d--) {
      const b = buckets[d];
      if (b !== undefined) running = A.add(running, b);
      windowSum = A.add(windowSum, running);
    }
    sum = A.add(sum, windowSum);
  }
  return sum;
}

/**
 * The 128 bit-plane sums T_w = Σ_{i : bit w of r_i} P_i, five points at a time (the 32 subset sums of
 * the five, then one addition per plane): about 30 additions per point.
 */
export function bitPlaneSums<P>(A: Arith<P>, points: P[], limbs: Uint32Array): P[] {
  const G = 5;
  const planes = new Array<P>(COEFF_BITS).fill(A.zero);
  const table = new Array<P>(1 << G);
  for (let start = 0; start < points.length; start += G) {
    const size = Math.min(G, points.length - start);
    for (let m = 1; m < 1 << size; m++) {
      const low = points[start + 31 - Math.clz32(m & -m)]!;
      const rest = m & (m - 1);
      table[m] = rest === 0 ? low : A.add(table[rest]!, low);
    }
    for (let w = 0; w < COEFF_BITS; w++) {
      let m = 0;
      for (let j = 0; j < size; j++) m |= ((limbs[4 * (start + j) + (w >>> 5)]! >>> (w & 31)) & 1) << j;
      if (m !== 0) planes[w] = A.add(planes[w]!, table[m]!);
    }
  }
  return planes;
}
