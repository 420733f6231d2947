/**
 * Log entries, `LBLE` v1 (src/log/entry.ts, docs/log-format.md "Log entry"): the layout rebuilt here
 * independently, round trips, and negative vectors named for their fault.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ed25519 } from '@noble/curves/ed25519.js';
import { generateIdentity, encodePublicIdentity, parsePublicIdentity } from '../src/identity.js';
import { utf8 } from '../src/util/bytes.js';
import { createEntry, encodeEntry, ENTRY_OVERHEAD, entrySubmitter, MAX_ENTRY_BYTES, parseEntry, verifyEntry } from '../src/log/entry.js';
import { errorCode } from './helpers/errors.js';

const code = errorCode;

/**
 * alice's signing key must not start with a byte a record type may hold: the typeLength vector below
 * makes the type swallow that byte, and expects the parse to fail on it (`malformed`). With a random key
 * that byte is a type character one time in six, and the parse then fails further on instead.
 */
const alice = (() => {
  for (;;) {
    const id = generateIdentity('node');
    if (!/[a-z0-9._/-]/.test(String.fromCharCode(id.signingPublicKey[0]!))) return id;
  }
})();
const bob = generateIdentity('node');
const payload = utf8.encode('an encrypted key share backup');
const T = 1764752400123;
const entry = createEntry({ recordType: 'keyshare-backup/v1', payload, timestamp: T }, alice);
const TYPE_LEN = 'keyshare-backup/v1'.length;

