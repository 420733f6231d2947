/**
 * The vault format: header and plaintext parse/encode pairs, the committed vectors in
 * test/data/vault (valid and corrupt, each named for its fault), an independent reader built from
 * the spec (HKDF from @noble/hashes, XChaCha20-Poly1305 from libsodium), the master-key check before
 * decryption, rotation, and the limits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import sodium from 'libsodium-wrappers';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { sealEnvelope } from '../src/crypto/envelope.js';
import { deriveKey } from '../src/crypto/kdf.js';
import { randomBytes } from '../src/crypto/random.js';
import { LifeboatError } from '../src/errors.js';
import { VAULT_BODY_LIMIT } from '../src/holder/api.js';
import { fromB64, fromHex, toB64 } from '../src/util/bytes.js';
import {
  describeEntries,
  encodeVaultPlaintext,
  MAX_ENTRIES,
  MAX_TOTAL_VALUE_BYTES,
  MAX_VALUE_BYTES,
  MAX_VAULT_FILE_BYTES,
  parseVaultPlaintext,
  type VaultContents,
} from '../src/vault/contents.js';
import {
  checkMasterKey,
  createVault,
  encodeVaultHeader,
  masterFingerprint,
  openVault,
  parseVaultHeader,
  readVaultHeader,
  reencryptVault,
  sealVault,
  VAULT_HEADER_LEN,
  VAULT_MAGIC,
} from '../src/vault/format.js';

const DATA = join(import.meta.dirname, 'data', 'vault');
const index = JSON.parse(readFileSync(join(DATA, 'index.json'), 'utf8')) as {
  master_key_hex: string;
  scheme_id_hex: string;
  ok: Record<string, { generation: number; created_at: number; entries: Record<string, { value_b64: string; updated_at: string }> }>;
  fail: Record<string, { error: string; code: string }>;
};
const MASTER = fromHex(index.master_key_hex, 'master');
const SCHEME = fromHex(index.scheme_id_hex, 'scheme');
const vector = (file: string): Uint8Array => new Uint8Array(readFileSync(join(DATA, file)));
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function expectError(fn: () => unknown, cls: string, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof LifeboatError, `expected a LifeboatError, got ${String(err)}`);
    assert.equal(err.constructor.name, cls);
    assert.equal(err.code, code);
    return true;
  });
}

function contents(entries: Record<string, string | Uint8Array>): VaultContents {
  const now = new Date().toISOString();
  return { entries: new Map(Object.entries(entries).map(([n, v]) => [n, { value: typeof v === 'string' ? enc(v) : v, updatedAt: now }])) };
}

test('vectors: the valid vaults open with the published key and give the published contents', () => {
  for (const [file, want] of Object.entries(index.ok)) {
    const bytes = vector(file);
    const h = readVaultHeader(bytes);
    assert.deepEqual(h.schemeId, SCHEME);
    assert.equal(h.generation, want.generation);
    assert.equal(h.createdAt, want.created_at);
    const got = openVault(bytes, MASTER);
    assert.deepEqual([...got.entries.keys()].sort(), Object.keys(want.entries).sort(), file);
    for (const [name, e] of Object.entries(want.entries)) {
      assert.deepEqual(got.entries.get(name), { value: fromB64(e.value_b64, 'value'), updatedAt: e.updated_at });
    }
  }
});

test('vectors: every corrupt vault fails with the error it is named for', () => {
  assert.ok(Object.keys(index.fail).length >= 20);
  for (const [file, want] of Object.entries(index.fail)) {
    assert.match(file, /^fail_[a-z0-9_]+\.lbv$/);
    expectError(() => openVault(vector(file), MASTER), want.error, want.code);
  }
});

test('an independent reader from the spec alone opens the valid vector', async () => {
  await sodium.ready;
  const bytes = vector('ok_two_entries.lbv');
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), 'LBVT');
  assert.equal(bytes[4], 1);
  const headerLen = (bytes[5]! << 8) | bytes[6]!;
  assert.equal(headerLen, 64);
  const header = bytes.subarray(7, 7 + headerLen);
  const schemeId = header.subarray(0, 16);
  const info = (s: string): Uint8Array => enc(`lifeboat:${s}`);
  assert.deepEqual(header.subarray(16, 48), hkdf(sha256, MASTER, schemeId, info('vault-master-fingerprint'), 32));
  assert.equal(new DataView(header.buffer, header.byteOffset).getBigUint64(48), 7n);
  const key = hkdf(sha256, MASTER, schemeId, info('vault-data-key'), 32);
  const nonce = bytes.subarray(7 + headerLen, 7 + headerLen + 24);
  const pt = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, bytes.subarray(7 + headerLen + 24), bytes.subarray(0, 7 + headerLen), nonce, key);
  const doc = JSON.parse(new TextDecoder().decode(pt)) as { entries: Record<string, { value: string }> };
  assert.equal(new TextDecoder().decode(fromB64(doc.entries['api/token']!.value, 'v')), 'hunter2');
});

test('header: encode/parse round trip, fixed layout, property', () => {
  const h = { schemeId: randomBytes(16), fingerprint: randomBytes(32), generation: 258, createdAt: 1_700_000_000_123 };
  const b = encodeVaultHeader(h);
  assert.equal(b.length, VAULT_HEADER_LEN);
  assert.deepEqual(b.subarray(48, 56), new Uint8Array([0, 0, 0, 0, 0, 0, 1, 2]));
  assert.deepEqual(parseVaultHeader(b), h);
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      (schemeId, fingerprint, generation, createdAt) => {
        const x = { schemeId, fingerprint, generation, createdAt };
        assert.deepEqual(parseVaultHeader(encodeVaultHeader(x)), x);
      },
    ),
  );
});

test('header: bad fields are refused on both sides', () => {
  const ok = { schemeId: randomBytes(16), fingerprint: randomBytes(32), generation: 1, createdAt: 0 };
  expectError(() => encodeVaultHeader({ ...ok, schemeId: randomBytes(15) }), 'InvalidInputError', 'invalid_input');
  expectError(() => encodeVaultHeader({ ...ok, fingerprint: randomBytes(31) }), 'InvalidInputError', 'invalid_input');
  expectError(() => encodeVaultHeader({ ...ok, generation: 0 }), 'InvalidInputError', 'invalid_input');
  expectError(() => encodeVaultHeader({ ...ok, generation: 2 ** 53 }), 'InvalidInputError', 'invalid_input');
  expectError(() => encodeVaultHeader({ ...ok, createdAt: -1 }), 'InvalidInputError', 'invalid_input');
  expectError(() => parseVaultHeader(new Uint8Array(63)), 'FormatError', 'malformed');
  expectError(() => parseVaultHeader(new Uint8Array(65)), 'FormatError', 'malformed');
});

test('plaintext: exact bytes (sorted names, no whitespace) and round trip', () => {
  const c: VaultContents = {
    entries: new Map([
      ['b', { value: enc('2'), updatedAt: '2025-01-01T00:00:00.000Z' }],
      ['a', { value: new Uint8Array(0), updatedAt: '2025-01-01T00:00:00Z' }],
    ]),
  };
  const bytes = encodeVaultPlaintext(c);
  assert.equal(
    new TextDecoder().decode(bytes),
    '{"entries":{"a":{"value":"","updated_at":"2025-01-01T00:00:00Z"},"b":{"value":"Mg==","updated_at":"2025-01-01T00:00:00.000Z"}}}',
  );
  assert.deepEqual(parseVaultPlaintext(bytes), c);
});

const nameArb = fc.stringMatching(/^[a-z0-9][a-z0-9._/-]{0,20}$/);

test('property: parse(encode(c)) == c, and openVault(sealVault(c)) == c', () => {
  const master = randomBytes(32);
  const scheme = randomBytes(16);
  fc.assert(
    fc.property(fc.dictionary(nameArb, fc.uint8Array({ maxLength: 200 }), { maxKeys: 8 }), fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }), (d, date) => {
      const c: VaultContents = { entries: new Map(Object.entries(d).map(([n, v]) => [n, { value: v, updatedAt: date.toISOString() }])) };
      assert.deepEqual(parseVaultPlaintext(encodeVaultPlaintext(c)), c);
      assert.deepEqual(openVault(sealVault(c, master, scheme, 41), master), c);
    }),
    { numRuns: 100 },
  );
});

test('createVault: an empty vault of generation 1, written now, under the given scheme', () => {
  const master = randomBytes(32);
  const scheme = randomBytes(16);
  const before = Date.now();
  const bytes = createVault(master, scheme);
  const h = readVaultHeader(bytes);
  assert.equal(h.generation, 1);
  assert.deepEqual(h.schemeId, scheme);
  assert.deepEqual(h.fingerprint, masterFingerprint(master, scheme));
  assert.ok(h.createdAt >= before && h.createdAt <= Date.now());
  assert.equal(openVault(bytes, master).entries.size, 0);
  expectError(() => createVault(randomBytes(31), scheme), 'InvalidInputError', 'invalid_input');
  expectError(() => createVault(master, randomBytes(17)), 'InvalidInputError', 'invalid_input');
});

test('keys: fingerprint and data key are the documented HKDFs, and differ', () => {
  const master = randomBytes(32);
  const scheme = randomBytes(16);
  const fp = masterFingerprint(master, scheme);
  assert.deepEqual(fp, hkdf(sha256, master, scheme, enc('lifeboat:vault-master-fingerprint'), 32));
  assert.notDeepEqual(fp, deriveKey(master, scheme, 'vault-data-key'));
  assert.notDeepEqual(fp, masterFingerprint(master, randomBytes(16)));
});

test('sealVault: generation is previous + 1; bad generations are refused', () => {
  const master = randomBytes(32);
  const scheme = randomBytes(16);
  assert.equal(readVaultHeader(sealVault(contents({}), master, scheme, 0)).generation, 1);
  assert.equal(readVaultHeader(sealVault(contents({}), master, scheme, 99)).generation, 100);
  for (const g of [-1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER]) {
    expectError(() => sealVault(contents({}), master, scheme, g), 'InvalidInputError', 'invalid_input');
  }
});

test('checkMasterKey: a wrong key is ShareError wrong_master_key, decided before any decryption', () => {
  const bytes = vector('ok_two_entries.lbv');
  checkMasterKey(bytes, MASTER);
  checkMasterKey(readVaultHeader(bytes), MASTER);
  expectError(() => checkMasterKey(bytes, randomBytes(32)), 'ShareError', 'wrong_master_key');
  expectError(() => checkMasterKey(readVaultHeader(bytes), randomBytes(32)), 'ShareError', 'wrong_master_key');
  expectError(() => openVault(bytes, randomBytes(32)), 'ShareError', 'wrong_master_key');
  // a vault whose ciphertext is broken still says "wrong master key" for a wrong key: the check comes first
  expectError(() => openVault(vector('fail_bad_tag.lbv'), randomBytes(32)), 'ShareError', 'wrong_master_key');
  expectError(() => checkMasterKey(bytes, randomBytes(16)), 'InvalidInputError', 'invalid_input');
  expectError(() => checkMasterKey(enc('not a vault at all'), MASTER), 'FormatError', 'bad_magic');
});

test('the header is readable without a key but authenticated by opening: a rolled-back generation is caught', () => {
  const bytes = vector('fail_generation_changed.lbv');
  assert.equal(readVaultHeader(bytes).generation, 8);
  expectError(() => openVault(bytes, MASTER), 'DecryptionError', 'decryption_failed');
});

test('reencryptVault: new key and scheme, same entries and times, next generation; the old key is refused', () => {
  const old = vector('ok_two_entries.lbv');
  const newMaster = randomBytes(32);
  const newScheme = randomBytes(16);
  const rotated = reencryptVault(old, MASTER, newMaster, newScheme);
  const h = readVaultHeader(rotated);
  assert.equal(h.generation, 8);
  assert.deepEqual(h.schemeId, newScheme);
  assert.deepEqual(openVault(rotated, newMaster), openVault(old, MASTER));
  expectError(() => openVault(rotated, MASTER), 'ShareError', 'wrong_master_key');
  expectError(() => reencryptVault(old, randomBytes(32), newMaster, newScheme), 'ShareError', 'wrong_master_key');
  // same master, new scheme (a re-split) also works
  assert.equal(openVault(reencryptVault(old, MASTER, MASTER, newScheme), MASTER).entries.size, 2);
});

test('names: the pattern is enforced with invalid_name, and the message never repeats the name', () => {
  const master = randomBytes(32);
  const scheme = randomBytes(16);
  const good = ['a', '0', 'backup/key', 'a.b_c-d/e', 'constructor', 'x'.repeat(128)];
  for (const n of good) assert.equal(openVault(sealVault(contents({ [n]: 'v' }), master, scheme, 0), master).entries.has(n), true, n);
  const bad = ['', 'A', 'Backup', '.hidden', '/abs', '-x', '_x', 'a b', 'a\n', 'é', 'x'.repeat(129), 'sk_live_SECRET'];
  for (const n of bad) {
    assert.throws(
      () => sealVault(contents({ [n]: 'v' }), master, scheme, 0),
      (err: unknown) => err instanceof LifeboatError && err.code === 'invalid_name' && (n === '' || !err.message.includes(n)),
      JSON.stringify(n),
    );
  }
});

test('limits: value size, entry count and total size are each a clear InvalidInputError', () => {
  const master = randomBytes(32);
  const scheme = randomBytes(16);
  const max = new Uint8Array(MAX_VALUE_BYTES);
  assert.equal(openVault(sealVault(contents({ big: max }), master, scheme, 0), master).entries.get('big')!.value.length, MAX_VALUE_BYTES);
  expectError(() => sealVault(contents({ big: new Uint8Array(MAX_VALUE_BYTES + 1) }), master, scheme, 0), 'InvalidInputError', 'value_too_large');

  const many: Record<string, string> = {};
  for (let i = 0; i < MAX_ENTRIES; i++) many[`k${i}`] = 'v';
  const full = sealVault(contents(many), master, scheme, 0);
  assert.equal(openVault(full, master).entries.size, MAX_ENTRIES);
  many['one-more'] = 'v';
  expectError(() => sealVault(contents(many), master, scheme, 0), 'InvalidInputError', 'too_many_entries');

  const huge: Record<string, Uint8Array> = {};
  for (let i = 0; i < 17; i++) huge[`blob${i}`] = max;
  expectError(() => sealVault(contents(huge), master, scheme, 0), 'InvalidInputError', 'vault_too_large');
});

test('the largest vault within the limits fits MAX_VAULT_FILE_BYTES, and a holder push in base64', () => {
  const master = randomBytes(32);
  const c: VaultContents = { entries: new Map() };
  const longest = '2025-01-01T00:00:00.123456789+00:00'; // the longest timestamp a reader accepts
  const name = (i: number): string => `${i}`.padStart(5, '0') + 'x'.repeat(123);
  for (let i = 0; i < MAX_ENTRIES; i++) {
    c.entries.set(name(i), { value: i < MAX_TOTAL_VALUE_BYTES / MAX_VALUE_BYTES ? new Uint8Array(MAX_VALUE_BYTES) : new Uint8Array(0), updatedAt: longest });
  }
  const bytes = sealVault(c, master, randomBytes(16), 0);
  assert.ok(bytes.length <= MAX_VAULT_FILE_BYTES, `${bytes.length} > ${MAX_VAULT_FILE_BYTES}`);
  assert.ok(Math.ceil(bytes.length / 3) * 4 + 100 <= VAULT_BODY_LIMIT, 'a holder would refuse the push');
  assert.equal(openVault(bytes, master).entries.size, MAX_ENTRIES);
  expectError(() => readVaultHeader(new Uint8Array(MAX_VAULT_FILE_BYTES + 1)), 'FormatError', 'malformed');
});

test('a file over the limits written by another writer is refused as malformed', () => {
  const key = deriveKey(MASTER, SCHEME, 'vault-data-key');
  const header = readVaultHeader(vector('ok_empty.lbv'));
  const big = `{"entries":{"a":{"value":"${toB64(new Uint8Array(MAX_VALUE_BYTES + 1))}","updated_at":"2025-01-01T00:00:00Z"}}}`;
  const bytes = sealEnvelope({ magic: VAULT_MAGIC, version: 1, header: encodeVaultHeader(header), key, plaintext: enc(big) });
  expectError(() => openVault(bytes, MASTER), 'FormatError', 'malformed');
});

test('describeEntries: names, sizes and times, sorted, never a value', () => {
  const c = openVault(vector('ok_two_entries.lbv'), MASTER);
  const list = describeEntries(c);
  assert.deepEqual(list, [
    { name: 'api/token', size: 7, updatedAt: '2025-01-01T00:00:00.000Z' },
    { name: 'backup/key', size: 32, updatedAt: '2025-01-02T03:04:05.006Z' },
  ]);
  assert.ok(!JSON.stringify(list).includes('hunter2'));
});
