/**
 * The restore check of many keys at once: the verdict of `checkRestoredKey` (docs/format.md (key node),
 * "Share check") on every key, with the costly equation G·share = verifying share checked for a whole
 * batch by one random linear combination per curve.
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
 * The sums use the EFD formulas below in bigint with each prime's own reduction (public values only,
 * variable time); the one multiplication by the secret-derived Σ r_i·s_i is noble's constant-time one.
 * When a batch fails, a bisection with smaller batches, then exact per-key checks, finds the first bad
 * key, and checkRestoredKey on it throws the error a key-at-a-time restore throws.
 */
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { invert } from '@noble/curves/abstract/modular.js';
import { LifeboatError } from '../errors.js';
import { randomBytes } from '../crypto/random.js';
import { ctEqual, wipe } from '../util/bytes.js';
import { openEnvelope, parseEnvelope } from '../crypto/envelope.js';
// The frost files themselves, not the index: a worker thread loads only what the check needs.
import { checkExpected, KEY_SHARE_MAGIC, type KeyShare, openKeyShare, parseKeyHeader } from './frost/keyshare.js';
import { encodeFrostPublic, parseFrostPublic, verifyShareAgainstPublic } from './frost/public.js';
import { decodeScalar, type FrostCurve, parseIdentifier, suiteOf } from './frost/suite.js';
import type { KeyRecord } from './store/types.js';

/** Reports how many of `total` shares were checked; called at most every `PROGRESS_MS` and at the end. */
export type RestoreProgress = (done: number, total: number) => void;
const PROGRESS_MS = 1000;
const HINT = 'nothing was restored; this backup or database was altered or mixed with another node’s: use another backup of this node';

/** What a verification did, for tests and benchmarks. */
export interface VerifyStats {
  keys: number;
  /** Batch equations checked (bisection steps included). */
  batches: number;
  /** Points decoded from bytes: each VSS commitment of each key once, nothing else. */
  pointsDecoded: number;
  /** Worker threads used (0: the calling thread). */
  workers: number;
}

/** Keys per range (one batch per curve group): large, to spread ed25519's 128 torsion checks (~0.1 s). */
const RANGE = 16_384;
/** A bisection step checks keys one by one below this many. */
const LINEAR_BELOW = 32;
/**
 * From this many keys the check runs on worker threads (one per core): batched on one thread it takes
 * about 0.3 ms a key on these 2-core machines, 30 s per 100,000, the whole budget of a restore. Fewer
 * keys stay on the calling thread: starting workers would cost more than it saves.
 */
const WORKER_MIN_KEYS = 6_000;
const COEFF_BITS = 128;
const WORKER_TASK = 'lifeboat-restore-verify';

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

// ---- Field arithmetic: bigint with each prime's own reduction (about 20% faster than `%`) ----

type Group = 'ed25519' | 'secp256k1';
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

/** x^(2^n): one loop per prime, so each call site stays monomorphic. */
function sq25519(x: bigint, n: number): bigint {
  for (let i = 0; i < n; i++) x = r25519(x * x);
  return x;
}

