import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { generateBoxKeyPair, openSealed, seal } from '../src/crypto/sealedbox.js';
import { encodePublicIdentity, generateIdentity, identityFingerprint, loadIdentity, parsePublicIdentity, saveIdentity } from '../src/identity.js';
import { createReleaseRequest, parseReleaseRequest, verifyReleaseRequest } from '../src/recovery/release.js';
import { bindManifest, checkManifestBinding, type ManifestBody, parseManifest, signManifest } from '../src/recovery/manifest.js';
import { possessionPublicKey, provePossession, verifyPossession } from '../src/recovery/possession.js';
import { encodeSharePayload, parseSharePayload } from '../src/recovery/sealed-share.js';
import { ReplayGuard, signRequest, verifyRequest } from '../src/util/request-auth.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '../src/crypto/random.js';
import { toB64, toHex, utf8 } from '../src/util/bytes.js';
import { isLifeboatError, type LifeboatError } from '../src/errors.js';
import { trackedTempDir } from './helpers/tmp.js';

const code = (c: string) => (err: unknown) => isLifeboatError(err, c);

test('identity: saved 0600, loads back, refuses a world-readable file and another role', () => {
  const dir = trackedTempDir('lb-id-');
  const path = join(dir, 'id.json');
  const id = generateIdentity('operator');
  saveIdentity(path, id);
  const back = loadIdentity(path, 'operator');
  assert.deepEqual(back.signingPublicKey, id.signingPublicKey);
  assert.deepEqual(back.boxPublicKey, id.boxPublicKey);
  assert.throws(() => loadIdentity(path, 'holder'), code('malformed'));
  chmodSync(path, 0o644);
  assert.throws(() => loadIdentity(path), code('insecure_permissions'));
  const token = encodePublicIdentity(id);
  assert.equal(identityFingerprint(parsePublicIdentity(token)), identityFingerprint(id));
  assert.throws(() => parsePublicIdentity('lb1.abc'), code('invalid_input'));
  assert.throws(() => parsePublicIdentity(token.replace('lb1.', 'lb2.')), code('invalid_input'));
});

test('sealed share payload: round trip, and bad magic / version / truncation are typed errors', () => {
  const schemeId = randomBytes(16);
  const p = { schemeId, memberIndex: 3, mnemonic: 'academic acid acrobat' };
  const enc = encodeSharePayload(p);
  assert.deepEqual(parseSharePayload(enc), p);
  const badMagic = enc.slice();
  badMagic[0] = badMagic[0]! ^ 1;
  assert.throws(() => parseSharePayload(badMagic), code('bad_magic'));
  const future = enc.slice();
  future[4] = 2;
  assert.throws(() => parseSharePayload(future), code('unsupported_version'));
  assert.throws(() => parseSharePayload(enc.slice(0, 10)), code('truncated'));
  assert.throws(() => encodeSharePayload({ ...p, memberIndex: 16 }), code('invalid_input'));
});

test('possession proof: verifies only for the right share, challenge, box and hash', () => {
  const schemeId = randomBytes(16);
  const holder = generateBoxKeyPair();
  const mnemonic = 'one two three four';
  const sealedShare = seal(encodeSharePayload({ schemeId, memberIndex: 0, mnemonic }), holder.publicKey);
  const challenge = randomBytes(32);
  const pk = possessionPublicKey(schemeId, mnemonic);
  const signature = provePossession({ schemeId, mnemonic, challenge, sealedShare, holderBoxPublicKey: holder.publicKey });
  const base = { schemeId, challenge, sealedShareHash: sha256(sealedShare), expectedSealedShareHash: sha256(sealedShare), holderBoxPublicKey: holder.publicKey, possessionKey: pk, signature };
  assert.equal(verifyPossession(base), true);
  assert.equal(verifyPossession({ ...base, challenge: randomBytes(32) }), false, 'a replayed answer to another challenge');
  assert.equal(verifyPossession({ ...base, expectedSealedShareHash: randomBytes(32) }), false, 'another sealed share');
  assert.equal(verifyPossession({ ...base, possessionKey: possessionPublicKey(schemeId, 'one two three five') }), false, 'another share');
  assert.equal(verifyPossession({ ...base, holderBoxPublicKey: generateBoxKeyPair().publicKey }), false, 'another holder');
  // case and spacing of a typed share do not change the key
  assert.deepEqual(possessionPublicKey(schemeId, '  One  TWO three four '), pk);
});

