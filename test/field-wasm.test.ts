/**
 * The restore check's WebAssembly arithmetic (src/keynode/frost/field-wasm.ts, curve-wasm.ts): the
 * square roots' powers against bigint modular exponentiation, the point formulas against noble, and
 * the check without WebAssembly (node --jitless).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { EXPONENT, type FieldName } from '../src/keynode/frost/field-wasm.js';
import { fieldOpOnLimbs, mark, points, powField, PRIME as WASM_PRIME, release } from '../src/keynode/frost/curve-wasm.js';

const PRIME: Record<FieldName, bigint> = { ed25519: ed25519.Point.Fp.ORDER, secp256k1: secp256k1.Point.Fp.ORDER };
assert.deepEqual(WASM_PRIME, PRIME);

function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  for (b %= m; e > 0n; e >>= 1n, b = (b * b) % m) if (e & 1n) r = (r * b) % m;
  return r;
}

const big = (bytes: Uint8Array): bigint => BigInt(`0x${Buffer.from(bytes).toString('hex')}`);

describe('field-wasm powField', () => {
  for (const name of ['ed25519', 'secp256k1'] as const) {
    it(`${name}: x^e mod p for the edges of the limbs and 500 random x`, () => {
      const p = PRIME[name];
      const edges = [0n, 1n, 2n, 19n, 977n, p - 2n, p - 1n, p, p + 1n, (1n << 255n) - 1n, (1n << 256n) - 1n, (1n << 26n) - 1n, 1n << 234n, ((1n << 22n) - 1n) << 234n];
      const xs = [...edges, ...Array.from({ length: 500 }, () => big(randomBytes(32)))];
      for (const x of xs) {
        const got = powField(name, x);
        assert.ok(got !== undefined, 'WebAssembly is there');
        assert.ok(got >= 0n && got < 1n << 264n, `the result stays below 2^264 for ${x}`);
        assert.equal(got % p, modPow(x, EXPONENT[name], p), `x = ${x}`);
      }
    });
  }

  for (const name of ['ed25519', 'secp256k1'] as const) {
    it(`${name}: every field function at the extremes of its inputs' limbs (below 2^27): exact, and its output's limbs below 2^27`, () => {
      const p = PRIME[name];
      const value = (l: bigint[]) => l.reduce((acc, x, i) => acc + (x << BigInt(26 * i)), 0n);
      const max = (1n << 27n) - 1n;
      const limbSets = [Array(10).fill(max), Array(10).fill(1n << 26n), Array(10).fill(0n), Array.from({ length: 10 }, (_, i) => (i % 2 ? max : 0n))];
      for (let k = 0; k < 200; k++) limbSets.push(Array.from({ length: 10 }, () => big(randomBytes(4)) & max));
      for (const [i, a] of limbSets.entries()) {
        const b = limbSets[(i * 7 + 3) % limbSets.length]!;
        const want = { mul: value(a) * value(b), sqn: value(a) * value(a), add: value(a) + value(b), sub: value(a) - value(b), b3: 21n * value(a) };
        for (const op of ['mul', 'sqn', 'add', 'sub', 'b3'] as const) {
          const out = fieldOpOnLimbs(name, op, a, b);
          assert.ok(out.every((l) => l < 1n << 27n), `${op}: limbs below 2^27`);
          assert.equal((((value(out) - want[op]) % p) + p) % p, 0n, `${op} of set ${i}`);
        }
      }
    });
  }

  it('refuses x outside [0, 2^256)', () => {
    for (const x of [-1n, 1n << 256n]) assert.throws(() => powField('ed25519', x), RangeError);
  });

  it('the exponents are the square roots’ powers', () => {
    assert.equal(EXPONENT.ed25519, (PRIME.ed25519 - 5n) / 8n);
    assert.equal(EXPONENT.secp256k1, (PRIME.secp256k1 + 1n) / 4n);
  });
});

/** What the point test uses of noble's two point classes. */
interface NoblePoint {
  add(o: NoblePoint): NoblePoint;
  double(): NoblePoint;
  negate(): NoblePoint;
  equals(o: NoblePoint): boolean;
  multiply(k: bigint): NoblePoint;
  toAffine(): { x: bigint; y: bigint };
}
const NOBLE = [
  ['ed25519', ed25519.Point as unknown as { BASE: NoblePoint; ZERO: NoblePoint }],
  ['secp256k1', secp256k1.Point as unknown as { BASE: NoblePoint; ZERO: NoblePoint }],
] as const;