function sqK1(x: bigint, n: number): bigint {
  for (let i = 0; i < n; i++) x = rK1(x * x);
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

/** The square root x^((p+1)/4) mod p of secp256k1 (noble's chain), or undefined when y is not a square. */
function sqrtK1(y: bigint): bigint | undefined {
  const r = rK1;
  const b2 = r(r(y * y) * y);
  const b3 = r(r(b2 * b2) * y);
  const b6 = r(sqK1(b3, 3) * b3);
  const b9 = r(sqK1(b6, 3) * b3);
  const b11 = r(sqK1(b9, 2) * b2);
  const b22 = r(sqK1(b11, 11) * b11);
  const b44 = r(sqK1(b22, 22) * b22);
  const b88 = r(sqK1(b44, 44) * b44);
  const b176 = r(sqK1(b88, 88) * b88);
  const b220 = r(sqK1(b176, 44) * b44);
  const b223 = r(sqK1(b220, 3) * b3);
  const t1 = r(sqK1(b223, 23) * b22);
  const root = sqK1(r(sqK1(t1, 6) * b2), 2);
  return r(root * root) === y ? root : undefined;
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
interface Affine {
  x: bigint;
  y: bigint;
}

/**
 * Decodes a point of `group` with noble's acceptance (RFC 8032 5.1.3 strict for ed25519, SEC 1 2.3.4
 * compressed for secp256k1; then assertValidity: on the curve, not the identity), the square root taken
 * over this file's reductions. No subgroup check (the batch handles torsion). Throws on anything
 * suite.ts's commitment decoding refuses. Exported for the tests, which compare it with noble.
 */
export function decodePointFast(group: Group, bytes: Uint8Array): Affine {
  let x: bigint;
  let y: bigint;
  if (group === 'ed25519') {
    if (bytes.length !== 32) throw new Error('bad point: length');
    const sign = bytes[31]! >> 7;
    y = bytesToNum(bytes, true) & M255;
    if (y >= P25519) throw new Error('bad point: y is not canonical');
    // x^2 = u/v, u = y^2 - 1, v = d·y^2 + 1: x = u·v^3·(u·v^7)^((p-5)/8), times sqrt(-1) if v·x^2 = -u.
    const y2 = r25519(y * y);
    const u = y2 === 0n ? P25519 - 1n : y2 - 1n;
    const v = r25519(ED_D * y2 + 1n);
    const v3 = r25519(r25519(v * v) * v);
    x = r25519(r25519(u * v3) * pow25519(r25519(u * r25519(r25519(v3 * v3) * v))));
    const vx2 = r25519(v * r25519(x * x));
    if (vx2 !== u) {
      if (vx2 !== P25519 - u) throw new Error('bad point: y is not on the curve');
      x = r25519(x * SQRT_M1);
    }
    if (x === 0n && sign === 1) throw new Error('bad point: x = 0 with the sign bit set');
    if (Number(x & 1n) !== sign) x = P25519 - x;
  } else {
    if (bytes.length !== 33 || (bytes[0] !== 2 && bytes[0] !== 3)) throw new Error('bad point: length or prefix');
    x = bytesToNum(bytes.subarray(1), false);
    if (x >= PK1) throw new Error('bad point: x is not canonical');
    const root = sqrtK1(rK1(rK1(x * x) * x + 7n));
    if (root === undefined) throw new Error('bad point: x is not on the curve');
    y = Number(root & 1n) === (bytes[0]! & 1) ? root : PK1 - root;
  }
  (suiteOf(group).point as unknown as { fromAffine(a: Affine): { assertValidity(): void } }).fromAffine({ x, y }).assertValidity();
  return { x, y };
}

// ---- Group arithmetic for the sums, EFD formulas (hyperelliptic.org/EFD) ----

/** What the generic sums need of a curve's projective points. */
interface Arith<P> {
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
interface Jac {
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

const K1: Arith<Jac> = {
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
interface Ext {
  x: bigint;
  y: bigint;
  z: bigint;
  t: bigint;
}
const addE = (a: bigint, b: bigint): bigint => (a + b >= P25519 ? a + b - P25519 : a + b);
const subE = (a: bigint, b: bigint): bigint => (a >= b ? a - b : a - b + P25519);

const ED: Arith<Ext> = {
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
function mulPublic<P>(A: Arith<P>, p: P, k: bigint): P {
  let acc = A.zero;
  for (const bit of k.toString(2)) {
    acc = A.double(acc);
    if (bit === '1') acc = A.add(acc, p);
  }
  return acc;
}

// ---- Per key ----

interface Counters {
  pointsDecoded: number;
  batches: number;
}

/** One key that passed its per-key checks: what its batch needs. */
interface Prepared {
  index: number;
  group: Group;
  /** The signing share as a scalar: secret; a bigint cannot be wiped, it goes with the batch. */
  share: bigint;
  /** Y' = Σ id^k·C_k (Jac or Ext by group), and once normalized its affine form. */
  y: Jac | Ext;
  affine?: Affine;
  /** The row's verifying share, which Y' must encode to. */
  yBytes: Uint8Array;
}

const groupOf = (curve: FrostCurve): Group => (curve === 'ed25519' ? 'ed25519' : 'secp256k1');

/** Σ id^k·C_k by Horner's rule: (...(C_{t-1}·id + C_{t-2})·id + ...) + C_0. */
function horner<P>(A: Arith<P>, commitments: Affine[], id: bigint): P {
  let y = A.fromAffine(commitments[commitments.length - 1]!);
  for (let k = commitments.length - 2; k >= 0; k--) y = A.add(mulPublic(A, y, id), A.fromAffine(commitments[k]!));
  return y;
}

/**
 * openKeyShare's steps (LBKS version 1), with the row's package compared with the sealed bytes instead
 * of encoding the parsed package again: parseFrostPublic refuses non-canonical bytes, so both
 * comparisons agree. Undefined whenever this shortcut does not accept: the caller then takes
 * openKeyShare's own path, which decides.
 */
function openSealedRow(storageKey: Uint8Array, rec: KeyRecord): KeyShare | undefined {
  const what = 'sealed key share';
  try {
    const env = parseEnvelope(rec.encryptedShare, { magic: KEY_SHARE_MAGIC, versions: [1], what });
    const h = parseKeyHeader(env.header, what);
    checkExpected(what, h, { keyId: rec.keyId, curve: rec.curve, identifier: rec.identifier });
    const plaintext = openEnvelope(env, storageKey, what);
    try {
      if (plaintext.length <= 32 || !ctEqual(plaintext.subarray(32), rec.publicPackage)) return undefined;
      const { public: pub } = parseFrostPublic(rec.publicPackage, { curve: h.curve, check: 'structure' });
      if (!pub.verifyingShares[h.identifier]) return undefined;
      return { keyId: h.keyId, curve: h.curve, identifier: h.identifier, share: plaintext.slice(0, 32), public: pub };
    } finally {
      wipe(plaintext);
    }
  } catch {
    return undefined;
  }
}

/**
 * Everything checkRestoredKey checks of one key except G·share = Y' (the batch's part). Undefined when
 * checkRestoredKey refuses the key for a reason of its own, or Y' has no encoding equal to Y.
 */
function prepareKey(storageKey: Uint8Array, rec: KeyRecord, index: number, counters: Counters): Prepared | undefined {
  let key: KeyShare | undefined;
  try {
    key = openSealedRow(storageKey, rec);
    if (!key) {
      key = openKeyShare(storageKey, rec.encryptedShare, { keyId: rec.keyId, curve: rec.curve, identifier: rec.identifier });
      if (!ctEqual(encodeFrostPublic(key.curve, key.public), rec.publicPackage)) return undefined;
    }
    const { commitments, verifyingShares } = key.public;
    if (rec.threshold !== commitments.length || rec.maxSigners !== Object.keys(verifyingShares).length) return undefined;
    const c0 = commitments[0] ?? new Uint8Array(0);
    if (!ctEqual(rec.curve === 'bip340' ? c0.subarray(1) : c0, rec.groupPublicKey)) return undefined;
    const yBytes = verifyingShares[key.identifier];
    const group = groupOf(key.curve);
    if (!(yBytes instanceof Uint8Array) || yBytes.length !== suiteOf(key.curve).pointLen) return undefined;
    const id = parseIdentifier(key.curve, key.identifier);
    const share = decodeScalar(key.curve, key.share, 'signing share', { nonZero: true });
    const points = commitments.map((c) => {
      counters.pointsDecoded++;
      return decodePointFast(group, c);
    });
    return { index, group, share, y: group === 'ed25519' ? horner(ED, points, id) : horner(K1, points, id), yBytes };
  } catch {
    return undefined;
  } finally {
    if (key) wipe(key.share);
  }
}

/** Normalizes every Y' (one inversion per group); returns the first item whose encoding is not its Y, or -1. */
function firstVssMismatch(items: Prepared[]): number {
  for (const g of ['ed25519', 'secp256k1'] as const) {
    const mine = items.filter((p) => p.group === g);
    const affine = g === 'ed25519' ? ED.toAffineMany(mine.map((p) => p.y as Ext)) : K1.toAffineMany(mine.map((p) => p.y as Jac));
    mine.forEach((p, k) => (p.affine = affine[k]));
  }
  return items.findIndex((p) => !p.affine || !ctEqual((p.group === 'ed25519' ? ED : K1).encode(p.affine), p.yBytes));
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

/** Bits [bit, bit + width) of coefficient i, width <= 16. */
function digit(limbs: Uint32Array, i: number, bit: number, width: number): number {
  const k = bit >>> 5;
  const o = bit & 31;
  let v = limbs[4 * i + k]! >>> o;
  if (o + width > 32 && k < 3) v |= limbs[4 * i + k + 1]! << (32 - o);
  return v & ((1 << width) - 1);
}

/** Σ r_i·P_i by buckets (Pippenger) over c-bit windows of the 128-bit coefficients. */
function msm<P>(A: Arith<P>, points: P[], limbs: Uint32Array): P {
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
function bitPlaneSums<P>(A: Arith<P>, points: P[], limbs: Uint32Array): P[] {
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
  if (group === 'secp256k1') {
    const rhs = msm(K1, items.map((p) => K1.fromAffine(p.affine!)), limbs);
    return lhs ? K1.equalsAffine(rhs, lhs) : K1.isZero(rhs);
  }
  const planes = bitPlaneSums(ED, items.map((p) => ED.fromAffine(p.affine!)), limbs);
  const order = suiteOf(group).order;
  if (!planes.every((t) => ED.isZero(mulPublic(ED, t, order)))) return false;
  let rhs = ED.zero;
  for (let w = COEFF_BITS - 1; w >= 0; w--) rhs = ED.add(ED.double(rhs), planes[w]!);
  return lhs ? ED.equalsAffine(rhs, lhs) : ED.isZero(rhs);
}

function batchHolds(items: Prepared[], counters: Counters): boolean {
  counters.batches++;
  return groupEquationHolds('ed25519', items.filter((p) => p.group === 'ed25519')) && groupEquationHolds('secp256k1', items.filter((p) => p.group === 'secp256k1'));
}

/** The exact check of one key: G·share = Y' (noble's constant-time base multiplication). */
function keyHolds(p: Prepared): boolean {
  const g = baseTimes(p.group, p.share)!;
  return p.group === 'ed25519' ? ED.equalsAffine(p.y as Ext, g) : K1.equalsAffine(p.y as Jac, g);
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
function checkRange(storageKey: Uint8Array, records: readonly KeyRecord[], from: number, to: number, counters: Counters): number {
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
}

// ---- Driving: this thread or workers ----

/** Checks `records` on this thread in ranges of equal size (at most RANGE); returns the first bad index, or -1. */
async function verifyHere(storageKey: Uint8Array, records: readonly KeyRecord[], counters: Counters, onChecked: (n: number) => void): Promise<number> {
  const size = Math.ceil(records.length / Math.ceil(records.length / RANGE));
  for (let from = 0; from < records.length; from += size) {
    const to = Math.min(records.length, from + size);
    const bad = checkRange(storageKey, records, from, to, counters);
    if (bad >= 0) return bad;
    onChecked(to - from);
    // Let the event loop breathe (stderr, signals) on long restores.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return -1;
}

function throttled(progress: RestoreProgress): RestoreProgress {
  let last = performance.now();
  return (done, total) => {
    const now = performance.now();
    if (done === total || now - last >= PROGRESS_MS) {
      last = now;
      progress(done, total);
    }
  };
}

interface WorkerResult extends Counters {
  bad: number;
}

/**
 * A worker runs this module again. Run from TypeScript sources (tests, benchmarks under tsx), Node 20
 * does not apply `--import tsx` to workers, so the worker registers tsx's loader first. Null when the
 * sources run under something else: then no workers.
 */
function workerLoader(): string | undefined | null {
  if (!import.meta.url.endsWith('.ts')) return undefined;
  try {
    return import.meta.resolve('tsx/esm/api');
  } catch {
    return null;
  }
}
const WORKER_BOOT = `const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.loader) (await import(workerData.loader)).register();
  await import(workerData.entry);
})();`;

/** verifyHere on `records` in a worker thread (this module again); progress arrives as messages. */
function verifyInWorker(loader: string | undefined, storageKey: Uint8Array, records: readonly KeyRecord[], onChecked: (n: number) => void): { result: Promise<WorkerResult>; stop: () => void } {
  const worker = new Worker(WORKER_BOOT, { eval: true, workerData: { task: WORKER_TASK, entry: import.meta.url, loader, storageKey, records } });
  let settled = false;
  const result = new Promise<WorkerResult>((resolve, reject) => {
    const fail = (err: unknown) => {
      if (!settled) reject(new LifeboatError('internal_error', 'the restore check worker failed', { status: 500, cause: err }));
      settled = true;
    };
    worker.on('message', (m: { checked?: number; done?: WorkerResult }) => {
      if (m.checked) onChecked(m.checked);
      if (m.done && !settled) {
        settled = true;
        resolve(m.done);
      }
    });
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
  });
  // Awaited in order later; until then a failure must not count as unhandled.
  result.catch(() => {});
  return {
    result,
    stop: () => {
      settled = true;
      void worker.terminate();
    },
  };
}

if (!isMainThread && (workerData as { task?: unknown } | null)?.task === WORKER_TASK) {
  const { storageKey, records } = workerData as { storageKey: Uint8Array; records: KeyRecord[] };
  const counters: Counters = { pointsDecoded: 0, batches: 0 };
  void verifyHere(storageKey, records, counters, (n) => parentPort!.postMessage({ checked: n })).then((bad) => {
    wipe(storageKey);
    parentPort!.postMessage({ done: { bad, ...counters } });
  });
}

/**
 * Checks every record as checkRestoredKey does, in batches (see the top of this file), on
 * `options.workers` worker threads (default: `availableParallelism()` for 6,000 keys or more, else
 * none; 0 checks on the calling thread). Reports progress as keys are checked. Writes nothing.
 * Throws LifeboatError `share_mismatch` naming the first bad key in `records` order, exactly as
 * checkRestoredKey throws it; LifeboatError `internal_error` if a worker thread fails.
 */
export async function verifyRestoredKeys(
  storageKey: Uint8Array,
  records: readonly KeyRecord[],
  progress: RestoreProgress = () => {},
  options: { workers?: number } = {},
): Promise<VerifyStats> {
  const total = records.length;
  const report = throttled(progress);
  let done = 0;
  const onChecked = (n: number) => report((done += n), total);
  const counters: Counters = { pointsDecoded: 0, batches: 0 };
  const loader = workerLoader();
  const parts = loader === null ? 0 : Math.min(options.workers ?? (total < WORKER_MIN_KEYS ? 0 : availableParallelism()), total);
  let bad = -1;
  if (parts === 0) {
    bad = await verifyHere(storageKey, records, counters, onChecked);
  } else {
    const size = Math.ceil(total / parts);
    const runs = Array.from({ length: parts }, (_, k) => ({ offset: k * size, ...verifyInWorker(loader ?? undefined, storageKey, records.slice(k * size, (k + 1) * size), onChecked) }));
    try {
      // In order: a bad key in an earlier part comes first, so the later parts' answers can wait.
      for (const run of runs) {
        const r = await run.result;
        counters.pointsDecoded += r.pointsDecoded;
        counters.batches += r.batches;
        if (r.bad >= 0) {
          bad = run.offset + r.bad;
          break;
        }
      }
    } finally {
      for (const run of runs) run.stop();
    }
  }
  if (bad >= 0) {
    checkRestoredKey(storageKey, records[bad]!);
    // Only if the batch and the key-at-a-time check disagreed: refuse all the same.
    throw new LifeboatError('share_mismatch', `key ${String(records[bad]!.keyId).slice(0, 64)}: the share does not match its verifying share (batch check)`, { hint: HINT });
  }
  if (total === 0) progress(0, 0);
  return { keys: total, batches: counters.batches, pointsDecoded: counters.pointsDecoded, workers: parts };
}
