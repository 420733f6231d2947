/**
 * Streamed compactions (LBBC v2, docs/format.md) and the STREAM chunks under them: round trips, the
 * construction re-derived with noble's HKDF and node's chacha20-poly1305 from the document alone, and
 * negative vectors (truncated, reordered, duplicated, flipped, missing last flag, a chunk after the
 * last, a wrong key, records out of order). A stored version-1 compaction still opens.
 */
import { strict as assert } from 'node:assert';
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { CompactionReader, CompactionWriter, parseAnyCompactionHeader, parseCompactionHeaderV2 } from '../src/backup/compaction.js';
import { encodeEndRecord, encodeKeyRecord, encodeSecretsRecord } from '../src/backup/compaction-records.js';
import type { StreamSecrets } from '../src/backup/changes.js';
import { randomBytes } from '../src/crypto/random.js';
import { SEALED_CHUNK, STREAM_CHUNK, StreamOpener, StreamSealer } from '../src/crypto/stream.js';
import { fromB64, utf8 } from '../src/util/bytes.js';
import type { ApiKeyRecord, KeyRecord } from '../src/keynode/store/types.js';

const backupKey = randomBytes(32);
const secrets: StreamSecrets = { identity: randomBytes(64), storageKey: randomBytes(32), exportKey: randomBytes(32), wrappingKey: randomBytes(32) };
const head = randomBytes(32);

function key(i: number, extra: Partial<KeyRecord> = {}): KeyRecord {
  return {
    keyId: `key_${String(i).padStart(6, '0')}`,
    curve: (['ed25519', 'secp256k1', 'bip340'] as const)[i % 3]!,
    threshold: 2,
    maxSigners: 3,
    identifier: i % 2 ? '0000000000000000000000000000000000000000000000000000000000000002' : '03',
    groupPublicKey: randomBytes(33),
    publicPackage: randomBytes(200 + (i % 50)),
    encryptedShare: randomBytes(120),
    status: i % 7 ? 'active' : 'pending_backup',
    origin: (['dkg', 'import', 'failover'] as const)[i % 3]!,
    createdAt: 1_700_000_000_000 + i,
    tenant: i % 5 ? 'default' : 'acme',
    ...extra,
  };
}

const apiKeys: ApiKeyRecord[] = [
  { id: '00000000000000aa', secretHash: randomBytes(32), role: 'operator', label: 'ops', createdAt: 5, revokedAt: null, tenant: null },
  { id: '00000000000000bb', secretHash: randomBytes(32), role: 'client', label: 'app ✓', createdAt: 6, revokedAt: 7, tenant: 'acme' },
];

/** A compaction of `n` keys; returns its bytes and the keys. */
function write(n: number, k = backupKey, stream = 'node-a', exact = false): { bytes: Uint8Array; keys: KeyRecord[] } {
  const parts: Uint8Array[] = [];
  const w = new CompactionWriter(k, { stream, seq: 9, head, createdAt: 1_700_000_000_123 }, (b) => parts.push(b.slice()));
  const keys = Array.from({ length: n }, (_, i) => (i === 1 ? key(i, { ersPolicy: 'require', epoch: 3 }) : key(i)));
  w.secrets(secrets);
  keys.forEach((x) => w.key(x));
  apiKeys.forEach((a) => w.apiKey(a));
  const r = w.finish({ exact });
  const bytes = Buffer.concat(parts);
  assert.equal(r.bytes, bytes.length);
  return { bytes: new Uint8Array(bytes), keys };
}

/** Reads a compaction pushed in pieces of `piece` bytes; returns what the sink got and the result. */
function read(bytes: Uint8Array, opts: { key?: Uint8Array; stream?: string; piece?: number } = {}) {
  const got = { secrets: [] as StreamSecrets[], keys: [] as KeyRecord[], apiKeys: [] as ApiKeyRecord[] };
  const r = new CompactionReader(opts.key ?? backupKey, { stream: opts.stream ?? 'node-a' }, { secrets: (s) => got.secrets.push(s), key: (k) => got.keys.push(k), apiKey: (a) => got.apiKeys.push(a) });
  const piece = opts.piece ?? 100_000;
  for (let i = 0; i < bytes.length; i += piece) r.push(bytes.subarray(i, i + piece));
  return { ...r.finish(), got };
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
  return 'no_error';
}