test('release request: signed, window-checked, and any altered field breaks the signature', () => {
  const op = generateIdentity('operator');
  const now = Date.now();
  const req = createReleaseRequest({ signer: op, schemeId: randomBytes(16), holderFingerprint: '0000:1111:2222:3333:4444:5555:6666:7777', purpose: 'reconstruct', requesterPublicKey: generateBoxKeyPair().publicKey, now });
  const parsed = parseReleaseRequest(JSON.parse(JSON.stringify(req)));
  assert.equal(verifyReleaseRequest(parsed, now).request.request_id, req.request_id);
  for (const [field, value] of [
    ['purpose', 'unseal'],
    ['holder_fingerprint', '0000:1111:2222:3333:4444:5555:6666:7778'],
    ['expires_at', req.expires_at + 1],
    ['requester_public_key', toB64(generateBoxKeyPair().publicKey)],
  ] as const) {
    assert.throws(() => verifyReleaseRequest({ ...req, [field]: value }, now), code('bad_signature'), field);
  }
  assert.throws(() => verifyReleaseRequest(req, req.expires_at + 1), code('request_expired'));
  assert.throws(() => verifyReleaseRequest(req, now - 10 * 60_000), code('request_expired'), 'not valid yet');
  const long = createReleaseRequest({ signer: op, schemeId: randomBytes(16), holderFingerprint: req.holder_fingerprint, purpose: 'reconstruct', requesterPublicKey: generateBoxKeyPair().publicKey, ttlMs: 60 * 60_000, now });
  assert.ok(long.expires_at - long.issued_at <= 15 * 60_000, 'ttl is capped');
  assert.throws(() => parseReleaseRequest({ ...req, scheme_id: 'zz' }), code('malformed'));
  assert.throws(() => parseReleaseRequest('nope'), code('malformed'));
});

function manifestBody(primary: ReturnType<typeof generateIdentity>): ManifestBody {
  return {
    version: 1,
    type: 'lifeboat-recovery-manifest',
    scheme_id: toHex(randomBytes(16)),
    created_at: new Date().toISOString(),
    threshold: 2,
    share_count: 3,
    slip39_identifier: 1234,
    slip39_iteration_exponent: 1,
    passphrase_protected: false,
    master_fingerprint: toHex(randomBytes(32)),
    primary: encodePublicIdentity(primary),
    operators: [],
    members: [0, 1, 2].map((i) => ({ member_index: i, kind: 'offline' as const, possession_key: toB64(randomBytes(32)) })),
  };
}

test('manifest: signed by the primary; altered or inconsistent manifests are refused', () => {
  const primary = generateIdentity('primary');
  const m = signManifest(manifestBody(primary), primary);
  assert.deepEqual(parseManifest(JSON.parse(JSON.stringify(m))), m);
  assert.throws(() => parseManifest({ ...m, threshold: 1 }), code('bad_signature'));
  assert.throws(() => parseManifest({ ...m, version: 3 }), code('malformed'));
  const body = manifestBody(primary);
  // version 2 must carry a master binding, version 1 must not
  assert.throws(() => parseManifest(signManifest({ ...body, version: 2 }, primary)), code('malformed'));
  assert.throws(() => parseManifest(signManifest({ ...body, master_binding: 'ab'.repeat(32) }, primary)), code('malformed'));
  assert.throws(() => parseManifest(signManifest({ ...body, threshold: 3, share_count: 2 }, primary)), code('malformed'));
  assert.throws(() => parseManifest(signManifest({ ...body, members: [body.members[0]!, body.members[0]!, body.members[1]!] }, primary)), code('malformed'));
});

