/**
 * Errors of the FROST domain that name a participant. Codes are stable (the API's err_type); messages
 * are lowercase and never hold secret bytes. See docs/format.md (key node), "Errors".
 */
import { LifeboatError } from '../../errors.js';

/** Who a DKG or signing error is about: the FROST identifier, its number, the identity fingerprint. */
export interface ParticipantRef {
  identifier: string;
  /** 1-based participant number (identifiers are SerializeScalar(number)). */
  number: number | undefined;
  /** Fingerprint of the participant's node identity, when known. */
  fingerprint: string | undefined;
}

export type DkgAbortCode =
  /** A message provably signed by the participant breaks the protocol: bad proof, bad share, equivocation. */
  | 'dkg_participant_cheated'
  /** A message claimed to come from the participant fails authentication or binding (signature, session,
   *  recipient, sender, duplicate): the participant or the relay that carried it misbehaved. */
  | 'dkg_message_rejected'
  /** No message arrived from the participant. */
  | 'dkg_message_missing'
  /** The participant list holds the same node (signing or box key) twice. */
  | 'dkg_duplicate_participant';

/** The DKG stops: nothing of it may be used. `participant` names the culprit. */
export class DkgAbortError extends LifeboatError {
  readonly participant: ParticipantRef;

  constructor(code: DkgAbortCode, participant: ParticipantRef, message: string, hint?: string) {
    super(code, message, { hint, status: 400 });
    this.participant = participant;
  }
}

/** Aggregation found signature shares that do not verify; `participants` lists their identifiers. */
export class SignatureShareError extends LifeboatError {
  readonly participants: string[];

  constructor(participants: string[], message: string) {
    super('invalid_signature_share', message, { status: 400, hint: 'the named node signed with a share or nonce that does not match its verifying share; retry without it' });
    this.participants = participants;
  }
}

/** How a participant reads in an error message: `participant 2 (fingerprint 3f2a:…)`. */
export function describeParticipant(p: ParticipantRef): string {
  const who = p.number === undefined ? `participant ${p.identifier.slice(0, 16)}…` : `participant ${p.number}`;
  return p.fingerprint ? `${who} (node ${p.fingerprint})` : who;
}
