/**
 * Field arithmetic of ed25519 and secp256k1 as WebAssembly functions, generated at run time
 * (../../util/wasm-emit.ts) and assembled with the point formulas by ./curve-wasm.ts: multiplication,
 * repeated squaring, addition, subtraction, small multiples, the square roots' fixed powers, and the
 * conversions from and to 32 bytes. In bigint every product allocates; here a product is about 150 i64
 * operations on locals (bench/restore.ts). For the batch check of restored shares, on public values
 * only (variable time is fine: docs/format.md, "In batches").
 *
 * Field elements are ten 26-bit limbs in i64 (radix 2^26, 260 bits), products summed in columns
 * (below 10·2^54 with limbs below 2^27), carried, and the limbs of weight 2^260 and above folded back:
 * 2^260 = 2^5·19 mod 2^255 - 19, and 2^260 = 2^10·2^26 + 2^4·977 mod secp256k1's p = 2^256 - 2^32 - 977.
 * Outputs have limbs below 2^27 (not fully reduced); the caller reduces the result.
 */
import { Code } from '../../util/wasm-emit.js';

export type FieldName = 'ed25519' | 'secp256k1';

const BITS = 26;
const MASK = (1n << 26n) - 1n;
export const LIMBS = 10;
export const IN = 0; // 32 bytes of the input, little-endian, then 8 zero bytes the unpacking reads past
export const OUT = 64; // 40 bytes: the result, little-endian
const SLOT = (k: number): number => 128 + 8 * LIMBS * k;
const TMP = 15;

/** Reduction of the limbs of weight 2^260 and above: limb i += c·lo, limb i+1 += c·hi. */
const FOLD: Record<FieldName, { lo: bigint; hi: bigint }> = {
  ed25519: { lo: 608n, hi: 0n },
  secp256k1: { lo: 15632n, hi: 1024n },
};

/**
 * Addition chains [from, squarings, times]: slot k+1 = slot[from]^(2^squarings) · slot[times] (times
 * -1: no product), slot 0 the input. Checked against EXPONENT when the module is built.
 */
const CHAINS: Record<FieldName, [number, number, number][]> = {
  // (p - 5)/8 = 2^252 - 3, the RFC 8032 5.1.3 root's power: blocks x^(2^k - 1) for k = 2, 4, 5, 10, 20, 40, 80, 160, 240, 250.
  ed25519: [[0, 1, 0], [1, 2, 1], [2, 1, 0], [3, 5, 3], [4, 10, 4], [5, 20, 5], [6, 40, 6], [7, 80, 7], [8, 80, 7], [9, 10, 4], [10, 2, 0]],
  // (p + 1)/4 = 2^254 - 2^30 - 244 (p = 3 mod 4): blocks for k = 2, 3, 6, 9, 11, 22, 44, 88, 176, 220, 223, then the tail.
  secp256k1: [[0, 1, 0], [1, 1, 0], [2, 3, 2], [3, 3, 2], [4, 2, 1], [5, 11, 5], [6, 22, 6], [7, 44, 7], [8, 88, 8], [9, 44, 7], [10, 3, 2], [11, 23, 6], [12, 6, 1], [13, 2, -1]],
};
export const EXPONENT: Record<FieldName, bigint> = {
  ed25519: (1n << 252n) - 3n,
  secp256k1: (1n << 254n) - (1n << 30n) - 244n,
};

/** The columns of a·b (b undefined: a²) into c[0..18], c[19] = 0. */
function product(f: Code, a: number[], b: number[] | undefined, c: number[], twice: number[]): void {
  if (!b) a.forEach((ai, i) => f.get(ai).i64(1n).shl().set(twice[i]!));
  for (let k = 0; k < 2 * LIMBS - 1; k++) {
    let terms = 0;
    for (let i = Math.max(0, k - LIMBS + 1); i <= Math.min(LIMBS - 1, k); i++) {
      const j = k - i;
      if (b) f.get(a[i]!).get(b[j]!);
      else if (i < j) f.get(a[i]!).get(twice[j]!);
      else if (i === j) f.get(a[i]!).get(a[i]!);
      else continue;
      f.mul();
      if (terms++ > 0) f.add();
    }
    f.set(c[k]!);
  }
  f.i64(0n).set(c[2 * LIMBS - 1]!);
}

