/**
 * The DKG's session binding and its two messages, as they travel through the coordinator:
 * round 1 is public and signed by the sender's identity key; round 2 is signed, then sealed to the
 * recipient's box key, so the coordinator can neither read nor redirect it. docs/format.md (key node),
 * "DKG messages".
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { FormatError, InvalidInputError } from '../../errors.js';
import { identityFingerprint, parsePublicIdentity, type PublicIdentity } from '../../identity.js';
import { openSealed, seal } from '../../crypto/sealedbox.js';
import { signWithContext, verifyWithContext } from '../../crypto/sign.js';
import { concatBytes, ctEqual, fromB64, lengthPrefixed, toB64, u32be, utf8, wipe } from '../../util/bytes.js';
import { DkgAbortError, describeParticipant, type ParticipantRef } from './errors.js';
import { type FrostCurve, hex, identifierOf, isFrostCurve, MAX_SIGNERS, parseHex, parseIdentifier, SCALAR_LEN, suiteOf } from './suite.js';

/** One DKG participant: its FROST identifier and its node identity token (`lb1.…`). */
export interface DkgParticipant {
  identifier: string;
  identityToken: string;
}

/** The key pairs of the node running a DKG step (an Identity from src/identity.ts fits). */
export interface DkgSelf {
  signing: { secretKey: Uint8Array; publicKey: Uint8Array };
  box: { secretKey: Uint8Array; publicKey: Uint8Array };
}

export interface DkgRound1Message {
  type: 'lifeboat-frost-dkg-round1';
  version: 1;
  session_id: string;
  curve: FrostCurve;
  sender: string;
  /** VSS commitment elements, hex, `threshold` of them. */
  commitment: string[];
  proof_of_knowledge: string;
  /** Ed25519, context `frost-dkg-round1`, base64. */
  signature: string;
}

export interface DkgRound2Message {
  type: 'lifeboat-frost-dkg-round2';
  version: 1;
  session_id: string;
  curve: FrostCurve;
  sender: string;
  recipient: string;
  /** crypto_box_seal of the signed round-2 payload to the recipient's box key, base64. */
  sealed: string;
}

/** A participant with its identity parsed. */
export interface SessionMember extends ParticipantRef {
  number: number;
  identity: PublicIdentity;
  fingerprint: string;
}

/** Everything a session binds: its id, curve, threshold and ordered participants, and their hash. */
export interface DkgSession {
  sessionId: string;
  curve: FrostCurve;
  threshold: number;
  members: SessionMember[];
  hash: Uint8Array;
}

const SESSION_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const ROUND1_LABEL = 'lifeboat-frost-dkg-round1-v1';
const ROUND2_LABEL = 'lifeboat-frost-dkg-round2-v1';

/**
 * Validates a session and computes its hash. Identifiers must be SerializeScalar(1..n) in list order.
 * Throws InvalidInputError (session id, curve, threshold, identifiers, tokens) and DkgAbortError
 * `dkg_duplicate_participant` naming a node listed twice (same signing or box key).
 */
export function resolveSession(sessionId: string, curve: FrostCurve, threshold: number, participants: DkgParticipant[]): DkgSession {
  if (typeof sessionId !== 'string' || !SESSION_ID_RE.test(sessionId)) throw new InvalidInputError('session id must be 1..128 characters of A-Z a-z 0-9 . _ : -');
  suiteOf(curve);
  if (!Array.isArray(participants) || participants.length < 2 || participants.length > MAX_SIGNERS) throw new InvalidInputError(`a dkg needs 2..${MAX_SIGNERS} participants`);
  const n = participants.length;
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > n) throw new InvalidInputError(`threshold must be 2..${n}`);
  const members: SessionMember[] = participants.map((p, i) => {
    if (p?.identifier !== identifierOf(curve, i + 1)) throw new InvalidInputError(`participant ${i + 1} must have identifier ${identifierOf(curve, i + 1)}`, { hint: 'use dkgParticipants() to number the nodes' });
    const identity = parsePublicIdentity(p.identityToken, `identity of participant ${i + 1}`);
    return { identifier: p.identifier, number: i + 1, identity, fingerprint: identityFingerprint(identity) };
  });
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      const a = members[i]!.identity;
      const b = members[j]!.identity;
      if (ctEqual(a.signingPublicKey, b.signingPublicKey) || ctEqual(a.boxPublicKey, b.boxPublicKey)) {
        throw new DkgAbortError('dkg_duplicate_participant', members[i]!, `dkg refused: ${describeParticipant(members[i]!)} is the same node as participant ${j + 1}`, 'list every node once');
      }
    }
  }
  const parts: Uint8Array[] = [utf8.encode('lifeboat-frost-dkg-session-v1'), utf8.encode(sessionId), utf8.encode(curve), u32be(threshold), u32be(n)];
  for (const m of members) parts.push(parseHex(m.identifier, 'identifier', SCALAR_LEN), m.identity.signingPublicKey, m.identity.boxPublicKey);
  return { sessionId, curve, threshold, members, hash: sha256(lengthPrefixed(...parts)) };
}

