/**
 * Signing with DKG keys: any t of n sign (property), bad signature shares are named, nonces are used
 * once and only with their own commitments, a share is checked against its public package, and key
 * shares and nonces sealed at rest open only for their own row.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { randomBytes } from '../src/crypto/random.js';
import { isLifeboatError } from '../src/errors.js';
import { concatBytes, toHex } from '../src/util/bytes.js';
import { inProcessKeys } from '../src/keynode/frost/bench.js';
import {
  aggregate,
  commit,
  encodeKeyHeader,
  frostGroupPublicKey,
  type FrostCurve,
  identifierOf,
  type KeyShare,
  nonceId,
  openKeyShare,
  openNonces,
  sealKeyShare,
  sealNonces,
  SignatureShareError,
  signShare,
  type SignatureShare,
  suite,
  verifyShareAgainstPublic,
  verifySignature,
} from '../src/keynode/frost/index.js';

const SLOW = process.env.SLOW === '1';
const CURVES: FrostCurve[] = ['ed25519', 'secp256k1', 'bip340'];
const keysOf = Object.fromEntries(CURVES.map((c) => [c, inProcessKeys(c, { threshold: 3, count: 5, keyId: `key-${c}` })])) as Record<FrostCurve, KeyShare[]>;
const msg = new TextEncoder().encode('transfer 5 to bob');

const code = (c: string) => (e: unknown) => isLifeboatError(e, c);

function plainVerify(curve: FrostCurve, sig: Uint8Array, m: Uint8Array, pk: Uint8Array): boolean {
  if (curve === 'ed25519') return ed25519.verify(sig, m, pk);
  if (curve === 'bip340') return schnorr.verify(sig, m, pk);
  return verifySignature(curve, sig, m, pk);
}

function round(keys: KeyShare[], m = msg) {
  const r1 = keys.map((k) => commit(k));
  const list = r1.map((r) => r.commitments);
  return { r1, list, shares: (): SignatureShare[] => keys.map((k, j) => signShare(k, r1[j]!.nonces, list, m)) };
}

for (const curve of CURVES) {
  const keys = keysOf[curve];
  const pub = keys[0]!.public;
  const gpk = frostGroupPublicKey(curve, pub);

  test(`${curve}: any t of n signers produce a signature plain verifiers accept (property)`, () => {
    fc.assert(
      fc.property(fc.shuffledSubarray([0, 1, 2, 3, 4], { minLength: 3, maxLength: 5 }), fc.uint8Array({ maxLength: 64 }), (which, m) => {
        const signers = which.map((i) => keys[i]!);
        const r = round(signers, m);
        const sig = aggregate(curve, pub, r.list, m, r.shares());
        return plainVerify(curve, sig, m, gpk);
      }),
      { numRuns: SLOW ? 60 : 4 },
    );
  });

  test(`${curve}: a bad signature share is named by aggregation`, () => {
    const signers = [keys[4]!, keys[1]!, keys[2]!];
    const r = round(signers);
    const shares = r.shares();
    const bad = shares[1]!.share.slice();
    bad[curve === 'ed25519' ? 0 : 31]! ^= 1;
    const tampered = shares.map((s, i) => (i === 1 ? { ...s, share: bad } : s));
    assert.throws(
      () => aggregate(curve, pub, r.list, msg, tampered),
      (e: unknown) => e instanceof SignatureShareError && e.code === 'invalid_signature_share' && e.participants.length === 1 && e.participants[0] === identifierOf(curve, 2) && /participant 2\b/.test(e.message),
    );
    // Two bad shares: a share for another message, and one swapped in from another node.
    const other = round(signers, new TextEncoder().encode('another message'));
    const otherShares = other.shares();
    const mixed = [shares[0]!, { ...shares[1]!, share: otherShares[1]!.share }, { ...shares[2]!, share: shares[0]!.share }];
    assert.throws(
      () => aggregate(curve, pub, r.list, msg, mixed),
      (e: unknown) => e instanceof SignatureShareError && e.participants.sort().join() === [identifierOf(curve, 2), identifierOf(curve, 3)].sort().join(),
    );
    assert.ok(plainVerify(curve, aggregate(curve, pub, r.list, msg, shares), msg, gpk), 'the honest shares still aggregate');
  });
}

const curve: FrostCurve = 'secp256k1';
const keys = keysOf[curve];

test('nonces are used once: a second signShare with them is refused, and they are wiped', () => {
  const signers = [keys[0]!, keys[1]!, keys[2]!];
  const r = round(signers);
  r.shares();
  assert.equal(toHex(r.r1[0]!.nonces.hiding), '00'.repeat(32));
  assert.throws(() => signShare(signers[0]!, r.r1[0]!.nonces, r.list, msg), code('nonce_used'));
});

test('a replayed or reordered commitment list is refused before the share is used, and burns the nonces', () => {
  const signers = [keys[0]!, keys[1]!, keys[2]!];
  const old = round(signers);
  const now = round(signers);
  // Round two of the new session with the commitment list of the old one.
  assert.throws(() => signShare(signers[0]!, now.r1[0]!.nonces, old.list, msg), code('commitment_mismatch'));
  assert.throws(() => signShare(signers[0]!, now.r1[0]!.nonces, now.list, msg), code('nonce_used'));
  // Our entry swapped for another signer's commitments.
  const next = round(signers);
  const swapped = [{ ...next.list[1]!, identifier: next.list[0]!.identifier }, { ...next.list[0]!, identifier: next.list[1]!.identifier }, next.list[2]!];
  assert.throws(() => signShare(signers[0]!, next.r1[0]!.nonces, swapped, msg), code('commitment_mismatch'));
  const third = round(signers);
  assert.throws(() => signShare(signers[0]!, third.r1[0]!.nonces, [third.list[1]!, third.list[2]!, { ...third.list[1]!, identifier: identifierOf(curve, 4) }], msg), code('commitment_mismatch'));
  const fourth = round(signers);
  assert.throws(() => signShare(signers[0]!, fourth.r1[0]!.nonces, [fourth.list[0]!, fourth.list[0]!, fourth.list[1]!], msg), code('invalid_input'));
  const fifth = round(signers);
  assert.throws(() => signShare(signers[0]!, fifth.r1[0]!.nonces, [fifth.list[0]!], msg), code('invalid_input'));
  const sixth = round(signers);
  assert.throws(() => signShare(signers[0]!, sixth.r1[0]!.nonces, [...sixth.list, { ...sixth.list[1]!, identifier: identifierOf(curve, 9) }], msg), code('invalid_input'));
  const seventh = round(signers);
  assert.throws(() => signShare(keysOf.bip340[0]!, seventh.r1[0]!.nonces, seventh.list, msg), code('invalid_input'));
});

test('aggregate refuses shares and commitments that name different signers', () => {
  const signers = [keys[0]!, keys[1]!, keys[2]!];
  const r = round(signers);
  const shares = r.shares();
  assert.throws(() => aggregate(curve, keys[0]!.public, r.list, msg, shares.slice(0, 2)), code('invalid_input'));
  assert.throws(() => aggregate(curve, keys[0]!.public, r.list, msg, [shares[0]!, shares[0]!, shares[1]!]), code('invalid_input'));
});

test('verifyShareAgainstPublic agrees with noble validateSecret and names the participant, never the share', () => {
  const frost = suite(curve);
  const other = keysOf.bip340;
  const cases: KeyShare[] = [
    { ...keys[0]!, identifier: keys[1]!.identifier },
    { ...keys[0]!, share: keys[1]!.share },
    { ...keys[0]!, public: { ...other[0]!.public } },
    { ...keys[0]!, public: { ...keys[0]!.public, verifyingShares: { ...keys[0]!.public.verifyingShares, [keys[0]!.identifier]: keys[0]!.public.verifyingShares[keys[1]!.identifier]! } } },
    { ...keys[0]!, public: { ...keys[0]!.public, commitments: other[0]!.public.commitments } },
    { ...keys[0]!, identifier: identifierOf(curve, 9) },
    { ...keys[0]!, share: new Uint8Array(32) },
  ];
  for (const k of keys) {
    verifyShareAgainstPublic(k);
    frost.validateSecret({ identifier: k.identifier, signingShare: k.share }, k.public);
  }
  cases.forEach((k, i) => {
    assert.throws(
      () => verifyShareAgainstPublic(k),
      (e: unknown) => isLifeboatError(e, 'share_mismatch') && /participant \d/.test((e as Error).message) && !(e as Error).message.includes(toHex(k.share)),
      `case ${i}`,
    );
  });
  // noble's own check (commitments only) refuses the cases whose share disagrees with the commitments.
  for (const k of [cases[0]!, cases[1]!, cases[2]!, cases[4]!]) assert.throws(() => frost.validateSecret({ identifier: k.identifier, signingShare: k.share }, k.public));
});

test('a sealed key share opens only for its key row, under its storage key, unaltered', () => {
  const storageKey = randomBytes(32);
  const k = keys[2]!;
  const sealed = sealKeyShare(storageKey, k);
  assert.equal(new TextDecoder().decode(sealed.subarray(0, 4)), 'LBKS');
  assert.deepEqual(openKeyShare(storageKey, sealed, { keyId: k.keyId, curve, identifier: k.identifier }), k);
  assert.throws(() => openKeyShare(storageKey, sealed, { keyId: 'key-other' }), code('key_share_mismatch'));
  assert.throws(() => openKeyShare(storageKey, sealed, { keyId: k.keyId, identifier: identifierOf(curve, 1) }), code('key_share_mismatch'));
  assert.throws(() => openKeyShare(storageKey, sealed, { keyId: k.keyId, curve: 'bip340' }), code('key_share_mismatch'));
  assert.throws(() => openKeyShare(randomBytes(32), sealed, { keyId: k.keyId }), code('decryption_failed'));
  // The same share sealed for another row cannot be passed off as this row's by editing its header.
  const moved = sealKeyShare(storageKey, { ...k, keyId: 'key-other' });
  const movedHeaderLen = (moved[5]! << 8) | moved[6]!;
  const header = encodeKeyHeader(curve, k.identifier, k.keyId);
  const relabelled = concatBytes(moved.subarray(0, 5), new Uint8Array([header.length >> 8, header.length & 0xff]), header, moved.subarray(7 + movedHeaderLen));
  assert.throws(() => openKeyShare(storageKey, relabelled, { keyId: k.keyId }), code('decryption_failed'));
  for (const i of [8, 40, sealed.length - 20, sealed.length - 1]) {
    const bad = sealed.slice();
    bad[i]! ^= 1;
    assert.throws(() => openKeyShare(storageKey, bad, { keyId: k.keyId }), (e: unknown) => isLifeboatError(e, 'decryption_failed') || isLifeboatError(e, 'malformed') || isLifeboatError(e, 'key_share_mismatch'), `byte ${i}`);
  }
  const badMagic = sealed.slice();
  badMagic[0] = 0x58;
  assert.throws(() => openKeyShare(storageKey, badMagic, { keyId: k.keyId }), code('bad_magic'));
  const v2 = sealed.slice();
  v2[4] = 2;
  assert.throws(() => openKeyShare(storageKey, v2, { keyId: k.keyId }), code('unsupported_version'));
  assert.throws(() => openKeyShare(storageKey, sealed.subarray(0, 60), { keyId: k.keyId }), code('truncated'));
  assert.throws(() => sealKeyShare(storageKey, { ...k, keyId: 'bad id!' }), code('invalid_input'));
  assert.throws(() => sealKeyShare(storageKey, { ...k, identifier: identifierOf(curve, 9) }), code('invalid_input'));
  assert.throws(() => sealKeyShare(storageKey, { ...k, share: new Uint8Array(32) }), code('invalid_input'));
});

test('sealed nonces open for their own commitments only, and sign after reopening', () => {
  const storageKey = randomBytes(32);
  const signers = [keys[0]!, keys[3]!, keys[4]!];
  const r = round(signers);
  const sealed = sealNonces(storageKey, r.r1[0]!.nonces);
  assert.equal(new TextDecoder().decode(sealed.subarray(0, 4)), 'LBNC');
  const id = nonceId(r.list[0]!);
  assert.match(id, /^[0-9a-f]{32}$/);
  assert.throws(() => openNonces(storageKey, sealed, { keyId: signers[0]!.keyId, nonceId: nonceId(r.list[1]!) }), code('commitment_mismatch'));
  assert.throws(() => openNonces(storageKey, sealed, { keyId: 'key-other', nonceId: id }), code('key_share_mismatch'));
  assert.throws(() => openNonces(randomBytes(32), sealed, { keyId: signers[0]!.keyId, nonceId: id }), code('decryption_failed'));
  const reopened = openNonces(storageKey, sealed, { keyId: signers[0]!.keyId, identifier: signers[0]!.identifier, nonceId: id });
  assert.deepEqual(reopened, r.r1[0]!.nonces);
  const shares = [signShare(signers[0]!, reopened, r.list, msg), ...signers.slice(1).map((k, j) => signShare(k, r.r1[j + 1]!.nonces, r.list, msg))];
  assert.ok(verifySignature(curve, aggregate(curve, signers[0]!.public, r.list, msg, shares), msg, frostGroupPublicKey(curve, signers[0]!.public)));
  assert.throws(() => sealNonces(storageKey, reopened), code('invalid_input'), 'used (wiped) nonces cannot be sealed again');
});
