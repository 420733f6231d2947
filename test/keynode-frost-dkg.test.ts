/**
 * The DKG among in-process nodes: 2-of-3 and 3-of-5 on every curve, the state sealed between steps,
 * signatures that plain verifiers accept; and every way a participant or the relay can cheat, each
 * aborting with an error that names the culprit and holds no secret.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr, secp256k1, secp256k1_hasher } from '@noble/curves/secp256k1.js';
import { generateIdentity, encodePublicIdentity, identityFingerprint, type Identity } from '../src/identity.js';
import { randomBytes } from '../src/crypto/random.js';
import { isLifeboatError } from '../src/errors.js';
import { concatBytes, fromHex, toHex } from '../src/util/bytes.js';
import {
  aggregate,
  commit,
  DkgAbortError,
  dkgFinish,
  dkgParticipants,
  type DkgParticipant,
  type DkgResult,
  type DkgRound1Message,
  type DkgRound2Message,
  dkgRound2,
  dkgStart,
  type DkgState,
  encodeFrostPublic,
  type FrostCurve,
  identifierOf,
  makeRound1,
  makeRound2,
  openDkgState,
  resolveSession,
  round1Digest,
  sealDkgState,
  signShare,
  suite,
  verifyShareAgainstPublic,
  verifySignature,
} from '../src/keynode/frost/index.js';

const CURVES: FrostCurve[] = ['ed25519', 'secp256k1', 'bip340'];
const storageKey = randomBytes(32);

interface Ctx {
  curve: FrostCurve;
  threshold: number;
  sessionId: string;
  nodes: Identity[];
  participants: DkgParticipant[];
  states: DkgState[];
  r1: DkgRound1Message[];
}

function start(curve: FrostCurve, threshold: number, n: number, sessionId = `session-${curve}-${threshold}-${n}`, nodes?: Identity[]): Ctx {
  const ids = nodes ?? Array.from({ length: n }, () => generateIdentity('holder'));
  const participants = dkgParticipants(curve, ids.map((x) => encodePublicIdentity(x)));
  const starts = ids.map((self) => dkgStart({ sessionId, curve, threshold, participants, self }));
  return { curve, threshold, sessionId, nodes: ids, participants, states: starts.map((s) => s.state), r1: starts.map((s) => s.round1Message) };
}

/** Round 2 on every node; each node's state goes through seal/open as a node's database would keep it. */
function round2(ctx: Ctx, r1For: (i: number) => DkgRound1Message[] = () => ctx.r1): DkgRound2Message[][] {
  return ctx.states.map((st, i) => {
    const reopened = openDkgState(storageKey, sealDkgState(storageKey, st), { sessionId: ctx.sessionId, identifier: st.identifier });
    const out = dkgRound2(reopened, r1For(i), ctx.nodes[i]!);
    ctx.states[i] = openDkgState(storageKey, sealDkgState(storageKey, out.state), { sessionId: ctx.sessionId });
    return out.round2Messages;
  });
}

const forNode = (all: DkgRound2Message[][], ctx: Ctx, i: number): DkgRound2Message[] => all.flat().filter((m) => m.recipient === ctx.states[i]!.identifier);

function finishAll(ctx: Ctx, all: DkgRound2Message[][]): DkgResult[] {
  return ctx.states.map((st, i) => dkgFinish(st, forNode(all, ctx, i), ctx.nodes[i]!));
}

function verifySecp256k1Rfc9591(sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): boolean {
  const R = secp256k1.Point.fromBytes(sig.subarray(0, 33));
  const c = secp256k1_hasher.hashToScalar(concatBytes(sig.subarray(0, 33), pk, msg), { DST: 'FROST-secp256k1-SHA256-v1chal' });
  return secp256k1.Point.BASE.multiply(BigInt(`0x${toHex(sig.subarray(33))}`)).equals(R.add(secp256k1.Point.fromBytes(pk).multiply(c)));
}

/** The verifier an outsider uses: RFC 8032, BIP-340, or the RFC 9591 section 6.5 equation for secp256k1. */
function plainVerify(curve: FrostCurve, sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): boolean {
  if (curve === 'ed25519') return ed25519.verify(sig, msg, pk);
  if (curve === 'bip340') return schnorr.verify(sig, msg, pk);
  return verifySecp256k1Rfc9591(sig, msg, pk);
}