describe('curve-wasm points', () => {
  for (const [group, C] of NOBLE) {
    it(`${group}: add and double agree with noble, P + P, P + (-P) and the identity included`, () => {
      const A = points(group)!;
      const p = PRIME[group];
      const affine = (h: number): string => {
        const [x, y, z] = A.coords(h).map((v) => v % p) as [bigint, bigint, bigint];
        if (z === 0n) return 'infinity';
        const zi = modPow(z, p - 2n, p);
        return `${(x * zi) % p},${(y * zi) % p}`;
      };
      const noble = (P: NoblePoint): string => {
        if (P.equals(C.ZERO)) return group === 'ed25519' ? '0,1' : 'infinity';
        const a = P.toAffine();
        return `${a.x},${a.y}`;
      };
      const m = mark();
      try {
        for (let i = 0; i < 60; i++) {
          const a = C.BASE.multiply(big(randomBytes(16)) + 1n);
          const b = [a, a.negate(), C.ZERO, C.BASE.multiply(big(randomBytes(16)) + 1n)][i % 4]!;
          const ha = A.fromAffine(a.toAffine().x, a.toAffine().y);
          const hb = b.equals(C.ZERO) ? A.identity() : A.fromAffine(b.toAffine().x, b.toAffine().y);
          const sum = A.identity();
          A.copy(sum, ha);
          A.add(sum, hb);
          assert.equal(affine(sum), noble(a.add(b)), `sum ${i}`);
          A.add(hb, hb);
          assert.equal(affine(hb), noble(b.double()), `b + b ${i}`);
          const acc = A.identity();
          let want = C.ZERO;
          for (let k = 0; k < 8; k++) {
            A.double(acc);
            A.add(acc, k % 3 === 0 ? ha : sum);
            want = want.double().add(k % 3 === 0 ? a : a.add(b));
          }
          assert.equal(affine(acc), noble(want), `chain ${i}`);
        }
      } finally {
        release(m);
      }
    });
  }
});

describe('the restore check without WebAssembly', () => {
  it('a WebAssembly that cannot start (an instance that fails, as under a tight ulimit -v): key by key, same verdicts', () => {
    // Only the Instance constructor fails: tsx compiles its own WebAssembly with the rest.
    const script = `globalThis.WebAssembly = Object.assign(Object.create(WebAssembly), { Instance: class { constructor() { throw new RangeError('WebAssembly.Instance(): Out of memory: Cannot allocate Wasm memory for new instance'); } } });
      const { dealt, row, STORAGE_KEY } = await import('./test/helpers/restore-keys.ts');
      const { verifyRestoredKeys } = await import('./src/keynode/restore-verify.ts');
      const good = ['ed25519', 'secp256k1', 'bip340'].map((c, i) => row('good_' + i, dealt(c)));
      const bad = row('bad_other_share', { ...dealt('secp256k1'), share: dealt('secp256k1').share });
      const ok = await verifyRestoredKeys(STORAGE_KEY, good, undefined, { workers: 0 });
      let refused = null;
      try { await verifyRestoredKeys(STORAGE_KEY, [good[0], bad, good[1]], undefined, { workers: 0 }); } catch (err) { refused = err.code + ' ' + err.message; }
      console.log(JSON.stringify({ keys: ok.keys, batches: ok.batches, refused }));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { keys: number; batches: number; refused: string | null };
    assert.deepEqual([out.keys, out.batches], [3, 0], 'checked key by key');
    assert.match(out.refused ?? '', /^share_mismatch key bad_other_share: /);
  });


  it('node --jitless (no WebAssembly): verifyRestoredKeys checks key by key, with the same verdicts', () => {
    const script = `import { dealt, row, STORAGE_KEY } from './test/helpers/restore-keys.ts';
      import { verifyRestoredKeys } from './src/keynode/restore-verify.ts';
      const curves = ['ed25519', 'secp256k1', 'bip340'];
      const good = curves.flatMap((c) => [row('good_' + c + '_1', dealt(c)), row('good_' + c + '_2', dealt(c, { me: 2 }))]);
      const m = dealt('ed25519');
      const bad = row('bad_other_share', { ...m, share: dealt('ed25519').share });
      const ok = await verifyRestoredKeys(STORAGE_KEY, good, undefined, { workers: 0 });
      let refused = null;
      try { await verifyRestoredKeys(STORAGE_KEY, [...good.slice(0, 3), bad, ...good.slice(3)], undefined, { workers: 0 }); } catch (err) { refused = { code: err.code, message: err.message }; }
      console.log(JSON.stringify({ wasm: typeof WebAssembly, keys: ok.keys, batches: ok.batches, refused }));`;
    const r = spawnSync(process.execPath, ['--jitless', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { wasm: string; keys: number; batches: number; refused: { code: string; message: string } | null };
    assert.equal(out.wasm, 'undefined', 'the child ran without WebAssembly');
    assert.equal(out.keys, 6);
    assert.equal(out.batches, 0, 'no batch equation: key by key');
    assert.equal(out.refused?.code, 'share_mismatch');
    assert.match(out.refused.message, /key bad_other_share: /);
  });
});
