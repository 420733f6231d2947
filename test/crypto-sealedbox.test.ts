/**
 * Sealed boxes: interop both ways with libsodium's crypto_box_seal (the reference implementation),
 * negative cases, and the property open(seal(m)) == m.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import sodium from 'libsodium-wrappers';
import { boxPublicKey, generateBoxKeyPair, openSealed, seal, SEALED_BOX_OVERHEAD, type BoxKeyPair } from '../src/crypto/sealedbox.js';
import { DecryptionError, InvalidInputError } from '../src/errors.js';
import { randomBytes } from '../src/crypto/random.js';

const LENGTHS = [0, 1, 15, 16, 17, 63, 64, 65, 1000, 65_536, 1024 * 1024];

before(async () => {
  await sodium.ready;
});

function sodiumKeyPair(): BoxKeyPair {
  const kp = sodium.crypto_box_keypair();
  return { publicKey: kp.publicKey, secretKey: kp.privateKey };
}

function assertDecryptionError(fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => err instanceof DecryptionError && err.code === 'decryption_failed');
}

test('ours seals, libsodium opens (crypto_box_seal_open), for lengths 0 .. 1 MiB', () => {
  const kp = sodiumKeyPair();
  for (const n of LENGTHS) {
    const m = randomBytes(n);
    const sealed = seal(m, kp.publicKey);
    assert.equal(sealed.length, n + SEALED_BOX_OVERHEAD);
    assert.deepEqual(sodium.crypto_box_seal_open(sealed, kp.publicKey, kp.secretKey), m, `length ${n}`);
  }
});

test('libsodium seals (crypto_box_seal), ours opens, for lengths 0 .. 1 MiB', () => {
  const kp = sodiumKeyPair();
  for (const n of LENGTHS) {
    const m = randomBytes(n);
    const sealed = sodium.crypto_box_seal(m, kp.publicKey);
    assert.deepEqual(openSealed(sealed, kp), m, `length ${n}`);
  }
});

test('our key pairs work with libsodium, and public keys agree with crypto_scalarmult_base', () => {
  const kp = generateBoxKeyPair();
  assert.deepEqual(sodium.crypto_scalarmult_base(kp.secretKey), kp.publicKey);
  assert.deepEqual(boxPublicKey(kp.secretKey), kp.publicKey);
  const m = randomBytes(100);
  assert.deepEqual(openSealed(sodium.crypto_box_seal(m, kp.publicKey), kp), m);
});

test('truncated boxes are refused, down to empty', () => {
  const kp = generateBoxKeyPair();
  const sealed = seal(randomBytes(40), kp.publicKey);
  for (const n of [0, 1, 31, 32, SEALED_BOX_OVERHEAD - 1, SEALED_BOX_OVERHEAD, sealed.length - 1]) {
    assertDecryptionError(() => openSealed(sealed.subarray(0, n), kp));
  }
});

test('any flipped bit (ephemeral key, tag or ciphertext) is refused', () => {
  const kp = generateBoxKeyPair();
  const sealed = seal(randomBytes(40), kp.publicKey);
  for (let i = 0; i < sealed.length; i++) {
    const bad = sealed.slice();
    bad[i]! ^= 1 << (i % 8);
    assertDecryptionError(() => openSealed(bad, kp));
  }
});

test('a box sealed to another key is refused, by ours and by libsodium', () => {
  const alice = generateBoxKeyPair();
  const bob = generateBoxKeyPair();
  const sealed = seal(utf8('for alice'), alice.publicKey);
  assertDecryptionError(() => openSealed(sealed, bob));
  assert.throws(() => sodium.crypto_box_seal_open(sealed, bob.publicKey, bob.secretKey));
  // the right secret key with a wrong public key changes the nonce: refused too
  assertDecryptionError(() => openSealed(sealed, { secretKey: alice.secretKey, publicKey: bob.publicKey }));
});

test('a low-order ephemeral key is refused with DecryptionError, not a crash', () => {
  const kp = generateBoxKeyPair();
  const sealed = seal(randomBytes(10), kp.publicKey);
  sealed.fill(0, 0, 32); // the all-zero point: X25519 output would be zero
  assertDecryptionError(() => openSealed(sealed, kp));
});

test('keys of the wrong length are InvalidInputError', () => {
  const kp = generateBoxKeyPair();
  assert.throws(() => seal(randomBytes(1), new Uint8Array(31)), InvalidInputError);
  assert.throws(() => openSealed(seal(randomBytes(1), kp.publicKey), { ...kp, secretKey: new Uint8Array(33) }), InvalidInputError);
  assert.throws(() => boxPublicKey(new Uint8Array(16)), InvalidInputError);
});

test('two seals of one message differ (fresh ephemeral key each time)', () => {
  const kp = generateBoxKeyPair();
  const m = utf8('same');
  assert.notDeepEqual(seal(m, kp.publicKey), seal(m, kp.publicKey));
});

test('property: open(seal(m)) == m, and libsodium agrees', () => {
  const kp = generateBoxKeyPair();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2048 }), (m) => {
      const sealed = seal(m, kp.publicKey);
      assert.deepEqual(openSealed(sealed, kp), m);
      assert.deepEqual(sodium.crypto_box_seal_open(sealed, kp.publicKey, kp.secretKey), m);
    }),
    { numRuns: 200 },
  );
});

function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}
