/**
 * Writes the vault test vectors of this directory: two valid vaults (ok_*.lbv) and corrupt ones
 * named for their fault (fail_*.lbv), with index.json saying what each must give. The vault key is
 * fixed (MASTER below) so other readers can use the files; nonces are random, so running this again
 * changes the bytes but not the expectations.
 *
 *   node --import tsx test/data/vault/make-vectors.ts
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sealEnvelope } from '../../../src/crypto/envelope.js';
import { deriveKey } from '../../../src/crypto/kdf.js';
import { toB64, toHex } from '../../../src/util/bytes.js';
import { encodeVaultPlaintext, type VaultContents } from '../../../src/vault/contents.js';
import { encodeVaultHeader, masterFingerprint, VAULT_MAGIC } from '../../../src/vault/format.js';

const DIR = dirname(fileURLToPath(import.meta.url));
const MASTER = Uint8Array.from({ length: 32 }, (_, i) => i); // 00 01 .. 1f
const SCHEME_ID = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i); // a0 a1 .. af
const CREATED_AT = Date.UTC(2025, 0, 2, 3, 4, 5, 678);

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function vault(plaintext: Uint8Array, opts: { generation?: number; version?: number } = {}): Uint8Array {
  const header = encodeVaultHeader({ schemeId: SCHEME_ID, fingerprint: masterFingerprint(MASTER, SCHEME_ID), generation: opts.generation ?? 7, createdAt: CREATED_AT });
  const key = deriveKey(MASTER, SCHEME_ID, 'vault-data-key');
  return sealEnvelope({ magic: VAULT_MAGIC, version: opts.version ?? 1, header, key, plaintext });
}

function patched(bytes: Uint8Array, edit: (b: Uint8Array) => void): Uint8Array {
  const b = bytes.slice();
  edit(b);
  return b;
}

const TWO: VaultContents = {
  entries: new Map([
    ['backup/key', { value: new Uint8Array(32).fill(0x42), updatedAt: '2025-01-02T03:04:05.006Z' }],
    ['api/token', { value: enc('hunter2'), updatedAt: '2025-01-01T00:00:00.000Z' }],
  ]),
};

const HEADER = 7; // offset of the vault header in the file
const GENERATION = HEADER + 16 + 32;
const ok = vault(encodeVaultPlaintext(TWO));
const entry = (name: string, value: string, updatedAt = '2025-01-01T00:00:00.000Z'): string => `{"entries":{${JSON.stringify(name)}:{"value":${JSON.stringify(value)},"updated_at":${JSON.stringify(updatedAt)}}}}`;

/** file -> [bytes, expected error class, expected code] */
const failures: Record<string, [Uint8Array, string, string]> = {
  fail_bad_magic: [patched(ok, (b) => b.set(enc('LBVX'), 0)), 'FormatError', 'bad_magic'],
  fail_unsupported_version: [patched(ok, (b) => (b[4] = 2)), 'FormatError', 'unsupported_version'],
  fail_truncated_prefix: [ok.slice(0, 5), 'FormatError', 'truncated'],
  fail_truncated_header: [ok.slice(0, HEADER + 40), 'FormatError', 'truncated'],
  fail_truncated_body: [ok.slice(0, ok.length - 1), 'DecryptionError', 'decryption_failed'],
  fail_header_length_63: [patched(ok, (b) => (b[6] = 63)), 'FormatError', 'malformed'],
  fail_generation_zero: [patched(ok, (b) => b.fill(0, GENERATION, GENERATION + 8)), 'FormatError', 'malformed'],
  fail_generation_overflow: [patched(ok, (b) => b.set([0, 0x20, 0, 0, 0, 0, 0, 0], GENERATION)), 'FormatError', 'malformed'],
  fail_wrong_fingerprint: [patched(ok, (b) => (b[HEADER + 16]! ^= 1)), 'ShareError', 'wrong_master_key'],
  fail_scheme_id_changed: [patched(ok, (b) => (b[HEADER]! ^= 1)), 'ShareError', 'wrong_master_key'],
  fail_generation_changed: [patched(ok, (b) => (b[GENERATION + 7]! += 1)), 'DecryptionError', 'decryption_failed'],
  fail_created_at_changed: [patched(ok, (b) => (b[GENERATION + 15]! ^= 1)), 'DecryptionError', 'decryption_failed'],
  fail_bad_nonce: [patched(ok, (b) => (b[HEADER + 64]! ^= 1)), 'DecryptionError', 'decryption_failed'],
  fail_bad_ciphertext: [patched(ok, (b) => (b[HEADER + 64 + 24]! ^= 1)), 'DecryptionError', 'decryption_failed'],
  fail_bad_tag: [patched(ok, (b) => (b[b.length - 1]! ^= 1)), 'DecryptionError', 'decryption_failed'],
  fail_not_utf8: [vault(new Uint8Array([0x7b, 0xff, 0x7d])), 'FormatError', 'malformed'],
  fail_not_json: [vault(enc('entries: {}')), 'FormatError', 'malformed'],
  fail_extra_field: [vault(enc('{"entries":{},"version":1}')), 'FormatError', 'malformed'],
  fail_entries_array: [vault(enc('{"entries":[]}')), 'FormatError', 'malformed'],
  fail_entry_extra_field: [vault(enc('{"entries":{"a":{"value":"","updated_at":"2025-01-01T00:00:00.000Z","note":"x"}}}')), 'FormatError', 'malformed'],
  fail_bad_name: [vault(enc(entry('Backup/Key', toB64(enc('x'))))), 'FormatError', 'malformed'],
  fail_bad_base64: [vault(enc(entry('a', 'not base64!'))), 'FormatError', 'malformed'],
  fail_bad_timestamp: [vault(enc(entry('a', toB64(enc('x')), 'yesterday'))), 'FormatError', 'malformed'],
};

const index = {
  master_key_hex: toHex(MASTER),
  scheme_id_hex: toHex(SCHEME_ID),
  ok: {
    'ok_empty.lbv': { generation: 1, created_at: CREATED_AT, entries: {} },
    'ok_two_entries.lbv': {
      generation: 7,
      created_at: CREATED_AT,
      entries: Object.fromEntries([...TWO.entries].map(([n, e]) => [n, { value_b64: toB64(e.value), updated_at: e.updatedAt }])),
    },
  },
  fail: Object.fromEntries(Object.entries(failures).map(([name, [, cls, code]]) => [`${name}.lbv`, { error: cls, code }])),
};

writeFileSync(join(DIR, 'ok_empty.lbv'), vault(encodeVaultPlaintext({ entries: new Map() }), { generation: 1 }));
writeFileSync(join(DIR, 'ok_two_entries.lbv'), ok);
for (const [name, [bytes]] of Object.entries(failures)) writeFileSync(join(DIR, `${name}.lbv`), bytes);
writeFileSync(join(DIR, 'index.json'), `${JSON.stringify(index, null, 2)}\n`);