/** The payload key and chunk nonces as docs/format.md defines them, computed here without the code under test. */
function payloadKey(bytes: Uint8Array, k = backupKey): { key: Uint8Array; headerLen: number } {
  const headerLen = 7 + ((bytes[5]! << 8) | bytes[6]!);
  return { key: hkdf(sha256, k, bytes.subarray(0, headerLen), utf8.encode('lifeboat:backup/compaction/v2'), 32), headerLen };
}

function nonce(counter: number, last: boolean): Uint8Array {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setUint32(7, counter);
  n[11] = last ? 1 : 0;
  return n;
}

function seal(key: Uint8Array, counter: number, last: boolean, pt: Uint8Array): Uint8Array {
  const c = createCipheriv('chacha20-poly1305', key, nonce(counter, last), { authTagLength: 16 });
  return new Uint8Array(Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]));
}

/** The header and the sealed chunks of a compaction. */
function cut(bytes: Uint8Array): { header: Uint8Array; chunks: Uint8Array[] } {
  const { headerLen } = payloadKey(bytes);
  const chunks: Uint8Array[] = [];
  for (let i = headerLen; i < bytes.length; i += SEALED_CHUNK) chunks.push(bytes.slice(i, i + SEALED_CHUNK));
  return { header: bytes.slice(0, headerLen), chunks };
}

/** An end record: the counts, and the exact flag (docs/format.md). */
const end = (keys: number, apiKeys: number, exact = false) => encodeEndRecord({ keys, apiKeys, exact });
const join = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const big = write(700); // about 3 chunks

test('round trip: every field of every record, in pieces of any size; the header is readable without the key', () => {
  assert.ok(cut(big.bytes).chunks.length >= 3, 'spans several chunks');
  for (const piece of [1, 1000, SEALED_CHUNK, SEALED_CHUNK + 1, 1 << 20]) {
    const r = read(big.bytes, { piece: piece === 1 ? 997 : piece });
    assert.deepEqual(r.got.keys, big.keys);
    assert.deepEqual(r.got.apiKeys, apiKeys);
    assert.deepEqual(r.got.secrets, [secrets]);
    assert.deepEqual(
      { version: r.version, seq: r.seq, head: r.head, keys: r.keys, apiKeys: r.apiKeys, createdAt: r.createdAt, exact: r.exact },
      { version: 2, seq: 9, head, keys: 700, apiKeys: 2, createdAt: '2023-11-14T22:13:20.123Z', exact: false },
    );
  }
  assert.deepEqual(parseAnyCompactionHeader(big.bytes), { stream: 'node-a', seq: 9, link: head });
  assert.equal(parseCompactionHeaderV2(big.bytes)?.h.createdAt, 1_700_000_000_123);
  const empty = write(0);
  assert.deepEqual(read(empty.bytes).got.keys, []);
});

test('the construction as documented: HKDF over the header, chunk nonce = counter || last flag, 64 KiB chunks', () => {
  const { key, headerLen } = payloadKey(big.bytes);
  const { chunks } = cut(big.bytes);
  chunks.forEach((c, i) => {
    const last = i === chunks.length - 1;
    if (!last) assert.equal(c.length, STREAM_CHUNK + 16);
    const d = createDecipheriv('chacha20-poly1305', key, nonce(i, last), { authTagLength: 16 });
    d.setAuthTag(c.subarray(c.length - 16));
    d.update(c.subarray(0, c.length - 16));
    d.final(); // throws unless this is chunk i with this flag
  });
  assert.equal(headerLen, 7 + 2 + 6 + 8 + 32 + 8 + 32);
  // Two compactions of the same state never share a payload key (a fresh salt in each header).
  assert.notDeepEqual(payloadKey(write(1).bytes).key, payloadKey(write(1).bytes).key);
});