function signWith(results: DkgResult[], which: number[], msg: Uint8Array): Uint8Array {
  const keys = which.map((i) => ({ keyId: 'k1', curve: results[i]!.curve, identifier: results[i]!.identifier, share: results[i]!.share, public: results[i]!.public }));
  const r1 = keys.map((k) => commit(k));
  const list = r1.map((r) => r.commitments);
  const shares = keys.map((k, j) => signShare(k, r1[j]!.nonces, list, msg));
  return aggregate(keys[0]!.curve, keys[0]!.public, list, msg, shares);
}

for (const curve of CURVES) {
  for (const [t, n] of [
    [2, 3],
    [3, 5],
  ] as const) {
    test(`${curve}: ${t}-of-${n} dkg; every node agrees on the key; a threshold signs for plain verifiers`, () => {
      const ctx = start(curve, t, n);
      const results = finishAll(ctx, round2(ctx));
      const pub0 = toHex(encodeFrostPublic(curve, results[0]!.public));
      for (const r of results) {
        assert.equal(toHex(encodeFrostPublic(curve, r.public)), pub0);
        assert.deepEqual(r.groupPublicKey, results[0]!.groupPublicKey);
        verifyShareAgainstPublic(r);
        suite(curve).validateSecret({ identifier: r.identifier, signingShare: r.share }, r.public);
      }
      assert.equal(results[0]!.groupPublicKey.length, curve === 'secp256k1' ? 33 : 32);
      const msg = new TextEncoder().encode(`pay 1 btc to ${curve}`);
      const last = Array.from({ length: t }, (_, i) => n - 1 - i);
      const sig = signWith(results, last, msg);
      assert.ok(plainVerify(curve, sig, msg, results[0]!.groupPublicKey), 'plain verifier accepts the signature');
      assert.ok(verifySignature(curve, sig, msg, results[0]!.groupPublicKey));
      assert.equal(plainVerify(curve, sig, new TextEncoder().encode('another message'), results[0]!.groupPublicKey), false);
      // The group secret is shared t-of-n: any t shares interpolate to the key behind the group key.
      const frost = suite(curve);
      const combined = frost.combineSecret(last.map((i) => ({ identifier: results[i]!.identifier, signingShare: results[i]!.share })), { min: t, max: n });
      assert.ok(frost.verify(frost.sign(msg, combined), msg, results[0]!.public.commitments[0]!));
    });
  }
}

