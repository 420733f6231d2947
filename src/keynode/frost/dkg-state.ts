/**
 * A DKG state at rest between the node's HTTP calls: an `LBDK` envelope under the storage key whose
 * bound header names the curve, our identifier, the step and the session id. docs/format.md (key node),
 * "DKG state at rest".
 */
import { openEnvelope, parseEnvelope, sealEnvelope } from '../../crypto/envelope.js';
import { FormatError, LifeboatError } from '../../errors.js';
import { concatBytes, u32be, utf8, wipe } from '../../util/bytes.js';
import { parseDkgRound1Message } from './dkg-messages.js';
import type { DkgState } from './dkg.js';
import { encodeKeyHeader, parseKeyHeader } from './keyshare.js';
import { checkSecretScalar, isFrostCurve, SCALAR_LEN } from './suite.js';

export const DKG_STATE_MAGIC = 'LBDK';
const VERSION = 1;
const STEP_CODE = { round1: 1, round2: 2 } as const;

/** Seals a DKG state under the 32-byte `storageKey`. Throws InvalidInputError on a malformed state. */
export function sealDkgState(storageKey: Uint8Array, state: DkgState): Uint8Array {
  state.coefficients.forEach((c, i) => checkSecretScalar(state.curve, c, `coefficient ${i}`));
  const header = encodeKeyHeader(state.curve, state.identifier, state.sessionId, new Uint8Array([STEP_CODE[state.step]]));
  const json = utf8.encode(
    JSON.stringify({
      session_id: state.sessionId,
      curve: state.curve,
      threshold: state.threshold,
      participants: state.participants.map((p) => ({ identifier: p.identifier, identity: p.identityToken })),
      identifier: state.identifier,
      step: state.step,
      round1: state.round1,
      received: state.received,
    }),
  );
  const plaintext = concatBytes(u32be(json.length), json, ...state.coefficients);
  try {
    return sealEnvelope({ magic: DKG_STATE_MAGIC, version: VERSION, header, key: storageKey, plaintext });
  } finally {
    wipe(plaintext);
  }
}

function malformed(): FormatError {
  return new FormatError('malformed', 'sealed dkg state is malformed');
}

/**
 * Opens a sealed DKG state. Throws FormatError (`bad_magic`, `unsupported_version`, `truncated`,
 * `malformed`), LifeboatError `dkg_state_mismatch` (another session or participant than expected),
 * DecryptionError (wrong key, altered bytes).
 */
export function openDkgState(storageKey: Uint8Array, bytes: Uint8Array, expected: { sessionId: string; identifier?: string }): DkgState {
  const what = 'sealed dkg state';
  const env = parseEnvelope(bytes, { magic: DKG_STATE_MAGIC, versions: [VERSION], what });
  const h = parseKeyHeader(env.header, what, 1);
  if (h.keyId !== expected.sessionId || (expected.identifier !== undefined && h.identifier !== expected.identifier)) {
    throw new LifeboatError('dkg_state_mismatch', `${what} belongs to another session or participant`, { status: 409 });
  }
  const plaintext = openEnvelope(env, storageKey, what);
  try {
    if (plaintext.length < 4) throw malformed();
    const jsonLen = ((plaintext[0]! << 24) | (plaintext[1]! << 16) | (plaintext[2]! << 8) | plaintext[3]!) >>> 0;
    if (4 + jsonLen > plaintext.length || (plaintext.length - 4 - jsonLen) % SCALAR_LEN !== 0) throw malformed();
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(utf8.decode(plaintext.subarray(4, 4 + jsonLen))) as Record<string, unknown>;
    } catch {
      throw malformed();
    }
    const step = doc.step === 'round1' || doc.step === 'round2' ? doc.step : undefined;
    if (!step || STEP_CODE[step] !== h.extra[0] || doc.session_id !== h.keyId || doc.identifier !== h.identifier || doc.curve !== h.curve || !isFrostCurve(doc.curve)) throw malformed();
    const participants = Array.isArray(doc.participants) ? doc.participants : [];
    const state: DkgState = {
      sessionId: h.keyId,
      curve: h.curve,
      threshold: Number(doc.threshold),
      participants: participants.map((p: { identifier?: unknown; identity?: unknown }) => ({ identifier: String(p?.identifier), identityToken: String(p?.identity) })),
      identifier: h.identifier,
      step,
      coefficients: [],
      round1: parseDkgRound1Message(doc.round1),
      received: Array.isArray(doc.received) ? doc.received.map((m) => parseDkgRound1Message(m)) : [],
    };
    for (let o = 4 + jsonLen; o < plaintext.length; o += SCALAR_LEN) state.coefficients.push(plaintext.slice(o, o + SCALAR_LEN));
    if (state.coefficients.length !== state.threshold) throw malformed();
    return state;
  } finally {
    wipe(plaintext);
  }
}
