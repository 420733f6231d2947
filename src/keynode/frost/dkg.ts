/**
 * Distributed key generation among key nodes, relayed by a coordinator that only carries messages
 * (the FROST DKG of Komlo-Goldberg as noble implements it, after frost-rs). Pure: the state goes in and
 * out, so a node can keep it sealed (dkg-state.ts) between HTTP calls.
 *
 *   dkgStart  -> our round-1 package (VSS commitments + proof of knowledge), signed by our identity
 *   dkgRound2 -> every participant's round-1 package checked; one signed share per peer, sealed to it
 *   dkgFinish -> every share for us checked against its sender's commitments; our key share
 *
 * Every round-2 payload lists the digests of all round-1 packages as its sender saw them, so a
 * participant who shows different packages to different peers is caught and named. A failed check
 * aborts with DkgAbortError naming the participant. docs/format.md (key node), "DKG".
 */
import type { DKG_Round1, DKG_Secret } from '@noble/curves/abstract/frost.js';
import { InvalidInputError, LifeboatError } from '../../errors.js';
import { verifyWithContext } from '../../crypto/sign.js';
import { ctEqual, fromB64, wipe } from '../../util/bytes.js';
import {
  type DkgParticipant,
  type DkgRound1Message,
  type DkgRound2Message,
  type DkgSelf,
  type DkgSession,
  findSelf,
  makeRound1,
  makeRound2,
  openRound2,
  resolveSession,
  round1Body,
  round1Digest,
  type SessionMember,
} from './dkg-messages.js';
import { DkgAbortError, describeParticipant } from './errors.js';
import { frostGroupPublicKey, type FrostPublic, verifyShareAgainstPublic } from './public.js';
import { baseMultiplyEncoded, decodePoint, evaluateCommitment, type FrostCurve, parseHex, parseIdentifier, suiteOf } from './suite.js';

/** A node's DKG state between calls. `coefficients` is secret: seal it (sealDkgState), wipe it (wipeDkgState). */
export interface DkgState {
  sessionId: string;
  curve: FrostCurve;
  threshold: number;
  participants: DkgParticipant[];
  /** This node's identifier. */
  identifier: string;
  /** The last message this node produced. */
  step: 'round1' | 'round2';
  /** The secret polynomial's coefficients, `threshold` serialized scalars. */
  coefficients: Uint8Array[];
  /** The round-1 message this node sent. */
  round1: DkgRound1Message;
  /** After round 2: every participant's accepted round-1 message, in participant order. */
  received: DkgRound1Message[];
}

/** What a finished DKG gives a node: with a key id, a KeyShare. */
export interface DkgResult {
  curve: FrostCurve;
  identifier: string;
  /** The 32-byte signing share (secret). */
  share: Uint8Array;
  public: FrostPublic;
  groupPublicKey: Uint8Array;
}

function me(session: DkgSession, self: DkgSelf, identifier?: string): SessionMember {
  const m = findSelf(session, self);
  if (!m || (identifier !== undefined && m.identifier !== identifier)) {
    throw new InvalidInputError('this node is not a participant of the dkg', { code: 'dkg_not_a_participant', hint: 'check the identity tokens the coordinator sent' });
  }
  return m;
}

/**
 * Starts a DKG: draws this node's polynomial and signs its round-1 package. Throws InvalidInputError
 * (bad session, or `dkg_not_a_participant`) and DkgAbortError `dkg_duplicate_participant`.
 */
export function dkgStart(input: { sessionId: string; curve: FrostCurve; threshold: number; participants: DkgParticipant[]; self: DkgSelf }): { state: DkgState; round1Message: DkgRound1Message } {
  const session = resolveSession(input.sessionId, input.curve, input.threshold, input.participants);
  const self = me(session, input.self);
  const frost = suiteOf(session.curve).frost;
  const r1 = frost.DKG.round1(self.identifier, { min: session.threshold, max: session.members.length });
  const coefficients = (r1.secret.coefficients ?? []).map((c) => frost.utils.Fn.toBytes(c));
  frost.DKG.clean(r1.secret);
  const round1Message = makeRound1(session, self.identifier, r1.public.commitment, r1.public.proofOfKnowledge, input.self.signing.secretKey);
  const state: DkgState = {
    sessionId: session.sessionId,
    curve: session.curve,
    threshold: session.threshold,
    participants: input.participants.map((p) => ({ identifier: p.identifier, identityToken: p.identityToken })),
    identifier: self.identifier,
    step: 'round1',
    coefficients,
    round1: round1Message,
    received: [],
  };
  return { state, round1Message };
}