/** Asserts a DkgAbortError with `code` naming participant `number` of `ctx` (by number and fingerprint). */
function assertAbort(fn: () => unknown, code: string, ctx: Ctx, number: number, words?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DkgAbortError, `expected DkgAbortError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.participant.number, number, err.message);
    const fp = identityFingerprint(ctx.nodes[number - 1]!);
    assert.equal(err.participant.fingerprint, fp);
    assert.ok(err.message.includes(`participant ${number}`) && err.message.includes(fp), err.message);
    if (words) assert.match(err.message, words);
    assert.doesNotMatch(JSON.stringify(err.toJSON()), /[0-9a-f]{32}/, 'no key material in the error');
    return true;
  });
}

const CURVE: FrostCurve = 'secp256k1';
const hexb = (s: string): Uint8Array => fromHex(s, 'test');

function resign(ctx: Ctx, from: number, m: DkgRound1Message, change: (c: Uint8Array[], pok: Uint8Array) => void): DkgRound1Message {
  const session = resolveSession(ctx.sessionId, ctx.curve, ctx.threshold, ctx.participants);
  const c = m.commitment.map(hexb);
  const pok = hexb(m.proof_of_knowledge);
  change(c, pok);
  return makeRound1(session, m.sender, c, pok, ctx.nodes[from - 1]!.signing.secretKey);
}

test('a participant that signs a tampered proof of knowledge is named as a cheat', () => {
  const ctx = start(CURVE, 2, 3);
  const bad = resign(ctx, 2, ctx.r1[1]!, (_c, pok) => (pok[40]! ^= 1));
  assertAbort(() => dkgRound2(ctx.states[0]!, [ctx.r1[0]!, bad, ctx.r1[2]!], ctx.nodes[0]!), 'dkg_participant_cheated', ctx, 2, /proof of knowledge/);
});

test('a proof tampered in transit fails the sender signature and is rejected by name', () => {
  const ctx = start(CURVE, 2, 3);
  const pok = hexb(ctx.r1[2]!.proof_of_knowledge);
  pok[40]! ^= 1;
  const bad = { ...ctx.r1[2]!, proof_of_knowledge: toHex(pok) };
  assertAbort(() => dkgRound2(ctx.states[0]!, [ctx.r1[0]!, ctx.r1[1]!, bad], ctx.nodes[0]!), 'dkg_message_rejected', ctx, 3, /bad signature/);
});

test('a share that does not match its sender commitments is named by its recipients', () => {
  const ctx = start('bip340', 2, 3);
  // Participant 2 signs a round-1 package whose second coefficient commitment is not its polynomial's.
  const bad = resign(ctx, 2, ctx.r1[1]!, (c) => (c[1] = secp256k1.Point.BASE.multiply(12345n).toBytes()));
  ctx.r1 = [ctx.r1[0]!, bad, ctx.r1[2]!];
  ctx.states[1] = { ...ctx.states[1]!, round1: bad };
  const all = round2(ctx);
  assertAbort(() => dkgFinish(ctx.states[0]!, forNode(all, ctx, 0), ctx.nodes[0]!), 'dkg_participant_cheated', ctx, 2, /does not match its commitments/);
});

test('round-2 packages: wrong sender, wrong recipient, undecryptable, duplicated, missing', () => {
  const ctx = start(CURVE, 2, 3);
  const all = round2(ctx);
  const to1 = forNode(all, ctx, 0);
  const from2 = to1.find((m) => m.sender === identifierOf(CURVE, 2))!;
  const from3 = to1.find((m) => m.sender === identifierOf(CURVE, 3))!;
  const fin = (msgs: DkgRound2Message[]) => () => dkgFinish(ctx.states[0]!, msgs, ctx.nodes[0]!);
  // The relay labels participant 2's package as participant 3's.
  assertAbort(fin([from2, { ...from2, sender: from3.sender }]), 'dkg_message_rejected', ctx, 3, /sent by another participant/);
  // A package sealed for participant 3 handed to participant 1.
  const for3 = all[1]!.find((m) => m.recipient === identifierOf(CURVE, 3))!;
  assertAbort(fin([{ ...for3, recipient: identifierOf(CURVE, 1) }, from3]), 'dkg_message_rejected', ctx, 2, /does not open/);
  assertAbort(fin([for3, from3]), 'dkg_message_rejected', ctx, 2, /addressed to another participant/);
  // Participant 2 seals to our key a payload it made for participant 3.
  const session = resolveSession(ctx.sessionId, CURVE, 2, ctx.participants);
  const [m1, m2, m3] = session.members as [typeof session.members[0], typeof session.members[0], typeof session.members[0]];
  const digests = ctx.r1.map((m) => round1Digest(session, m));
  const misaddressed = makeRound2(session, m2, { ...m3, identity: m1.identity }, digests, randomBytes(32), ctx.nodes[1]!.signing.secretKey);
  assertAbort(fin([{ ...misaddressed, recipient: m1.identifier }, from3]), 'dkg_message_rejected', ctx, 2, /made for another recipient/);
  // Signed by someone else than the sender it names.
  const forged = makeRound2(session, m2, m1, digests, randomBytes(32), generateIdentity('holder').signing.secretKey);
  assertAbort(fin([forged, from3]), 'dkg_message_rejected', ctx, 2, /bad signature/);
  assertAbort(fin([from2, from2, from3]), 'dkg_message_rejected', ctx, 2, /arrived twice/);
  assertAbort(fin([from3]), 'dkg_message_missing', ctx, 2);
  // None of that changed the state: the honest packages still finish.
  verifyShareAgainstPublic(dkgFinish(ctx.states[0]!, [from3, from2], ctx.nodes[0]!));
});

test('packages of another session are refused, relabelled or not', () => {
  const a = start(CURVE, 2, 3, 'session-a');
  const b = start(CURVE, 2, 3, 'session-b', a.nodes);
  // Round 1.
  const r1 = (m: DkgRound1Message) => () => dkgRound2(a.states[0]!, [a.r1[0]!, m, a.r1[2]!], a.nodes[0]!);
  assertAbort(r1(b.r1[1]!), 'dkg_message_rejected', a, 2, /another session/);
  assertAbort(r1({ ...b.r1[1]!, session_id: 'session-a' }), 'dkg_message_rejected', a, 2, /bad signature/);
  // Round 2.
  const allA = round2(a);
  const allB = round2(b);
  const fromB = forNode(allB, b, 0).find((m) => m.sender === identifierOf(CURVE, 2))!;
  const from3 = forNode(allA, a, 0).find((m) => m.sender === identifierOf(CURVE, 3))!;
  const fin = (m: DkgRound2Message) => () => dkgFinish(a.states[0]!, [m, from3], a.nodes[0]!);
  assertAbort(fin(fromB), 'dkg_message_rejected', a, 2, /belongs to another session/);
  assertAbort(fin({ ...fromB, session_id: 'session-a' }), 'dkg_message_rejected', a, 2, /made for another session/);
});

test('a node listed twice, a round-1 package twice, a missing one, a stranger', () => {
  const nodes = [generateIdentity('holder'), generateIdentity('holder')];
  const tokens = [encodePublicIdentity(nodes[0]!), encodePublicIdentity(nodes[1]!), encodePublicIdentity(nodes[0]!)];
  const ctxLike = { nodes: [nodes[0]!, nodes[1]!, nodes[0]!] } as Ctx;
  const participants = dkgParticipants(CURVE, tokens);
  assertAbort(() => dkgStart({ sessionId: 'dup', curve: CURVE, threshold: 2, participants, self: nodes[1]! }), 'dkg_duplicate_participant', ctxLike, 3, /same node as participant 1/);
  // Same signing key, another box key: still the same node.
  const twin = { ...generateIdentity('holder'), signing: nodes[0]!.signing, signingPublicKey: nodes[0]!.signingPublicKey };
  const p2 = dkgParticipants(CURVE, [tokens[0]!, tokens[1]!, encodePublicIdentity(twin)]);
  assert.throws(() => dkgStart({ sessionId: 'dup', curve: CURVE, threshold: 2, participants: p2, self: nodes[1]! }), (e: unknown) => isLifeboatError(e, 'dkg_duplicate_participant'));

  const ctx = start(CURVE, 2, 3);
  assertAbort(() => dkgRound2(ctx.states[0]!, [ctx.r1[1]!, ctx.r1[1]!, ctx.r1[2]!], ctx.nodes[0]!), 'dkg_message_rejected', ctx, 2, /arrived twice/);
  assertAbort(() => dkgRound2(ctx.states[0]!, [ctx.r1[0]!, ctx.r1[2]!], ctx.nodes[0]!), 'dkg_message_missing', ctx, 2);
  assert.throws(() => dkgRound2(ctx.states[0]!, [...ctx.r1, { ...ctx.r1[1]!, sender: identifierOf(CURVE, 9) }], ctx.nodes[0]!), (e: unknown) => isLifeboatError(e, 'dkg_message_rejected'));
  assert.throws(() => dkgStart({ sessionId: 's', curve: CURVE, threshold: 2, participants: ctx.participants, self: generateIdentity('holder') }), (e: unknown) => isLifeboatError(e, 'dkg_not_a_participant'));
  const renumbered = ctx.participants.map((p, i) => ({ ...p, identifier: identifierOf(CURVE, i + 2) }));
  assert.throws(() => dkgStart({ sessionId: 's', curve: CURVE, threshold: 2, participants: renumbered, self: ctx.nodes[0]! }), (e: unknown) => isLifeboatError(e, 'invalid_input'));
  assert.throws(() => dkgStart({ sessionId: 's', curve: CURVE, threshold: 4, participants: ctx.participants, self: ctx.nodes[0]! }), (e: unknown) => isLifeboatError(e, 'invalid_input'));
  // A round-1 package that claims to be ours but is not.
  assert.throws(() => dkgRound2(ctx.states[0]!, [ctx.r1[1]!, ctx.r1[1]!], ctx.nodes[0]!), (e: unknown) => isLifeboatError(e, 'dkg_message_rejected'));
  const mine = resign(ctx, 1, ctx.r1[0]!, (_c, pok) => (pok[40]! ^= 1));
  assert.throws(() => dkgRound2(ctx.states[0]!, [mine, ctx.r1[1]!, ctx.r1[2]!], ctx.nodes[0]!), /not the one this node sent/);
});

test('a participant who shows different round-1 packages to different peers is named', () => {
  const ctx = start(CURVE, 2, 3);
  // Participant 3 signs a second, different package and shows it to participant 2 only.
  const other = dkgStart({ sessionId: ctx.sessionId, curve: CURVE, threshold: 2, participants: ctx.participants, self: ctx.nodes[2]! }).round1Message;
  const view2 = [ctx.r1[0]!, ctx.r1[1]!, other];
  const all = round2(ctx, (i) => (i === 1 ? view2 : ctx.r1));
  assertAbort(() => dkgFinish(ctx.states[0]!, forNode(all, ctx, 0), ctx.nodes[0]!), 'dkg_participant_cheated', ctx, 3, /different round-1 packages/);
});

test('round 2 retried with the same packages repeats; with others it is refused; finish before round 2 is refused', () => {
  const ctx = start(CURVE, 2, 3);
  assert.throws(() => dkgFinish(ctx.states[0]!, [], ctx.nodes[0]!), (e: unknown) => isLifeboatError(e, 'dkg_out_of_order'));
  const first = round2(ctx);
  const again = dkgRound2(ctx.states[0]!, ctx.r1, ctx.nodes[0]!);
  assert.equal(again.round2Messages.length, 2);
  const other = dkgStart({ sessionId: ctx.sessionId, curve: CURVE, threshold: 2, participants: ctx.participants, self: ctx.nodes[2]! }).round1Message;
  assert.throws(() => dkgRound2(ctx.states[0]!, [ctx.r1[0]!, ctx.r1[1]!, other], ctx.nodes[0]!), (e: unknown) => isLifeboatError(e, 'dkg_round1_changed'));
  // Node 2 finishes with node 1's retried package (same share, sealed afresh).
  const to2 = [...again.round2Messages.filter((m) => m.recipient === identifierOf(CURVE, 2)), ...first[2]!.filter((m) => m.recipient === identifierOf(CURVE, 2))];
  verifyShareAgainstPublic(dkgFinish(ctx.states[1]!, to2, ctx.nodes[1]!));
});

test('a sealed dkg state opens only for its session and under its key', () => {
  const ctx = start(CURVE, 2, 3);
  const sealed = sealDkgState(storageKey, ctx.states[0]!);
  assert.throws(() => openDkgState(storageKey, sealed, { sessionId: 'other' }), (e: unknown) => isLifeboatError(e, 'dkg_state_mismatch'));
  assert.throws(() => openDkgState(storageKey, sealed, { sessionId: ctx.sessionId, identifier: identifierOf(CURVE, 2) }), (e: unknown) => isLifeboatError(e, 'dkg_state_mismatch'));
  assert.throws(() => openDkgState(randomBytes(32), sealed, { sessionId: ctx.sessionId }), (e: unknown) => isLifeboatError(e, 'decryption_failed'));
  const tampered = sealed.slice();
  tampered[8]! ^= 1;
  assert.throws(() => openDkgState(storageKey, tampered, { sessionId: ctx.sessionId }), (e: unknown) => isLifeboatError(e, 'decryption_failed') || isLifeboatError(e, 'malformed'));
  const opened = openDkgState(storageKey, sealed, { sessionId: ctx.sessionId });
  assert.deepEqual(opened, ctx.states[0]);
  assert.equal(new TextDecoder().decode(sealed.subarray(0, 4)), 'LBDK');
});
