/**
 * FROST signing (RFC 9591 section 5): round one `commit`, round two `signShare`, and the coordinator's
 * `aggregate`, which names every node whose share does not verify (section 5.4, identifiable abort).
 * Wire forms of nonce commitments and signature shares: docs/format.md (key node), "Signing messages".
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { InvalidInputError, LifeboatError } from '../../errors.js';
import { ctEqual, lengthPrefixed, utf8, wipe } from '../../util/bytes.js';
import { SignatureShareError } from './errors.js';
import type { KeyShare } from './keyshare.js';
import type { FrostPublic } from './public.js';
import { decodePoint, decodeScalar, describeIdentifier, type FrostCurve, hex, MAX_SIGNERS, parseHex, parseIdentifier, SCALAR_LEN, suiteOf } from './suite.js';

/** A signer's public round-one output (noble's NonceCommitments). */
export interface NonceCommitments {
  identifier: string;
  hiding: Uint8Array;
  binding: Uint8Array;
}

/** A signer's secret round-one state: used once, by signShare, which wipes it. */
export interface SigningNonces {
  keyId: string;
  curve: FrostCurve;
  identifier: string;
  /** Secret hiding and binding nonce scalars (32 bytes each). */
  hiding: Uint8Array;
  binding: Uint8Array;
  commitments: NonceCommitments;
}

export interface SignatureShare {
  identifier: string;
  /** The 32-byte signature share scalar z_i (public once sent). */
  share: Uint8Array;
}

export interface NonceCommitmentsJson {
  identifier: string;
  hiding: string;
  binding: string;
}

export interface SignatureShareJson {
  identifier: string;
  share: string;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** The JSON form of one signer's commitments: hex of the identifier and the two encoded elements. */
export function encodeNonceCommitments(c: NonceCommitments): NonceCommitmentsJson {
  return { identifier: c.identifier, hiding: hex(c.hiding), binding: hex(c.binding) };
}

/** Parses one signer's commitments; each element must decode (not the identity). Throws InvalidInputError. */
/**
 * Parses one commitment pair. With `decode` (the default) each element is fully deserialized here
 * (RFC 9591 DeserializeElement, with a message naming the bad one); `decode: false` checks shape and
 * length only, for the signing hot path where signShare and aggregate hand the list to noble, which
 * deserializes and validates every element itself (on curve, not identity, prime-order subgroup).
 */
export function parseNonceCommitments(json: unknown, curve: FrostCurve, opts: { decode?: boolean } = {}): NonceCommitments {
  if (!isRecord(json) || Object.keys(json).sort().join(',') !== 'binding,hiding,identifier') {
    throw new InvalidInputError('nonce commitments must be {identifier, hiding, binding}');
  }
  parseIdentifier(curve, json.identifier, 'commitment identifier');
  const who = describeIdentifier(curve, json.identifier as string);
  const len = suiteOf(curve).pointLen;
  const hiding = parseHex(json.hiding, `hiding commitment of ${who}`, len);
  const binding = parseHex(json.binding, `binding commitment of ${who}`, len);
  if (opts.decode !== false) {
    decodePoint(curve, hiding, `hiding commitment of ${who}`);
    decodePoint(curve, binding, `binding commitment of ${who}`);
  }
  return { identifier: json.identifier as string, hiding, binding };
}

/** Parses a commitment list: 2..MAX_SIGNERS entries, no identifier twice. Throws InvalidInputError. */
export function parseCommitmentList(json: unknown, curve: FrostCurve, opts: { decode?: boolean } = {}): NonceCommitments[] {
  if (!Array.isArray(json) || json.length < 2 || json.length > MAX_SIGNERS) throw new InvalidInputError(`commitment list must hold 2..${MAX_SIGNERS} entries`);
  const list = json.map((c) => parseNonceCommitments(c, curve, opts));
  checkDistinct(curve, list.map((c) => c.identifier), 'commitment list');
  return list;
}

/** The JSON form of a signature share. */
export function encodeSignatureShare(s: SignatureShare): SignatureShareJson {
  return { identifier: s.identifier, share: hex(s.share) };
}

/** Parses a signature share: canonical identifier, canonical scalar. Throws InvalidInputError. */
export function parseSignatureShare(json: unknown, curve: FrostCurve): SignatureShare {
  if (!isRecord(json) || Object.keys(json).sort().join(',') !== 'identifier,share') throw new InvalidInputError('signature share must be {identifier, share}');
  parseIdentifier(curve, json.identifier, 'signature share identifier');
  const share = parseHex(json.share, 'signature share', SCALAR_LEN);
  decodeScalar(curve, share, 'signature share');
  return { identifier: json.identifier as string, share };
}

function checkDistinct(curve: FrostCurve, ids: string[], what: string): void {
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) throw new InvalidInputError(`${what} names ${describeIdentifier(curve, id)} twice`);
    seen.add(id);
  }
}

/**
 * A short stable name for one commitment pair, to key the nonce row by: the first 16 bytes of
 * SHA-256(lengthPrefixed("lifeboat-frost-nonce-id", identifier, hiding, binding)), as hex.
 */
export function nonceId(c: NonceCommitments): string {
  return hex(sha256(lengthPrefixed(utf8.encode('lifeboat-frost-nonce-id'), utf8.encode(c.identifier), c.hiding, c.binding)).subarray(0, 16));
}

/**
 * Round one (RFC 9591 section 5.1): fresh hiding and binding nonces (nonce_generate hedges the RNG with
 * the share) and their commitments. Throws InvalidInputError on a malformed key share.
 */