/** The participant list for identity tokens in this order: identifiers SerializeScalar(1), (2), … */
export function dkgParticipants(curve: FrostCurve, identityTokens: string[]): DkgParticipant[] {
  return identityTokens.map((identityToken, i) => ({ identifier: identifierOf(curve, i + 1), identityToken }));
}

/** The member a node's key pairs belong to (both keys must match), or undefined. */
export function findSelf(session: DkgSession, self: DkgSelf): SessionMember | undefined {
  return session.members.find((m) => ctEqual(m.identity.signingPublicKey, self.signing.publicKey) && ctEqual(m.identity.boxPublicKey, self.box.publicKey));
}

/** The bytes a round-1 signature covers (and whose SHA-256 is the package's digest). */
export function round1Body(session: DkgSession, sender: string, commitment: Uint8Array[], proof: Uint8Array): Uint8Array {
  return lengthPrefixed(utf8.encode(ROUND1_LABEL), session.hash, parseHex(sender, 'sender', SCALAR_LEN), ...commitment, proof);
}

/** Builds and signs this node's round-1 message. */
export function makeRound1(session: DkgSession, sender: string, commitment: Uint8Array[], proof: Uint8Array, signingSecretKey: Uint8Array): DkgRound1Message {
  const signature = signWithContext('frost-dkg-round1', round1Body(session, sender, commitment, proof), signingSecretKey);
  return {
    type: 'lifeboat-frost-dkg-round1',
    version: 1,
    session_id: session.sessionId,
    curve: session.curve,
    sender,
    commitment: commitment.map((c) => hex(c)),
    proof_of_knowledge: hex(proof),
    signature: toB64(signature),
  };
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function checkEnvelope(json: unknown, type: string, fields: string): Record<string, unknown> {
  if (!isRecord(json) || json.type !== type) throw new FormatError('malformed', `not a ${type} message`);
  if (json.version !== 1) throw new FormatError('unsupported_version', `${type} version ${String(json.version)} is not supported (this build reads 1)`);
  if (Object.keys(json).sort().join(',') !== fields) throw new FormatError('malformed', `${type}: unexpected or missing fields`);
  if (typeof json.session_id !== 'string' || !SESSION_ID_RE.test(json.session_id)) throw new FormatError('malformed', `${type}: bad session_id`);
  if (!isFrostCurve(json.curve)) throw new FormatError('malformed', `${type}: unknown curve`);
  return json;
}

function wrapInvalid<T>(type: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InvalidInputError) throw new FormatError('malformed', `${type}: ${err.message}`);
    throw err;
  }
}

/**
 * Parses a round-1 message from JSON (shape, hex and base64 only; signatures and proofs are checked
 * by dkgRound2). Throws FormatError `malformed` or `unsupported_version`.
 */
export function parseDkgRound1Message(json: unknown): DkgRound1Message {
  const type = 'lifeboat-frost-dkg-round1';
  const m = checkEnvelope(json, type, 'commitment,curve,proof_of_knowledge,sender,session_id,signature,type,version');
  const curve = m.curve as FrostCurve;
  return wrapInvalid(type, () => {
    parseIdentifier(curve, m.sender, 'sender');
    if (!Array.isArray(m.commitment) || m.commitment.length < 2 || m.commitment.length > MAX_SIGNERS) throw new InvalidInputError('bad commitment count');
    const len = suiteOf(curve).pointLen;
    m.commitment.forEach((c, j) => parseHex(c, `commitment ${j}`, len));
    parseHex(m.proof_of_knowledge, 'proof of knowledge');
    fromB64(m.signature as string, 'signature', 64);
    return m as unknown as DkgRound1Message;
  });
}

/** Parses a round-2 message from JSON (shape only). Throws FormatError `malformed` or `unsupported_version`. */
export function parseDkgRound2Message(json: unknown): DkgRound2Message {
  const type = 'lifeboat-frost-dkg-round2';
  const m = checkEnvelope(json, type, 'curve,recipient,sealed,sender,session_id,type,version');
  const curve = m.curve as FrostCurve;
  return wrapInvalid(type, () => {
    parseIdentifier(curve, m.sender, 'sender');
    parseIdentifier(curve, m.recipient, 'recipient');
    if (typeof m.sealed !== 'string' || m.sealed.length > 64 * 1024) throw new InvalidInputError('bad sealed payload');
    fromB64(m.sealed, 'sealed payload');
    return m as unknown as DkgRound2Message;
  });
}