/** x[to] += x[from] >> 26; x[from] &= 2^26 - 1. */
function carry(f: Code, from: number, to: number): void {
  f.get(to).get(from).i64(BigInt(BITS)).shrU().add().set(to);
  f.get(from).i64(MASK).and().set(from);
}

/**
 * The 20 columns c (each below 10·2^54) reduced into the ten limbs `out` (each below 2^27). Only the
 * high columns are carried before the fold, so each is below 2^26 (c[19] below 2^29) and its product
 * with the fold's constants stays below 2^44; the low ones go into the fold as they are (below 2^58),
 * and normalize carries the sums.
 */
function reduce(f: Code, field: FieldName, c: number[], out: number[], top: number): void {
  const { lo, hi } = FOLD[field];
  for (let k = LIMBS; k < 2 * LIMBS - 1; k++) carry(f, c[k]!, c[k + 1]!);
  // c[19] has weight 2^(26·19): after the fold it lands at limb 9 (·lo) and at 2^260 (·hi, in `top`).
  for (let i = 0; i < LIMBS; i++) {
    f.get(c[i]!).get(c[LIMBS + i]!).i64(lo).mul().add();
    if (hi !== 0n && i > 0) f.get(c[LIMBS + i - 1]!).i64(hi).mul().add();
    f.set(out[i]!);
  }
  if (hi === 0n) f.i64(0n).set(top);
  else f.i64(hi).get(c[2 * LIMBS - 1]!).mul().set(top);
  normalize(f, field, out, top);
}

/** Limbs below 2^59 (and `top`, of weight 2^260, below 2^40) carried and folded: limbs below 2^27 after. */
function normalize(f: Code, field: FieldName, out: number[], top: number): void {
  const { lo, hi } = FOLD[field];
  for (let i = 0; i < LIMBS - 1; i++) carry(f, out[i]!, out[i + 1]!);
  f.get(top).get(out[LIMBS - 1]!).i64(BigInt(BITS)).shrU().add().set(top);
  f.get(out[LIMBS - 1]!).i64(MASK).and().set(out[LIMBS - 1]!);
  f.get(out[0]!).get(top).i64(lo).mul().add().set(out[0]!);
  if (hi !== 0n) f.get(out[1]!).get(top).i64(hi).mul().add().set(out[1]!);
  for (let i = 0; i < 3; i++) carry(f, out[i]!, out[i + 1]!);
}

const locals = (f: Code, n: number): number[] => Array.from({ length: n }, () => f.local('i64'));
const load = (f: Code, ptr: number, into: number[]): void => into.forEach((l, i) => f.get(ptr).load64(8 * i).set(l));
const store = (f: Code, ptr: number, from: number[]): void => from.forEach((l, i) => f.get(ptr).get(l).store64(8 * i));

/** mul(a, b, o): slot o = slot a · slot b. */
export function mulFn(field: FieldName): Code {
  const f = new Code(['i32', 'i32', 'i32']);
  const [a, b, c, out, twice, top] = [locals(f, LIMBS), locals(f, LIMBS), locals(f, 2 * LIMBS), locals(f, LIMBS), [], f.local('i64')];
  load(f, 0, a);
  load(f, 1, b);
  product(f, a, b, c, twice);
  reduce(f, field, c, out, top);
  store(f, 2, out);
  return f;
}

/** sqn(a, n, o): slot o = slot a ^ (2^n). */
export function sqnFn(field: FieldName): Code {
  const f = new Code(['i32', 'i32', 'i32']);
  const [a, c, twice, top] = [locals(f, LIMBS), locals(f, 2 * LIMBS), locals(f, LIMBS), f.local('i64')];
  load(f, 0, a);
  f.block().loop().get(1).i32Eqz().brIf(1);
  product(f, a, undefined, c, twice);
  reduce(f, field, c, a, top);
  f.get(1).i32(1).i32Sub().set(1).br(0).end().end();
  store(f, 2, a);
  return f;
}