export function commit(key: KeyShare): { nonces: SigningNonces; commitments: NonceCommitments } {
  const s = suiteOf(key.curve);
  decodeScalar(key.curve, key.share, 'signing share', { nonZero: true });
  const out = s.frost.commit({ identifier: key.identifier, signingShare: key.share });
  const commitments: NonceCommitments = { identifier: key.identifier, hiding: out.commitments.hiding, binding: out.commitments.binding };
  const nonces: SigningNonces = { keyId: key.keyId, curve: key.curve, identifier: key.identifier, hiding: out.nonces.hiding, binding: out.nonces.binding, commitments };
  return { nonces, commitments };
}

function isZero(b: Uint8Array): boolean {
  let acc = 0;
  for (const x of b) acc |= x;
  return acc === 0;
}

/**
 * Round two (RFC 9591 section 5.2). Refuses, before touching the share, when the nonces are of another
 * key or signer (InvalidInputError), already used (LifeboatError `nonce_used`, 409), or when this
 * signer's entry in `commitmentList` is missing or differs from the nonces' own commitments, as in a
 * replayed or reordered round message (LifeboatError `commitment_mismatch`, 409). Also refuses a list
 * with too few or too many signers or a signer the key does not know (InvalidInputError). The nonces
 * are wiped whatever the outcome: a nonce is spent by the attempt. Throws LifeboatError
 * `signing_failed` if the suite rejects the inputs for another reason.
 */
export function signShare(key: KeyShare, nonces: SigningNonces, commitmentList: NonceCommitments[], message: Uint8Array): SignatureShare {
  try {
    const s = suiteOf(key.curve);
    if (nonces.keyId !== key.keyId || nonces.curve !== key.curve || nonces.identifier !== key.identifier) {
      throw new InvalidInputError('signing nonces belong to another key or signer');
    }
    if (!(message instanceof Uint8Array)) throw new InvalidInputError('message must be bytes');
    if (nonces.hiding.length !== SCALAR_LEN || nonces.binding.length !== SCALAR_LEN || isZero(nonces.hiding) || isZero(nonces.binding)) {
      throw new LifeboatError('nonce_used', 'these signing nonces were already used', { status: 409, hint: 'run round one (commitments) again' });
    }
    checkCommitmentList(key.curve, key.public, commitmentList);
    const mine = commitmentList.find((c) => c.identifier === key.identifier);
    if (!mine || !ctEqual(mine.hiding, nonces.commitments.hiding) || !ctEqual(mine.binding, nonces.commitments.binding)) {
      throw new LifeboatError('commitment_mismatch', `the commitment list does not hold this signer's round-one commitments (${describeIdentifier(key.curve, key.identifier)})`, {
        status: 409,
        hint: 'a replayed or reordered round message; start the signing again from round one',
      });
    }
    let out: Uint8Array;
    try {
      out = s.frost.signShare({ identifier: key.identifier, signingShare: key.share }, key.public, { hiding: nonces.hiding, binding: nonces.binding }, commitmentList, message);
    } catch {
      throw new LifeboatError('signing_failed', 'the signature share could not be computed from these inputs', { status: 400 });
    }
    return { identifier: key.identifier, share: out };
  } finally {
    wipe(nonces.hiding, nonces.binding);
  }
}

function checkCommitmentList(curve: FrostCurve, pub: FrostPublic, list: NonceCommitments[]): void {
  if (!Array.isArray(list) || list.length < pub.signers.min || list.length > pub.signers.max) {
    throw new InvalidInputError(`the commitment list must name ${pub.signers.min}..${pub.signers.max} signers`);
  }
  checkDistinct(curve, list.map((c) => c.identifier), 'commitment list');
  for (const c of list) {
    if (!pub.verifyingShares[c.identifier]) throw new InvalidInputError(`${describeIdentifier(curve, c.identifier)} is not a signer of this key`);
  }
}

/**
 * Aggregates signature shares (RFC 9591 section 5.3) into the group signature. When the sum does not
 * verify, every share is checked on its own (section 5.4) and SignatureShareError
 * (`invalid_signature_share`) names the nodes whose shares fail. Throws InvalidInputError when the
 * shares and the commitment list do not name the same signers, and LifeboatError `aggregation_failed`
 * when no single share is to blame.
 */
export function aggregate(curve: FrostCurve, pub: FrostPublic, commitmentList: NonceCommitments[], message: Uint8Array, shares: SignatureShare[]): Uint8Array {
  const s = suiteOf(curve);
  checkCommitmentList(curve, pub, commitmentList);
  checkDistinct(curve, shares.map((x) => x.identifier), 'signature shares');
  const byId: Record<string, Uint8Array> = {};
  for (const x of shares) byId[x.identifier] = x.share;
  if (shares.length !== commitmentList.length || commitmentList.some((c) => !byId[c.identifier])) {
    throw new InvalidInputError('the signature shares and the commitment list must name the same signers');
  }
  try {
    return s.frost.aggregate(pub, commitmentList, message, byId);
  } catch {
    const bad = commitmentList
      .map((c) => c.identifier)
      .filter((id) => {
        try {
          return !s.frost.verifyShare(pub, commitmentList, message, id, byId[id]!);
        } catch {
          return true;
        }
      });
    if (bad.length === 0) throw new LifeboatError('aggregation_failed', 'the signature shares do not aggregate to a valid signature', { status: 400 });
    throw new SignatureShareError(bad, `invalid signature share from ${bad.map((id) => describeIdentifier(curve, id)).join(', ')}`);
  }
}
