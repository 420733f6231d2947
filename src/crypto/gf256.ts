/**
 * Arithmetic in GF(2^8) modulo the Rijndael polynomial x^8 + x^4 + x^3 + x + 1 (0x11b), the field
 * SLIP-0039 ("Shamir's secret-sharing") mandates, as defined in FIPS-197 §4.1-4.2.
 *
 * Constant time: no table lookup or branch depends on a secret byte. Bulk operations multiply secret
 * bytes only by a PUBLIC constant (a share's x coordinate or a Lagrange basis value, both functions of
 * public x's) and may branch on that constant's bits; lagrangeBasis, which sees only public x's, may
 * look up a table. Four bytes are processed at once as one 32-bit word (SWAR): every operation below is
 * byte-lane independent.
 */
import { InvalidInputError } from '../errors.js';

const LOW7 = 0x7f7f7f7f;
const HIGH = 0x01010101;
const LOW4 = 0x0f0f0f0f;

/** x·w in each byte lane of w (FIPS-197 §4.2.1 xtime): shift left, reduce lanes that overflowed by 0x1b. */
function xtime(w: number): number {
  return ((w & LOW7) << 1) ^ Math.imul((w >>> 7) & HIGH, 0x1b);
}

/**
 * x^4·w in each byte lane of w. With h the high nibble, h·x^8 = h·(x^4 + x^3 + x + 1) mod 0x11b has
 * degree ≤ 7, so one carry-less multiply by 0x1b reduces it without a second round.
 */
function mulX4(w: number): number {
  const h = (w >>> 4) & LOW4;
  return ((w & LOW4) << 4) ^ h ^ (h << 1) ^ (h << 3) ^ (h << 4);
}

/** All-ones when bit `i` of the public constant `c` is set, else zero. */
const bitMask = (c: number, i: number): number => -((c >>> i) & 1);

/** c·w in each byte lane, for c in 0..255, with masks only: branch-free in both w and c (scalars, tails). */
function mulWord(w: number, c: number): number {
  const p1 = xtime(w);
  const p2 = xtime(p1);
  const p3 = xtime(p2);
  const lo = (w & bitMask(c, 0)) ^ (p1 & bitMask(c, 1)) ^ (p2 & bitMask(c, 2)) ^ (p3 & bitMask(c, 3));
  const hi = (w & bitMask(c, 4)) ^ (p1 & bitMask(c, 5)) ^ (p2 & bitMask(c, 6)) ^ (p3 & bitMask(c, 7));
  return lo ^ mulX4(hi);
}

function checkElement(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 255) throw new InvalidInputError(`${what} must be an integer in 0..255, got ${v}`);
}

/** Product of two field elements, in constant time. Throws InvalidInputError unless both are in 0..255. */
export function mul(a: number, b: number): number {
  checkElement(a, 'a');
  checkElement(b, 'b');
  return mulWord(a, b) & 0xff;
}

/** Multiplicative inverse a^254 (Fermat), fixed square-and-multiply chain. Throws InvalidInputError for 0. */
export function inv(a: number): number {
  checkElement(a, 'a');
  if (a === 0) throw new InvalidInputError('0 has no inverse in GF(256)');
  // 254 = 0b11111110: seven squarings, multiplying in `a` after each of the first six.
  let r = a;
  for (let i = 0; i < 6; i++) r = mulWord(mulWord(r, r) & 0xff, a) & 0xff;
  return mulWord(r, r) & 0xff;
}

/** a / b. Throws InvalidInputError when b is 0 or an argument is out of range. */
export function div(a: number, b: number): number {
  return mul(a, inv(b));
}

/** Inverses of 0..255 (0 ↦ 0), built once with the constant-time `inv`; indexed only by public x's. */
let inverses: Uint8Array | undefined;

/**
 * Values at `x` of the Lagrange basis polynomials for the nodes `xs`:
 * l_i(x) = Π_{j≠i} (x − x_j)/(x_i − x_j), subtraction being XOR in GF(2^8) (SLIP-0039 "Polynomial
 * interpolation"). Only for PUBLIC coordinates: it looks up a table indexed by them.
 * Throws InvalidInputError unless every coordinate is in 0..255 and the nodes are pairwise distinct.
 */
export function lagrangeBasis(xs: readonly number[], x: number): number[] {
  checkElement(x, 'x');
  for (const xi of xs) checkElement(xi, 'node');
  inverses ??= Uint8Array.from({ length: 256 }, (_, a) => (a === 0 ? 0 : inv(a)));
  const out: number[] = [];
  for (let i = 0; i < xs.length; i++) {
    let num = 1;
    let den = 1;
    for (let j = 0; j < xs.length; j++) {
      if (j === i) continue;
      num = mulWord(num, x ^ xs[j]!) & 0xff;
      den = mulWord(den, xs[i]! ^ xs[j]!) & 0xff;
    }
    if (den === 0) throw new InvalidInputError('interpolation nodes must be pairwise distinct');
    out.push(mulWord(num, inverses[den]!) & 0xff);
  }
  return out;
}