test('negative vectors: truncated, reordered, duplicated, flipped, missing last flag, a chunk after the last, a wrong key', () => {
  const { header, chunks } = cut(big.bytes);
  const { key } = payloadKey(big.bytes);
  const n = chunks.length;
  const lastPlain = (() => {
    const d = createDecipheriv('chacha20-poly1305', key, nonce(n - 1, true), { authTagLength: 16 });
    const c = chunks[n - 1]!;
    d.setAuthTag(c.subarray(c.length - 16));
    const p = d.update(c.subarray(0, c.length - 16));
    d.final();
    return new Uint8Array(p);
  })();
  const flip = (b: Uint8Array, at: number) => {
    const c = b.slice();
    c[at]! ^= 1;
    return c;
  };
  const cases: [string, Uint8Array, string][] = [
    ['truncated at a chunk boundary', join(header, ...chunks.slice(0, n - 1)), 'decryption_failed'],
    ['truncated inside a chunk', big.bytes.subarray(0, big.bytes.length - 100), 'decryption_failed'],
    ['truncated to the header', header, 'truncated'],
    ['truncated inside the header', header.subarray(0, 20), 'truncated'],
    ['reordered', join(header, chunks[1]!, chunks[0]!, ...chunks.slice(2)), 'decryption_failed'],
    ['a chunk duplicated', join(header, chunks[0]!, chunks[0]!, ...chunks.slice(1)), 'decryption_failed'],
    ['a flipped bit in a chunk', join(header, chunks[0]!, flip(chunks[1]!, 500), ...chunks.slice(2)), 'decryption_failed'],
    ['a flipped bit in a tag', join(header, ...chunks.slice(0, n - 1), flip(chunks[n - 1]!, chunks[n - 1]!.length - 1)), 'decryption_failed'],
    ['a flipped bit in the header seq', join(flip(header, 7 + 2 + 6 + 7), ...chunks), 'decryption_failed'],
    ['a flipped bit in the header salt', join(flip(header, header.length - 1), ...chunks), 'decryption_failed'],
    ['the last chunk without its last flag', join(header, ...chunks.slice(0, n - 1), seal(key, n - 1, false, lastPlain)), 'decryption_failed'],
    ['a chunk after the last', join(header, ...chunks, seal(key, n, true, new Uint8Array([1, 2, 3]))), 'decryption_failed'],
    ['an empty chunk after the last', join(header, ...chunks, seal(key, n, true, new Uint8Array(0))), 'decryption_failed'],
    ['bad magic', join(utf8.encode('LBBX'), big.bytes.subarray(4)), 'bad_magic'],
    ['version 3', join(big.bytes.subarray(0, 4), new Uint8Array([3]), big.bytes.subarray(5)), 'unsupported_version'],
  ];
  for (const [what, bytes, want] of cases) assert.equal(code(() => read(bytes)), want, what);
  assert.equal(code(() => read(big.bytes, { key: randomBytes(32) })), 'decryption_failed', 'a wrong key');
  assert.equal(code(() => read(big.bytes, { stream: 'node-b' })), 'entry_misplaced', 'another stream');
  assert.equal(code(() => parseAnyCompactionHeader(join(header.subarray(0, 9), utf8.encode('node-?'), header.subarray(15)))), 'malformed', 'a stream name out of the alphabet');
});

/** An authentic compaction (header and chunks sealed as the writer does) of exactly these records. */
function sealed(...records: Uint8Array[]): Uint8Array {
  const base = write(0).bytes;
  const { key: pk, headerLen } = payloadKey(base);
  const out: Uint8Array[] = [base.slice(0, headerLen)];
  const s = new StreamSealer(pk, (c) => out.push(c.slice()));
  records.forEach((r) => s.push(r));
  s.finish();
  return join(...out);
}

test('negative vectors in the records: each sealed correctly, refused as malformed', () => {
  const sec = encodeSecretsRecord(secrets);
  const [k1, k2] = [encodeKeyRecord(key(1)), encodeKeyRecord(key(2))];
  assert.equal(code(() => read(sealed(sec, k1, k2, end(2, 0)))), 'no_error', 'the control case opens');
  const cases: [string, Uint8Array][] = [
    ['no end record', sealed(sec, k1, k2)],
    ['a record after the end', sealed(sec, k1, end(1, 0), k2)],
    ['a duplicated key', sealed(sec, k1, k1, end(2, 0))],
    ['keys out of order', sealed(sec, k2, k1, end(2, 0))],
    ['no node keys first', sealed(k1, end(1, 0))],
    ['node keys twice', sealed(sec, sec, end(0, 0))],
    ['end counts that differ', sealed(sec, k1, end(2, 0))],
    ['a record cut short', sealed(sec, k1.subarray(0, k1.length - 3), end(1, 0))],
    ['an unknown record type', sealed(sec, new Uint8Array([0x09, 0, 0, 0, 0]), end(0, 0))],
    ['a record longer than 1 MiB', sealed(sec, new Uint8Array([0x02, 0x00, 0x20, 0, 0]))],
    ['an unknown curve', sealed(sec, (() => { const b = k1.slice(); b[5 + 1 + b[5]!] = 9; return b; })(), end(1, 0))],
  ];
  for (const [what, bytes] of cases) assert.equal(code(() => read(bytes)), 'malformed', what);
});