function toNoble(session: DkgSession, m: DkgRound1Message): DKG_Round1 {
  const len = suiteOf(session.curve).pointLen;
  return { identifier: m.sender, commitment: m.commitment.map((c) => parseHex(c, 'commitment', len)), proofOfKnowledge: parseHex(m.proof_of_knowledge, 'proof of knowledge') } as DKG_Round1;
}

/** Checks every round-1 message against the session and returns all n, in participant order. */
function acceptRound1(session: DkgSession, state: DkgState, messages: DkgRound1Message[]): DkgRound1Message[] {
  if (!Array.isArray(messages)) throw new InvalidInputError('round-1 messages must be a list');
  const len = suiteOf(session.curve).pointLen;
  const byId = new Map<string, DkgRound1Message>([[state.identifier, state.round1]]);
  const seen = new Set<string>();
  for (const m of messages) {
    const from = session.members.find((x) => x.identifier === m?.sender);
    const ref = from ?? { identifier: String(m?.sender), number: undefined, fingerprint: undefined };
    const reject = (why: string): DkgAbortError => new DkgAbortError('dkg_message_rejected', ref, `dkg aborted: round-1 package from ${describeParticipant(ref)} ${why}`);
    if (!from) throw reject('names a sender outside the participant list');
    if (seen.has(from.identifier)) throw reject('arrived twice');
    seen.add(from.identifier);
    if (m.session_id !== session.sessionId || m.curve !== session.curve) throw reject('belongs to another session');
    if (from.identifier === state.identifier) {
      let same: boolean;
      try {
        same = m.signature === state.round1.signature && ctEqual(round1Digest(session, m), round1Digest(session, state.round1));
      } catch {
        same = false;
      }
      if (!same) throw reject('is not the one this node sent');
      continue;
    }
    let commitment: Uint8Array[];
    let proof: Uint8Array;
    let sig: Uint8Array;
    try {
      commitment = m.commitment.map((c) => parseHex(c, 'commitment', len));
      proof = parseHex(m.proof_of_knowledge, 'proof of knowledge');
      sig = fromB64(m.signature, 'signature', 64);
    } catch {
      throw reject('is malformed');
    }
    if (!verifyWithContext('frost-dkg-round1', round1Body(session, from.identifier, commitment, proof), sig, from.identity.signingPublicKey)) throw reject('has a bad signature');
    const cheat = (why: string): DkgAbortError => new DkgAbortError('dkg_participant_cheated', from, `dkg aborted: ${describeParticipant(from)} ${why}`);
    if (commitment.length !== session.threshold) throw cheat(`committed to ${commitment.length} coefficients, not ${session.threshold}`);
    try {
      commitment.forEach((c, j) => decodePoint(session.curve, c, `commitment ${j}`));
    } catch {
      throw cheat('sent a commitment that is not a valid element');
    }
    byId.set(from.identifier, m);
  }
  const missing = session.members.find((x) => !byId.has(x.identifier));
  if (missing) throw new DkgAbortError('dkg_message_missing', missing, `dkg aborted: no round-1 package from ${describeParticipant(missing)}`);
  return session.members.map((x) => byId.get(x.identifier)!);
}

/** noble's DKG_Secret from our state, fresh (step 1). */
function rebuildSecret(session: DkgSession, state: DkgState): DKG_Secret {
  const frost = suiteOf(session.curve).frost;
  const Fn = frost.utils.Fn;
  return {
    identifier: Fn.fromBytes(parseHex(state.identifier, 'identifier', 32)),
    coefficients: state.coefficients.map((c) => Fn.fromBytes(c)),
    commitment: toNoble(session, state.round1).commitment,
    signers: { min: session.threshold, max: session.members.length },
    step: 1,
  } as DKG_Secret;
}

/**
 * Finds the round-1 package noble refuses (a bad proof of knowledge): each package is run through
 * noble's round 2 alone among freshly drawn honest packages. Only on the failure path.
 */
