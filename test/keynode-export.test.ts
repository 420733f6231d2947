/**
 * Key share exports name their owner (docs/format.md, "Key share export"): the encrypted form is an
 * LBKS version 2 envelope whose header (associated data) carries the tenant, the plaintext and wrapped
 * forms a version 2 document with `tenant`. Round trips, the negative vectors of the spec, exports
 * written before owners were bound, and the owner check a client's import runs before decrypting.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from '../src/crypto/random.js';
import { generateBoxKeyPair, seal } from '../src/crypto/sealedbox.js';
import { isLifeboatError } from '../src/errors.js';
import { inProcessKeys } from '../src/keynode/frost/bench.js';
import { openKeyShare, sealKeyShare } from '../src/keynode/frost/index.js';
import { exportKeyShare, importKeyShare, type KeyShareExport } from '../src/keynode/export.js';
import { concatBytes, fromB64, toB64, utf8 } from '../src/util/bytes.js';

const key = inProcessKeys('ed25519', { keyId: 'key_export_1' })[0]!;
const exportKey = randomBytes(32);
const wrapping = generateBoxKeyPair();
const keys = { exportKey, wrapping };
const code = (c: string) => (err: unknown) => isLifeboatError(err, c);

/** The envelope's parts (docs/format.md, "Envelope"): version, header, and what follows it. */
function split(bytes: Uint8Array): { version: number; header: Uint8Array; rest: Uint8Array } {
  const len = (bytes[5]! << 8) | bytes[6]!;
  return { version: bytes[4]!, header: bytes.slice(7, 7 + len), rest: bytes.slice(7 + len) };
}
function join(version: number, header: Uint8Array, rest: Uint8Array): Uint8Array {
  return concatBytes(utf8.encode('LBKS'), new Uint8Array([version, header.length >> 8, header.length & 0xff]), header, rest);
}
/** The encrypted export with its key_share bytes replaced. */
function withBlob(exp: KeyShareExport, blob: Uint8Array): KeyShareExport {
  return { ...exp, key_share: toB64(blob) };
}
/** A version 2 header with its owner field replaced by `owner` bytes (length byte included). */
function withOwnerField(header: Uint8Array, field: Uint8Array): Uint8Array {
  const idEnd = 34 + header[33]!;
  return concatBytes(header.subarray(0, idEnd), field);
}