/** Below this length, creating Uint32Array views costs more than it saves. */
const VIEW_MIN = 128;
const aligned = (b: Uint8Array): boolean => (b.byteOffset & 3) === 0;
const words = (b: Uint8Array, n: number): Uint32Array => new Uint32Array(b.buffer, b.byteOffset, n);

/**
 * out = c·src ⊕ add, element by element, for a PUBLIC constant c in 0..255. `out` may alias `src` or
 * `add` (a Horner step is mulAddTo(y, y, x, coef); an accumulation is mulAddTo(acc, y, l, acc)).
 * Runs in time that depends only on the length and on c. Throws InvalidInputError on mismatched
 * lengths or c out of range.
 */
export function mulAddTo(out: Uint8Array, src: Uint8Array, c: number, add: Uint8Array): void {
  checkElement(c, 'c');
  const len = out.length;
  if (src.length !== len || add.length !== len) {
    throw new InvalidInputError(`out, src and add must have equal lengths, got ${len}, ${src.length}, ${add.length}`);
  }
  let i = 0;
  if (len >= VIEW_MIN && aligned(out) && aligned(src) && aligned(add)) {
    const n = len >>> 2;
    wordKernel(words(out, n), words(src, n), c, words(add, n), n);
    i = n << 2;
  }
  gatherKernel(out, src, c, add, i);
}

/** From byte `i` on, for short or unaligned input: words gathered from bytes by hand, cheaper than views. */
function gatherKernel(out: Uint8Array, src: Uint8Array, c: number, add: Uint8Array, i: number): void {
  const [m0, m1, m2, m3] = [bitMask(c, 0), bitMask(c, 1), bitMask(c, 2), bitMask(c, 3)];
  const [h0, h1, h2, h3] = [bitMask(c, 4), bitMask(c, 5), bitMask(c, 6), bitMask(c, 7)];
  const len = out.length;
  for (; i + 4 <= len; i += 4) {
    const p0 = src[i]! | (src[i + 1]! << 8) | (src[i + 2]! << 16) | (src[i + 3]! << 24);
    const p1 = xtime(p0);
    const p2 = xtime(p1);
    const p3 = xtime(p2);
    const lo = (p0 & m0) ^ (p1 & m1) ^ (p2 & m2) ^ (p3 & m3);
    const r = lo ^ mulX4((p0 & h0) ^ (p1 & h1) ^ (p2 & h2) ^ (p3 & h3)) ^ (add[i]! | (add[i + 1]! << 8) | (add[i + 2]! << 16) | (add[i + 3]! << 24));
    out[i] = r;
    out[i + 1] = r >>> 8;
    out[i + 2] = r >>> 16;
    out[i + 3] = r >>> 24;
  }
  for (; i < len; i++) out[i] = mulWord(src[i]!, c) ^ add[i]!;
}

/** The word loop, specialised on the size of the public constant so small x's stay cheap. */
function wordKernel(o: Uint32Array, s: Uint32Array, c: number, a: Uint32Array, n: number): void {
  if (c === 0) {
    for (let j = 0; j < n; j++) o[j] = a[j]!;
  } else if (c === 1) {
    for (let j = 0; j < n; j++) o[j] = s[j]! ^ a[j]!;
  } else if (c < 4) {
    const m0 = bitMask(c, 0);
    for (let j = 0; j < n; j++) {
      const p0 = s[j]!;
      o[j] = (p0 & m0) ^ xtime(p0) ^ a[j]!;
    }
  } else if (c < 16) {
    const [m0, m1, m2, m3] = [bitMask(c, 0), bitMask(c, 1), bitMask(c, 2), bitMask(c, 3)];
    for (let j = 0; j < n; j++) {
      const p0 = s[j]!;
      const p1 = xtime(p0);
      const p2 = xtime(p1);
      o[j] = (p0 & m0) ^ (p1 & m1) ^ (p2 & m2) ^ (xtime(p2) & m3) ^ a[j]!;
    }
  } else {
    wideKernel(o, s, c, a, n);
  }
}

/** c ≥ 16: c·w = c_lo·w ⊕ x^4·(c_hi·w), sharing the powers w, xw, x²w, x³w between both nibbles. */
function wideKernel(o: Uint32Array, s: Uint32Array, c: number, a: Uint32Array, n: number): void {
  const [m0, m1, m2, m3] = [bitMask(c, 0), bitMask(c, 1), bitMask(c, 2), bitMask(c, 3)];
  const [h0, h1, h2, h3] = [bitMask(c, 4), bitMask(c, 5), bitMask(c, 6), bitMask(c, 7)];
  for (let j = 0; j < n; j++) {
    const p0 = s[j]!;
    const p1 = xtime(p0);
    const p2 = xtime(p1);
    const p3 = xtime(p2);
    const lo = (p0 & m0) ^ (p1 & m1) ^ (p2 & m2) ^ (p3 & m3);
    const hi = (p0 & h0) ^ (p1 & h1) ^ (p2 & h2) ^ (p3 & h3);
    o[j] = lo ^ mulX4(hi) ^ a[j]!;
  }
}
