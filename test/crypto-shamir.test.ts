/** GF(256) arithmetic and generic Shamir: known answers, an independent peer, negative cases, properties. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { combine as peerCombine, split as peerSplit } from 'shamir-secret-sharing';
import { InvalidInputError, isLifeboatError } from '../src/errors.js';
import { div, inv, lagrangeBasis, mul, mulAddTo } from '../src/crypto/gf256.js';
import { combineShares, interpolate, splitSecret, type ShamirShare } from '../src/crypto/shamir.js';
import { randomBytes } from '../src/crypto/random.js';

const SLOW = process.env.SLOW === '1';

/** Schoolbook multiply modulo 0x11b (FIPS-197 §4.2), branchy on purpose: a reference, not for secrets. */
function refMul(a: number, b: number): number {
  let r = 0;
  for (; b > 0; b >>= 1) {
    if (b & 1) r ^= a;
    a <<= 1;
    if (a & 0x100) a ^= 0x11b;
  }
  return r;
}

const code = (c: string) => (err: unknown) => isLifeboatError(err, c);

describe('gf256', () => {
  it('multiplies like the schoolbook reference for all 65536 pairs', () => {
    for (let a = 0; a < 256; a++) for (let b = 0; b < 256; b++) assert.equal(mul(a, b), refMul(a, b));
  });

  it('matches FIPS-197 §4.2 worked examples', () => {
    assert.equal(mul(0x57, 0x83), 0xc1);
    assert.equal(mul(0x57, 0x13), 0xfe);
    assert.equal(inv(0x53), 0xca); // FIPS-197 §5.1.1 S-box derivation
  });

  it('inverts every non-zero element and divides', () => {
    for (let a = 1; a < 256; a++) {
      assert.equal(mul(a, inv(a)), 1);
      assert.equal(div(mul(a, 0x1d), a), 0x1d);
    }
    assert.throws(() => inv(0), InvalidInputError);
    assert.throws(() => div(3, 0), InvalidInputError);
  });

  it('rejects out-of-range elements', () => {
    for (const bad of [-1, 256, 1.5, NaN]) {
      assert.throws(() => mul(bad, 1), InvalidInputError);
      assert.throws(() => mulAddTo(new Uint8Array(4), new Uint8Array(4), bad, new Uint8Array(4)), InvalidInputError);
    }
    assert.throws(() => mulAddTo(new Uint8Array(4), new Uint8Array(5), 2, new Uint8Array(4)), /equal lengths/);
  });

  it('mulAddTo agrees with the reference for every constant, at aligned and unaligned offsets', () => {
    const backing = Uint8Array.from({ length: 160 }, (_, i) => (i * 151 + 7) & 0xff);
    const add = Uint8Array.from({ length: 67 }, (_, i) => (i * 29) & 0xff);
    for (let c = 0; c < 256; c++) {
      for (const off of [0, 1, 2, 4]) {
        const src = backing.subarray(off, off + 67);
        const out = new Uint8Array(68).subarray(off % 2, (off % 2) + 67);
        mulAddTo(out, src, c, add);
        for (let i = 0; i < 67; i++) assert.equal(out[i], refMul(src[i]!, c) ^ add[i]!, `c=${c} off=${off} i=${i}`);
      }
    }
  });

  it('mulAddTo may write over its inputs (Horner step and accumulation)', () => {
    const y = Uint8Array.from([1, 2, 3, 0x80, 0xff]);
    const a = Uint8Array.from([9, 9, 9, 9, 9]);
    const expect = Array.from(y, (v, i) => refMul(v, 0x8e) ^ a[i]!);
    mulAddTo(y, y, 0x8e, a);
    assert.deepEqual([...y], expect);
  });
});