function blameRound1(session: DkgSession, others: DKG_Round1[]): SessionMember | undefined {
  const frost = suiteOf(session.curve).frost;
  const signers = { min: session.threshold, max: session.members.length };
  for (const pkg of others) {
    const ids = session.members.map((m) => m.identifier).filter((id) => id !== pkg.identifier);
    const probe = frost.DKG.round1(ids[0]!, signers);
    const fillers = ids.slice(1).map((id) => {
      const r = frost.DKG.round1(id, signers);
      frost.DKG.clean(r.secret);
      return r.public;
    });
    let ok = true;
    try {
      frost.DKG.round2(probe.secret, [pkg, ...fillers]);
    } catch {
      ok = false;
    }
    frost.DKG.clean(probe.secret);
    if (!ok) return session.members.find((m) => m.identifier === pkg.identifier);
  }
  return undefined;
}

/** Runs noble's round 2 on our state; returns its shares (secret) for the other participants. */
function nobleRound2(session: DkgSession, secret: DKG_Secret, others: DKG_Round1[]): Record<string, { signingShare: Uint8Array }> {
  try {
    return suiteOf(session.curve).frost.DKG.round2(secret, others);
  } catch {
    const culprit = blameRound1(session, others);
    if (culprit) throw new DkgAbortError('dkg_participant_cheated', culprit, `dkg aborted: ${describeParticipant(culprit)} sent a round-1 package whose proof of knowledge does not verify`);
    throw new LifeboatError('dkg_failed', 'dkg aborted: the round-1 packages were refused', { status: 400 });
  }
}

/**
 * Round 2: checks every participant's round-1 message (sender in the list, once, this session, valid
 * signature, `threshold` valid commitments, valid proof of knowledge), then makes one signed share per
 * other participant, sealed to its box key. Called again on a round-2 state with the same messages, it
 * makes the same shares again (for a retried request). The returned state holds its own copy of the
 * coefficients: wipe the old one (wipeDkgState) once the new one is stored. Throws InvalidInputError, DkgAbortError
 * (`dkg_message_rejected`, `dkg_message_missing`, `dkg_participant_cheated`), LifeboatError
 * `dkg_round1_changed` (a retry with other messages) or `dkg_failed`.
 */
export function dkgRound2(state: DkgState, round1Messages: DkgRound1Message[], self: DkgSelf): { state: DkgState; round2Messages: DkgRound2Message[] } {
  const session = resolveSession(state.sessionId, state.curve, state.threshold, state.participants);
  const mine = me(session, self, state.identifier);
  const accepted = acceptRound1(session, state, round1Messages);
  const digests = accepted.map((m) => round1Digest(session, m));
  if (state.step === 'round2') {
    const before = state.received.map((m) => round1Digest(session, m));
    if (before.length !== digests.length || before.some((d, i) => !ctEqual(d, digests[i]!))) {
      throw new LifeboatError('dkg_round1_changed', 'dkg round 2 was already run with other round-1 packages', { status: 409 });
    }
  }
  const others = accepted.filter((m) => m.sender !== mine.identifier).map((m) => toNoble(session, m));
  const secret = rebuildSecret(session, state);
  try {
    const shares = nobleRound2(session, secret, others);
    const round2Messages = session.members
      .filter((m) => m.identifier !== mine.identifier)
      .map((to) => {
        const share = shares[to.identifier]!.signingShare;
        try {
          return makeRound2(session, mine, to, digests, share, self.signing.secretKey);
        } finally {
          wipe(share);
        }
      });
    return { state: { ...state, step: 'round2', coefficients: state.coefficients.map((c) => c.slice()), received: accepted }, round2Messages };
  } finally {
    suiteOf(session.curve).frost.DKG.clean(secret);
  }
}

/**
 * Finishes the DKG: opens and authenticates the n-1 round-2 messages for this node, checks that each
 * sender saw the same round-1 packages as we did and that its share matches its commitments, and
 * derives our signing share and the public package (checked against each other before returning).
 * The state is left as it was; wipe it and delete its sealed copy once the key share is stored.
 * Throws InvalidInputError, DkgAbortError (`dkg_message_rejected`, `dkg_message_missing`,
 * `dkg_participant_cheated`), LifeboatError `dkg_out_of_order` (before round 2) or `dkg_failed`.
 */