/** The SHA-256 digest of a round-1 package body, as every round-2 payload lists them. */
export function round1Digest(session: DkgSession, m: DkgRound1Message): Uint8Array {
  const len = suiteOf(session.curve).pointLen;
  return sha256(round1Body(session, m.sender, m.commitment.map((c) => parseHex(c, 'commitment', len)), parseHex(m.proof_of_knowledge, 'proof')));
}

function round2Body(session: DkgSession, sender: string, recipient: string, digests: Uint8Array[], share: Uint8Array): Uint8Array {
  return lengthPrefixed(utf8.encode(ROUND2_LABEL), session.hash, parseHex(sender, 'sender', SCALAR_LEN), parseHex(recipient, 'recipient', SCALAR_LEN), concatBytes(...digests), share);
}

/** Signs a round-2 share for `recipient` and seals it to the recipient's box key. Wipes its copies. */
export function makeRound2(session: DkgSession, sender: SessionMember, recipient: SessionMember, digests: Uint8Array[], share: Uint8Array, signingSecretKey: Uint8Array): DkgRound2Message {
  const body = round2Body(session, sender.identifier, recipient.identifier, digests, share);
  const inner = concatBytes(body, signWithContext('frost-dkg-round2', body, signingSecretKey));
  try {
    return {
      type: 'lifeboat-frost-dkg-round2',
      version: 1,
      session_id: session.sessionId,
      curve: session.curve,
      sender: sender.identifier,
      recipient: recipient.identifier,
      sealed: toB64(seal(inner, recipient.identity.boxPublicKey)),
    };
  } finally {
    wipe(body, inner);
  }
}

/** Splits lengthPrefixed(a, b, …) into exactly `count` parts, or returns undefined. */
function splitLengthPrefixed(b: Uint8Array, count: number): Uint8Array[] | undefined {
  const out: Uint8Array[] = [];
  let o = 0;
  while (o < b.length && out.length < count) {
    if (o + 4 > b.length) return undefined;
    const len = ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
    if (o + 4 + len > b.length) return undefined;
    out.push(b.subarray(o + 4, o + 4 + len));
    o += 4 + len;
  }
  return out.length === count && o === b.length ? out : undefined;
}

/**
 * Opens and authenticates a round-2 message addressed to `me`: it must open with our box key, carry
 * this session's hash, name the outer sender and us, and bear the sender's signature. Returns the
 * sender's view of the round-1 digests and the share (secret: the caller wipes it). Throws
 * DkgAbortError `dkg_message_rejected` naming the claimed sender.
 */
export function openRound2(session: DkgSession, me: SessionMember, from: SessionMember, m: DkgRound2Message, box: DkgSelf['box']): { digests: Uint8Array[]; share: Uint8Array } {
  const reject = (why: string): DkgAbortError => new DkgAbortError('dkg_message_rejected', from, `dkg aborted: round-2 package from ${describeParticipant(from)} ${why}`);
  if (m.session_id !== session.sessionId || m.curve !== session.curve) throw reject('belongs to another session');
  if (m.recipient !== me.identifier) throw reject('is addressed to another participant');
  let inner: Uint8Array;
  try {
    inner = openSealed(fromB64(m.sealed, 'sealed payload'), box);
  } catch {
    throw reject('does not open with our box key');
  }
  try {
    if (inner.length < 64) throw reject('is malformed');
    const body = inner.subarray(0, inner.length - 64);
    const parts = splitLengthPrefixed(body, 6);
    const n = session.members.length;
    if (!parts || !ctEqual(parts[0]!, utf8.encode(ROUND2_LABEL)) || parts[4]!.length !== 32 * n || parts[5]!.length !== SCALAR_LEN) throw reject('is malformed');
    if (!ctEqual(parts[1]!, session.hash)) throw reject('was made for another session');
    if (hex(parts[2]!) !== from.identifier) throw reject(`was sent by another participant (${hex(parts[2]!).slice(0, 16)}…)`);
    if (hex(parts[3]!) !== me.identifier) throw reject('was made for another recipient');
    if (!verifyWithContext('frost-dkg-round2', body, inner.subarray(inner.length - 64), from.identity.signingPublicKey)) throw reject('has a bad signature');
    const digests: Uint8Array[] = [];
    for (let i = 0; i < n; i++) digests.push(parts[4]!.slice(32 * i, 32 * i + 32));
    return { digests, share: parts[5]!.slice() };
  } finally {
    wipe(inner);
  }
}
