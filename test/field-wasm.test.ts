/**
 * The WebAssembly powers behind the restore check's square roots (src/keynode/frost/field-wasm.ts),
 * against bigint modular exponentiation, and the check's decoding without WebAssembly (node --jitless),
 * against noble.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { EXPONENT, type FieldName, powField } from '../src/keynode/frost/field-wasm.js';
import { decodePointFast } from '../src/keynode/frost/batch-arith.js';

const PRIME: Record<FieldName, bigint> = { ed25519: ed25519.Point.Fp.ORDER, secp256k1: secp256k1.Point.Fp.ORDER };

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

  it('refuses x outside [0, 2^256)', () => {
    for (const x of [-1n, 1n << 256n]) assert.throws(() => powField('ed25519', x), RangeError);
  });

  it('the exponents are the square roots’ powers', () => {
    assert.equal(EXPONENT.ed25519, (PRIME.ed25519 - 5n) / 8n);
    assert.equal(EXPONENT.secp256k1, (PRIME.secp256k1 + 1n) / 4n);
  });
});

describe('decodePointFast without WebAssembly', () => {
  it('node --jitless (no WebAssembly) decodes what noble decodes and refuses what it refuses', () => {
    const cases: ['ed25519' | 'secp256k1', string][] = [];
    for (let i = 1; i <= 20; i++) {
      cases.push(['ed25519', Buffer.from(ed25519.Point.BASE.multiply(BigInt(i * 7919)).toBytes()).toString('hex')]);
      cases.push(['secp256k1', Buffer.from(secp256k1.Point.BASE.multiply(BigInt(i * 7919)).toBytes()).toString('hex')]);
      cases.push(['ed25519', randomBytes(32).toString('hex')], ['secp256k1', `0${2 + (i & 1)}${randomBytes(32).toString('hex')}`]);
    }
    const decodeAll = (): string[] =>
      cases.map(([g, hex]) => {
        try {
          const { x, y } = decodePointFast(g, Buffer.from(hex, 'hex'));
          return `${x}:${y}`;
        } catch {
          return 'refused';
        }
      });
    const script = `import { decodePointFast } from './src/keynode/frost/batch-arith.ts';
      const cases = ${JSON.stringify(cases)};
      console.log(JSON.stringify({ wasm: typeof WebAssembly, out: cases.map(([g, hex]) => { try { const { x, y } = decodePointFast(g, Buffer.from(hex, 'hex')); return x + ':' + y; } catch { return 'refused'; } }) }));`;
    const r = spawnSync(process.execPath, ['--jitless', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname });
    assert.equal(r.status, 0, r.stderr);
    const child = JSON.parse(r.stdout) as { wasm: string; out: string[] };
    assert.equal(child.wasm, 'undefined', 'the child ran without WebAssembly');
    const here = decodeAll();
    assert.deepEqual(child.out, here);
    assert.ok(here.filter((v) => v === 'refused').length >= 10 && here.filter((v) => v !== 'refused').length >= 40);
    const noble = cases.map(([g, hex]) => {
      try {
        const pt = (g === 'ed25519' ? ed25519.Point : secp256k1.Point).fromHex(hex);
        pt.assertValidity();
        const a = pt.toAffine();
        return `${a.x}:${a.y}`;
      } catch {
        return 'refused';
      }
    });
    assert.deepEqual(here, noble);
  });
});