describe('key share export: the owner bound to the share', () => {
  const enc = exportKeyShare(key, 'encrypted', { exportKey }, 'acme');
  const blob = fromB64(enc.key_share, 'key_share');

  it('encrypted: LBKS version 2 naming the owner; round trip; the same owner required passes', () => {
    const parts = split(blob);
    assert.equal(parts.version, 2);
    assert.equal(utf8.decode(parts.header.subarray(34 + parts.header[33]! + 1)), 'acme');
    const r = importKeyShare(enc, keys);
    assert.equal(r.owner, 'acme');
    assert.equal(r.key.keyId, key.keyId);
    assert.deepEqual(r.key.share, key.share);
    assert.equal(importKeyShare(enc, keys, { owner: 'acme' }).owner, 'acme');
  });

  it("another tenant's client is refused before decrypting: export_of_another_tenant, 403, a refusal for safety", () => {
    for (const k of [keys, { exportKey: randomBytes(32), wrapping }]) {
      assert.throws(() => importKeyShare(enc, k, { owner: 'globex' }), (err) => isLifeboatError(err, 'export_of_another_tenant') && err.status === 403 && err.safety && !/acme/.test(err.message));
    }
  });

  it('the owner is authenticated: edited, removed (rewritten as version 1) or the version changed fails', () => {
    const parts = split(blob);
    const edited = join(2, withOwnerField(parts.header, concatBytes(new Uint8Array([4]), utf8.encode('acmf'))), parts.rest);
    assert.throws(() => importKeyShare(withBlob(enc, edited), keys), code('decryption_failed'));
    assert.throws(() => importKeyShare(withBlob(enc, edited), keys, { owner: 'acmf' }), code('decryption_failed'), 'a client cannot claim it by editing the header');
    const asV1 = join(1, withOwnerField(parts.header, new Uint8Array(0)), parts.rest);
    assert.throws(() => importKeyShare(withBlob(enc, asV1), keys), code('decryption_failed'));
    assert.throws(() => importKeyShare(withBlob(enc, join(1, parts.header, parts.rest)), keys), code('malformed'), 'version 1 with the owner left in');
    assert.throws(() => importKeyShare(withBlob(enc, join(3, parts.header, parts.rest)), keys), code('unsupported_version'));
  });

  it('negative vectors: an owner field of length 0 or 65, upper case, or with bytes after it is malformed', () => {
    const parts = split(blob);
    const fields = [
      new Uint8Array([0]),
      concatBytes(new Uint8Array([65]), utf8.encode('a'.repeat(65))),
      concatBytes(new Uint8Array([4]), utf8.encode('Acme')),
      concatBytes(new Uint8Array([4]), utf8.encode('acme!')),
      concatBytes(new Uint8Array([5]), utf8.encode('acme')),
      new Uint8Array(0),
    ];
    for (const f of fields) assert.throws(() => importKeyShare(withBlob(enc, join(2, withOwnerField(parts.header, f), parts.rest)), keys), code('malformed'), `owner field ${Buffer.from(f).toString('hex')}`);
  });

  it("a version 2 export given to the storage reader is unsupported_version (a node's rows are version 1 only)", () => {
    assert.throws(() => openKeyShare(exportKey, blob, { keyId: key.keyId }), code('unsupported_version'));
  });

  it('an export written before owners were bound (LBKS version 1) has none: an operator reads it, a client is refused', () => {
    const legacy = withBlob(enc, sealKeyShare(exportKey, key));
    assert.equal(importKeyShare(legacy, keys).owner, null);
    assert.throws(() => importKeyShare(legacy, keys, { owner: 'acme' }), (err) => isLifeboatError(err, 'export_without_owner') && err.status === 403);
  });

  it('plaintext and wrapped: a version 2 document with tenant; round trip; malformed without it; version 1 has none', () => {
    const plain = exportKeyShare(key, 'plaintext', { exportKey }, 'acme');
    const doc = JSON.parse(utf8.decode(fromB64(plain.key_share, 'key_share'))) as Record<string, unknown>;
    assert.deepEqual([doc.version, doc.tenant], [2, 'acme']);
    assert.equal(importKeyShare(plain, keys).owner, 'acme');
    const wrapped = exportKeyShare(key, 'wrapped', { exportKey, wrappingKey: wrapping.publicKey }, 'acme');
    assert.equal(importKeyShare(wrapped, keys).owner, 'acme');
    assert.throws(() => importKeyShare(wrapped, keys, { owner: 'globex' }), code('export_of_another_tenant'));
    const variant = (edit: Record<string, unknown>, drop?: string) => {
      const d: Record<string, unknown> = { ...doc, ...edit };
      if (drop) delete d[drop];
      return { ...plain, key_share: toB64(utf8.encode(JSON.stringify(d))) };
    };
    assert.throws(() => importKeyShare(variant({}, 'tenant'), keys), code('malformed'));
    for (const t of ['', 'Acme', 'a'.repeat(65), 5, null]) assert.throws(() => importKeyShare(variant({ tenant: t }), keys), code('malformed'), String(t));
    assert.throws(() => importKeyShare(variant({ version: 1 }), keys), code('malformed'), 'version 1 never had a tenant');
    assert.equal(importKeyShare(variant({ version: 1 }, 'tenant'), keys).owner, null);
    const sealedV1 = { ...wrapped, key_share: toB64(seal(utf8.encode(JSON.stringify({ ...doc, version: 1, tenant: undefined })), wrapping.publicKey)) };
    assert.equal(importKeyShare(sealedV1, keys).owner, null);
  });
});
