/**
 * The envelope's native XChaCha20-Poly1305 path (noble HChaCha20 + node:crypto ChaCha20-Poly1305):
 * the draft-irtf-cfrg-xchacha-03 known answers, byte-identity with noble's xchacha20poly1305 across
 * sizes up to 1 MiB, interop both ways, and tampering of tag, ciphertext, nonce and AAD.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hchacha, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { u32 } from '@noble/ciphers/utils.js';
import { type Envelope, NONCE_LEN, openEnvelope, parseEnvelope, sealEnvelope, TAG_LEN } from '../src/crypto/envelope.js';
import { DecryptionError, isLifeboatError } from '../src/errors.js';
import { randomBytes } from '../src/crypto/random.js';
import { fromHex, toHex } from '../src/util/bytes.js';

const MAGIC = 'BULK';
const OPTS = { magic: MAGIC, versions: [1], what: 'bulk envelope' } as const;
const hex = (s: string): Uint8Array => fromHex(s.replace(/\s+/g, ''), 'vector');

// draft-irtf-cfrg-xchacha-03 §A.3.1 (AEAD_XChaCha20_Poly1305)
const A31 = {
  key: hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f'),
  nonce: hex('404142434445464748494a4b4c4d4e4f5051525354555657'),
  aad: hex('50515253c0c1c2c3c4c5c6c7'),
  plaintext: new TextEncoder().encode("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."),
  ciphertext: hex(`bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb
    731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452
    2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9
    21f9664c97637da9768812f615c68b13b52e`),
  tag: hex('c0875924c1c7987947deafd8780acf49'),
};

/** A fixed pseudo-random pool: messages are slices of it at any offset, so inputs are unaligned too. */
const POOL = (() => {
  const pool = new Uint8Array((1 << 20) + 64);
  for (let i = 0, x = 0x2545f491; i < pool.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    pool[i] = x & 0xff;
  }
  return pool;
})();

const envelopeOf = (aad: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array): Envelope => ({ version: 1, header: new Uint8Array(0), aad, nonce, ciphertext });

function assertDecryptionError(fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => err instanceof DecryptionError && isLifeboatError(err, 'decryption_failed') && !/byte|offset|index/i.test(err.message));
}

function seal(key: Uint8Array, plaintext: Uint8Array, header: Uint8Array = new Uint8Array(0)) {
  const bytes = sealEnvelope({ magic: MAGIC, version: 1, header, key, plaintext });
  return { bytes, env: parseEnvelope(bytes, OPTS) };
}

test('HChaCha20 as the envelope calls it matches draft-irtf-cfrg-xchacha-03 §2.2.1', () => {
  const key = hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
  const nonce = hex('000000090000004a0000000031415927');
  const out = new Uint8Array(32);
  hchacha(u32(new TextEncoder().encode('expand 32-byte k')), u32(key), u32(nonce), u32(out));
  assert.equal(toHex(out), '82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc');
});

test('the §A.3.1 known answer: noble seals it, the envelope opens it, and rejects it with any bit flipped', () => {
  const sealed = new Uint8Array([...A31.ciphertext, ...A31.tag]);
  assert.equal(toHex(xchacha20poly1305(A31.key, A31.nonce, A31.aad).encrypt(A31.plaintext)), toHex(sealed));
  assert.deepEqual(openEnvelope(envelopeOf(A31.aad, A31.nonce, sealed), A31.key), A31.plaintext);
  for (const [i, bit] of [[0, 0x01], [A31.ciphertext.length - 1, 0x80], [A31.ciphertext.length, 0x01], [sealed.length - 1, 0x80]] as const) {
    const bad = sealed.slice();
    bad[i]! ^= bit;
    assertDecryptionError(() => openEnvelope(envelopeOf(A31.aad, A31.nonce, bad), A31.key));
  }
});

test('property: the envelope ciphertext is byte-identical to noble for any key, header and length up to 1 MiB', () => {
  const length = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 1 << 20 }), fc.constantFrom(0, 1, 63, 64, 65, 65535, 65536, 65537, 1 << 20));
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 200 }), length, fc.integer({ min: 0, max: 63 }), (key, header, len, offset) => {
      const m = POOL.subarray(offset, offset + len);
      const { env } = seal(key, m, header);
      const noble = xchacha20poly1305(key, env.nonce, env.aad);
      assert.ok(Buffer.from(env.ciphertext).equals(noble.encrypt(m)), `ciphertext differs at length ${len}`);
      assert.ok(Buffer.from(openEnvelope(env, key)).equals(m));
    }),
    { numRuns: 200 },
  );
});

test('interop both ways: noble opens what the envelope sealed, the envelope opens what noble sealed', () => {
  for (const len of [0, 1, 16, 1000, 65536, 65537, 300_000]) {
    const key = randomBytes(32);
    const m = randomBytes(len);
    const { env } = seal(key, m, randomBytes(17));
    assert.deepEqual(xchacha20poly1305(key, env.nonce, env.aad).decrypt(env.ciphertext), m);

    const nonce = randomBytes(NONCE_LEN);
    const aad = randomBytes(len % 40);
    const byNoble = xchacha20poly1305(key, nonce, aad).encrypt(m);
    assert.deepEqual(openEnvelope(envelopeOf(aad, nonce, byNoble), key), m);
  }
});

test('what callers get is a plain Uint8Array they own, not a Buffer or a view into shared memory', () => {
  const key = randomBytes(32);
  for (const len of [0, 10, 200_000]) {
    const { bytes, env } = seal(key, randomBytes(len));
    const pt = openEnvelope(env, key);
    for (const b of [bytes, pt]) {
      assert.equal(Object.getPrototypeOf(b), Uint8Array.prototype);
      assert.equal(b.byteOffset, 0);
      assert.equal(b.buffer.byteLength, b.length);
    }
  }
});

test('tampered tag, ciphertext, nonce or associated data of a multi-chunk envelope is DecryptionError', () => {
  const key = randomBytes(32);
  const m = randomBytes(200_000);
  const { bytes, env } = seal(key, m, new TextEncoder().encode('header'));
  const nonceAt = env.aad.length;
  const ctAt = nonceAt + NONCE_LEN;
  const open = (b: Uint8Array) => openEnvelope(parseEnvelope(b, OPTS), key);
  for (const i of [7, nonceAt - 1, nonceAt, ctAt - 1, ctAt, ctAt + 70_000, bytes.length - TAG_LEN - 1, bytes.length - TAG_LEN, bytes.length - 1]) {
    const bad = bytes.slice();
    bad[i]! ^= 0x04;
    assertDecryptionError(() => open(bad));
  }
  assertDecryptionError(() => openEnvelope({ ...env, aad: env.aad.subarray(1) }, key));
  assertDecryptionError(() => openEnvelope({ ...env, aad: new Uint8Array([...env.aad, 0]) }, key));
  assertDecryptionError(() => openEnvelope({ ...env, nonce: env.nonce.subarray(0, 23) }, key));
  assertDecryptionError(() => openEnvelope({ ...env, ciphertext: env.ciphertext.subarray(0, TAG_LEN - 1) }, key));
  assertDecryptionError(() => openEnvelope(env, randomBytes(32)));
  assert.deepEqual(open(bytes), m);
});

test('the caller\'s key, nonce and ciphertext are left as they were', () => {
  const key = randomBytes(32);
  const keyCopy = key.slice();
  const { bytes, env } = seal(key, randomBytes(100_000));
  const before = bytes.slice();
  openEnvelope(env, key);
  assert.deepEqual(key, keyCopy);
  assert.deepEqual(bytes, before);
});
