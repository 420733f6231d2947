/**
 * The group arithmetic ERS needs, over the key node's curves (src/keynode/frost suites): scalars in
 * the curve's RFC 9591 serialization, points with the operations noble provides.
 */
import { normalizeZ, ScalarMultiplier } from '@noble/curves/abstract/curve.js';
import { decodeScalar, type FrostCurve, SCALAR_LEN, suiteOf } from '../keynode/frost/index.js';

/** The subset of noble's point API used here. */
export interface Pt {
  add(o: Pt): Pt;
  subtract(o: Pt): Pt;
  double(): Pt;
  negate(): Pt;
  multiply(n: bigint): Pt;
  multiplyUnsafe(n: bigint): Pt;
  equals(o: Pt): boolean;
  toBytes(): Uint8Array;
  is0(): boolean;
}

export interface Group {
  curve: FrostCurve;
  order: bigint;
  pointLen: number;
  BASE: Pt;
  ZERO: Pt;
  /**
   * `n*G` for a secret `n` in 0..q-1, constant-time (a fixed count of table additions), left
   * projective: batch-normalize with encodeAll. See groupOf for why it is not blinded.
   */
  mulBaseSecret(n: bigint): Pt;
  /** `n*G` for a public `n` in 0..q-1 (verification), from the same table; projective. */
  mulBasePublic(n: bigint): Pt;
  /** Public points only: decoded without a subgroup check (callers check what they trust). */
  fromBytes(b: Uint8Array): Pt;
  /** The scalar's 32-byte serialization (ed25519 little-endian, secp256k1 big-endian). */
  encodeScalar(n: bigint): Uint8Array;
  /** A canonical scalar from its serialization; throws InvalidInputError naming `what`. */
  decodeScalar(b: Uint8Array, what: string): bigint;
  /** Points' encodings for hashing, with one batched inversion; the identity as pointLen zero bytes. */
  encodeAll(pts: Pt[]): Uint8Array[];
}

const cache = new Map<FrostCurve, Group>();

/** Window width of the public base multiplications (verification: 192 per share). */
const PUBLIC_W = 10;

/**
 * Variable-time n*G for PUBLIC scalars only (a verifier's opened leaves): signed PUBLIC_W-bit windows
 * over a table of affine multiples built on first use, read by index, zero digits skipped. The
 * constant-time kernel scans every entry of a window and adds a fake point for zero digits, which a
 * public scalar does not need: this is about 2x faster. Never call it with a secret.
 */
function publicBaseMultiplier(G: Pt, order: bigint, toAffine: (pts: Pt[]) => Pt[]): (n: bigint) => Pt {
  const half = 2 ** (PUBLIC_W - 1);
  const windows = Math.ceil(order.toString(2).length / PUBLIC_W) + 1;
  let table: Pt[] | undefined;
  const build = (): Pt[] => {
    const pts: Pt[] = [];
    let b = G;
    for (let w = 0; w < windows; w++) {
      let acc = b;
      for (let i = 0; i < half; i++) {
        pts.push(acc);
        acc = acc.add(b);
      }
      b = pts[pts.length - 1]!.double();
    }
    return toAffine(pts);
  };
  const mask = BigInt(2 ** PUBLIC_W - 1);
  const shift = BigInt(PUBLIC_W);
  return (n) => {
    table ??= build();
    let p = G.subtract(G);
    let k = n;
    for (let w = 0; w < windows && k > 0n; w++) {
      let d = Number(k & mask);
      k >>= shift;
      if (d > half) {
        d -= 2 ** PUBLIC_W;
        k += 1n;
      }
      if (d === 0) continue;
      const e = table[w * half + Math.abs(d) - 1]!;
      p = p.add(d < 0 ? e.negate() : e);
    }
    return p;
  };
}