describe('shamir split/combine', () => {
  const secret = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);

  it('places shares at x = 1..count with the secret at f(0)', () => {
    const shares = splitSecret(secret, 3, 5);
    assert.deepEqual(
      shares.map((s) => s.x),
      [1, 2, 3, 4, 5],
    );
    for (const s of shares) assert.equal(s.y.length, 32);
    assert.deepEqual(combineShares(shares.slice(2)), secret);
    assert.deepEqual(interpolate(shares, 0), secret);
  });

  it('threshold 1 gives copies of the secret; 255 shares work', () => {
    for (const s of splitSecret(secret, 1, 3)) assert.deepEqual(s.y, secret);
    const many = splitSecret(secret, 255, 255);
    assert.deepEqual(combineShares(many), secret);
  });

  it('reproduces a known polynomial: f(x) = 0x42 ⊕ 0x17·x ⊕ 0x05·x² at x = 0 from three points', () => {
    const f = (x: number) => 0x42 ^ refMul(0x17, x) ^ refMul(0x05, refMul(x, x));
    const pts: ShamirShare[] = [7, 100, 254].map((x) => ({ x, y: Uint8Array.of(f(x)) }));
    assert.deepEqual(interpolate(pts, 0), Uint8Array.of(0x42));
    assert.deepEqual(interpolate(pts, 200), Uint8Array.of(f(200)));
    assert.deepEqual(interpolate(pts, 100), Uint8Array.of(f(100)));
  });

  it('Lagrange basis values sum to 1 (they interpolate the constant polynomial)', () => {
    const basis = lagrangeBasis([3, 9, 200, 17], 255);
    assert.equal(
      basis.reduce((a, b) => a ^ b, 0),
      1,
    );
    assert.throws(() => lagrangeBasis([3, 9, 3], 0), /pairwise distinct/);
    assert.throws(() => lagrangeBasis([3, 300], 0), InvalidInputError);
  });

  it('combines with shamir-secret-sharing (same field) both ways', async () => {
    const ours = splitSecret(secret, 2, 3);
    const asPeer = ours.map((s) => Uint8Array.from([...s.y, s.x])); // the peer stores y || x
    assert.deepEqual(await peerCombine([asPeer[2]!, asPeer[0]!]), secret);
    const theirs = await peerSplit(secret, 5, 3);
    const asOurs = theirs.map((s) => ({ x: s[s.length - 1]!, y: s.subarray(0, s.length - 1) }));
    assert.deepEqual(combineShares([asOurs[4]!, asOurs[1]!, asOurs[3]!]), secret);
  });

  it('rejects bad arguments by name', () => {
    assert.throws(() => splitSecret(new Uint8Array(0), 1, 1), /secret must be a non-empty Uint8Array/);
    assert.throws(() => splitSecret(secret, 0, 3), /threshold must be an integer in 1\.\.3/);
    assert.throws(() => splitSecret(secret, 4, 3), /threshold must be an integer in 1\.\.3/);
    assert.throws(() => splitSecret(secret, 2, 256), /count must be an integer in 1\.\.255/);
    assert.throws(() => splitSecret(secret, 1.5, 3), InvalidInputError);
    assert.throws(() => splitSecret('abc' as unknown as Uint8Array, 1, 1), InvalidInputError);
    assert.throws(() => interpolate([{ x: 1, y: secret }], 256), /x must be an integer in 0\.\.255/);
  });

  it('refuses duplicate x, x = 0, unequal lengths and no shares', () => {
    const [a, b] = splitSecret(secret, 2, 2) as [ShamirShare, ShamirShare];
    assert.throws(() => combineShares([a, a]), code('duplicate_share'));
    assert.throws(() => combineShares([a, { x: 0, y: b.y }]), code('invalid_share'));
    assert.throws(() => combineShares([a, { x: 2, y: b.y.subarray(1) }]), code('invalid_share'));
    assert.throws(() => combineShares([]), code('insufficient_shares'));
    assert.throws(() => interpolate([], 0), code('insufficient_shares'));
  });

  it('with fewer than threshold points, interpolation does not yield the secret', () => {
    const shares = splitSecret(secret, 3, 5);
    assert.notDeepEqual(interpolate(shares.slice(0, 2), 0), secret);
    assert.notDeepEqual(combineShares(shares.slice(3)), secret);
  });

  it('handles large, odd-length and unaligned secrets', () => {
    const big = randomBytes((1 << 16) + 3);
    const shares = splitSecret(big.subarray(1), 3, 4);
    assert.deepEqual(combineShares([shares[3]!, shares[0]!, shares[2]!]), big.subarray(1));
    const unaligned = shares.map((s) => ({ x: s.x, y: Uint8Array.from([0, ...s.y]).subarray(1) }));
    assert.deepEqual(combineShares(unaligned.slice(1)), big.subarray(1));
  });

  it('property: any threshold-sized or larger subset recovers the secret, smaller ones do not', () => {
    const scheme = fc
      .record({ secret: fc.uint8Array({ minLength: 16, maxLength: 70 }), count: fc.integer({ min: 1, max: 20 }) })
      .chain(({ secret, count }) => fc.record({ secret: fc.constant(secret), count: fc.constant(count), threshold: fc.integer({ min: 1, max: count }) }));
    fc.assert(
      fc.property(scheme, fc.infiniteStream(fc.nat()), ({ secret, count, threshold }, picks) => {
        const shares = splitSecret(secret, threshold, count);
        const order = shares.map((s) => ({ s, k: picks.next().value as number })).sort((p, q) => p.k - q.k);
        const subset = order.slice(0, threshold + (picks.next().value as number) % (count - threshold + 1)).map((p) => p.s);
        assert.deepEqual(combineShares(subset), secret);
        if (threshold > 1) assert.notDeepEqual(combineShares(subset.slice(0, threshold - 1)), secret);
      }),
      { numRuns: SLOW ? 3000 : 150 },
    );
  });
});
