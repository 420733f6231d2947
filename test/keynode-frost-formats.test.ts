/**
 * The FROST formats as parse/encode pairs: suites, identifiers, the public key package (canonical JSON),
 * nonce commitments, signature shares and DKG messages; round trips and a negative case per rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519_FROST } from '@noble/curves/ed25519.js';
import { schnorr_FROST, secp256k1_FROST } from '@noble/curves/secp256k1.js';
import { generateIdentity, encodePublicIdentity } from '../src/identity.js';
import { isLifeboatError } from '../src/errors.js';
import { toHex, utf8 } from '../src/util/bytes.js';
import {
  commit,
  dkgParticipants,
  dkgStart,
  encodeFrostPublic,
  encodeNonceCommitments,
  encodeSignatureShare,
  type FrostCurve,
  type FrostPublic,
  frostPublicFromJson,
  frostPublicToJson,
  identifierOf,
  parseCommitmentList,
  parseDkgRound1Message,
  parseDkgRound2Message,
  parseFrostPublic,
  parseIdentifier,
  parseNonceCommitments,
  parseSignatureShare,
  participantNumber,
  suite,
  suiteOf,
} from '../src/keynode/frost/index.js';

const CURVES: FrostCurve[] = ['ed25519', 'secp256k1', 'bip340'];
const code = (c: string) => (e: unknown) => isLifeboatError(e, c);

function dealer(curve: FrostCurve, min = 2, max = 3): { pub: FrostPublic; secrets: { identifier: string; signingShare: Uint8Array }[] } {
  const ids = Array.from({ length: max }, (_, i) => identifierOf(curve, i + 1));
  const d = suite(curve).trustedDealer({ min, max }, ids);
  return { pub: d.public as FrostPublic, secrets: ids.map((id) => d.secretShares[id]!) };
}

test('suite maps the three curve names to noble objects and refuses anything else', () => {
  assert.equal(suite('ed25519'), ed25519_FROST);
  assert.equal(suite('secp256k1'), secp256k1_FROST);
  assert.equal(suite('bip340'), schnorr_FROST);
  for (const bad of ['p256', 'Ed25519', '', undefined, 1]) assert.throws(() => suite(bad as FrostCurve), code('invalid_input'));
});

test('identifiers are SerializeScalar(n): canonical, non-zero, below the order', () => {
  assert.equal(identifierOf('ed25519', 1), `01${'00'.repeat(31)}`);
  assert.equal(identifierOf('secp256k1', 3), `${'00'.repeat(31)}03`);
  assert.equal(participantNumber('bip340', identifierOf('bip340', 42)), 42);
  for (const curve of CURVES) {
    assert.throws(() => parseIdentifier(curve, '00'.repeat(32)), code('invalid_input'));
    assert.throws(() => parseIdentifier(curve, identifierOf(curve, 10).toUpperCase()), code('invalid_input'));
    assert.throws(() => parseIdentifier(curve, 'ff'.repeat(32)), code('invalid_input'));
    assert.throws(() => parseIdentifier(curve, identifierOf(curve, 2).slice(2)), code('invalid_input'));
    assert.throws(() => identifierOf(curve, 0), code('invalid_input'));
  }
});

for (const curve of CURVES) {
  test(`${curve}: the public package round-trips as canonical JSON bytes and as an object`, () => {
    const { pub } = dealer(curve, 3, 5);
    const bytes = encodeFrostPublic(curve, pub);
    const parsed = parseFrostPublic(bytes, { curve });
    assert.equal(parsed.curve, curve);
    assert.deepEqual(parsed.public, { ...pub, verifyingShares: { ...pub.verifyingShares } });
    assert.deepEqual(encodeFrostPublic(curve, parsed.public), bytes);
    const json = frostPublicToJson(curve, pub);
    assert.deepEqual(Object.keys(json), ['type', 'version', 'curve', 'min_signers', 'max_signers', 'commitments', 'verifying_shares']);
    assert.deepEqual(frostPublicFromJson(JSON.parse(JSON.stringify(json))).public, parsed.public);
    assert.equal(json.commitments[0]!.length, suiteOf(curve).pointLen * 2);
  });
}

test('the public package refuses every malformed or inconsistent variant', () => {
  const curve: FrostCurve = 'secp256k1';
  const { pub } = dealer(curve);
  const good = frostPublicToJson(curve, pub);
  const ids = Object.keys(good.verifying_shares);
  const edit = (f: (j: Record<string, unknown>) => void): Record<string, unknown> => {
    const j = JSON.parse(JSON.stringify(good)) as Record<string, unknown>;
    f(j);
    return j;
  };
  const vs = (j: Record<string, unknown>) => j.verifying_shares as Record<string, string>;
  const malformed: [string, Record<string, unknown>][] = [
    ['wrong type', edit((j) => (j.type = 'something'))],
    ['extra field', edit((j) => (j.extra = 1))],
    ['missing field', edit((j) => delete j.commitments)],
    ['unknown curve', edit((j) => (j.curve = 'p256'))],
    ['min 1', edit((j) => (j.min_signers = 1))],
    ['min > max', edit((j) => (j.min_signers = 4))],
    ['too few commitments', edit((j) => (j.commitments as string[]).pop())],
    ['too few verifying shares', edit((j) => delete vs(j)[ids[0]!])],
    ['uppercase hex', edit((j) => ((j.commitments as string[])[0] = (j.commitments as string[])[0]!.toUpperCase()))],
    ['short element', edit((j) => ((j.commitments as string[])[1] = '02'))],
    ['not a point', edit((j) => ((j.commitments as string[])[1] = `02${'ff'.repeat(32)}`))],
    ['zero identifier', edit((j) => {
      vs(j)['00'.repeat(32)] = vs(j)[ids[0]!]!;
      delete vs(j)[ids[0]!];
    })],
    ['swapped verifying shares', edit((j) => {
      const a = vs(j)[ids[0]!]!;
      vs(j)[ids[0]!] = vs(j)[ids[1]!]!;
      vs(j)[ids[1]!] = a;
    })],
  ];
  for (const [name, j] of malformed) assert.throws(() => frostPublicFromJson(j), code('malformed'), name);
  assert.throws(() => frostPublicFromJson(edit((j) => (j.version = 2))), code('unsupported_version'));
  assert.throws(() => frostPublicFromJson(good, { curve: 'bip340' }), code('invalid_input'));
  // Shape-only parsing (for authenticated rows) lets an inconsistent package through; full parsing does not.
  assert.doesNotThrow(() => frostPublicFromJson(malformed[12]![1], { check: 'structure' }));
  // Bytes: only the canonical spelling.
  const bytes = encodeFrostPublic(curve, pub);
  const text = utf8.decode(bytes);
  assert.throws(() => parseFrostPublic(utf8.encode(JSON.stringify(good, null, 1))), code('malformed'));
  assert.throws(() => parseFrostPublic(utf8.encode(text.replace('{"type"', '{ "type"'))), code('malformed'));
  const reordered = { ...good, verifying_shares: Object.fromEntries(Object.entries(good.verifying_shares).reverse()) };
  assert.throws(() => parseFrostPublic(utf8.encode(JSON.stringify(reordered))), code('malformed'));
  assert.throws(() => parseFrostPublic(new Uint8Array([0xff, 0xfe])), code('malformed'));
  assert.throws(() => parseFrostPublic(new Uint8Array(70_000)), code('malformed'));
});

for (const curve of CURVES) {
  test(`${curve}: nonce commitments and signature shares round-trip as JSON; malformed ones are refused`, () => {
    const { pub, secrets } = dealer(curve);
    const key = { keyId: 'k', curve, identifier: secrets[0]!.identifier, share: secrets[0]!.signingShare, public: pub };
    const c = commit(key).commitments;
    const wire = JSON.parse(JSON.stringify(encodeNonceCommitments(c))) as unknown;
    assert.deepEqual(parseNonceCommitments(wire, curve), c);
    const c2 = commit({ ...key, identifier: secrets[1]!.identifier, share: secrets[1]!.signingShare }).commitments;
    assert.deepEqual(parseCommitmentList([encodeNonceCommitments(c), encodeNonceCommitments(c2)], curve), [c, c2]);
    const w = encodeNonceCommitments(c);
    const n = suiteOf(curve).pointLen;
    for (const [name, bad] of [
      ['extra field', { ...w, extra: 'x' }],
      ['missing binding', { identifier: w.identifier, hiding: w.hiding }],
      ['bad identifier', { ...w, identifier: '00'.repeat(32) }],
      ['short hiding', { ...w, hiding: w.hiding.slice(2) }],
      ['off-curve binding', { ...w, binding: curve === 'ed25519' ? `02${'ff'.repeat(n - 2)}7f` : `02${'ff'.repeat(n - 1)}` }],
    ] as const) {
      assert.throws(() => parseNonceCommitments(bad, curve), code('invalid_input'), name);
    }
    assert.throws(() => parseCommitmentList([w, w], curve), code('invalid_input'));
    assert.throws(() => parseCommitmentList([w], curve), code('invalid_input'));
    assert.throws(() => parseCommitmentList('x', curve), code('invalid_input'));

    const share = { identifier: key.identifier, share: secrets[2]!.signingShare };
    assert.deepEqual(parseSignatureShare(JSON.parse(JSON.stringify(encodeSignatureShare(share))), curve), share);
    const ws = encodeSignatureShare(share);
    assert.throws(() => parseSignatureShare({ ...ws, share: 'ff'.repeat(32) }, curve), code('invalid_input'));
    assert.throws(() => parseSignatureShare({ ...ws, share: ws.share.slice(2) }, curve), code('invalid_input'));
    assert.throws(() => parseSignatureShare({ ...ws, x: 1 }, curve), code('invalid_input'));
  });
}

test('dkg messages parse from JSON and refuse other versions, shapes and encodings', () => {
  const nodes = [generateIdentity('holder'), generateIdentity('holder')];
  const participants = dkgParticipants('ed25519', nodes.map((n) => encodePublicIdentity(n)));
  const { round1Message } = dkgStart({ sessionId: 'fmt', curve: 'ed25519', threshold: 2, participants, self: nodes[0]! });
  const wire = JSON.parse(JSON.stringify(round1Message)) as Record<string, unknown>;
  assert.deepEqual(parseDkgRound1Message(wire), round1Message);
  assert.throws(() => parseDkgRound1Message({ ...wire, version: 2 }), code('unsupported_version'));
  for (const bad of [
    { ...wire, type: 'x' },
    { ...wire, extra: 1 },
    { ...wire, session_id: 'has space' },
    { ...wire, curve: 'p256' },
    { ...wire, sender: 'zz' },
    { ...wire, commitment: ['00'] },
    { ...wire, signature: 'AAAA' },
  ]) {
    assert.throws(() => parseDkgRound1Message(bad), code('malformed'));
  }
  const r2 = { type: 'lifeboat-frost-dkg-round2', version: 1, session_id: 'fmt', curve: 'ed25519', sender: identifierOf('ed25519', 1), recipient: identifierOf('ed25519', 2), sealed: 'AAAA' };
  assert.deepEqual(parseDkgRound2Message(r2), r2);
  assert.throws(() => parseDkgRound2Message({ ...r2, version: 3 }), code('unsupported_version'));
  assert.throws(() => parseDkgRound2Message({ ...r2, recipient: toHex(new Uint8Array(32)) }), code('malformed'));
  assert.throws(() => parseDkgRound2Message({ ...r2, sealed: '!!' }), code('malformed'));
  assert.throws(() => parseDkgRound2Message({ ...r2, sealed: 'A'.repeat(70_000) }), code('malformed'));
});
