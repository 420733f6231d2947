/**
 * The XChaCha20-Poly1305 envelope: round trip, header binding, every FormatError code, wrong key,
 * interop with libsodium's XChaCha20-Poly1305-IETF, and the round-trip property.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import sodium from 'libsodium-wrappers';
import { NONCE_LEN, openEnvelope, parseEnvelope, sealEnvelope, TAG_LEN } from '../src/crypto/envelope.js';
import { DecryptionError, FormatError, InvalidInputError, isLifeboatError } from '../src/errors.js';
import { randomBytes } from '../src/crypto/random.js';

const MAGIC = 'TEST';
const OPTS = { magic: MAGIC, versions: [1], what: 'test envelope' } as const;
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function sample(plaintext = utf8('attack at dawn'), header = utf8('header bytes'), key = randomBytes(32)) {
  return { key, header, plaintext, bytes: sealEnvelope({ magic: MAGIC, version: 1, header, key, plaintext }) };
}

const open = (bytes: Uint8Array, key: Uint8Array): Uint8Array => openEnvelope(parseEnvelope(bytes, OPTS), key);

function assertCode(fn: () => unknown, cls: typeof FormatError | typeof DecryptionError, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof cls && isLifeboatError(err, code));
}

test('round trip, and the layout is magic || version || headerLen || header || nonce || ct || tag', () => {
  const s = sample();
  assert.deepEqual(open(s.bytes, s.key), s.plaintext);
  assert.equal(s.bytes.length, 4 + 1 + 2 + s.header.length + NONCE_LEN + s.plaintext.length + TAG_LEN);
  assert.equal(new TextDecoder().decode(s.bytes.subarray(0, 4)), MAGIC);
  assert.equal(s.bytes[4], 1);
  assert.equal((s.bytes[5]! << 8) | s.bytes[6]!, s.header.length);
  const env = parseEnvelope(s.bytes, OPTS);
  assert.deepEqual(env.header, s.header);
  assert.deepEqual(env.aad, s.bytes.subarray(0, 7 + s.header.length));
});

test('empty plaintext and empty header round-trip', () => {
  const s = sample(new Uint8Array(0), new Uint8Array(0));
  assert.deepEqual(open(s.bytes, s.key), new Uint8Array(0));
});

test('libsodium opens it as XChaCha20-Poly1305-IETF with the prefix as associated data', async () => {
  await sodium.ready;
  const s = sample(randomBytes(1000));
  const env = parseEnvelope(s.bytes, OPTS);
  const pt = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, env.ciphertext, env.aad, env.nonce, s.key);
  assert.deepEqual(pt, s.plaintext);
});

test('the header is bound: flipping any byte before the nonce fails decryption (or parsing)', () => {
  const s = sample();
  const prefix = 7 + s.header.length;
  for (let i = 7; i < prefix; i++) {
    const bad = s.bytes.slice();
    bad[i]! ^= 0x01;
    assertCode(() => open(bad, s.key), DecryptionError, 'decryption_failed');
  }
});

test('nonce, ciphertext and tag are authenticated', () => {
  const s = sample();
  for (let i = 7 + s.header.length; i < s.bytes.length; i++) {
    const bad = s.bytes.slice();
    bad[i]! ^= 0x80;
    assertCode(() => open(bad, s.key), DecryptionError, 'decryption_failed');
  }
});

test('bad magic is FormatError bad_magic', () => {
  const s = sample();
  const bad = s.bytes.slice();
  bad[0] = 'X'.charCodeAt(0);
  assertCode(() => parseEnvelope(bad, OPTS), FormatError, 'bad_magic');
  assertCode(() => parseEnvelope(s.bytes, { ...OPTS, magic: 'LBVT' }), FormatError, 'bad_magic');
});

test('a future version is FormatError unsupported_version, with a hint', () => {
  const s = sample();
  for (const v of [0, 2, 255]) {
    const bad = s.bytes.slice();
    bad[4] = v;
    assert.throws(
      () => parseEnvelope(bad, OPTS),
      (err: unknown) => err instanceof FormatError && err.code === 'unsupported_version' && typeof err.hint === 'string',
    );
  }
});

test('truncation anywhere is FormatError truncated or DecryptionError, never a crash or a plaintext', () => {
  const s = sample();
  const minimal = 7 + s.header.length + NONCE_LEN + TAG_LEN;
  for (let n = 0; n < s.bytes.length; n++) {
    const cut = s.bytes.subarray(0, n);
    if (n < minimal) assertCode(() => parseEnvelope(cut, OPTS), FormatError, 'truncated');
    else assertCode(() => open(cut, s.key), DecryptionError, 'decryption_failed');
  }
});

test('a header length past the end is truncated', () => {
  const s = sample();
  const bad = s.bytes.slice();
  bad[5] = 0xff;
  bad[6] = 0xff;
  assertCode(() => parseEnvelope(bad, OPTS), FormatError, 'truncated');
});

test('a wrong key is DecryptionError decryption_failed', () => {
  const s = sample();
  assertCode(() => open(s.bytes, randomBytes(32)), DecryptionError, 'decryption_failed');
});

test('bad arguments are InvalidInputError', () => {
  const key = randomBytes(32);
  const header = new Uint8Array(0);
  const plaintext = new Uint8Array(0);
  assert.throws(() => sealEnvelope({ magic: 'TOOLONG', version: 1, header, key, plaintext }), InvalidInputError);
  assert.throws(() => sealEnvelope({ magic: MAGIC, version: 0, header, key, plaintext }), InvalidInputError);
  assert.throws(() => sealEnvelope({ magic: MAGIC, version: 256, header, key, plaintext }), InvalidInputError);
  assert.throws(() => sealEnvelope({ magic: MAGIC, version: 1, header: new Uint8Array(65536), key, plaintext }), InvalidInputError);
  assert.throws(() => sealEnvelope({ magic: MAGIC, version: 1, header, key: randomBytes(16), plaintext }), InvalidInputError);
  assert.throws(() => open(sample().bytes, randomBytes(31)), InvalidInputError);
});

test('nonces are fresh: sealing twice gives different bytes', () => {
  const key = randomBytes(32);
  const a = sealEnvelope({ magic: MAGIC, version: 1, header: new Uint8Array(0), key, plaintext: utf8('x') });
  const b = sealEnvelope({ magic: MAGIC, version: 1, header: new Uint8Array(0), key, plaintext: utf8('x') });
  assert.notDeepEqual(a, b);
});

test('property: open(seal(header, m)) == m for any header and message', () => {
  const key = randomBytes(32);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 4096 }), fc.integer({ min: 1, max: 255 }), (header, m, version) => {
      const bytes = sealEnvelope({ magic: MAGIC, version, header, key, plaintext: m });
      const env = parseEnvelope(bytes, { ...OPTS, versions: [version] });
      assert.equal(env.version, version);
      assert.deepEqual(env.header, header);
      assert.deepEqual(openEnvelope(env, key), m);
    }),
    { numRuns: 200 },
  );
});