test('manifest binding: only the holder of the master can write a manifest that passes; re-signing by another key does not help', () => {
  const primary = generateIdentity('primary');
  const master = randomBytes(32);
  const { version: _v, ...rest } = manifestBody(primary);
  const bound = signManifest(bindManifest(rest, master), primary);
  const parsed = parseManifest(JSON.parse(JSON.stringify(bound)));
  assert.equal(parsed.version, 2);
  assert.match(parsed.master_binding!, /^[0-9a-f]{64}$/);
  checkManifestBinding(parsed, master);
  // another master
  assert.throws(() => checkManifestBinding(parsed, randomBytes(32)), (e) => isLifeboatError(e, 'manifest_forged') && (e as LifeboatError).safety);
  // the attack: a holder swaps a member's url and holder key, and re-signs with a key of its own
  const attacker = generateIdentity('primary');
  const forgedBody = { ...parsed, primary: encodePublicIdentity(attacker), members: parsed.members.map((x, i) => (i === 1 ? { ...x, possession_key: toB64(randomBytes(32)) } : x)) };
  const { signature: _s, ...fb } = forgedBody;
  const forged = parseManifest(JSON.parse(JSON.stringify(signManifest(fb, attacker))));
  assert.throws(() => checkManifestBinding(forged, master), code('manifest_forged'));
  // every field is covered: flip each in turn
  for (const field of ['created_at', 'operators', 'threshold', 'passphrase_protected'] as const) {
    const v: Record<string, unknown> = { created_at: '2020-01-01T00:00:00.000Z', operators: [encodePublicIdentity(attacker)], threshold: 3, passphrase_protected: true };
    const altered = signManifest({ ...fb, primary: parsed.primary, [field]: v[field] }, primary);
    assert.throws(() => checkManifestBinding(altered, master), code('manifest_forged'), field);
  }
  // version 1: no binding, accepted only where the caller says why that is safe
  const v1 = signManifest(manifestBody(primary), primary);
  assert.throws(() => checkManifestBinding(v1, master), (e) => isLifeboatError(e, 'manifest_unbound') && (e as LifeboatError).safety);
  checkManifestBinding(v1, master, { unboundOk: true });
});

test('signed HTTP requests: verify, refuse tampering, stale timestamps and replays', () => {
  const id = generateIdentity('primary');
  const body = utf8.encode('{"a":1}');
  const h = signRequest(id, 'PUT', '/v1/x', body);
  const v = verifyRequest(h, 'PUT', '/v1/x', body);
  assert.deepEqual(v.signer.signingPublicKey, id.signingPublicKey);
  assert.throws(() => verifyRequest(h, 'PUT', '/v1/y', body), code('bad_signature'));
  assert.throws(() => verifyRequest(h, 'PUT', '/v1/x', utf8.encode('{"a":2}')), code('bad_signature'));
  assert.throws(() => verifyRequest(h, 'PUT', '/v1/x', body, Date.now() + 5 * 60_000), code('request_expired'));
  assert.throws(() => verifyRequest(undefined, 'PUT', '/v1/x', body), code('unauthorized'));
  assert.throws(() => verifyRequest('Lifeboat-Sig key=x', 'PUT', '/v1/x', body), code('unauthorized'));
  const guard = new ReplayGuard();
  guard.check(v.nonce, v.ts);
  assert.throws(() => guard.check(v.nonce, v.ts), code('replayed_request'));
});

test('sealed box interop sanity: a sealed share opens only with the holder key', () => {
  const holder = generateBoxKeyPair();
  const m = utf8.encode('share');
  assert.deepEqual(openSealed(seal(m, holder.publicKey), holder), m);
  assert.throws(() => openSealed(seal(m, holder.publicKey), generateBoxKeyPair()), code('decryption_failed'));
});