/** The group of a curve. Throws InvalidInputError for an unknown curve. */
export function groupOf(curve: FrostCurve): Group {
  const hit = cache.get(curve);
  if (hit) return hit;
  const s = suiteOf(curve);
  const P = s.point as unknown as { BASE: Pt & { toAffine(): unknown }; ZERO: Pt; fromBytes(b: Uint8Array): Pt; fromAffine(a: unknown): Pt };
  // The generator's multiples for the prover's 192 base multiplications (verify: publicBaseMultiplier), from one
  // table of signed 10-bit windows: 27 windows x 512 affine points, built on first use (about 0.1 s,
  // once per process). A multiplication is 27 table additions, one per window, whatever the scalar
  // (noble's constant-time kernel: fake additions for zero digits, every entry of a window read).
  // Noble's own multiply also blinds the scalar (n + r*q, 128 more bits: 49 windows at 8 bits) and
  // normalizes each result: blinding defends a long-lived secret scalar against traces averaged over
  // many uses; a proof's scalars are fresh pseudorandom values used once, so the fixed operation
  // count is what keeps them safe, at about 2x less time.
  /* eslint-disable @typescript-eslint/no-explicit-any -- noble's generic point constructor types */
  const base: any = P.fromAffine(P.BASE.toAffine());
  const mul = new ScalarMultiplier<any>(s.point);
  mul.setWindowSize(base, 10);
  const affineTable = (pts: any[]) => normalizeZ(s.point as any, pts);
  /* eslint-enable @typescript-eslint/no-explicit-any */
  const mulPublic = publicBaseMultiplier(P.BASE, s.order, affineTable);
  const mulBase = (n: bigint, secret: boolean): Pt => {
    if (n === 0n) return P.ZERO;
    return secret ? mul.mulCT(base, n, affineTable).p : mulPublic(n);
  };
  const g: Group = {
    curve,
    order: s.order,
    pointLen: s.pointLen,
    BASE: P.BASE,
    mulBaseSecret: (n) => mulBase(n, true),
    mulBasePublic: (n) => mulBase(n, false),
    ZERO: P.ZERO,
    fromBytes: (b) => P.fromBytes(b),
    encodeScalar: (n) => {
      const out = new Uint8Array(SCALAR_LEN);
      let x = n;
      for (let i = 0; i < SCALAR_LEN; i++) {
        out[s.scalarLE ? i : SCALAR_LEN - 1 - i] = Number(x & 0xffn);
        x >>= 8n;
      }
      return out;
    },
    decodeScalar: (b, what) => decodeScalar(curve, b, what),
    encodeAll: (pts) => {
      const finite = pts.filter((p) => !p.is0());
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- noble's generic point constructor type
      const affine = normalizeZ(P as any, finite as any) as unknown as Pt[];
      let n = 0;
      return pts.map((p) => (p.is0() ? new Uint8Array(s.pointLen) : affine[n++]!.toBytes()));
    },
  };
  cache.set(curve, g);
  return g;
}

/** `bytes` read as a big-endian integer, reduced mod `q`. */
export function reduceBE(bytes: Uint8Array, q: bigint): bigint {
  return BigInt(`0x${Buffer.from(bytes).toString('hex')}`) % q;
}

/** Modular inverse by Fermat (q prime). Public values only. */
export function invert(a: bigint, q: bigint): bigint {
  let result = 1n;
  let base = ((a % q) + q) % q;
  let e = q - 2n;
  while (e > 0n) {
    if (e & 1n) result = (result * base) % q;
    base = (base * base) % q;
    e >>= 1n;
  }
  return result;
}

/** Lagrange coefficient at 0 of `xi` over the set `xs` (RFC 9591 section 4.2), mod q. */
export function lagrangeAtZero(xi: bigint, xs: readonly bigint[], q: bigint): bigint {
  let num = 1n;
  let den = 1n;
  for (const xj of xs) {
    if (xj === xi) continue;
    num = (num * xj) % q;
    den = (den * (((xj - xi) % q) + q)) % q;
  }
  return (num * invert(den, q)) % q;
}