export function dkgFinish(state: DkgState, round2Messages: DkgRound2Message[], self: DkgSelf): DkgResult {
  if (state.step !== 'round2') throw new LifeboatError('dkg_out_of_order', 'dkg round 2 has not been run on this node yet', { status: 409 });
  const session = resolveSession(state.sessionId, state.curve, state.threshold, state.participants);
  const mine = me(session, self, state.identifier);
  if (!Array.isArray(round2Messages)) throw new InvalidInputError('round-2 messages must be a list');
  const digests = state.received.map((m) => round1Digest(session, m));
  const myId = parseIdentifier(session.curve, mine.identifier);
  const received = new Map<string, Uint8Array>();
  try {
    for (const m of round2Messages) {
      const from = session.members.find((x) => x.identifier === m?.sender && x.identifier !== mine.identifier);
      const ref = from ?? { identifier: String(m?.sender), number: undefined, fingerprint: undefined };
      if (!from) throw new DkgAbortError('dkg_message_rejected', ref, `dkg aborted: round-2 package from ${describeParticipant(ref)} names a sender that is not a peer`);
      if (received.has(from.identifier)) throw new DkgAbortError('dkg_message_rejected', from, `dkg aborted: round-2 package from ${describeParticipant(from)} arrived twice`);
      const opened = openRound2(session, mine, from, m, self.box);
      received.set(from.identifier, opened.share);
      opened.digests.forEach((d, i) => {
        if (ctEqual(d, digests[i]!)) return;
        const k = session.members[i]!;
        const why = k === from ? 'showed us another round-1 package than it signed for the others' : `sent different round-1 packages: ${describeParticipant(from)} saw another one than we did`;
        throw new DkgAbortError('dkg_participant_cheated', k, `dkg aborted: ${describeParticipant(k)} ${why}`);
      });
      const senderCommitment = toNoble(session, state.received[from.number - 1]!).commitment;
      let ok: boolean;
      try {
        ok = ctEqual(baseMultiplyEncoded(session.curve, opened.share, 'share'), evaluateCommitment(session.curve, senderCommitment, myId).toBytes());
      } catch {
        ok = false;
      }
      if (!ok) throw new DkgAbortError('dkg_participant_cheated', from, `dkg aborted: ${describeParticipant(from)} sent a share that does not match its commitments`);
    }
    const missing = session.members.find((x) => x.identifier !== mine.identifier && !received.has(x.identifier));
    if (missing) throw new DkgAbortError('dkg_message_missing', missing, `dkg aborted: no round-2 package from ${describeParticipant(missing)}`);
    return finish(session, state, mine, received);
  } finally {
    for (const s of received.values()) wipe(s);
  }
}

function finish(session: DkgSession, state: DkgState, mine: SessionMember, received: Map<string, Uint8Array>): DkgResult {
  const frost = suiteOf(session.curve).frost;
  const others = state.received.filter((m) => m.sender !== mine.identifier).map((m) => toNoble(session, m));
  const secret = rebuildSecret(session, state);
  try {
    const again = nobleRound2(session, secret, others);
    for (const v of Object.values(again)) wipe(v.signingShare);
    let key: ReturnType<typeof frost.DKG.round3>;
    try {
      key = frost.DKG.round3(secret, others, [...received].map(([identifier, signingShare]) => ({ identifier, signingShare })));
    } catch {
      throw new LifeboatError('dkg_failed', 'dkg aborted: the round-2 shares do not combine', { status: 400 });
    }
    const pub: FrostPublic = {
      signers: { min: key.public.signers.min, max: key.public.signers.max },
      commitments: key.public.commitments.map((c) => c.slice()),
      verifyingShares: Object.fromEntries(Object.entries(key.public.verifyingShares).map(([k, v]) => [k, v.slice()])),
    };
    const result: DkgResult = { curve: session.curve, identifier: mine.identifier, share: key.secret.signingShare, public: pub, groupPublicKey: frostGroupPublicKey(session.curve, pub) };
    verifyShareAgainstPublic(result);
    return result;
  } finally {
    frost.DKG.clean(secret);
  }
}

/** Overwrites the secret coefficients of a DKG state (call when the state is dropped). */
export function wipeDkgState(state: DkgState): void {
  for (const c of state.coefficients) wipe(c);
}