/**
 * The linear operations, o = a + b, a - b or a·k (k a small constant), normalized. a - b is
 * a + K - b with K a multiple of p whose limbs are all in [2^28, 2^28 + 2^26) (KMULT at `kAddr`), so no
 * limb goes negative for inputs below 2^27.
 */
export function linearFn(field: FieldName, op: 'add' | 'sub' | { times: bigint }, kAddr: number): Code {
  const f = new Code(['i32', 'i32', 'i32']);
  const [out, top] = [locals(f, LIMBS), f.local('i64')];
  for (let i = 0; i < LIMBS; i++) {
    f.get(0).load64(8 * i);
    if (op === 'add') f.get(1).load64(8 * i).add();
    else if (op === 'sub') f.i32(kAddr).load64(8 * i).add().get(1).load64(8 * i).sub();
    else f.i64(op.times).mul();
    f.set(out[i]!);
  }
  f.i64(0n).set(top);
  normalize(f, field, out, top);
  store(f, 2, out);
  return f;
}

/** The limbs of a multiple of p in [2^28, 2^28 + 2^26) each (see linearFn). */
export function kMultipleLimbs(p: bigint): bigint[] {
  const base = Array.from({ length: LIMBS }, () => 1n << 28n);
  const value = base.reduce((acc, l, i) => acc + (l << BigInt(BITS * i)), 0n);
  let extra = (p - (value % p)) % p;
  return base.map((l) => {
    const limb = l + (extra & MASK);
    extra >>= BigInt(BITS);
    return limb;
  });
}

/** unpack(src, o): 32 little-endian bytes at src (zeros after them) into slot o's limbs. */
export function unpackFn(): Code {
  const f = new Code(['i32', 'i32']);
  for (let i = 0; i < LIMBS; i++) {
    f.get(1).get(0).load64((BITS * i) >> 3).i64(BigInt((BITS * i) & 7)).shrU().i64(MASK).and().store64(8 * i);
  }
  return f;
}

/** pack(a, dst): slot a's limbs carried, as five little-endian 64-bit words at dst (below 2^264). */
export function packFn(): Code {
  const f = new Code(['i32', 'i32']);
  const [l, word] = [locals(f, LIMBS), f.local('i64')];
  load(f, 0, l);
  for (let i = 0; i < LIMBS - 1; i++) carry(f, l[i]!, l[i + 1]!);
  for (let w = 0; w < 5; w++) {
    let parts = 0;
    for (let i = 0; i < LIMBS; i++) {
      const q = BITS * i;
      const width = i === LIMBS - 1 ? 30 : BITS;
      if (q >= 64 * (w + 1) || q + width <= 64 * w) continue;
      f.get(l[i]!).i64(BigInt(Math.abs(q - 64 * w)));
      if (q >= 64 * w) f.shl();
      else f.shrU();
      if (parts++ > 0) f.or();
    }
    f.set(word).get(1).get(word).store64(8 * w);
  }
  return f;
}

/** pow(): OUT = IN ^ EXPONENT[field] along CHAINS[field], through slots at 128 (16 field elements). */
export function powFn(field: FieldName, mul: number, sqn: number, unpack: number, pack: number): Code {
  const f = new Code([]);
  f.i32(IN).i32(SLOT(0)).call(unpack);
  const exps = [1n];
  CHAINS[field].forEach(([from, squarings, times], k) => {
    const to = k + 1;
    exps.push((exps[from]! << BigInt(squarings)) + (times >= 0 ? exps[times]! : 0n));
    f.i32(SLOT(from)).i32(squarings).i32(SLOT(times >= 0 ? TMP : to)).call(sqn);
    if (times >= 0) f.i32(SLOT(TMP)).i32(SLOT(times)).i32(SLOT(to)).call(mul);
  });
  if (exps[exps.length - 1] !== EXPONENT[field]) throw new Error(`field-wasm: the ${field} chain computes the wrong power`);
  f.i32(SLOT(CHAINS[field].length)).i32(OUT).call(pack);
  return f;
}