describe('log entry: layout', () => {
  it('is the documented bytes: magic, version, type, submitter, timestamp, payload, signature over the rest', () => {
    const rt = utf8.encode('keyshare-backup/v1');
    const unsigned = new Uint8Array(6 + rt.length + 64 + 12 + payload.length);
    unsigned.set(utf8.encode('LBLE'), 0);
    unsigned[4] = 1;
    unsigned[5] = rt.length;
    unsigned.set(rt, 6);
    unsigned.set(alice.signingPublicKey, 6 + rt.length);
    unsigned.set(alice.boxPublicKey, 6 + rt.length + 32);
    const dv = new DataView(unsigned.buffer, 6 + rt.length + 64);
    dv.setBigUint64(0, BigInt(T));
    dv.setUint32(8, payload.length);
    unsigned.set(payload, 6 + rt.length + 76);
    const sig = ed25519.sign(new Uint8Array([...utf8.encode('lifeboat:log-entry\0'), ...unsigned]), alice.signing.secretKey);
    assert.deepEqual(entry, new Uint8Array([...unsigned, ...sig]));
    assert.equal(entry.length, ENTRY_OVERHEAD + TYPE_LEN + payload.length);
  });

  it('verifies and gives every field back; the submitter is its lb1. identity', () => {
    const e = verifyEntry(entry);
    assert.equal(e.recordType, 'keyshare-backup/v1');
    assert.equal(e.timestamp, T);
    assert.deepEqual(e.payload, payload);
    assert.deepEqual(e.bytes, entry);
    assert.equal(entrySubmitter(e), encodePublicIdentity(alice));
    assert.deepEqual(parsePublicIdentity(entrySubmitter(e)).signingPublicKey, alice.signingPublicKey);
    assert.deepEqual(encodeEntry(e), entry);
  });

  it('the same record signed twice is the same bytes (deterministic Ed25519: the log can deduplicate)', () => {
    assert.deepEqual(createEntry({ recordType: 'keyshare-backup/v1', payload, timestamp: T }, alice), entry);
  });

  it('round-trips any record type, payload and timestamp', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9][a-z0-9._/-]{0,63}$/),
        fc.uint8Array({ maxLength: 3000 }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        (recordType, p, timestamp) => {
          const e = verifyEntry(createEntry({ recordType, payload: p, timestamp }, bob));
          assert.deepEqual([e.recordType, e.payload, e.timestamp, entrySubmitter(e)], [recordType, p, timestamp, encodePublicIdentity(bob)]);
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('log entry: negative vectors', () => {
  const at = {
    magic: 0,
    version: 4,
    typeLength: 5,
    recordType: 6,
    signingKey: 6 + TYPE_LEN,
    boxKey: 6 + TYPE_LEN + 32,
    timestamp: 6 + TYPE_LEN + 64 + 7,
    payloadLength: 6 + TYPE_LEN + 64 + 8 + 3,
    payload: 6 + TYPE_LEN + 76,
    signature: entry.length - 1,
  };
  const flip = (i: number, x = 1): Uint8Array => {
    const b = entry.slice();
    b[i] = b[i]! ^ x;
    return b;
  };

  it('each field tampered fails by name', () => {
    const want: Record<keyof typeof at, string> = {
      magic: 'bad_magic',
      version: 'unsupported_version',
      typeLength: 'malformed', // the record type now swallows a submitter byte
      recordType: 'entry_signature_invalid', // 'k' ^ 1 = 'j': still a valid type, but signed as 'k'
      signingKey: 'entry_signature_invalid',
      boxKey: 'entry_signature_invalid',
      timestamp: 'entry_signature_invalid',
      payloadLength: 'malformed', // 29 ^ 1 = 28: a shorter payload leaves bytes after the signature
      payload: 'entry_signature_invalid',
      signature: 'entry_signature_invalid',
    };
    for (const [field, i] of Object.entries(at)) assert.equal(code(() => verifyEntry(flip(i))), want[field as keyof typeof at], field);
    assert.equal(code(() => verifyEntry(flip(at.recordType, 0x40))), 'malformed'); // 'k' ^ 0x40 = '+'
    assert.equal(code(() => verifyEntry(flip(at.payloadLength, 0x02))), 'truncated'); // 29 ^ 2 = 31: longer than the bytes
    assert.equal(code(() => verifyEntry(flip(at.timestamp - 7, 0x80))), 'malformed'); // over 2^53 - 1
  });

  it('every single-bit change anywhere is refused', () => {
    for (let i = 0; i < entry.length; i++) assert.notEqual(code(() => verifyEntry(flip(i, 1 << (i % 8)))), 'no_error', `byte ${i}`);
  });

  it('truncated at every length: truncated (bad_magic only for an empty prefix that no longer matches)', () => {
    for (let n = 0; n < entry.length; n++) assert.equal(code(() => verifyEntry(entry.subarray(0, n))), 'truncated', `length ${n}`);
    assert.equal(code(() => verifyEntry(utf8.encode('LBXE'))), 'bad_magic');
  });

  it('trailing bytes are malformed', () => {
    assert.equal(code(() => verifyEntry(new Uint8Array([...entry, 0]))), 'malformed');
  });

  it('an unknown version is unsupported_version', () => {
    for (const v of [0, 2, 255]) {
      const b = entry.slice();
      b[4] = v;
      assert.equal(code(() => parseEntry(b)), 'unsupported_version');
    }
  });

  it("another key's signature over a submitter's entry is entry_signature_invalid", () => {
    const e = parseEntry(entry);
    const forged = encodeEntry({ ...e, signature: parseEntry(createEntry({ recordType: e.recordType, payload, timestamp: T }, bob)).signature });
    assert.equal(code(() => verifyEntry(forged)), 'entry_signature_invalid');
    assert.equal(code(() => verifyEntry(encodeEntry({ ...e, submitter: bob }))), 'entry_signature_invalid');
  });

  it('oversize: over 65535 bytes, or over a lower limit of the log, is entry_too_large on both sides', () => {
    const fits = MAX_ENTRY_BYTES - ENTRY_OVERHEAD - 1;
    const big = createEntry({ recordType: 'x', payload: new Uint8Array(fits), timestamp: T }, alice);
    assert.equal(big.length, MAX_ENTRY_BYTES);
    assert.equal(code(() => verifyEntry(big)), 'no_error');
    assert.equal(code(() => createEntry({ recordType: 'x', payload: new Uint8Array(fits + 1), timestamp: T }, alice)), 'entry_too_large');
    assert.equal(code(() => verifyEntry(new Uint8Array([...big, 0]))), 'entry_too_large');
    assert.equal(code(() => verifyEntry(big, { maxBytes: 4096 })), 'entry_too_large');
    assert.equal(code(() => createEntry({ recordType: 'x', payload: new Uint8Array(4096), timestamp: T }, alice, { maxBytes: 4096 })), 'entry_too_large');
    assert.equal(code(() => verifyEntry(entry, { maxBytes: 70000 })), 'invalid_input');
  });

  it('bad fields are refused before signing', () => {
    for (const recordType of ['', 'Upper', '-lead', 'a b', 'x'.repeat(65), 'é']) {
      assert.equal(code(() => createEntry({ recordType, payload, timestamp: T }, alice)), 'invalid_input', recordType);
    }
    for (const timestamp of [-1, 1.5, 2 ** 53]) assert.equal(code(() => createEntry({ recordType: 'x', payload, timestamp }, alice)), 'invalid_input');
  });
});