test('the end record carries the exact flag; a bad flag byte, a short or long end record is refused', () => {
  // Written by the writer: the flag as given, read back only after the last chunk.
  assert.deepEqual([read(write(3, backupKey, 'node-a', true).bytes).exact, read(write(3).bytes).exact], [true, false]);
  // The bytes as docs/format.md lays them out: type 0x7f, len 17, u64 keys, u64 api keys, u8 flags.
  assert.deepEqual([...end(1, 2, true)], [0x7f, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1]);
  assert.equal(end(1, 2, false).at(-1), 0);
  const sec = encodeSecretsRecord(secrets);
  const k1 = encodeKeyRecord(key(1));
  /** An end record of one key and no API key with this body after the counts. */
  const endWith = (...tail: number[]) => {
    const e = end(1, 0);
    const body = [...e.subarray(5, 21), ...tail];
    return new Uint8Array([0x7f, 0, 0, 0, body.length, ...body]);
  };
  assert.equal(read(sealed(sec, k1, endWith(0x01))).exact, true, 'the control case: flag 0x01');
  assert.equal(read(sealed(sec, k1, endWith(0x00))).exact, false, 'the control case: flag 0x00');
  const cases: [string, Uint8Array][] = [
    ['flags 0x02', endWith(0x02)],
    ['flags 0x80', endWith(0x80)],
    ['flags 0xff', endWith(0xff)],
    ['flags 0x03 (exact and an unknown bit)', endWith(0x03)],
    ['no flags byte (16 bytes: the layout before the flag)', endWith()],
    ['a byte after the flags (18 bytes)', endWith(0x01, 0x00)],
  ];
  for (const [what, rec] of cases) assert.equal(code(() => read(sealed(sec, k1, rec))), 'malformed', what);
  // The header's created_at above 2^53 - 1 (its top byte set), or a header_len one byte longer.
  const h = write(0).bytes.slice();
  h[7 + 2 + 6 + 8 + 32] = 0x80;
  assert.equal(code(() => parseCompactionHeaderV2(h)), 'malformed', 'created_at over 2^53 - 1');
  const longer = join(h.subarray(0, 5), new Uint8Array([0, h[6]! + 1]), h.subarray(7, 7 + h[6]!), new Uint8Array([0]));
  assert.equal(code(() => parseCompactionHeaderV2(longer)), 'malformed', 'header_len past the salt');
});

test('STREAM: a sealer and an opener agree at every length around the chunk size; an empty payload is one empty last chunk', () => {
  const k = randomBytes(32);
  for (const len of [0, 1, STREAM_CHUNK - 1, STREAM_CHUNK, STREAM_CHUNK + 1, 2 * STREAM_CHUNK, 2 * STREAM_CHUNK + 5]) {
    const pt = randomBytes(len);
    const sealedParts: Uint8Array[] = [];
    const s = new StreamSealer(k, (c) => sealedParts.push(c.slice()));
    s.push(pt.subarray(0, len >> 1));
    s.push(pt.subarray(len >> 1));
    const chunks = s.finish();
    assert.equal(chunks, Math.max(1, Math.ceil(len / STREAM_CHUNK)), `${len} bytes`);
    const out: Uint8Array[] = [];
    const o = new StreamOpener(k, (p) => out.push(p.slice()));
    o.push(join(...sealedParts));
    assert.equal(o.finish(), chunks);
    assert.deepEqual(join(...out), pt);
  }
});

test('a stored version-1 compaction (JSON in one envelope) still opens, record by record', () => {
  const fx = JSON.parse(readFileSync(new URL('./data/backup-compaction-v1.json', import.meta.url), 'utf8')) as { backup_key_label: string; stream: string; compaction: string };
  const k = sha256(utf8.encode(fx.backup_key_label));
  const r = read(fromB64(fx.compaction, 'compaction'), { key: k, stream: fx.stream, piece: 100 });
  assert.equal(r.version, 1);
  assert.equal(r.seq, 4);
  assert.deepEqual(r.got.keys.map((x) => x.keyId), ['key_v1_1', 'key_v1_2']);
  assert.deepEqual(r.got.apiKeys.map((a) => [a.id, a.tenant]), [['0123456789abcdef', null]]);
  assert.equal(code(() => read(fromB64(fx.compaction, 'compaction'), { key: backupKey, stream: fx.stream })), 'decryption_failed');
});
