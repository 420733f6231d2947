import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { randomBytes } from '../src/crypto/random.js';
import { generateSigningKeyPair, signingKeyPairFromSeed, signWithContext, verifyWithContext } from '../src/crypto/sign.js';
import { concatBytes, utf8 } from '../src/util/bytes.js';

test('signWithContext (native) gives the bytes RFC 8032 gives, for any seed and message', () => {
  for (let i = 0; i < 200; i++) {
    const { secretKey, publicKey } = generateSigningKeyPair();
    const message = randomBytes(i * 7);
    const sig = signWithContext('test/v1', message, secretKey);
    const pure = ed25519.sign(concatBytes(utf8.encode('lifeboat:test/v1\0'), message), secretKey);
    assert.deepEqual(sig, pure);
    assert.ok(verifyWithContext('test/v1', message, sig, publicKey));
    assert.equal(verifyWithContext('test/v2', message, sig, publicKey), false, 'another context does not verify');
  }
});

test('signWithContext refuses a seed of the wrong length, naming no bytes', () => {
  for (const n of [0, 31, 33, 64]) assert.throws(() => signWithContext('test/v1', new Uint8Array(1), new Uint8Array(n)), { code: 'invalid_input' });
});

test('a seed array wiped or refilled after signing signs with what it holds now, not a cached key', () => {
  const seed = randomBytes(32);
  const before = signWithContext('test/v1', new Uint8Array([1]), seed);
  const next = randomBytes(32);
  seed.set(next);
  const after = signWithContext('test/v1', new Uint8Array([1]), seed);
  assert.notDeepEqual(after, before);
  assert.deepEqual(after, ed25519.sign(concatBytes(utf8.encode('lifeboat:test/v1\0'), new Uint8Array([1])), next));
});

test('public keys and verification (native) agree with RFC 8032; a tampered, non-canonical or foreign signature is refused', () => {
  const L = 2n ** 252n + 27742317777372353535851937790883648493n;
  for (let i = 0; i < 50; i++) {
    const seed = randomBytes(32);
    const { publicKey } = signingKeyPairFromSeed(seed);
    assert.deepEqual(publicKey, ed25519.getPublicKey(seed));
    const message = randomBytes(100);
    const sig = signWithContext('test/v1', message, seed);
    assert.ok(verifyWithContext('test/v1', message, sig, publicKey));
    const flipped = sig.slice();
    flipped[i % 64]! ^= 1;
    assert.equal(verifyWithContext('test/v1', message, flipped, publicKey), false, 'a flipped bit');
    // S + L: the same signature in a non-canonical encoding (malleability), refused
    let S = 0n;
    for (let j = 63; j >= 32; j--) S = (S << 8n) | BigInt(sig[j]!);
    const big = S + L;
    if (big < 2n ** 256n) {
      const mall = sig.slice();
      for (let j = 0; j < 32; j++) mall[32 + j] = Number((big >> BigInt(8 * j)) & 0xffn);
      assert.equal(verifyWithContext('test/v1', message, mall, publicKey), false, 'S + L refused');
    }
    assert.equal(verifyWithContext('test/v1', message, sig, ed25519.getPublicKey(randomBytes(32))), false, 'another key');
  }
  assert.equal(verifyWithContext('test/v1', new Uint8Array(1), new Uint8Array(64), new Uint8Array(31)), false, 'a short key');
  assert.equal(verifyWithContext('test/v1', new Uint8Array(1), new Uint8Array(64), new Uint8Array(32).fill(0xff)), false, 'not a point');
});
